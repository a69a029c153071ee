// Chaos: the cloud misbehaving. A fault-injecting proxy (test/support/fault-proxy.ts) sits between
// the provider and its API stand-in and answers 30% of ALL calls with a fault, a third each:
// throttling (RDS Throttling / Cloud SQL 429), unavailable (503), and timeout (the request reaches
// the server, which may act on it, and the answer is lost: the connection is cut). Every runbook must
// still pass, each retry visible in history as one more activity attempt (printed per run), every
// resource made once under the name the run derives, and nothing left behind.
// AWS: moto (no data plane: the data comes from the test-only stand-in, test/fakes/rds-data-plane.ts).
// GCP: the Cloud SQL fake (test/fakes/cloudsql: real local PostgreSQL behind the REST routes).
// Reduced (default): one AWS drill and one Cloud SQL drill. LIFEBOAT_CHAOS=full: also an AWS backup,
// an AWS planned failover and failback (read replica promotion), a Cloud SQL backup, and a Cloud SQL
// planned failover (switchover) and failback; and all of them again with the first answer to every
// create or change call lost (the call landed: the retry must find what it made, not make it twice).
// The seed is fixed (LIFEBOAT_CHAOS_SEED tries another).
import { DescribeDBInstancesCommand, DescribeDBSnapshotsCommand } from '@aws-sdk/client-rds';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { TAG } from '../../activities/providers/aws';
import { backupInput, drillInput, failbackInput, failoverInput, type LoadedPlan } from '../../worker/plan';
import { runTag } from '../../workflows/shared-steps';
import { RUNBOOK_TASK_QUEUE, type RunbookReport } from '../../workflows/types';
import type { CloudSqlFake } from '../fakes/cloudsql/server';
import type { LocalRdsDataPlane } from '../fakes/rds-data-plane';
import { EAST, moto, rds, setUpAwsDrill, WEST } from '../support/aws-drill';
import { startFaultProxy, type Fault, type FaultProxy, type FaultRule } from '../support/fault-proxy';
import { setUpRdsReplicaSet } from '../support/cloud-rds-replica';
import {
  cloudSqlConnection,
  cloudSqlProvider,
  createCloudSqlReplica,
  createSeededPrimary,
  gcpPlanRegions,
  rdsProvider,
  startCloudSql,
  takesWrites,
  writePlan,
  type CloudSqlStand,
} from '../support/cloud-stack';
import { lockId, type ReplicaSetFixture } from '../support/replica-set';
import { client, startWorker, type RunningWorker } from '../support/stack';
import type { Providers } from '../../worker/main';
import { attemptsIn, chaosLine, describeAttempts, FULL, passed, runCases, type AttemptSummary } from './harness';
import { runbookReport } from '../../workflows/runbook-failure';

const RATE = 0.3;
// Any seed must pass. This one faults the first call of most create calls of both drills, a lost answer
// among them (the fault of the n-th call of an action does not depend on how calls interleave).
const SEED = Number(process.env.LIFEBOAT_CHAOS_SEED ?? 36);
const FAULTS: Fault[] = ['throttling', 'unavailable', 'timeout'];

/**
 * RATE of all calls faulted, a third of them of each kind. Rules are tried in order and each draws
 * for itself, so the i-th rule's rate is its share of what the rules before it let through.
 */
function faultRules(): FaultRule[] {
  const share = RATE / FAULTS.length;
  return FAULTS.map((fault, i) => ({ action: '*', fault, rate: share / (1 - i * share) }));
}

let temporal: Client;
let seq = 0;

beforeAll(async () => {
  temporal = await client();
});

afterAll(async () => {
  await temporal?.connection.close();
});

interface FaultRun {
  report: RunbookReport;
  handle: WorkflowHandle;
  attempts: AttemptSummary;
}

/** Starts a runbook, waits for it, prints its line and every retry the history holds. */
async function runThrough(
  proxy: FaultProxy,
  what: string,
  runbook: string,
  args: unknown,
  workflowId: string,
  check: (run: FaultRun, checked: string[]) => Promise<void>,
): Promise<FaultRun> {
  const began = Date.now();
  const requestsBefore = proxy.log.length;
  const handle = await temporal.workflow.start(runbook, { taskQueue: RUNBOOK_TASK_QUEUE, workflowId, args: [args] });
  const report = await runbookReport(handle);
  const attempts = await attemptsIn(handle);
  const checked: string[] = [];
  const seen = proxy.log.slice(requestsBefore);
  const byFault = FAULTS.map((f) => `${f} ${seen.filter((r) => r.fault === f).length}`).join(', ');
  const onReads = seen.filter((r) => r.fault && isRead(r.action)).length;
  const onChanges = seen.filter((r) => r.fault && !isRead(r.action)).length;
  try {
    // The history shows the faults: each fault on a call that creates or changes something failed its
    // activity attempt, and the retry is there with that failure; faults on reads were asked again in the call.
    expect(attempts.extraAttempts).toBeGreaterThanOrEqual(onChanges);
    checked.push(
      `${onChanges} faults on create/change calls -> ${attempts.extraAttempts} activity retries in history (${attempts.failedEvents} ActivityTaskFailed); ${onReads} on reads, read again in the call`,
    );
    await check({ report, handle, attempts }, checked);
  } finally {
    chaosLine({
      runbook: what,
      at: `${seen.filter((r) => r.fault).length} of ${seen.length} calls faulted (${byFault}; seed ${SEED})`,
      outcome: `${report.outcome}${report.reason ? ` (${report.reason.slice(0, 200)})` : ''}`,
      attempts: describeAttempts(attempts),
      checked,
      seconds: (Date.now() - began) / 1000,
    });
    if (attempts.retried.length)
      console.log(
        `retries in the history of ${workflowId}:\n${attempts.retried.map((r) => `  ${r.activity} attempt ${r.attempt} after: ${r.lastFailure}`).join('\n')}`,
      );
  }
  return { report, handle, attempts };
}

/** Describe*, List* (RDS) and GET (Cloud SQL): calls that change nothing. */
const isRead = (action: string): boolean => /^(Describe|List)/.test(action) || action.startsWith('GET ');

/** Requests that reached the server: not answered by the proxy (a timeout fault's request did land). */
const landed = (proxy: FaultProxy, action: string, from = 0): number =>
  proxy.log.slice(from).filter((r) => r.action === action && r.fault !== 'throttling' && r.fault !== 'unavailable')
    .length;

/** A fault pattern for the proxy in front of the API stand-in. */
interface Scenario {
  name: string;
  rules: FaultRule[];
}

const atRate: Scenario = { name: `${RATE * 100}% faults`, rules: faultRules() };

/** The worst case for idempotency, deterministic: the first answer to each create or change call is lost (the call landed). */
const firstAnswersLost = (changes: string[]): Scenario => ({
  name: 'first answer of every create/change lost',
  rules: changes.map((action) => ({ action, fault: 'timeout', first: 1 })),
});

const AWS_CHANGES = [
  'CreateDBSnapshot',
  'CopyDBSnapshot',
  'RestoreDBInstanceFromDBSnapshot',
  'DeleteDBInstance',
  'DeleteDBSnapshot',
  'PromoteReadReplica',
  'CreateDBInstanceReadReplica',
];
const GCP_CHANGES = [
  'POST /v1/projects/*/instances',
  'POST /v1/projects/*/instances/*/backupRuns',
  'POST /v1/projects/*/instances/*/restoreBackup',
  'DELETE /v1/projects/*/instances/*',
  'DELETE /v1/projects/*/instances/*/backupRuns/*',
  'POST /v1/projects/*/instances/*/switchover',
  'POST /v1/projects/*/instances/*/promoteReplica',
];

/** Reduced: the fault rate. Full: also every create/change call's first answer lost. */
const scenarios = (changes: string[]): Scenario[] => (FULL ? [atRate, firstAnswersLost(changes)] : [atRate]);

/** A proxy with the scenario's rules and an in-process worker whose provider goes through it, for `fn`. */
async function through<T>(
  target: string,
  scenario: Scenario,
  options: { dialect?: 'rds' | 'cloudsql'; regions: string[]; providers: (endpoint: string) => Partial<Providers> },
  fn: (proxy: FaultProxy) => Promise<T>,
): Promise<T> {
  const proxy = await startFaultProxy(target, scenario.rules, { seed: SEED, dialect: options.dialect });
  let worker: RunningWorker | undefined;
  try {
    worker = await startWorker({ regions: options.regions, providers: options.providers(proxy.endpoint) });
    return await fn(proxy);
  } finally {
    await worker?.stop();
    await proxy.close();
  }
}

describe(`AWS drill and backup with the RDS API misbehaving (moto has no data plane: data from the test-only stand-in)`, () => {
  const PASSWORD_VAR = 'LIFEBOAT_TEST_RDS_CHAOS_PASSWORD';
  let plan: LoadedPlan;
  let dataPlane: LocalRdsDataPlane;

  beforeAll(async () => {
    ({ plan, dataPlane } = await setUpAwsDrill({
      name: 'aws-chaos',
      instance: 'chaos-prod',
      pgDatabase: 'aws_chaos',
      passwordVar: PASSWORD_VAR,
      password: 'rds-Chaos-value-91d2e',
    }));
  });

  const aws = (scenario: Scenario, fn: (proxy: FaultProxy) => Promise<unknown>) =>
    through(
      moto(),
      scenario,
      {
        regions: ['aws-east', 'aws-west'],
        providers: (endpoint) => ({
          aws: rdsProvider(dataPlane, { endpoint }),
        }),
      },
      fn,
    );

  /** Snapshots in the region that carry this backup's id tag. */
  const snapshotsOf = async (region: string, backupId?: string) =>
    ((await rds(region).send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual' }))).DBSnapshots ?? []).filter(
      (s) => s.TagList?.some((t) => t.Key === TAG.backupId && (!backupId || t.Value === backupId)),
    );

  for (const scenario of scenarios(AWS_CHANGES)) {
    test(`${scenario.name}: a drill passes, each create call landed once, one snapshot per region, no scratch instance left`, () =>
      aws(scenario, (proxy) =>
        runThrough(
          proxy,
          `drill (aws, ${scenario.name})`,
          'drill',
          drillInput(plan, 'orders', { fromLatestBackup: false, triggeredBy: 'chaos' }),
          `chaos/aws/drill/${Date.now()}-${seq++}`,
          async ({ report, handle }, checked) => {
            passed(report, checked);
            expect(report.cleanup).toEqual([expect.objectContaining({ ok: true })]);
            for (const action of [
              'CreateDBSnapshot',
              'CopyDBSnapshot',
              'RestoreDBInstanceFromDBSnapshot',
              'DeleteDBInstance',
            ])
              expect([action, landed(proxy, action)]).toEqual([action, 1]);
            checked.push(
              'CreateDBSnapshot, CopyDBSnapshot, RestoreDBInstanceFromDBSnapshot, DeleteDBInstance each landed once',
            );
            const backupId = report.backup!.backupId;
            expect(backupId.endsWith(runTag((await handle.describe()).runId))).toBe(true);
            for (const region of [EAST, WEST])
              expect([region, (await snapshotsOf(region, backupId)).length]).toEqual([region, 1]);
            const west = (await rds(WEST).send(new DescribeDBInstancesCommand({}))).DBInstances ?? [];
            expect(
              west
                .filter(
                  (i) => i.DBInstanceIdentifier!.startsWith('lifeboat-drill-') && i.DBInstanceStatus !== 'deleting',
                )
                .map((i) => i.DBInstanceIdentifier),
            ).toEqual([]);
            expect(dataPlane.liveRestores()).toEqual([]);
            checked.push(`one snapshot per region (${backupId}), no scratch instance left`);
          },
        ),
      ));

    if (FULL) {
      test(`${scenario.name}: a backup passes, one snapshot per region, retention keeps 1`, () =>
        aws(scenario, (proxy) =>
          runThrough(
            proxy,
            `backup (aws, ${scenario.name})`,
            'backup',
            backupInput(plan, 'orders', { triggeredBy: 'chaos' }),
            `chaos/aws/backup/${Date.now()}-${seq++}`,
            async ({ report }, checked) => {
              passed(report, checked);
              for (const action of ['CreateDBSnapshot', 'CopyDBSnapshot'])
                expect([action, landed(proxy, action)]).toEqual([action, 1]);
              const backupId = report.backup!.backupId;
              for (const region of [EAST, WEST]) {
                expect([region, (await snapshotsOf(region, backupId)).length]).toEqual([region, 1]);
                expect([region, (await snapshotsOf(region)).length]).toEqual([region, 1]);
              }
              checked.push(`create calls landed once, one snapshot per region (${backupId}), retention kept 1`);
            },
          ),
        ));
    }
  }
});

if (FULL) {
  describe('AWS read replica failover and failback with the RDS API misbehaving (moto control plane; no data plane in moto: PostgreSQL streaming replication stands in, driven by the test-only stand-in)', () => {
    const PASSWORD_VAR = 'LIFEBOAT_TEST_RDS_CHAOS_FO_PASSWORD';
    const PASSWORD = 'rds-ChaosFo-value-2b7c1';
    const HOME_INSTANCE = 'chaosbill-prod';
    const REPLICA_INSTANCE = 'chaosbill-replica';
    let fx: ReplicaSetFixture;
    let plan: LoadedPlan;
    let dataPlane: LocalRdsDataPlane;

    beforeAll(async () => {
      ({ fx, plan, dataPlane } = await setUpRdsReplicaSet({
        regionPrefix: 'chaos-rds',
        database: 'chaosbill',
        homeInstance: HOME_INSTANCE,
        replicaInstance: REPLICA_INSTANCE,
        passwordVar: PASSWORD_VAR,
        password: PASSWORD,
      }));
    });

    afterAll(async () => {
      await fx?.close();
    });

    const instanceIds = async (region: string) =>
      ((await rds(region).send(new DescribeDBInstancesCommand({}))).DBInstances ?? [])
        .map((i) => i.DBInstanceIdentifier!)
        .sort();

    /** A failover (planned or unplanned) and the failback after it, through the proxy: each checked, every failure collected. */
    const legs = (proxy: FaultProxy, scenario: Scenario, mode: 'planned' | 'unplanned') =>
      runCases(
        ['failover', 'failback'] as const,
        async (runbook) => {
          const from = proxy.log.length;
          const before = { east: await instanceIds(EAST), west: await instanceIds(WEST) };
          const input =
            runbook === 'failover'
              ? failoverInput(plan, 'chaosbill', { mode, preApproved: true, triggeredBy: 'chaos' })
              : failbackInput(plan, 'chaosbill', { preApproved: true, triggeredBy: 'chaos' });
          await runThrough(
            proxy,
            `${runbook === 'failover' ? `${mode} failover` : 'failback'} (aws, ${scenario.name})`,
            runbook,
            input,
            lockId('chaosbill'),
            async ({ report }, checked) => {
              passed(report, checked);
              const after = { east: await instanceIds(EAST), west: await instanceIds(WEST) };
              const topology = report.failover!.topology!;
              if (runbook === 'failover') {
                expect(topology.primary).toMatchObject({ region: 'chaos-rds-west' });
                expect(landed(proxy, 'PromoteReadReplica', from)).toBeGreaterThanOrEqual(1);
                expect(after).toEqual(before);
                if (mode === 'planned') expect(report.rpoSeconds).toBe(0);
                else
                  expect(
                    report.rpoSeconds !== null ||
                      report.checks.some((c) => c.name === 'RPO measurable' && /RPO unknown/.test(c.detail)),
                  ).toBe(true);
                checked.push(
                  `RPO ${report.rpoSeconds === null ? 'unknown (no canary before)' : `${report.rpoSeconds}s`}, ${topology.primary!.name} promoted, no instance made`,
                );
              } else {
                // RDS cannot turn an instance back into a replica: exactly two new ones, the new primary and standby.
                expect(report.rpoSeconds).toBe(0);
                expect(topology).toMatchObject({
                  primary: { region: 'chaos-rds-east' },
                  standby: { region: 'chaos-rds-west' },
                });
                expect(landed(proxy, 'CreateDBInstanceReadReplica', from)).toBe(2);
                expect(after).toEqual({
                  east: [...before.east, topology.primary!.name].sort(),
                  west: [...before.west, topology.standby!.name].sort(),
                });
                checked.push(
                  `two new read replicas (${topology.primary!.name}, ${topology.standby!.name}), each created once; nothing else made`,
                );
              }
            },
          );
        },
        (runbook) => `${mode} ${runbook}`,
      );

    const proxied = (scenario: Scenario, fn: (proxy: FaultProxy) => Promise<unknown>) =>
      through(
        moto(),
        scenario,
        {
          regions: ['chaos-rds-east', 'chaos-rds-west'],
          providers: (endpoint) => ({
            aws: rdsProvider(dataPlane, { endpoint }),
          }),
        },
        fn,
      );

    for (const scenario of scenarios(AWS_CHANGES)) {
      for (const mode of ['planned', 'unplanned'] as const) {
        test(`${scenario.name}: ${mode} failover (PromoteReadReplica) then failback (new read replicas) both pass, each instance promoted or created once`, () =>
          proxied(scenario, async (proxy) => expect(await legs(proxy, scenario, mode)).toEqual([])));
      }
    }
  });
}

describe('Cloud SQL with the Admin API misbehaving (the Cloud SQL fake: real PostgreSQL, no IAM or networking)', () => {
  const PROJECT = 'lifeboat-chaos';
  const PASSWORD_VAR = 'LIFEBOAT_TEST_CLOUDSQL_CHAOS_PASSWORD';
  const PASSWORD = 'cloudsql-Chaos-6a0f3';
  let stand: CloudSqlStand;
  let fake: CloudSqlFake;
  let plan: LoadedPlan;

  const conn = (instance: string, database: string) => cloudSqlConnection(fake, PROJECT, instance, PASSWORD, database);
  const listed = async () =>
    ((await stand.instances.list({ project: PROJECT }))[0].items ?? [])
      .filter((i) => i.state !== 'PENDING_DELETE')
      .map((i) => i.name!)
      .sort();

  beforeAll(async () => {
    process.env[PASSWORD_VAR] = PASSWORD;
    stand = await startCloudSql('chaos', 200);
    fake = stand.fake;
    // Made directly (not through the proxy): the set-up is not under test.
    await createSeededPrimary(stand, PROJECT, {
      body: { name: 'chaos-main', region: 'us-central1', settings: { tier: 'db-custom-1-3840' } },
      password: PASSWORD,
      database: 'shop',
      scale: 0.05,
    });
    await createCloudSqlReplica(stand, PROJECT, 'chaos-dr', 'chaos-main');
    // Region names of this file's own: the topology record of a set is keyed by its home region. The
    // plan's name for the database differs from PostgreSQL's on purpose (a restore brings back "shop").
    plan = writePlan(
      'gcp-chaos-plan.yaml',
      `${gcpPlanRegions(PROJECT, 'chaos-gcp')}databases:
  chaosshop:
    primary: { region: chaos-gcp-central, database: shop, instance: chaos-main, credentials: { user: postgres, password: "env:${PASSWORD_VAR}" } }
    dr: { region: chaos-gcp-east, standby: true, replica: chaos-dr }
    objectives: { rpo: 1h, rto: 1h }
    retention: { keep: 1 }
    checks:
      - name: orders exist
        sql: select count(*) > 0 from orders
`,
    );
  });

  afterAll(async () => {
    await stand?.close();
  });

  const gcp = (scenario: Scenario, fn: (proxy: FaultProxy) => Promise<unknown>) =>
    through(
      `http://${fake.endpoint.host}:${fake.endpoint.port}`,
      scenario,
      {
        dialect: 'cloudsql',
        regions: ['chaos-gcp-central', 'chaos-gcp-east'],
        providers: (endpoint) => ({ gcp: cloudSqlProvider(fake, endpoint) }),
      },
      fn,
    );

  /** Lifeboat's backup runs of chaos-main that name this backup (all of Lifeboat's without one), as the fake holds them. */
  const runsOf = async (backupId?: string) =>
    ((await stand.backupRuns.list({ project: PROJECT, instance: 'chaos-main' }))[0].items ?? []).filter((r) =>
      r.description?.includes(backupId ? `backup=${backupId} ` : 'lifeboat backup='),
    );
  /**
   * Lifeboat asks for a backup run's deletion and does not wait for the operation (Cloud SQL shows the
   * run DELETION_PENDING meanwhile; the fake keeps it SUCCESSFUL until the operation is done): counts
   * are taken once every operation of the fake has finished.
   */
  const settled = async () => {
    const deadline = Date.now() + 30_000;
    while ((fake.operations() as Array<{ status?: string }>).some((op) => op.status !== 'DONE')) {
      if (Date.now() > deadline) throw new Error('operations of the Cloud SQL fake still running after 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const inserts = (from: number, name: (body: Record<string, unknown>) => boolean) =>
    fake.requests.slice(from).filter((r) => r.method === 'POST' && /\/instances$/.test(r.path) && name(r.body)).length;

  const writable = (instance: string) => takesWrites(conn(instance, 'postgres'));

  /**
   * A failover and the failback after it, through the proxy. Planned: a switchover each way, no
   * instance made. Unplanned: promoteReplica, then the failback makes one new replica in the home
   * region and switches to it. Either way, one writable instance at the end.
   */
  const legs = (proxy: FaultProxy, scenario: Scenario, mode: 'planned' | 'unplanned') =>
    runCases(
      ['failover', 'failback'] as const,
      async (runbook) => {
        const from = fake.requests.length;
        const before = await listed();
        const input =
          runbook === 'failover'
            ? failoverInput(plan, 'chaosshop', { mode, preApproved: true, triggeredBy: 'chaos' })
            : failbackInput(plan, 'chaosshop', { preApproved: true, triggeredBy: 'chaos' });
        await runThrough(
          proxy,
          `${runbook === 'failover' ? `${mode} failover` : 'failback'} (cloudsql, ${scenario.name})`,
          runbook,
          input,
          lockId('chaosshop'),
          async ({ report }, checked) => {
            passed(report, checked);
            const primary = report.failover!.topology!.primary!.name;
            if (runbook === 'failover')
              expect(report.failover!.topology!.primary).toMatchObject({ region: 'chaos-gcp-east' });
            else expect(report.failover!.topology!.primary).toMatchObject({ region: 'chaos-gcp-central' });
            // An unplanned failover measures its RPO from the canary ledger; with no acknowledged canary
            // before it (no writer on this set) the report says it is unknown, and that is all it may say.
            if (mode === 'unplanned' && runbook === 'failover')
              expect(
                report.rpoSeconds !== null ||
                  report.checks.some((c) => c.name === 'RPO measurable' && /RPO unknown/.test(c.detail)),
              ).toBe(true);
            else expect(report.rpoSeconds).toBe(0);
            await settled();
            const after = await listed();
            const made = mode === 'unplanned' && runbook === 'failback' ? 1 : 0;
            expect({ inserted: inserts(from, () => true), after }).toEqual({
              inserted: made,
              after: made ? [...before, primary].sort() : before,
            });
            const writers = [];
            for (const instance of after) if (await writable(instance)) writers.push(instance);
            expect(writers).toEqual([primary]);
            checked.push(
              `RPO ${report.rpoSeconds === null ? 'unknown (no canary before)' : `${report.rpoSeconds}s`}, ${primary} the one writable instance of ${after.length}, ${made ? `${primary} inserted once` : 'no instance made'}`,
            );
          },
        );
      },
      (runbook) => `${mode} ${runbook}`,
    );

  for (const scenario of scenarios(GCP_CHANGES)) {
    test(`${scenario.name}: a drill passes, one backup run, the scratch instance inserted once and deleted`, () =>
      gcp(scenario, async (proxy) => {
        const from = fake.requests.length;
        await runThrough(
          proxy,
          `drill (cloudsql, ${scenario.name})`,
          'drill',
          drillInput(plan, 'chaosshop', { fromLatestBackup: false, triggeredBy: 'chaos' }),
          `chaos/gcp/drill/${Date.now()}-${seq++}`,
          async ({ report, handle }, checked) => {
            passed(report, checked);
            expect(report.cleanup).toEqual([expect.objectContaining({ ok: true })]);
            const scratch = `lifeboat-drill-${runTag((await handle.describe()).runId)}`;
            expect(inserts(from, (b) => b.name === scratch)).toBe(1);
            await settled();
            expect(await runsOf(report.backup!.backupId)).toHaveLength(1);
            expect(await listed()).toEqual(['chaos-dr', 'chaos-main']);
            checked.push(`one backup run (${report.backup!.backupId}), ${scratch} inserted once and deleted`);
          },
        );
      }));

    if (FULL) {
      test(`${scenario.name}: a backup passes, one backup run, retention keeps 1`, () =>
        gcp(scenario, (proxy) =>
          runThrough(
            proxy,
            `backup (cloudsql, ${scenario.name})`,
            'backup',
            backupInput(plan, 'chaosshop', { triggeredBy: 'chaos' }),
            `chaos/gcp/backup/${Date.now()}-${seq++}`,
            async ({ report }, checked) => {
              passed(report, checked);
              await settled();
              expect(await runsOf(report.backup!.backupId)).toHaveLength(1);
              expect(await runsOf()).toHaveLength(1);
              checked.push(`one backup run (${report.backup!.backupId}), retention kept 1`);
            },
          ),
        ));

      test(`${scenario.name}: planned failover (switchover) then failback both pass, nothing lost, no instance made`, () =>
        gcp(scenario, async (proxy) => expect(await legs(proxy, scenario, 'planned')).toEqual([])));
    }
  }
  // Last: a failback after an unplanned failover leaves a new home instance, which the tests above do not expect.
  if (FULL) {
    for (const scenario of scenarios(GCP_CHANGES)) {
      test(`${scenario.name}: unplanned failover (promoteReplica) then failback (a new home replica) both pass, one writable instance`, () =>
        gcp(scenario, async (proxy) => expect(await legs(proxy, scenario, 'unplanned')).toEqual([])));
    }
  }
});
