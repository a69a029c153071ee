// The Drill and Backup runbooks on the Google Cloud provider, against the Cloud SQL fake
// (test/fakes/cloudsql): the REST routes @google-cloud/sql calls, whose instances are real local
// PostgreSQL and whose backup runs are real dumps, so a drill here verifies real data end to end.
// What the fake cannot show: IAM, networking and TLS, real timings, HA and replicas.
import type { v1 } from '@google-cloud/sql';
import { withClient } from '../../activities/pg/sql';
import { backupInput, drillInput, failbackInput, failoverInput, type LoadedPlan } from '../../worker/plan';
import { untilDone } from '../fakes/cloudsql/clients';
import type { CloudSqlFake } from '../fakes/cloudsql/server';
import {
  cloudSqlConnection,
  cloudSqlProvider,
  cloudTestNames,
  createCloudSqlReplica,
  createSeededPrimary,
  expectDrillPassed,
  expectSecretByReference,
  gcpPlanRegions,
  runRunbook,
  startCloudSql,
  takesWrites,
  writePlan,
  type CloudSqlStand,
} from '../support/cloud-stack';
import { lockId } from '../support/replica-set';
import { LogCapture, startWorker, type RunningWorker } from '../support/stack';

const { project: PROJECT, passwordVar: PASSWORD_VAR, workflowId } = cloudTestNames('gcp');
const PRIMARY = 'shop-main';
const PASSWORD = 'cloudsql-Secret-4e1b7';

/** A plan with the two gcp regions of these tests and the databases given. */
const plannedWith = (name: string, databases: string): LoadedPlan =>
  writePlan(`${name}.yaml`, `${gcpPlanRegions(PROJECT)}databases:\n${databases}`);

describe('Cloud SQL provider against the Cloud SQL fake (real PostgreSQL behind it; no IAM, networking, TLS or replicas in the fake)', () => {
  let stand: CloudSqlStand;
  let fake: CloudSqlFake;
  let plan: LoadedPlan;
  let worker: RunningWorker;
  const logs = new LogCapture();

  beforeAll(async () => {
    process.env[PASSWORD_VAR] = PASSWORD;
    stand = await startCloudSql('drill', 200);
    fake = stand.fake;
    // The primary: made the way an operator would, then seeded with the demo schema.
    await createSeededPrimary(stand, PROJECT, {
      body: { name: PRIMARY, region: 'us-central1', settings: { tier: 'db-custom-1-3840' } },
      password: PASSWORD,
      database: 'shop',
      scale: 0.05,
    });
    plan = plannedWith(
      'gcp-plan',
      `  shop:
    primary: { region: gcp-central, database: shop, instance: ${PRIMARY}, credentials: { user: postgres, password: "env:${PASSWORD_VAR}" } }
    dr: { region: gcp-east }
    objectives: { rpo: 1h, rto: 1h }
    retention: { keep: 1 }
    checks:
      - name: orders exist
        sql: select count(*) > 0 from orders
`,
    );
    worker = await startWorker({
      regions: ['gcp-central', 'gcp-east'],
      capture: logs,
      providers: { gcp: cloudSqlProvider(fake) },
    });
  });

  afterAll(async () => {
    await worker?.stop();
    await stand?.close();
  });

  const drill = () =>
    runRunbook(
      'drill',
      drillInput(plan, 'shop', { fromLatestBackup: false, triggeredBy: 'test' }),
      workflowId('drill'),
    );

  const scratchInstances = async () =>
    ((await stand.instances.list({ project: PROJECT }))[0].items ?? [])
      .filter((i) => i.name?.startsWith('lifeboat-drill-') && i.state !== 'PENDING_DELETE')
      .map((i) => i.name);

  test('a Cloud SQL drill passes with real data verified: backup run, private scratch instance in the DR region, restoreBackup, every table checked, scratch deleted', async () => {
    const { handle, report } = await drill();
    expectDrillPassed(report);
    expect(report.checks.find((c) => c.name === 'orders exist')).toMatchObject({ ok: true });
    expect(report.backup!.location).toMatch(new RegExp(`^cloudsql:${PROJECT}/${PRIMARY}/\\d+$`));
    expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
    expect(await scratchInstances()).toEqual([]);

    // The scratch instance was made private, labelled as Lifeboat's, in the DR region.
    const insert = fake.requests.find(
      (r) =>
        r.method === 'POST' &&
        r.path === `/v1/projects/${PROJECT}/instances` &&
        (r.body as { name?: string }).name?.startsWith('lifeboat-drill-'),
    );
    expect(insert?.body).toMatchObject({
      region: 'us-east4',
      settings: { userLabels: { 'lifeboat-scratch': 'true' }, ipConfiguration: { ipv4Enabled: false } },
    });

    await expectSecretByReference(handle, logs, { name: PASSWORD_VAR, value: PASSWORD });
  });

  test('an operation failing mid-restore (the fake told to fail RESTORE_VOLUME) is retried, the drill passes and its scratch instance is deleted', async () => {
    fake.failNext('RESTORE_VOLUME', 'injected: the restore ran out of disk');
    const { report } = await drill();
    expect(report.reason).toBeUndefined();
    expect(report.outcome).toBe('passed');
    expect(report.steps.find((s) => s.name === 'restore')).toMatchObject({ status: 'completed', attempts: 2 });
    expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
    expect(await scratchInstances()).toEqual([]);
  });

  test('a scratch delete whose operation fails (the instance stays RUNNABLE) is retried, not reported deleted: nothing is left running', async () => {
    fake.failNext('DELETE', 'injected: the delete failed, the instance is back');
    const { report } = await drill();
    expect(report.outcome).toBe('passed');
    const teardown = report.steps.find((s) => s.name.startsWith('tear down '));
    expect(teardown).toMatchObject({ status: 'completed', attempts: 2 });
    expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
    expect(await scratchInstances()).toEqual([]);
  });

  test('the backup runbook keeps the newest Lifeboat backup run and never deletes one Lifeboat did not make', async () => {
    const { backupRuns } = stand;
    await backupRuns.insert({
      project: PROJECT,
      instance: PRIMARY,
      body: { description: 'nightly, made by someone else' },
    });
    const { report } = await runRunbook(
      'backup',
      backupInput(plan, 'shop', { triggeredBy: 'test' }),
      workflowId('backup'),
    );
    expect(report.outcome).toBe('passed');
    await new Promise((r) => setTimeout(r, 500)); // the foreign run's own operation finishes
    const runs = (await backupRuns.list({ project: PROJECT, instance: PRIMARY }))[0].items ?? [];
    const lifeboat = runs.filter((r) => r.description?.startsWith('lifeboat '));
    expect(lifeboat.map((r) => r.description)).toEqual([expect.stringContaining(`backup=${report.backup!.backupId} `)]);
    expect(runs.some((r) => r.description === 'nightly, made by someone else')).toBe(true);
  });
});

describe('Cloud SQL failover and failback against the Cloud SQL fake (real streaming replication behind it; no cross-region latency, no Cloud SQL lag metrics)', () => {
  let stand: CloudSqlStand;
  let fake: CloudSqlFake;
  let plan: LoadedPlan;
  let worker: RunningWorker;
  let instances: v1.SqlInstancesServiceClient;
  let operations: v1.SqlOperationsServiceClient;

  const described = async (name: string) => (await instances.get({ project: PROJECT, instance: name }))[0];
  const conn = (instance: string, database = 'ledger') =>
    cloudSqlConnection(fake, PROJECT, instance, PASSWORD, database);
  const writable = (instance: string) => takesWrites(conn(instance, 'postgres'));
  const run = async (runbook: 'failover' | 'failback', args: unknown) =>
    (await runRunbook(runbook, args, lockId('ledger'))).report;
  const node = (region: string, name: string) => ({
    region,
    name,
    location: PROJECT,
    credentials: { user: 'postgres', password: `env:${PASSWORD_VAR}` },
  });
  const APP_ROLE = 'ledger_app';
  const APP_PASSWORD = 'ledger-app-pw-9d0e';
  /** A write as the application's role: what it commits, or why not. */
  const writeAsApp = (instance: string) =>
    withClient({ ...conn(instance), user: APP_ROLE, password: APP_PASSWORD, connectTimeoutMs: 3000 }, async (c) => {
      await c.query('set default_transaction_read_only = off');
      await c.query('begin read write');
      await c.query('insert into app_writes default values');
      await c.query('commit');
      return 'committed';
    }).catch((err: Error) => err.message);

  beforeAll(async () => {
    process.env[PASSWORD_VAR] = PASSWORD;
    stand = await startCloudSql('ha', 100);
    ({ fake, instances, operations } = stand);
    // Highly available (REGIONAL): it has a standby zone for the zonal failover, and a DR replica below.
    await createSeededPrimary(stand, PROJECT, {
      body: {
        name: 'ledger-main',
        region: 'us-central1',
        settings: { tier: 'db-custom-1-3840', availabilityType: 'REGIONAL' },
      },
      password: PASSWORD,
      database: 'ledger',
      scale: 0.02,
    });
    // The application's own role: the fence takes its LOGIN.
    await withClient(conn('ledger-main', 'postgres'), (c) =>
      c.query(`create role ${APP_ROLE} login password '${APP_PASSWORD}'`),
    );
    await withClient(conn('ledger-main'), async (c) => {
      await c.query('create table app_writes (id bigserial primary key, at timestamptz default now())');
      await c.query(
        `grant insert on app_writes to ${APP_ROLE}; grant usage on sequence app_writes_id_seq to ${APP_ROLE}`,
      );
    });
    await createCloudSqlReplica(stand, PROJECT, 'ledger-dr', 'ledger-main');
    plan = plannedWith(
      'gcp-ha-plan',
      `  ledger:
    primary: { region: gcp-central, database: ledger, instance: ledger-main, credentials: { user: postgres, password: "env:${PASSWORD_VAR}" } }
    dr: { region: gcp-east, standby: true, replica: ledger-dr }
    objectives: { rpo: 1m, rto: 10m }
    checks:
      - name: orders exist
        sql: select count(*) > 0 from orders
`,
    );
    worker = await startWorker({ regions: ['gcp-central', 'gcp-east'], providers: { gcp: cloudSqlProvider(fake) } });
  });

  afterAll(async () => {
    await worker?.stop();
    await stand?.close();
  });

  test('nodeStatus says promoteRequested while a promoteReplica of the replica is in flight (operations.list; held RUNNING by the fake, then failed), and not before or after', async () => {
    const provider = cloudSqlProvider(fake);
    const dr = node('gcp-east', 'ledger-dr');
    try {
      expect((await provider.nodeStatus(dr)).promoteRequested).toBe(false);
      fake.failNext('PROMOTE_REPLICA', 'injected: the promotion failed');
      const release = fake.holdNext('PROMOTE_REPLICA');
      const [operation] = await instances.promoteReplica({ project: PROJECT, instance: 'ledger-dr' });
      try {
        expect(await provider.nodeStatus(dr)).toMatchObject({ inRecovery: true, promoteRequested: true });
      } finally {
        release();
      }
      expect(JSON.stringify(await untilDone(operations, PROJECT, operation))).toContain('injected');
      expect(await provider.nodeStatus(dr)).toMatchObject({ inRecovery: true, promoteRequested: false });
    } finally {
      await provider.close();
    }
  });

  test('a zonal failover (--zonal) is Cloud SQL HA failover of the primary: same instance, other zone, nothing lost, topology unchanged', async () => {
    const zone = (await described('ledger-main')).gceZone;
    const report = await run(
      'failover',
      failoverInput(plan, 'ledger', { mode: 'zonal', preApproved: true, triggeredBy: 'test' }),
    );
    expect({ outcome: report.outcome, reason: report.reason }).toEqual({ outcome: 'passed', reason: undefined });
    expect(report.rpoSeconds).toBe(0);
    expect(report.checks.find((c) => c.name === 'zonal failover')?.detail).toContain(`zone ${zone} -> `);
    expect((await described('ledger-main')).gceZone).not.toBe(zone);
    expect(report.failover?.topology).toMatchObject({
      primary: { name: 'ledger-main' },
      standby: { name: 'ledger-dr' },
    });
    expect(
      fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/instances/ledger-main/failover')),
    ).toHaveLength(1);
    expect(await writable('ledger-main')).toBe(true);
    // The DR replica lost its primary for the restart; the next test needs it streaming again.
    const deadline = Date.now() + 30_000;
    const streaming = () =>
      withClient(
        conn('ledger-dr', 'postgres'),
        async (c) =>
          (await c.query<{ s: string | null }>('select (select status from pg_stat_wal_receiver) as s')).rows[0]!.s ===
          'streaming',
      );
    while (!(await streaming())) {
      if (Date.now() > deadline) throw new Error('ledger-dr did not stream again within 30 s of the zonal failover');
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  test('planned failover is a Cloud SQL switchover: the DR replica takes writes with nothing lost, the former primary becomes its replica', async () => {
    const report = await run(
      'failover',
      failoverInput(plan, 'ledger', { mode: 'planned', preApproved: true, triggeredBy: 'test' }),
    );
    expect({ outcome: report.outcome, reason: report.reason }).toEqual({ outcome: 'passed', reason: undefined });
    expect(report.rpoSeconds).toBe(0);
    expect(report.failover?.topology?.primary).toMatchObject({
      region: 'gcp-east',
      name: 'ledger-dr',
      location: PROJECT,
    });
    expect(fake.requests.some((r) => r.method === 'POST' && r.path.endsWith('/instances/ledger-dr/switchover'))).toBe(
      true,
    );
    // The fence took the application's LOGIN on the old primary (verified by a refused login); the
    // new primary, having replayed that, lifted it on itself.
    expect(report.failover?.fence).toMatchObject({
      confirmed: true,
      how: expect.stringContaining(`LOGIN revoked from 1 role(s) (${APP_ROLE})`),
    });
    expect(await writeAsApp('ledger-dr')).toBe('committed');
    expect(await writable('ledger-dr')).toBe(true);
    expect(await writable('ledger-main')).toBe(false);
    expect((await described('ledger-main')).masterInstanceName).toMatch(/ledger-dr$/);
  });

  test('failback switches back with the former primary already re-protected by the switchover (no new instance)', async () => {
    const before = (await instances.list({ project: PROJECT }))[0].items?.length;
    const report = await run('failback', failbackInput(plan, 'ledger', { preApproved: true, triggeredBy: 'test' }));
    expect({ outcome: report.outcome, reason: report.reason }).toEqual({ outcome: 'passed', reason: undefined });
    expect(report.failover?.topology).toMatchObject({
      primary: { name: 'ledger-main' },
      standby: { name: 'ledger-dr' },
    });
    expect(report.checks.find((c) => c.name === 're-protect home server')?.detail).toMatch(/already a replica/);
    expect((await instances.list({ project: PROJECT }))[0].items?.length).toBe(before);
    expect(await writable('ledger-main')).toBe(true);
    expect((await described('ledger-dr')).masterInstanceName).toMatch(/ledger-main$/);
  });

  test('unplanned failover is promoteReplica; failback then makes a NEW replica in the home region and switches to it', async () => {
    const failover = await run(
      'failover',
      failoverInput(plan, 'ledger', { mode: 'unplanned', preApproved: true, triggeredBy: 'test' }),
    );
    expect({ outcome: failover.outcome, reason: failover.reason }).toEqual({ outcome: 'passed', reason: undefined });
    expect(
      fake.requests.some((r) => r.method === 'POST' && r.path.endsWith('/instances/ledger-dr/promoteReplica')),
    ).toBe(true);
    expect((await described('ledger-dr')).masterInstanceName ?? '').toBe('');
    const failback = await run('failback', failbackInput(plan, 'ledger', { preApproved: true, triggeredBy: 'test' }));
    expect({ outcome: failback.outcome, reason: failback.reason }).toEqual({ outcome: 'passed', reason: undefined });
    const home = failback.failover!.topology!.primary!;
    expect(home).toMatchObject({ region: 'gcp-central', name: expect.stringMatching(/^ledger-main-lb[0-9a-f]{6}$/) });
    expect(await writable(home.name)).toBe(true);
    expect(failback.checks.find((c) => c.name === 'writes of the failover term kept')).toMatchObject({ ok: true });
  });

  test('a former primary left without replicas is fenced by activation policy NEVER (instances.patch; instances.get shows NEVER, its server is down); unfence sets ALWAYS back and re-grants exactly the logins the fence took', async () => {
    const provider = cloudSqlProvider(fake);
    const old = node('gcp-central', 'ledger-main');
    try {
      expect((await described('ledger-main')).replicaNames ?? []).toEqual([]);
      // The unplanned failover before this test fenced it over SQL already (its replica was attached then).
      expect(await writeAsApp('ledger-main')).toMatch(/not permitted to log in/);
      const fence = await provider.fence(old, 'unplanned');
      expect(fence.confirmed).toBe(true);
      expect(fence.how).toContain(
        'instance stopped: activation policy NEVER (instances.patch DONE, instances.get shows NEVER)',
      );
      const stopped = await described('ledger-main');
      expect(stopped.settings?.activationPolicy).toBe('NEVER');
      expect(stopped.settings?.userLabels).toMatchObject({ 'lifeboat-fence-stopped': 'always' });
      expect(await writeAsApp('ledger-main')).toMatch(/ECONNREFUSED|connect/);
      expect(await provider.nodeStatus(old)).toMatchObject({
        running: false,
        writable: false,
        fenced: true,
        detail: expect.stringContaining('NEVER'),
      });
      await provider.unfence(old);
      const started = await described('ledger-main');
      expect(started.settings?.activationPolicy).toBe('ALWAYS');
      expect(started.settings?.userLabels).not.toHaveProperty(['lifeboat-fence-stopped']);
      expect(await writeAsApp('ledger-main')).toBe('committed');
      expect(await provider.nodeStatus(old)).toMatchObject({ writable: true, fenced: false });
    } finally {
      await provider.close();
    }
  });
});
