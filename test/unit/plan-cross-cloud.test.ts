// Plans for recovery across clouds: a DR region on another provider is allowed when both regions
// keep portable backups in a store, and every missing or contradictory setting is named.
import { crossCloudInput, drillInput, backupInput, parsePlan, recoversByRestore } from '../../worker/plan';
import { planErrorOf } from '../support/plan-errors';

const GCP =
  '{ provider: gcp, project: shop-prod-1, gcpRegion: us-east4, scratch: { databaseVersion: POSTGRES_15 }, store: { gcs: { bucket: shop-dr-backups, prefix: pg/ } } }';

function plan(regions: string, dr: string, extra = ''): string {
  return `regions:
${regions}
databases:
  shop:
    primary: { region: local-a, database: shop }
    dr: ${dr}
    objectives: { rpo: 1h, rto: 30m }
${extra}`;
}

const VALID = plan(
  `  local-a: { provider: local, store: { s3: { bucket: shop-backups, awsRegion: eu-west-1 } } }\n  gcp-b: ${GCP}`,
  '{ region: gcp-b, instance: shop-dr, credentials: { user: postgres, password: "env:SHOP_DR_PASSWORD" } }',
);

describe('cross-cloud plans (portable backups)', () => {
  test('local primary with an S3 store, Cloud SQL DR with a GCS store: accepted, and drills, backups and failovers go portable', () => {
    const loaded = parsePlan(VALID, 'plan.yaml');
    expect(recoversByRestore(loaded, 'shop')).toBe(true);
    const drill = drillInput(loaded, 'shop', { fromLatestBackup: false, triggeredBy: 't' });
    expect(drill).toMatchObject({
      portable: true,
      drCredentials: { user: 'postgres', password: 'env:SHOP_DR_PASSWORD' },
    });
    expect(drill.primary.region.store).toEqual({
      kind: 's3',
      bucket: 'shop-backups',
      prefix: '',
      awsRegion: 'eu-west-1',
    });
    expect(drill.dr.store).toEqual({ kind: 'gcs', bucket: 'shop-dr-backups', prefix: 'pg/' });
    expect(backupInput(loaded, 'shop', { triggeredBy: 't' }).portable).toBe(true);
    const failover = crossCloudInput(loaded, 'shop', {
      direction: 'failover',
      mode: 'planned',
      preApproved: true,
      triggeredBy: 't',
    });
    expect(failover.from).toMatchObject({ region: { name: 'local-a' }, database: 'shop' });
    expect(failover.to).toMatchObject({ region: { name: 'gcp-b' }, database: 'shop', instance: 'shop-dr' });
    const failback = crossCloudInput(loaded, 'shop', {
      direction: 'failback',
      mode: 'planned',
      preApproved: true,
      triggeredBy: 't',
    });
    expect([failback.from.region.name, failback.to.region.name]).toEqual(['gcp-b', 'local-a']);
  });

  test('same-provider plans are unchanged: not portable, no store needed', () => {
    const loaded = parsePlan(
      plan('  local-a: { provider: local }\n  local-b: { provider: local }', '{ region: local-b, standby: true }'),
      'plan.yaml',
    );
    expect(recoversByRestore(loaded, 'shop')).toBe(false);
    expect(drillInput(loaded, 'shop', { fromLatestBackup: false, triggeredBy: 't' }).portable).toBeUndefined();
    expect(() =>
      crossCloudInput(loaded, 'shop', { direction: 'failover', mode: 'planned', preApproved: true, triggeredBy: 't' }),
    ).toThrow(/uses the streaming standby/);
  });

  test.each([
    [
      'a region without a store',
      plan(
        `  local-a: { provider: local }\n  gcp-b: ${GCP}`,
        '{ region: gcp-b, instance: shop-dr, credentials: { user: postgres, password: "env:P" } }',
      ),
      /regions\.local-a\.store: missing; expected an object store for portable backups \(gcp-b is on gcp and the primary on local/,
    ],
    [
      'a streaming standby across clouds',
      plan(
        `  local-a: { provider: local, store: { dir: /srv/a } }\n  gcp-b: ${GCP}`,
        '{ region: gcp-b, standby: true, credentials: { user: postgres, password: "env:P" } }',
      ),
      /databases\.shop\.dr\.standby: is true; expected false: no streaming replication crosses clouds/,
    ],
    [
      'a Cloud SQL DR without credentials',
      plan(
        `  local-a: { provider: local, store: { dir: /srv/a } }\n  gcp-b: ${GCP}`,
        '{ region: gcp-b, instance: shop-dr }',
      ),
      /databases\.shop\.dr\.credentials: missing/,
    ],
    [
      'a Cloud SQL DR login other than postgres',
      plan(
        `  local-a: { provider: local, store: { dir: /srv/a } }\n  gcp-b: ${GCP}`,
        '{ region: gcp-b, credentials: { user: app, password: "env:P" } }',
      ),
      /dr\.credentials\.user: expected postgres/,
    ],
    [
      'a password pasted instead of a reference',
      plan(
        `  local-a: { provider: local, store: { dir: /srv/a } }\n  gcp-b: ${GCP}`,
        '{ region: gcp-b, credentials: { user: postgres, password: hunter2-Secret } }',
      ),
      /dr\.credentials\.password: expected a reference.*\(value not shown\)/,
    ],
    [
      'an S3 store outside AWS without its region',
      plan(
        `  local-a: { provider: local, store: { s3: { bucket: shop-backups } } }\n  gcp-b: ${GCP}`,
        '{ region: gcp-b, credentials: { user: postgres, password: "env:P" } }',
      ),
      /regions\.local-a\.store\.s3\.awsRegion: missing/,
    ],
    [
      'both regions in one store',
      plan(
        `  local-a: { provider: local, store: { dir: /srv/a } }\n  gcp-b: ${GCP.replace('{ gcs: { bucket: shop-dr-backups, prefix: pg/ } }', '{ dir: /srv/a }')}`,
        '{ region: gcp-b, credentials: { user: postgres, password: "env:P" } }',
      ),
      /regions\.gcp-b\.store: is the same store as regions\.local-a\.store/,
    ],
    [
      'a store of no known kind',
      plan(`  local-a: { provider: local, store: { ftp: x } }\n  gcp-b: ${GCP}`, '{ region: gcp-b }'),
      /regions\.local-a\.store: expected one of \{ s3/,
    ],
    [
      'a relative store directory',
      plan(`  local-a: { provider: local, store: { dir: backups } }\n  gcp-b: ${GCP}`, '{ region: gcp-b }'),
      /regions\.local-a\.store\.dir: expected an absolute directory path/,
    ],
    [
      'DR settings on a same-provider database',
      plan('  local-a: { provider: local }\n  local-b: { provider: local }', '{ region: local-b, instance: other }'),
      /databases\.shop\.dr: instance and credentials are for cross-cloud recovery/,
    ],
    [
      'an AWS DR region (portable restores into RDS are not built)',
      plan(
        '  local-a: { provider: local, store: { dir: /srv/a } }\n  aws-b: { provider: aws, awsRegion: us-west-2, scratch: { subnetGroup: g, securityGroups: [sg-0123456789abcdef0] }, store: { s3: { bucket: shop-dr } } }',
        '{ region: aws-b, credentials: { user: admin, password: "env:P" } }',
      ),
      /dr\.region: "aws-b" is on aws; portable backups restore into local or gcp regions/,
    ],
  ])('refused, naming the field: %s', (_what, text, expected) => {
    expect(planErrorOf(text)).toMatch(expected);
    expect(planErrorOf(text)).not.toContain('hunter2');
  });

  test('a cross-cloud failover into a cloud region needs the DR instance', () => {
    const loaded = parsePlan(VALID.replace('instance: shop-dr, ', ''), 'plan.yaml');
    expect(() =>
      crossCloudInput(loaded, 'shop', { direction: 'failover', mode: 'planned', preApproved: true, triggeredBy: 't' }),
    ).toThrow(/databases\.shop\.dr\.instance: missing/);
  });
});
