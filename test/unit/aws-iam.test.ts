// The IAM policy in activities/providers/aws-iam-policy.json is what an operator attaches to
// Lifeboat's role. moto does not enforce IAM, so nothing else notices a command added to the
// provider without its permission: the first real failover would stop at AccessDenied. These tests
// read the provider's source and hold the policy to it, in both directions: every RDS command the
// code can send is allowed, and the policy allows nothing the code does not need.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { replicaIdFor, scratchIdFor, snapshotIdFor, TAG } from '../../activities/providers/aws';

interface Statement {
  Sid?: string;
  Effect: string;
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, string | string[] | boolean>>;
}
interface Policy {
  Version: string;
  Statement: Statement[];
}

const ROOT = join(__dirname, '..', '..');
const POLICY_FILE = join(ROOT, 'activities', 'providers', 'aws-iam-policy.json');
const policyText = readFileSync(POLICY_FILE, 'utf8');
const policy = JSON.parse(policyText) as Policy;

/**
 * Actions for AWS failover and failback that the provider may not import yet: granted ahead, so the
 * policy operators attach today keeps working after an upgrade. Global-cluster switchover is for
 * Aurora plans. An entry the provider does import is covered by the scan either way.
 */
const PLANNED = [
  'rds:PromoteReadReplica',
  'rds:CreateDBInstanceReadReplica',
  'rds:DescribeGlobalClusters',
  'rds:SwitchoverGlobalCluster',
  'rds:FailoverGlobalCluster',
];

/** Permissions RDS checks on the caller that no SDK command is named after. */
const SUPPORTING = [
  // Commands that create resources are sent with Tags (snapshots, copies, restores, replicas).
  'rds:AddTagsToResource',
  // Permission-only: checked when a copy or replica reaches into the other region.
  'rds:CrossRegionCommunication',
  // RDS calls these on the caller's behalf for the plan's customer-managed keys.
  'kms:DescribeKey',
  'kms:CreateGrant',
];

const asList = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** IAM wildcards: `*` any run of characters, `?` one. Actions compare case-insensitively, ARNs exactly. */
function glob(pattern: string, value: string, flags = ''): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    flags,
  );
  return re.test(value);
}

function statementsAllowing(action: string, arn?: string): Statement[] {
  return policy.Statement.filter(
    (s) =>
      s.Effect === 'Allow' &&
      asList(s.Action).some((p) => glob(p, action, 'i')) &&
      (arn === undefined || asList(s.Resource).some((r) => glob(r, arn))),
  );
}

/** Every .ts file under a folder (the provider may be split into several files). */
function tsFilesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFilesUnder(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/**
 * The `*Command` classes a source file imports (as values) from @aws-sdk/client-rds. A namespace,
 * default or require() import would hide commands from this scan, so it is reported instead.
 */
function rdsCommandsIn(source: string, file: string): string[] {
  const anyImport =
    /(?:import\s+(type\s+)?([^'";]*?)\s+from\s+|require\(\s*)['"]@aws-sdk\/client-rds(?:\/[^'"]*)?['"]/g;
  const commands: string[] = [];
  for (const [, typeOnly, clause] of source.matchAll(anyImport)) {
    if (typeOnly) continue; // types send nothing
    const named = clause === undefined ? null : /^\{([^}]*)\}$/.exec(clause.trim());
    if (!named)
      throw new Error(
        `${file} imports @aws-sdk/client-rds as ${clause?.trim() ?? 'require()'}: use named imports so the IAM test can see the commands`,
      );
    for (const spec of named[1]!.split(',').map((p) => p.trim())) {
      if (!spec || spec.startsWith('type ')) continue;
      const imported = spec.split(/\s+as\s+/)[0]!;
      if (imported.endsWith('Command')) commands.push(imported);
    }
  }
  return commands;
}

function commandsInProvider(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of tsFilesUnder(join(ROOT, 'activities'))) {
    const rel = file.slice(ROOT.length + 1);
    for (const command of rdsCommandsIn(readFileSync(file, 'utf8'), rel)) found.set(command, rel);
  }
  return found;
}

const actionOf = (command: string) => `rds:${command.replace(/Command$/, '')}`;

/** A condition that holds only when the resource carries a lifeboat: tag. */
function requiresLifeboatTag(condition: Statement['Condition']): boolean {
  const tagKey = /^(aws:ResourceTag|rds:(db|snapshot)-tag)\/lifeboat:/i;
  return Object.entries(condition ?? {}).some(([operator, keys]) =>
    Object.entries(keys).some(([key, value]) => {
      if (!tagKey.test(key)) return false;
      if (operator === 'Null') return String(value) === 'false';
      return (
        ['StringEquals', 'StringLike'].includes(operator) &&
        asList(value as string | string[]).every((v) => v !== '*' && v !== '')
      );
    }),
  );
}

describe('the AWS IAM policy', () => {
  const commands = commandsInProvider();

  test('the source scan finds the commands the provider is known to send', () => {
    // Guards the scan itself: if it found nothing, the coverage test below would pass vacuously.
    expect([...commands.keys()]).toEqual(
      expect.arrayContaining([
        'CreateDBSnapshotCommand',
        'CopyDBSnapshotCommand',
        'DeleteDBSnapshotCommand',
        'DescribeDBSnapshotsCommand',
      ]),
    );
  });

  test('every RDS command the provider imports is allowed by some statement', () => {
    const missing = [...commands]
      .filter(([command]) => statementsAllowing(actionOf(command)).length === 0)
      .map(([command, file]) => `${actionOf(command)} (${command} in ${file})`);
    expect(missing).toEqual([]);
  });

  test('a command added to the provider without its permission is caught', () => {
    const added = rdsCommandsIn(
      `import {\n  CopyDBSnapshotCommand,\n  ModifyDBInstanceCommand as Modify,\n  type Tag,\n} from '@aws-sdk/client-rds';`,
      'example.ts',
    );
    expect(added).toEqual(['CopyDBSnapshotCommand', 'ModifyDBInstanceCommand']);
    expect(added.filter((c) => statementsAllowing(actionOf(c)).length === 0)).toEqual(['ModifyDBInstanceCommand']);
    expect(() => rdsCommandsIn(`import * as rds from '@aws-sdk/client-rds';`, 'example.ts')).toThrow(/named imports/);
  });

  test('it grants nothing beyond what the provider sends, plans to send, or RDS checks alongside', () => {
    const needed = new Set(
      [...[...commands.keys()].map(actionOf), ...PLANNED, ...SUPPORTING].map((a) => a.toLowerCase()),
    );
    const granted = policy.Statement.flatMap((s) => asList(s.Action));
    expect(granted.filter((a) => !needed.has(a.toLowerCase()))).toEqual([]);
  });

  test('no wildcard actions, no NotAction or NotResource, only Allow', () => {
    for (const s of policy.Statement) {
      expect({ sid: s.Sid, effect: s.Effect }).toEqual({ sid: s.Sid, effect: 'Allow' });
      expect({ sid: s.Sid, wildcards: asList(s.Action).filter((a) => a.includes('*') || a.includes('?')) }).toEqual({
        sid: s.Sid,
        wildcards: [],
      });
      expect({ sid: s.Sid, NotAction: s.NotAction, NotResource: s.NotResource }).toEqual({
        sid: s.Sid,
        NotAction: undefined,
        NotResource: undefined,
      });
    }
    expect(statementsAllowing('rds:ModifyDBInstance')).toEqual([]);
    expect(statementsAllowing('iam:PassRole')).toEqual([]);
  });

  test('"Resource": "*" only for reads and for actions that have no resource type', () => {
    const resourceless = new Set(['rds:CrossRegionCommunication']);
    const broad = policy.Statement.filter((s) => asList(s.Resource).includes('*'));
    const writes = broad
      .flatMap((s) => asList(s.Action))
      .filter((a) => !/^rds:Describe/.test(a) && !resourceless.has(a));
    expect(writes).toEqual([]);
  });

  test('every Delete action only touches resources that carry a lifeboat: tag', () => {
    const deletes = policy.Statement.filter((s) => asList(s.Action).some((a) => /:Delete/i.test(a)));
    expect(deletes.map((s) => asList(s.Action)).flat()).toEqual(
      expect.arrayContaining(['rds:DeleteDBSnapshot', 'rds:DeleteDBInstance']),
    );
    for (const s of deletes) {
      expect({ sid: s.Sid, tagged: requiresLifeboatTag(s.Condition) }).toEqual({ sid: s.Sid, tagged: true });
      expect({ sid: s.Sid, resources: asList(s.Resource).filter((r) => !/:lifeboat-\*$/.test(r)) }).toEqual({
        sid: s.Sid,
        resources: [],
      });
    }
  });

  test('the tag check rejects conditions that would let an untagged resource through', () => {
    expect(requiresLifeboatTag(undefined)).toBe(false);
    expect(requiresLifeboatTag({ Null: { 'aws:ResourceTag/lifeboat:backup-id': 'true' } })).toBe(false);
    expect(requiresLifeboatTag({ StringLike: { 'aws:ResourceTag/owner': 'lifeboat' } })).toBe(false);
    expect(requiresLifeboatTag({ StringLike: { 'aws:ResourceTag/lifeboat:scratch': '*' } })).toBe(false);
    expect(requiresLifeboatTag({ StringEquals: { 'rds:db-tag/lifeboat:scratch': 'true' } })).toBe(true);
  });

  test('Lifeboat can add only lifeboat: tags; on instances it did not make, only its promote and fence records', () => {
    const [tagging, records, ...others] = statementsAllowing('rds:AddTagsToResource');
    expect(others).toEqual([]);
    expect(tagging?.Condition).toEqual({ 'ForAllValues:StringLike': { 'aws:TagKeys': ['lifeboat:*'] } });
    expect(records?.Condition).toEqual({
      'ForAllValues:StringEquals': { 'aws:TagKeys': [TAG.promoteRequested, TAG.fenceStopped] },
    });
    const [untagging, ...more] = statementsAllowing('rds:RemoveTagsFromResource');
    expect(more).toEqual([]);
    expect(untagging?.Condition).toEqual(records?.Condition);
  });

  test('the fence stops, and unfence starts, only an instance tagged lifeboat:fence-stopped (the fence tags it first)', () => {
    for (const action of ['rds:StopDBInstance', 'rds:StartDBInstance']) {
      const statements = statementsAllowing(action);
      expect(statements).toHaveLength(1);
      expect(statements[0]?.Condition).toEqual({ Null: { [`aws:ResourceTag/${TAG.fenceStopped}`]: 'false' } });
      expect(requiresLifeboatTag(statements[0]?.Condition)).toBe(true);
    }
  });

  describe('name-scoped statements fit the names the provider gives what it creates', () => {
    // ARN patterns only hold while the provider's identifiers keep their shape: these come from the
    // provider's own naming functions, so renaming one without the policy fails here, not in AWS.
    const arn = (type: string, id: string) => `arn:aws:rds:eu-west-1:ACCOUNT-ID:${type}:${id}`;
    const snapshot = arn('snapshot', snapshotIdFor('2024-05-01t0300-orders'));
    const scratch = arn('db', scratchIdFor('drill-orders-7f3a'));
    const replica = arn('db', replicaIdFor('orders-dr', 'orders'));
    const production = arn('db', 'orders');

    test.each([
      ['rds:CreateDBSnapshot', snapshot],
      ['rds:CreateDBSnapshot', production],
      ['rds:CopyDBSnapshot', snapshot],
      ['rds:RestoreDBInstanceFromDBSnapshot', snapshot],
      ['rds:RestoreDBInstanceFromDBSnapshot', scratch],
      ['rds:AddTagsToResource', snapshot],
      ['rds:AddTagsToResource', scratch],
      ['rds:AddTagsToResource', replica],
      ['rds:DeleteDBSnapshot', snapshot],
      ['rds:DeleteDBInstance', scratch],
      ['rds:CreateDBInstanceReadReplica', replica],
      ['rds:PromoteReadReplica', replica],
    ])('%s on %s is allowed', (action, resource) => {
      expect(statementsAllowing(action, resource).map((s) => s.Sid)).not.toEqual([]);
    });

    test.each([
      ['rds:DeleteDBInstance', production],
      ['rds:DeleteDBInstance', replica],
      ['rds:DeleteDBSnapshot', arn('snapshot', 'orders-nightly')],
      ['rds:AddTagsToResource', arn('snapshot', 'orders-nightly')],
      ['rds:RestoreDBInstanceFromDBSnapshot', production],
    ])('%s on %s is not', (action, resource) => {
      expect(statementsAllowing(action, resource).map((s) => s.Sid)).toEqual([]);
    });
  });

  test("KMS grants are only for RDS acting on Lifeboat's behalf, on named keys", () => {
    const kms = policy.Statement.filter((s) => asList(s.Action).some((a) => a.startsWith('kms:')));
    expect(kms.flatMap((s) => asList(s.Action)).sort()).toEqual(['kms:CreateGrant', 'kms:DescribeKey']);
    for (const s of kms) {
      expect({ sid: s.Sid, broad: asList(s.Resource).filter((r) => r === '*' || r.endsWith('key/*')) }).toEqual({
        sid: s.Sid,
        broad: [],
      });
      expect(s.Condition?.StringLike?.['kms:ViaService']).toBe('rds.*.amazonaws.com');
    }
    const [createGrant] = statementsAllowing('kms:CreateGrant');
    expect(createGrant?.Condition?.Bool).toEqual({ 'kms:GrantIsForAWSResource': 'true' });
  });

  test('the AWS docs page shows exactly this policy (the copy operators paste is the one under test)', () => {
    const page = readFileSync(join(ROOT, 'docs', 'providers', 'aws.md'), 'utf8');
    const blocks = [...page.matchAll(/```json\n([\s\S]*?)\n```/g)].map((m) => m[1]!);
    const shown = blocks.map((b) => JSON.parse(b) as Policy).filter((b) => b.Version === '2012-10-17');
    expect(shown).toHaveLength(1);
    expect(shown[0]).toEqual(policy);
  });

  test('it is a policy IAM accepts: version, unique alphanumeric Sids, under the managed-policy size limit', () => {
    expect(policy.Version).toBe('2012-10-17');
    const sids = policy.Statement.map((s) => s.Sid ?? '');
    expect(sids.filter((sid) => !/^[A-Za-z0-9]+$/.test(sid))).toEqual([]);
    expect(new Set(sids).size).toBe(sids.length);
    // IAM counts characters without whitespace; a customer managed policy holds at most 6,144.
    expect(policyText.replace(/\s/g, '').length).toBeLessThanOrEqual(6144);
  });
});
