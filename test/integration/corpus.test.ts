// The type and object corpus (issue 17, test/fixtures/corpus): a database not written for Lifeboat,
// with every built-in type family, extension types, partitions, inheritance, an unlogged table,
// row-level security forced on the owner, names that need quoting, large objects, app roles and
// grants. A drill of it must pass on the local provider and through portable backups into the Cloud
// SQL fake, with every table verified and the application's privileges back; and a one-value change
// in any table of a restored copy must fail verification naming exactly that table.
import { runChecksWithoutSuperuser } from '../../activities/pg/roles';
import { withClient, type PgConnection } from '../../activities/pg/sql';
import { verifyAgainstManifest } from '../../activities/restore-checks';
import { drillInput, type LoadedPlan } from '../../worker/plan';
import type { BackupManifest, BackupRef, CheckResult, RunbookReport, ScratchInstance } from '../../workflows/types';
import { buildCorpus, CORPUS_CHECKS, CORPUS_OTHER_CHANGES, CORPUS_TABLES, dropCorpus } from '../fixtures/corpus/build';
import { silentIo } from '../support/activity-context';
import {
  cloudSqlProvider,
  cloudTestNames,
  createGcsBucket,
  localToCloudSqlRegions,
  runRunbook,
  startCloudSql,
  writePlan,
  type CloudSqlStand,
} from '../support/cloud-stack';
import { local, LogCapture, startWorker, type RunningWorker } from '../support/stack';

const DB = 'corpus';
const { project: PROJECT, bucket: BUCKET, passwordVar: PASSWORD_VAR, workflowId } = cloudTestNames(DB);
const regionA = { name: 'local-a', provider: 'local' as const };
const regionB = { name: 'local-b', provider: 'local' as const };

/** The report's table checks are `table <schema>.<name>`; the drill adds its canary table to the corpus's. */
const reportedTables = [...CORPUS_TABLES.map((t) => t.name), 'lifeboat.canary'].map((n) => `table ${n}`).sort();

/** Every failed check a verification returned, whatever list it is in (tables, plan checks, and any added later). */
function failures(verification: object): CheckResult[] {
  return Object.values(verification)
    .filter((v): v is unknown[] => Array.isArray(v))
    .flat()
    .filter((c): c is CheckResult => typeof c === 'object' && c !== null && (c as CheckResult).ok === false);
}

describe('the type and object corpus (issue 17)', () => {
  let stand: CloudSqlStand | undefined;
  let worker: RunningWorker;
  const logs = new LogCapture();
  const adminA = (database = DB): Promise<PgConnection> => local().connect({ region: regionA, database });
  const plans: Partial<Record<'local' | 'portable', LoadedPlan>> = {};

  async function drill(plan: LoadedPlan): Promise<RunbookReport> {
    const input = drillInput(plan, DB, { fromLatestBackup: false, triggeredBy: 'test' });
    return (await runRunbook('drill', input, workflowId('drill'))).report;
  }

  beforeAll(async () => {
    process.env[PASSWORD_VAR] = 'corpus-Secret-5a1f';
    const [built, started] = await Promise.allSettled([
      (async () => buildCorpus(await adminA('postgres'), DB))(),
      startCloudSql('corpus', 50),
    ]);
    if (started.status === 'fulfilled') stand = started.value; // closed in afterAll even when the build failed
    if (built.status === 'rejected') throw built.reason;
    if (started.status === 'rejected') throw started.reason;
    const { fake } = stand!;
    await createGcsBucket(PROJECT, BUCKET);
    const checks = CORPUS_CHECKS.map(
      (c) => `      - name: ${JSON.stringify(c.name)}\n        sql: ${JSON.stringify(c.sql.replace(/\s+/g, ' '))}\n`,
    ).join('');
    plans.local = writePlan(
      'corpus-local-plan.yaml',
      `regions:
  local-a: { provider: local }
  local-b: { provider: local }
databases:
  ${DB}:
    primary: { region: local-a, database: ${DB} }
    dr: { region: local-b }
    objectives: { rpo: 1h, rto: 30m }
    checks:
${checks}`,
    );
    plans.portable = writePlan(
      'corpus-portable-plan.yaml',
      `${localToCloudSqlRegions('corpus', PROJECT, BUCKET)}databases:
  ${DB}:
    primary: { region: local-a, database: ${DB} }
    dr: { region: gcp-east, credentials: { user: postgres, password: "env:${PASSWORD_VAR}" } }
    objectives: { rpo: 1h, rto: 30m }
    checks:
${checks}`,
    );
    worker = await startWorker({
      regions: ['local-a', 'local-b', 'gcp-east'],
      capture: logs,
      providers: { gcp: cloudSqlProvider(fake) },
    });
  });

  afterAll(async () => {
    await worker?.stop();
    await stand?.close();
    await dropCorpus(await adminA('postgres'), DB);
  });

  // The fixture itself, on the source: what the drills below expect is true there to begin with.
  test('the source holds the rows the fixture lists, and every plan check is true on it', async () => {
    const counts = await withClient(await adminA(), async (c) => {
      const rows: Record<string, number> = {};
      // Counted as the superuser, so past the row-level security of public.secrets.
      const { rows: found } = await c.query<{ name: string; n: number }>(`
        select format('%s.%s', n.nspname, c.relname) as name, (xpath('/row/n/text()', query_to_xml(format('select count(*) as n from only %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::int as n
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where c.relkind = 'r' and n.nspname in ('public', 'Odd Schema.v2')`);
      for (const r of found) rows[r.name] = r.n;
      return rows;
    });
    expect(counts).toEqual(Object.fromEntries(CORPUS_TABLES.map((t) => [t.name, t.rows])));
    const checks = await runChecksWithoutSuperuser(await adminA(), CORPUS_CHECKS);
    expect(checks.filter((c) => !c.ok)).toEqual([]);
  });

  describe.each([
    ['on the local provider (local-a -> local-b)', 'local' as const],
    ['through portable backups (local-a dir store -> Cloud SQL fake)', 'portable' as const],
  ])('a drill of the corpus %s', (_title, kind) => {
    let report: RunbookReport;
    const check = (name: string) => report.checks.find((c) => c.name === name);

    beforeAll(async () => {
      report = await drill(plans[kind]!);
    });

    test('passes', () => {
      expect({ outcome: report.outcome, reason: report.reason }).toEqual({ outcome: 'passed', reason: undefined });
    });

    test('verifies every table of the corpus, and no other', () => {
      expect(
        report.checks
          .filter((c) => c.name.startsWith('table '))
          .map((c) => c.name)
          .sort(),
      ).toEqual(reportedTables);
    });

    test('restores every object without a finding', () => {
      expect(report.checks.filter((c) => c.name.startsWith('restore of '))).toEqual([]);
    });

    test.each(CORPUS_TABLES.map((t) => [t.name, t.rows] as const))(
      'table %s: %i rows, checksum matches',
      (name, rows) => {
        expect(check(`table ${name}`)).toEqual({
          name: `table ${name}`,
          ok: true,
          detail: `${rows} rows, checksum matches`,
        });
      },
    );

    test.each(CORPUS_CHECKS.map((c) => c.name))('plan check true: %s', (name) => {
      expect(check(name)).toEqual({ name, ok: true, detail: 'returned true' });
    });
  });

  describe('a one-value change in a restored copy fails verification naming that table', () => {
    const p = local();
    let ref: BackupRef;
    let scratch: ScratchInstance;
    let conn: PgConnection;
    let manifest: BackupManifest;
    const verify = () => verifyAgainstManifest(conn, manifest, [], silentIo);
    const failedNames = async () => failures(await verify()).map((c) => c.name);
    const apply = (sql: string) => withClient(conn, (c) => c.query(sql));

    beforeAll(async () => {
      // Taken and restored once; each case changes one value, verifies, and undoes the change.
      const taken = await p.createBackup({ region: regionA, database: DB }, `corpus-${Date.now()}`, 'test', silentIo);
      ref = await p.copyBackup(taken, regionB, silentIo);
      await p.deleteBackup(taken);
      scratch = await p.createScratch(regionB, `corpus-${Date.now()}`, DB, silentIo);
      await p.restore(ref, scratch, silentIo);
      conn = await p.connectScratch(scratch);
      manifest = await p.restoredManifest(ref, scratch);
    });

    afterAll(async () => {
      if (scratch) await p.dropScratch(scratch);
      if (ref) await p.deleteBackup(ref);
    });

    test('the manifest lists every table of the corpus', () => {
      expect(
        manifest.tables
          .map((t) => t.table)
          .filter((t) => t !== 'lifeboat.canary')
          .sort(),
      ).toEqual(CORPUS_TABLES.map((t) => t.name).sort());
    });

    test('unchanged, nothing fails', async () => {
      expect(await failedNames()).toEqual([]);
    });

    test.each(CORPUS_TABLES.map((t) => [t.name, t] as const))(
      '%s: one value changed, verification fails naming it and only it',
      async (name, table) => {
        await apply(table.change);
        try {
          const failed = await failedNames();
          expect({ detected: failed.includes(name), othersFailing: failed.filter((n) => n !== name) }).toEqual({
            detected: true,
            othersFailing: [],
          });
        } finally {
          await apply(table.undo);
        }
      },
    );

    test('a large object changed by one byte fails verification naming large objects', async () => {
      await apply(CORPUS_OTHER_CHANGES.largeObject.change);
      try {
        const failed = failures(await verify());
        expect(failed.map((c) => `${c.name}: ${c.detail}`).join('\n')).toMatch(/large object/i);
      } finally {
        await apply(CORPUS_OTHER_CHANGES.largeObject.undo);
      }
    });

    test('a sequence moved fails verification naming it', async () => {
      const { name, change, undo } = CORPUS_OTHER_CHANGES.sequence;
      await apply(change);
      try {
        const failed = failures(await verify());
        expect(failed.map((c) => `${c.name}: ${c.detail}`).join('\n')).toContain(name.split('.')[1]);
      } finally {
        await apply(undo);
      }
    });
  });
});
