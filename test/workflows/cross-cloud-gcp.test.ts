// Recovery across clouds between the local provider and Google Cloud SQL: portable backups (pg_dump +
// manifest) in a directory store on the local side and a GCS bucket on the Cloud SQL side, the drill
// restoring one cloud's backup into the other's scratch instance, and the cross-cloud failover and
// failback runbooks. Stand-ins: the Cloud SQL fake (real PostgreSQL behind its REST routes) and
// fake-gcs-server (a real GCS JSON API emulator; no IAM, no real durability).
import type { Storage } from '@google-cloud/storage';
import { openStore } from '../../activities/portable/open-store';
import { withClient, type PgConnection } from '../../activities/pg/sql';
import { seedDemo } from '../../scripts/dev/seed';
import { backupInput, crossCloudInput, drillInput, type LoadedPlan } from '../../worker/plan';
import type { RunbookReport } from '../../workflows/types';
import type { CloudSqlFake } from '../fakes/cloudsql/server';
import { lifeboat } from '../support/cli';
import {
  cloudSqlConnection,
  cloudSqlProvider,
  cloudTestNames,
  createCloudSqlInstance,
  createGcsBucket,
  expectDrillPassed,
  localToCloudSqlRegions,
  runRunbook,
  startCloudSql,
  storeDir,
  writePlan,
  type CloudSqlStand,
} from '../support/cloud-stack';
import { client, historyText, local, LogCapture, startWorker, type RunningWorker } from '../support/stack';

const { project: PROJECT, bucket: BUCKET, passwordVar: PASSWORD_VAR, workflowId } = cloudTestNames('xc');
const PASSWORD = 'xc-Secret-91d2:\\x';
const DB = 'shopxc';
const DR_INSTANCE = 'shopxc-dr';

describe('cross-cloud recovery, local <-> Cloud SQL (the Cloud SQL fake: real PostgreSQL, no IAM/TLS/networking; GCS: fake-gcs-server, no IAM, no real durability)', () => {
  let stand: CloudSqlStand;
  let fake: CloudSqlFake;
  let plan: LoadedPlan;
  let worker: RunningWorker;
  let storage: Storage;
  const logs = new LogCapture();

  const localConn = (database = DB): Promise<PgConnection> =>
    local().connect({ region: { name: 'local-a', provider: 'local' }, database });
  const drConn = (database = DB): PgConnection => cloudSqlConnection(fake, PROJECT, DR_INSTANCE, PASSWORD, database);
  const databases = async (conn: PgConnection) =>
    withClient({ ...conn, database: 'postgres' }, async (c) =>
      (await c.query<{ datname: string }>('select datname from pg_database order by 1')).rows.map((r) => r.datname),
    );
  const count = (conn: PgConnection, sql: string) =>
    withClient(conn, async (c) => Number((await c.query<{ n: string }>(sql)).rows[0]!.n));
  const gcsKeys = async () => (await storage.bucket(BUCKET).getFiles({ prefix: 'backups/' }))[0].map((f) => f.name);
  const scratchInstances = async () =>
    ((await stand.instances.list({ project: PROJECT }))[0].items ?? [])
      .filter((i) => i.name?.startsWith('lifeboat-drill-') && i.state !== 'PENDING_DELETE')
      .map((i) => i.name);

  async function execute(
    workflowType: string,
    input: unknown,
    id = workflowId(workflowType),
  ): Promise<{ report: RunbookReport; history: string }> {
    const { handle, report } = await runRunbook(workflowType, input, id);
    return { report, history: historyText(await handle.fetchHistory()) };
  }
  const move = (direction: 'failover' | 'failback', mode: 'planned' | 'unplanned') =>
    execute(
      'crossCloudFailover',
      crossCloudInput(plan, DB, { direction, mode, preApproved: true, triggeredBy: 'test' }),
      `lifeboat/${DB}/failover`,
    );

  beforeAll(async () => {
    process.env[PASSWORD_VAR] = PASSWORD;
    stand = await startCloudSql('xc', 100);
    fake = stand.fake;
    // The DR side: an empty Cloud SQL instance an operator keeps for recovery ("pilot light").
    await createCloudSqlInstance(stand, PROJECT, {
      name: DR_INSTANCE,
      region: 'us-east4',
      rootPassword: PASSWORD,
      settings: { tier: 'db-custom-1-3840' },
    });
    storage = await createGcsBucket(PROJECT, BUCKET);
    // The source: a database of its own on local-a's server, seeded with the demo schema.
    await withClient(await localConn('postgres'), async (c) => {
      if ((await c.query('select 1 from pg_database where datname = $1', [DB])).rowCount === 0)
        await c.query(`create database ${DB}`);
    });
    await withClient(await localConn(), (c) => seedDemo(c, 0.03));

    plan = writePlan(
      'xc-gcp-plan.yaml',
      `${localToCloudSqlRegions('xc', PROJECT, BUCKET)}databases:
  ${DB}:
    primary: { region: local-a, database: ${DB} }
    dr: { region: gcp-east, instance: ${DR_INSTANCE}, credentials: { user: postgres, password: "env:${PASSWORD_VAR}" } }
    objectives: { rpo: 1h, rto: 10m }
    retention: { keep: 2 }
    checks:
      - name: orders exist
        sql: select count(*) > 0 from orders
`,
    );
    const gcp = cloudSqlProvider(fake);
    worker = await startWorker({ regions: ['local-a', 'local-b', 'gcp-east'], capture: logs, providers: { gcp } });
  });

  afterAll(async () => {
    await worker?.stop();
    await stand?.close();
  });

  test("a drill restores the local primary's portable backup into a Cloud SQL scratch instance: dir store -> GCS copy, every table verified, scratch deleted", async () => {
    const input = drillInput(plan, DB, { fromLatestBackup: false, triggeredBy: 'test' });
    expect(input.portable).toBe(true);
    const { report, history } = await execute('drill', input);
    expectDrillPassed(report);
    expect(report.checks.find((c) => c.name === 'orders exist')).toMatchObject({ ok: true });
    expect(report.checks.find((c) => c.name === 'canary present')).toMatchObject({ ok: true });
    expect(report.backup).toMatchObject({ provider: 'local', store: { kind: 'dir' } });
    expect(report.copies[0]).toMatchObject({
      region: 'gcp-east',
      store: { kind: 'gcs', bucket: BUCKET },
      sha256: report.backup!.sha256,
    });
    expect(await gcsKeys()).toEqual(
      expect.arrayContaining([
        `backups/${DB}/${report.backup!.backupId}/dump.pgdump`,
        `backups/${DB}/${report.backup!.backupId}/manifest.json`,
      ]),
    );
    expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
    expect(await scratchInstances()).toEqual([]);
    // The scratch instance was made with the plan's DR login (a pg_restore brings no roles), by reference only.
    expect(history).toContain(`env:${PASSWORD_VAR}`);
    expect(history).not.toContain(PASSWORD);
    expect(logs.text).not.toContain(PASSWORD);
  });

  test('a copy damaged in the GCS bucket fails the drill at "verify copy" with a checksum mismatch, and the scratch instance is still deleted', async () => {
    const backup = await execute('backup', backupInput(plan, DB, { triggeredBy: 'test' }));
    expect({ outcome: backup.report.outcome, reason: backup.report.reason }).toEqual({
      outcome: 'passed',
      reason: undefined,
    });
    const copy = backup.report.copies[0]!;
    expect(copy.store).toMatchObject({ kind: 'gcs' });
    // Written through the store itself: the emulator takes uploads only at its bare address (see gcs-store.ts).
    await openStore(copy.store!).putText(`${DB}/${copy.backupId}/dump.pgdump`, 'not the dump you are looking for');

    const { report } = await execute('drill', drillInput(plan, DB, { fromLatestBackup: true, triggeredBy: 'test' }));
    expect(report.outcome).toBe('failed');
    expect(report.reason).toContain('LifeboatBackupChecksumMismatch');
    expect(report.steps.find((s) => s.name === 'verify copy')).toMatchObject({ status: 'failed', attempts: 1 });
    expect(report.steps.find((s) => s.name === 'restore')).toBeUndefined();
    expect(report.cleanup).toEqual([expect.objectContaining({ ok: true })]);
    expect(await scratchInstances()).toEqual([]);
  });

  test('`lifeboat failback` of a database that was never failed over runs the cross-cloud runbook, which refuses before anything changes (it would restore stale DR data over the live home)', async () => {
    const cli = await lifeboat(['failback', DB, '-f', plan.source, '--yes', '--json']);
    expect(cli.code).toBe(1);
    const report = JSON.parse(cli.stdout) as RunbookReport;
    expect(report).toMatchObject({ runbook: 'failback', workflowId: `lifeboat/${DB}/failover`, outcome: 'failed' });
    const described = await (await client()).workflow.getHandle(report.workflowId, report.runId).describe();
    expect(described.type).toBe('crossCloudFailover');
    expect(report.reason).toMatch(
      /served from its home \(it was never failed over\), not gcp-east\/shopxc-dr\/shopxc: nothing to failback/,
    );
    expect(report.steps.map((s) => s.name)).toEqual(['cancel drills', 'read record']);
    await withClient(await localConn(), (c) =>
      c.query(`insert into lifeboat.canary (token) values ('still writable')`),
    );
  });

  test('planned cross-cloud failover to Cloud SQL loses nothing (RPO 0): final backup after the fence, restored and verified, the local source left fenced', async () => {
    const ordersBefore = await count(await localConn(), 'select count(*) as n from orders');
    const { report, history } = await move('failover', 'planned');
    expect({ outcome: report.outcome, reason: report.reason }).toEqual({ outcome: 'passed', reason: undefined });
    expect(report.rpoSeconds).toBe(0);
    expect(report.crossCloud).toMatchObject({
      from: `local-a/server/${DB}`,
      to: `gcp-east/${DR_INSTANCE}/${DB}`,
      rpoPromiseSeconds: 0,
      setAside: null,
    });
    expect(report.checks.find((c) => c.name === 'no acknowledged write lost')).toMatchObject({ ok: true });
    for (const t of report.checks.filter((c) => c.name.startsWith('table '))) expect(t.ok).toBe(true);
    expect(report.failover?.topology).toMatchObject({
      primary: { region: 'gcp-east', name: DR_INSTANCE },
      fenced: [{ region: 'local-a', name: 'server' }],
    });
    expect(report.failover?.fence).toMatchObject({ confirmed: true });
    // The data is on Cloud SQL and takes writes there; the local source refuses them.
    expect(await count(drConn(), 'select count(*) as n from orders')).toBe(ordersBefore);
    await withClient(drConn(), (c) => c.query(`insert into lifeboat.canary (token) values ('written on the DR side')`));
    await expect(
      withClient(await localConn(), (c) => c.query(`insert into lifeboat.canary (token) values ('must fail')`)),
    ).rejects.toThrow(/read-only/);
    expect(history).not.toContain(PASSWORD);
  });

  test("failback to local restores the Cloud SQL side's portable backup, keeps the old local database under another name, and loses nothing written on the DR side", async () => {
    const { report } = await move('failback', 'planned');
    expect({ outcome: report.outcome, reason: report.reason }).toEqual({ outcome: 'passed', reason: undefined });
    expect(report.rpoSeconds).toBe(0);
    expect(report.backup).toMatchObject({ provider: 'gcp', store: { kind: 'gcs' } });
    expect(report.copies[0]).toMatchObject({ store: { kind: 'dir' } });
    expect(report.crossCloud?.setAside).toMatch(new RegExp(`^${DB}_before_[0-9a-f]{8}$`));
    expect(await databases(await localConn())).toEqual(expect.arrayContaining([DB, report.crossCloud!.setAside]));
    expect(report.failover?.topology).toMatchObject({
      primary: { region: 'local-a', name: 'server' },
      fenced: [{ region: 'gcp-east', name: DR_INSTANCE }],
    });
    expect(
      await count(
        await localConn(),
        `select count(*) as n from lifeboat.canary where token = 'written on the DR side'`,
      ),
    ).toBe(1);
    // Home takes writes again (the restored database is a new one, not the fenced one).
    await withClient(await localConn(), (c) => c.query(`insert into lifeboat.canary (token) values ('home again')`));
  });

  test("unplanned cross-cloud failover restores the newest copy already in GCS: it promises the copy's age as RPO, measures the loss from data, and keeps the DR side's earlier database", async () => {
    const backup = await execute('backup', backupInput(plan, DB, { triggeredBy: 'test' }));
    expect(backup.report.outcome).toBe('passed');
    // Written after the newest backup: an unplanned move loses it, and must say so.
    await withClient(await localConn(), (c) =>
      c.query(`insert into lifeboat.canary (token) values ('after the last backup')`),
    );
    const { report } = await move('failover', 'unplanned');
    expect({ outcome: report.outcome, reason: report.reason }).toEqual({ outcome: 'passed', reason: undefined });
    expect(report.copies[0]?.backupId).toBe(backup.report.copies[0]!.backupId);
    expect(report.crossCloud?.rpoPromiseSeconds).toBeGreaterThan(0);
    expect(report.rpoSeconds).toBeGreaterThan(0);
    expect(report.checks.find((c) => c.name === 'RPO within objective')).toMatchObject({
      ok: true,
      detail: expect.stringContaining('promised'),
    });
    expect(report.crossCloud?.setAside).toMatch(new RegExp(`^${DB}_before_`));
    expect(await databases(drConn())).toEqual(expect.arrayContaining([DB, report.crossCloud!.setAside]));
    expect(
      await count(drConn(), `select count(*) as n from lifeboat.canary where token = 'after the last backup'`),
    ).toBe(0);
  });

  test('and back: a drill from the Cloud SQL instance (now serving) into a local scratch instance, GCS -> directory, every table verified', async () => {
    const back = writePlan(
      'xc-gcp-back-plan.yaml',
      `regions:
  gcp-east: { provider: gcp, project: ${PROJECT}, gcpRegion: us-east4, scratch: { databaseVersion: POSTGRES_15 }, store: { gcs: { bucket: ${BUCKET}, prefix: back/ } } }
  local-b: { provider: local, store: { dir: ${storeDir('xc-back')} } }
databases:
  shopback:
    primary: { region: gcp-east, database: ${DB}, instance: ${DR_INSTANCE}, credentials: { user: postgres, password: "env:${PASSWORD_VAR}" } }
    dr: { region: local-b }
    objectives: { rpo: 1h, rto: 10m }
`,
    );
    const { report, history } = await execute(
      'drill',
      drillInput(back, 'shopback', { fromLatestBackup: false, triggeredBy: 'test' }),
    );
    expectDrillPassed(report);
    expect(report.backup).toMatchObject({ provider: 'gcp', store: { kind: 'gcs', prefix: 'back/' } });
    expect(report.copies[0]).toMatchObject({ region: 'local-b', store: { kind: 'dir' } });
    expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
    expect(await local().listScratch({ name: 'local-b', provider: 'local' })).not.toContain(
      `drill-${report.runId.replace(/-/g, '').slice(-8)}`,
    );
    expect(history).not.toContain(PASSWORD);
  });
});
