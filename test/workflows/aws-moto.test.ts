// The Drill and Backup runbooks on the AWS provider, against moto_server's real HTTP API (RDS, KMS,
// EC2 in two regions). moto has no data plane: snapshot contents and restored databases come from
// the test-only stand-in in test/fakes/rds-data-plane.ts (pg_dump/pg_restore on local PostgreSQL),
// which every test name here says. What is real: every RDS call, its identifiers, tags, KMS keys,
// subnet groups and errors as moto serves them; Lifeboat's manifest capture and table-by-table check.
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import {
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  CreateDBSnapshotCommand,
  type RDSClient,
  DescribeDBClustersCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
} from '@aws-sdk/client-rds';
import { replicaIdFor, snapshotIdFor, type AwsProvider } from '../../activities/providers/aws';
import { runTag } from '../../workflows/shared-steps';
import { withClient } from '../../activities/pg/sql';
import { seedDemo } from '../../scripts/dev/seed';
import { backupInput, drillInput, failbackInput, failoverInput, type LoadedPlan } from '../../worker/plan';
import { RUNBOOK_TASK_QUEUE, type DrillInput, type FailbackInput, type FailoverInput } from '../../workflows/types';
import type { LocalRdsDataPlane } from '../fakes/rds-data-plane';
import {
  acceptsWrites,
  expectPassed,
  startTopologyRunbook,
  topologyOf,
  type ReplicaSetFixture,
} from '../support/replica-set';
import { EAST, rds, setUpAwsDrill, WEST } from '../support/aws-drill';
import { silentIo } from '../support/activity-context';
import { setUpRdsReplicaSet } from '../support/cloud-rds-replica';
import {
  expectDrillPassed,
  expectSecretByReference,
  rdsProvider,
  runRunbook,
  workflowIds,
} from '../support/cloud-stack';
import { client, local, LogCapture, startWorker, type RunningWorker } from '../support/stack';
import { runbookReport } from '../../workflows/runbook-failure';

/** The drill tests' source: an RDS instance in us-east-1, its data a seeded database on local-a. */
const SOURCE = {
  name: 'aws',
  instance: 'orders-prod',
  pgDatabase: 'aws_orders',
  passwordVar: 'LIFEBOAT_TEST_RDS_PASSWORD',
  password: 'rds-Secret-value-7f3a9',
};
const secret = { name: SOURCE.passwordVar, value: SOURCE.password };
const workflowId = workflowIds('aws');

describe('AWS provider against moto (no data plane in moto: data mirrored by the test-only pg_dump/pg_restore stand-in)', () => {
  let plan: LoadedPlan;
  let dataPlane: LocalRdsDataPlane;
  let worker: RunningWorker;
  const logs = new LogCapture();

  beforeAll(async () => {
    ({ plan, dataPlane } = await setUpAwsDrill(SOURCE));
    worker = await startWorker({
      regions: ['aws-east', 'aws-west'],
      capture: logs,
      providers: { aws: rdsProvider(dataPlane) },
    });
  });

  afterAll(async () => {
    await worker?.stop();
  });

  const ordersDrill = () => drillInput(plan, 'orders', { fromLatestBackup: false, triggeredBy: 'test' });
  const drill = (overrides: Partial<DrillInput> = {}) =>
    runRunbook('drill', { ...ordersDrill(), ...overrides }, workflowId('drill'));

  test('a drill passes (data from the test-only stand-in): snapshot, KMS re-encrypted copy in the DR region, private scratch restore, every table verified, scratch deleted', async () => {
    const { handle, report } = await drill();
    expectDrillPassed(report);
    expect(report.checks.find((c) => c.name === 'recent orders exist')).toMatchObject({ ok: true });
    expect(report.checks.find((c) => c.name === 'canary present')).toMatchObject({ ok: true });

    // The backup is a Lifeboat-tagged snapshot in us-east-1; the copy sits in us-west-2 under the west key.
    const snapshotId = snapshotIdFor(report.backup!.backupId);
    const [source] = (await rds(EAST).send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: snapshotId })))
      .DBSnapshots!;
    expect(source!.TagList).toEqual(
      expect.arrayContaining([
        { Key: 'lifeboat:backup-id', Value: report.backup!.backupId },
        { Key: 'lifeboat:created-by', Value: handle.workflowId },
      ]),
    );
    const [copy] = (await rds(WEST).send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: snapshotId })))
      .DBSnapshots!;
    const westKey = plan.plan.regions['aws-west']!;
    expect(copy!.KmsKeyId).toBe(westKey.provider === 'aws' ? westKey.kmsKeyId : 'none');
    expect(report.copies[0]!.location).toBe(copy!.DBSnapshotArn);

    // The scratch instance was restored (the stand-in saw it) and is gone again.
    expect(dataPlane.events).toContain(
      `restore ${WEST}/${snapshotId} -> lifeboat-drill-${runTag((await handle.describe()).runId)}`,
    );
    expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
    const west = (await rds(WEST).send(new DescribeDBInstancesCommand({}))).DBInstances ?? [];
    expect(west.filter((i) => i.DBInstanceIdentifier!.startsWith('lifeboat-drill-'))).toEqual([]);
    expect(dataPlane.liveRestores()).toEqual([]);

    // The password went in by reference: not in history, not in the logs, not in the report.
    await expectSecretByReference(handle, logs, secret);
    expect(JSON.stringify(report)).not.toContain(SOURCE.password);
  });

  test('a drill fails when the restored data differs (tampered by the test-only stand-in) and still deletes its scratch instance', async () => {
    dataPlane.afterRestore = (conn) =>
      withClient(conn, (c) =>
        c.query('update orders set total_cents = total_cents + 1 where id = (select min(id) from orders)'),
      ).then(() => undefined);
    try {
      const { report } = await drill();
      expect(report.outcome).toBe('failed');
      expect(report.checks.find((c) => c.name === 'table public.orders')).toMatchObject({
        ok: false,
        detail: expect.stringContaining('checksum differs'),
      });
      expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
      expect(dataPlane.liveRestores()).toEqual([]);
    } finally {
      dataPlane.afterRestore = undefined;
    }
  });

  test('a drill cancelled during its restore still deletes its scratch instance (restore held open by the test-only stand-in)', async () => {
    let held = false;
    dataPlane.afterRestore = async () => {
      held = true;
      await new Promise((r) => setTimeout(r, 3000));
    };
    try {
      const handle = await (
        await client()
      ).workflow.start('drill', {
        taskQueue: RUNBOOK_TASK_QUEUE,
        workflowId: workflowId('cancel'),
        args: [ordersDrill()],
      });
      const deadline = Date.now() + 60_000;
      while (!held) {
        if (Date.now() > deadline) throw new Error('the drill never reached its restore');
        await new Promise((r) => setTimeout(r, 20));
      }
      await handle.cancel();
      const error = await handle.result().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WorkflowFailedError);
      expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      const scratch = `lifeboat-drill-${runTag((await handle.describe()).runId)}`;
      const west = (await rds(WEST).send(new DescribeDBInstancesCommand({}))).DBInstances ?? [];
      expect(west.map((i) => i.DBInstanceIdentifier)).not.toContain(scratch);
      expect(dataPlane.events).toContain(`delete ${WEST}/${scratch}`);
      expect(dataPlane.liveRestores()).toEqual([]);
    } finally {
      dataPlane.afterRestore = undefined;
    }
  });

  test('an Aurora drill passes on cluster snapshots (data from the test-only stand-in): CreateDBClusterSnapshot, KMS re-encrypted CopyDBClusterSnapshot, RestoreDBClusterFromSnapshot plus an instance, all deleted after', async () => {
    const server = { region: 'local-a', name: 'server' };
    await withClient(await local().connectNode(server, 'postgres'), async (c) => {
      await c.query('drop database if exists aws_ledger with (force)');
      await c.query('create database aws_ledger');
    });
    await withClient(await local().connectNode(server, 'aws_ledger'), (c) => seedDemo(c, 0.02));
    await rds(EAST).send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: 'ledger-prod',
        Engine: 'aurora-postgresql',
        EngineVersion: '16.4',
        MasterUsername: 'lifeboat',
        MasterUserPassword: SOURCE.password,
      }),
    );
    await rds(EAST).send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: 'ledger-prod-1',
        DBClusterIdentifier: 'ledger-prod',
        Engine: 'aurora-postgresql',
        DBInstanceClass: 'db.r6g.large',
      }),
    );
    dataPlane.addSource(`${EAST}/ledger-prod`, { node: server, database: 'aws_ledger' });
    const aurora: DrillInput = {
      ...ordersDrill(),
      database: 'ledger',
      primary: {
        ...ordersDrill().primary,
        database: 'aws_ledger',
        instance: undefined,
        cluster: 'ledger-prod',
      },
    };
    const { handle, report } = await drill(aurora);
    expectDrillPassed(report);
    expect(report.backup!.location).toMatch(new RegExp(`^arn:aws:rds:${EAST}:\\d+:cluster-snapshot:lifeboat-ledger-`));
    expect(report.copies[0]!.location).toMatch(
      new RegExp(`^arn:aws:rds:${WEST}:\\d+:cluster-snapshot:lifeboat-ledger-`),
    );
    const [copy] = (
      await rds(WEST).send(
        new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: snapshotIdFor(report.backup!.backupId) }),
      )
    ).DBClusterSnapshots!;
    expect(copy!.KmsKeyId).toBe(String(ordersDrill().dr.settings!.kmsKeyId));
    const scratch = `lifeboat-drill-${runTag((await handle.describe()).runId)}`;
    expect(dataPlane.events).toContain(`restore ${WEST}/${snapshotIdFor(report.backup!.backupId)} -> ${scratch}`);
    expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
    const clusters = (await rds(WEST).send(new DescribeDBClustersCommand({}))).DBClusters ?? [];
    expect(clusters.map((c) => c.DBClusterIdentifier)).not.toContain(scratch);
    const instances = (await rds(WEST).send(new DescribeDBInstancesCommand({}))).DBInstances ?? [];
    expect(instances.map((i) => i.DBInstanceIdentifier)).not.toContain(`${scratch}-1`);
  });

  describe('provider calls retried as Temporal would retry them', () => {
    const snapshots = async (region: string, backupId: string) =>
      ((await rds(region).send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual' }))).DBSnapshots ?? []).filter(
        (s) => s.TagList?.some((t) => t.Key === 'lifeboat:backup-id' && t.Value === backupId),
      );
    const failureOf = (p: Promise<unknown>) =>
      p.then(
        () => {
          throw new Error('expected a failure');
        },
        (err: { type?: string; nonRetryable?: boolean; message: string }) => err,
      );

    test('a second backup, copy, restore and teardown adopt what the first made: one snapshot per region, one instance (data from the test-only stand-in)', async () => {
      const p = rdsProvider(dataPlane, { pollMs: 20 });
      const input = ordersDrill();
      const backupId = `orders-idem-${Date.now()}`;
      const first = await p.createBackup(input.primary, backupId, 'test/idempotency', silentIo);
      const again = await p.createBackup(input.primary, backupId, 'test/idempotency', silentIo);
      expect(again).toEqual(first);
      expect(await snapshots(EAST, backupId)).toHaveLength(1);
      const copy = await p.copyBackup(first, input.dr, silentIo);
      expect(await p.copyBackup(first, input.dr, silentIo)).toEqual(copy);
      expect(await snapshots(WEST, backupId)).toHaveLength(1);
      const scratch = {
        name: `idem-${Date.now() % 100000}`,
        region: input.dr,
        database: input.primary.database,
        credentials: input.primary.credentials,
      };
      await p.restore(copy, scratch, silentIo);
      await p.restore(copy, scratch, silentIo);
      const manifest = await p.restoredManifest(copy, scratch);
      expect(manifest.sha256).toBe(first.sha256);
      expect(await p.dropScratch(scratch)).toBe(true);
      expect(await p.dropScratch(scratch)).toBe(false);
      expect(await p.listScratch(input.dr)).not.toContain(scratch.name);
    });

    test('never deletes or adopts an instance or snapshot without Lifeboat tags, even under a Lifeboat name', async () => {
      const p = rdsProvider(dataPlane, { pollMs: 20 });
      const input = ordersDrill();
      await rds(WEST).send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: 'lifeboat-not-ours',
          Engine: 'postgres',
          DBInstanceClass: 'db.t4g.micro',
          AllocatedStorage: 20,
        }),
      );
      const refused = await failureOf(p.dropScratch({ name: 'not-ours', region: input.dr, database: 'x' }));
      expect(refused).toMatchObject({
        type: 'LifeboatProviderRejected',
        nonRetryable: true,
        message: expect.stringContaining('did not make it'),
      });
      expect(
        (await rds(WEST).send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'lifeboat-not-ours' })))
          .DBInstances,
      ).toHaveLength(1);
      await rds(EAST).send(
        new CreateDBSnapshotCommand({
          DBInstanceIdentifier: SOURCE.instance,
          DBSnapshotIdentifier: snapshotIdFor('orders-foreign'),
        }),
      );
      const adopted = await failureOf(p.createBackup(input.primary, 'orders-foreign', 'test', silentIo));
      expect(adopted).toMatchObject({ type: 'LifeboatProviderRejected', message: expect.stringContaining('refusing') });
    });

    test('bad settings fail at once as verdicts naming the resource: a missing subnet group, a KMS key of another region, a missing instance', async () => {
      const p = rdsProvider(dataPlane, { pollMs: 20 });
      const input = ordersDrill();
      const noSubnets = { ...input.dr, settings: { ...input.dr.settings, scratchSubnetGroup: 'no-such-group' } };
      expect(await failureOf(p.createScratch(noSubnets, 'bad-net', 'orders'))).toMatchObject({
        type: 'LifeboatInvalidInput',
        nonRetryable: true,
        message: expect.stringContaining('no-such-group'),
      });
      const ref = await p.createBackup(input.primary, `orders-kms-${Date.now()}`, 'test', silentIo);
      const wrongKey = {
        ...input.dr,
        settings: { ...input.dr.settings, kmsKeyId: String(input.primary.region.settings!.kmsKeyId) },
      };
      expect(await failureOf(p.copyBackup(ref, wrongKey, silentIo))).toMatchObject({
        type: 'LifeboatInvalidInput',
        nonRetryable: true,
        message: expect.stringContaining('KMSKeyNotAccessible'),
      });
      const missing = { ...input.primary, instance: 'no-such-instance' };
      expect(await failureOf(p.createBackup(missing, `orders-missing-${Date.now()}`, 'test', silentIo))).toMatchObject({
        type: 'LifeboatDatabaseNotFound',
        nonRetryable: true,
        message: expect.stringContaining('no-such-instance'),
      });
    });
  });

  test('the backup runbook keeps the newest Lifeboat snapshot per region and never touches a snapshot Lifeboat did not make', async () => {
    await rds(EAST).send(
      new CreateDBSnapshotCommand({
        DBInstanceIdentifier: SOURCE.instance,
        DBSnapshotIdentifier: 'someone-elses-snapshot',
      }),
    );
    const { report } = await runRunbook(
      'backup',
      backupInput(plan, 'orders', { triggeredBy: 'test' }),
      workflowId('backup'),
    );
    expect(report.outcome).toBe('passed');
    const manual = async (region: string) =>
      (await rds(region).send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual' }))).DBSnapshots ?? [];
    const lifeboats = async (region: string) =>
      (await manual(region))
        .filter((s) => s.TagList?.some((t) => t.Key === 'lifeboat:backup-id'))
        .map((s) => s.DBSnapshotIdentifier);
    // keep: 1 in the plan: the earlier tests' Lifeboat snapshots are pruned, this run's stays...
    expect(await lifeboats(EAST)).toEqual([snapshotIdFor(report.backup!.backupId)]);
    expect(await lifeboats(WEST)).toEqual([snapshotIdFor(report.backup!.backupId)]);
    expect(report.checks.find((c) => c.name === 'retention aws-east')).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/^kept 1, deleted [1-9]/),
    });
    // ...and snapshots without Lifeboat's tags stay, even one under a Lifeboat-looking name.
    expect((await manual(EAST)).map((s) => s.DBSnapshotIdentifier)).toEqual(
      expect.arrayContaining(['someone-elses-snapshot', snapshotIdFor('orders-foreign')]),
    );
  });
});

describe('AWS replica failover and failback against moto (control plane real; no data plane in moto: PostgreSQL streaming replication stands in, driven by the test-only stand-in)', () => {
  const HOME_INSTANCE = 'billing-prod';
  const APP_ROLE = 'billing_app';
  const APP_PASSWORD = 'billing-app-pw-51c2';
  const REPLICA_INSTANCE = 'billing-replica';
  let fx: ReplicaSetFixture;
  let plan: LoadedPlan;
  let dataPlane: LocalRdsDataPlane;
  let worker: RunningWorker;

  beforeAll(async () => {
    ({ fx, plan, dataPlane } = await setUpRdsReplicaSet({
      regionPrefix: 'rds',
      database: 'billing',
      homeInstance: HOME_INSTANCE,
      replicaInstance: REPLICA_INSTANCE,
      passwordVar: SOURCE.passwordVar,
      password: SOURCE.password,
    }));
    // The application's own role (the fence takes its LOGIN) and one that never had LOGIN (it must not get one).
    await withClient(await local().connectNode(fx.home, 'postgres'), async (c) => {
      await c.query(`create role ${APP_ROLE} login password '${APP_PASSWORD}'`);
      await c.query('create role billing_reports nologin');
    });
    await withClient(await local().connectNode(fx.home, 'billing'), async (c) => {
      await c.query('create table fence_probe_writes (id bigserial primary key, at timestamptz default now())');
      await c.query(
        `grant insert on fence_probe_writes to ${APP_ROLE}; grant usage on sequence fence_probe_writes_id_seq to ${APP_ROLE}`,
      );
    });
    worker = await startWorker({ regions: ['rds-east', 'rds-west'], providers: { aws: rdsProvider(dataPlane) } });
  });

  afterAll(async () => {
    await worker?.stop();
    await fx?.close();
  });

  const instance = async (region: string, id: string) =>
    (await rds(region).send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances![0]!;
  const tags = async (region: string, id: string) =>
    Object.fromEntries(((await instance(region, id)).TagList ?? []).map((t) => [t.Key, t.Value]));
  const credentials = { user: 'lifeboat', password: `env:${SOURCE.passwordVar}` };
  const homeNode = { region: 'rds-east', name: HOME_INSTANCE, location: EAST, credentials };
  const replicaNode = { region: 'rds-west', name: REPLICA_INSTANCE, location: WEST, credentials };
  /** A provider of its own (not the worker's), so a test can doctor its RDS client. */
  const ownProvider = () => rdsProvider(dataPlane);
  /** A write as the application's role, straight to a stand-in server: what it commits, or why not. */
  const writeAsApp = async (node: typeof fx.home): Promise<string> => {
    const admin = await local().connectNode(node, 'billing');
    return withClient({ ...admin, user: APP_ROLE, password: APP_PASSWORD, connectTimeoutMs: 3000 }, async (c) => {
      await c.query('set default_transaction_read_only = off');
      await c.query('begin read write');
      await c.query('insert into fence_probe_writes default values');
      await c.query('commit');
      return 'committed';
    }).catch((err: Error) => err.message);
  };
  /** Runs a failover or failback of billing as the CLI starts one, and expects it passed. */
  const passedRun = async (runbook: 'failover' | 'failback', input: FailoverInput | FailbackInput) => {
    const report = await runbookReport(await startTopologyRunbook(await client(), runbook, input));
    expectPassed(report);
    return report;
  };
  const canLogIn = async (node: typeof fx.home, role: string) =>
    withClient(
      await local().connectNode(node, 'postgres'),
      async (c) =>
        (await c.query<{ can: boolean }>('select rolcanlogin as can from pg_roles where rolname = $1', [role])).rows[0]
          ?.can,
    );

  test("planned fence on RDS revokes LOGIN from every other role and proves it with a refused login; BEGIN READ WRITE as the application is impossible (it cannot log in); status is not writable, and writable again once a role gets LOGIN back behind Lifeboat's back (a fence violation) until fenced again; unfence re-grants LOGIN to exactly those roles (test-only stand-in server)", async () => {
    const provider = ownProvider();
    const fence = await provider.fence(homeNode, 'planned');
    expect(fence).toMatchObject({
      confirmed: true,
      how: expect.stringContaining(`LOGIN revoked from 1 role(s) (${APP_ROLE})`),
      finalLsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/),
    });
    expect(fence.how).toContain('a login as a role without LOGIN is refused by the server');
    expect(await writeAsApp(fx.home)).toMatch(/not permitted to log in/);
    expect(await provider.nodeStatus(homeNode)).toMatchObject({
      reachable: true,
      inRecovery: false,
      writable: false,
      fenced: true,
    });
    // The replica replays the fence (its roles are the primary's): it waits for the promote to lift it.
    await provider.waitForReplay(replicaNode, fence.finalLsn!, silentIo);
    expect(await canLogIn(fx.standby, APP_ROLE)).toBe(false);
    // Someone gives the role its LOGIN back behind Lifeboat's back: status must call the node writable again.
    await withClient(await local().connectNode(fx.home, 'postgres'), async (c) => {
      await c.query('set default_transaction_read_only = off');
      await c.query(`alter role ${APP_ROLE} login`);
    });
    expect(await provider.nodeStatus(homeNode)).toMatchObject({
      writable: true,
      fenced: true,
      detail: expect.stringContaining(`WRITABLE although fenced: ${APP_ROLE} can log in`),
    });
    expect((await provider.fence(homeNode, 'planned')).confirmed).toBe(true);
    expect(await provider.nodeStatus(homeNode)).toMatchObject({ writable: false, fenced: true });
    await provider.unfence(homeNode);
    expect(await writeAsApp(fx.home)).toBe('committed');
    expect(await canLogIn(fx.home, 'billing_reports')).toBe(false);
    expect(await provider.nodeStatus(homeNode)).toMatchObject({ writable: true, fenced: false });
  });

  test('an unplanned fence of an instance with no read replicas stops it: StopDBInstance, tagged first, confirmed by DescribeDBInstances showing stopped; unfence starts it and re-grants LOGIN (moto stops no server: the stand-in server keeps running and the LOGIN fence is what holds it)', async () => {
    await rds(EAST).send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: 'billing-solo',
        Engine: 'postgres',
        EngineVersion: '16.3',
        DBInstanceClass: 'db.t4g.micro',
        MasterUsername: 'lifeboat',
        MasterUserPassword: SOURCE.password,
        AllocatedStorage: 20,
      }),
    );
    dataPlane.addSource(`${EAST}/billing-solo`, { node: fx.home });
    const solo = { ...homeNode, name: 'billing-solo' };
    const provider = ownProvider();
    const fence = await provider.fence(solo, 'unplanned');
    expect(fence.confirmed).toBe(true);
    expect(fence.how).toContain('instance stopped: StopDBInstance, DescribeDBInstances shows it stopped');
    expect((await instance(EAST, 'billing-solo')).DBInstanceStatus).toBe('stopped');
    expect(await tags(EAST, 'billing-solo')).toHaveProperty(['lifeboat:fence-stopped']);
    expect(await writeAsApp(fx.home)).toMatch(/not permitted to log in/);
    expect(await provider.nodeStatus(solo)).toMatchObject({
      running: false,
      writable: false,
      fenced: true,
      detail: expect.stringContaining('stopped'),
    });
    await provider.unfence(solo);
    expect((await instance(EAST, 'billing-solo')).DBInstanceStatus).toBe('available');
    expect(await tags(EAST, 'billing-solo')).not.toHaveProperty(['lifeboat:fence-stopped']);
    expect(await writeAsApp(fx.home)).toBe('committed');
  });

  test('an unplanned fence of a primary that still has its read replica does not stop it (RDS refuses that; moto would not): the LOGIN fence alone, confirmed by the refused login', async () => {
    const provider = ownProvider();
    const fence = await provider.fence(homeNode, 'unplanned');
    expect(fence).toMatchObject({ confirmed: true, finalLsn: null });
    expect(fence.how).toContain('not stopped: RDS does not stop an instance with read replicas');
    expect((await instance(EAST, HOME_INSTANCE)).DBInstanceStatus).toBe('available');
    await provider.unfence(homeNode);
    expect(await writeAsApp(fx.home)).toBe('committed');
  });

  test('PromoteReadReplica is recorded on the replica (tag lifeboat:promote-requested) before it is sent: a lost answer leaves promoteRequested true, a refusal clears it (calls failed by the test in the SDK client)', async () => {
    const fail = (provider: AwsProvider, error: Error) =>
      (provider.rds(WEST) as RDSClient).middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'PromoteReadReplicaCommand') throw error;
          return next(args);
        },
        { step: 'initialize', name: 'testFailPromote' },
      );
    const refused = ownProvider();
    expect((await refused.nodeStatus(replicaNode)).promoteRequested).toBe(false);
    fail(
      refused,
      Object.assign(new Error('promotion refused'), {
        name: 'InvalidParameterCombination',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    await expect(refused.promote(replicaNode)).rejects.toThrow(/InvalidParameterCombination/);
    expect(await tags(WEST, REPLICA_INSTANCE)).not.toHaveProperty(['lifeboat:promote-requested']);
    expect((await refused.nodeStatus(replicaNode)).promoteRequested).toBe(false);
    const lost = ownProvider();
    fail(lost, Object.assign(new Error('socket hang up'), { name: 'TimeoutError' }));
    await expect(lost.promote(replicaNode)).rejects.toThrow(/socket hang up/);
    expect(await tags(WEST, REPLICA_INSTANCE)).toHaveProperty(['lifeboat:promote-requested']);
    expect(await lost.nodeStatus(replicaNode)).toMatchObject({ inRecovery: true, promoteRequested: true });
  });

  test('planned failover promotes the cross-region read replica (PromoteReadReplica) after fencing the primary read-only, with no acknowledged write lost', async () => {
    const report = await passedRun(
      'failover',
      failoverInput(plan, 'billing', { mode: 'planned', preApproved: true, triggeredBy: 'test' }),
    );
    expect(report.rpoSeconds).toBe(0);
    expect(report.failover?.fence).toMatchObject({ confirmed: true, how: expect.stringContaining('ALTER DATABASE') });
    expect(report.failover?.fence?.how).toContain(`LOGIN revoked from 1 role(s) (${APP_ROLE})`);
    // The old primary refuses the application's login; the promoted replica lifted the fence it replayed.
    expect(await writeAsApp(fx.home)).toMatch(/not permitted to log in/);
    expect(await writeAsApp(fx.standby)).toBe('committed');
    expect(report.failover?.topology).toMatchObject({
      primary: { region: 'rds-west', name: REPLICA_INSTANCE, location: WEST },
      fenced: [expect.objectContaining({ region: 'rds-east', name: HOME_INSTANCE })],
    });
    expect(dataPlane.events).toContain(`promote ${WEST}/${REPLICA_INSTANCE}`);
    // What the stand-in's servers say: the replica's server took over. The old primary still lets
    // Lifeboat's own admin login open a read-write transaction (the fence's stated gap), so it is
    // judged as the provider judges it: no other role can log in, so not writable.
    expect(await acceptsWrites(fx.standby)).toBe(true);
    expect(await ownProvider().nodeStatus(homeNode)).toMatchObject({ reachable: true, writable: false });
    expect((await instance(WEST, REPLICA_INSTANCE)).DBInstanceStatus).toBe('available');
  });

  test('failback makes a NEW read replica in the home region from the new primary (CreateDBInstanceReadReplica), switches back to it, and re-protects with another new replica; old instances are left, never deleted', async () => {
    const report = await passedRun(
      'failback',
      failbackInput(plan, 'billing', { preApproved: true, triggeredBy: 'test' }),
    );
    const newHome = replicaIdFor(HOME_INSTANCE, REPLICA_INSTANCE);
    const newStandby = replicaIdFor(REPLICA_INSTANCE, newHome);
    expect(report.failover?.topology).toMatchObject({
      primary: { region: 'rds-east', name: newHome, location: EAST },
      standby: { region: 'rds-west', name: newStandby, location: WEST },
    });
    expect(report.failover!.topology!.fenced.map((n) => n.name).sort()).toEqual(
      [HOME_INSTANCE, REPLICA_INSTANCE].sort(),
    );
    expect(report.checks.find((c) => c.name === 'writes of the failover term kept')).toMatchObject({ ok: true });
    // In moto: the new home replica points at the promoted DR instance by ARN; the new DR replica at the new home.
    expect((await instance(EAST, newHome)).ReadReplicaSourceDBInstanceIdentifier).toBe(
      (await instance(WEST, REPLICA_INSTANCE)).DBInstanceArn,
    );
    expect((await instance(WEST, newStandby)).ReadReplicaSourceDBInstanceIdentifier).toBe(
      (await instance(EAST, newHome)).DBInstanceArn,
    );
    expect((await instance(WEST, newStandby)).KmsKeyId).toBe(
      (plan.plan.regions['rds-west'] as { kmsKeyId?: string }).kmsKeyId,
    );
    for (const [region, id] of [
      [EAST, HOME_INSTANCE],
      [WEST, REPLICA_INSTANCE],
    ] as const)
      expect((await instance(region, id)).DBInstanceIdentifier).toBe(id);
    expect(await acceptsWrites(fx.home)).toBe(true);
    expect(await acceptsWrites(fx.standby)).toBe(false);
  });

  test('unplanned failover with the primary down: the fence is recorded as not confirmed and the replica is promoted anyway (stand-in primary stopped)', async () => {
    const before = topologyOf({ ...fx, set: { ...fx.set, set: 'rds-east' } });
    await local().nodeCluster(fx.home).stop('immediate');
    const report = await passedRun(
      'failover',
      failoverInput(plan, 'billing', { mode: 'unplanned', preApproved: true, triggeredBy: 'test' }),
    );
    expect(report.failover?.fence).toMatchObject({ confirmed: false, how: expect.stringContaining('unreachable') });
    expect(report.failover?.topology?.primary).toMatchObject({ region: 'rds-west', name: before.standby!.name });
    expect(dataPlane.events).toContain(`promote ${WEST}/${before.standby!.name}`);
    expect(await acceptsWrites(fx.standby)).toBe(true);
  });
});
