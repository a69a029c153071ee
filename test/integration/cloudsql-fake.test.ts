// The Cloud SQL fake, driven by the real @google-cloud/sql clients (REST fallback) exactly as the GCP
// provider drives them, with real PostgreSQL behind each instance: what it serves must behave like
// Cloud SQL where Lifeboat looks (operations to poll, backups that restore data and roles, errors).
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { v1, type protos } from '@google-cloud/sql';
import { OAuth2Client } from 'google-auth-library';
import { findPgBin } from '../../activities/pg/binaries';
import { withClient } from '../../activities/pg/sql';
import { adminClients, untilDone } from '../fakes/cloudsql/clients';
import { startCloudSqlFake, type CloudSqlFake } from '../fakes/cloudsql/server';
import { httpStatusOf } from '../../activities/providers/gcp-errors';

type Operation = protos.google.cloud.sql.v1.IOperation;

const project = 'lifeboat-test';
const source = { name: 'orders-primary', password: 'src:pw\\with-escapes' };
const target = { name: 'orders-drill', password: 'drill-pw' };

/** Operations finish in the background; poll like the provider does, with a deadline. */
const pollUntilDone = (
  ops: v1.SqlOperationsServiceClient,
  operation: Operation,
  timeoutMs = 20_000,
): Promise<Operation> => untilDone(ops, project, operation, timeoutMs);

/** gRPC status names of the codes the fake answers with (newer clients report the gRPC code). */
const GRPC_NAMES: Record<number, string> = {
  3: 'INVALID_ARGUMENT',
  5: 'NOT_FOUND',
  6: 'ALREADY_EXISTS',
  9: 'FAILED_PRECONDITION',
};

/**
 * The HTTP status and Google error body of a failed call. @google-cloud/sql 0.25 (gaxios) put the body
 * text in the message; 0.32 (google-gax) throws a GoogleError with the body's message and the gRPC code.
 */
async function httpError(
  call: Promise<unknown>,
): Promise<{ status: number; body: { error: { status: string; message: string } } }> {
  const err = (await call.then(
    () => undefined,
    (e: unknown) => e,
  )) as { code?: number; message: string } | undefined;
  if (!err) throw new Error('expected the call to fail, it succeeded');
  const status = httpStatusOf(err);
  if (status === undefined) throw new Error(`no HTTP status in the error: ${err.message}`);
  try {
    return { status, body: JSON.parse(err.message) as { error: { status: string; message: string } } };
  } catch {
    return {
      status,
      body: { error: { status: GRPC_NAMES[err.code ?? -1] ?? String(err.code), message: err.message } },
    };
  }
}

describe('Cloud SQL fake (real @google-cloud/sql clients, real PostgreSQL; no IAM, no networking)', () => {
  let fake: CloudSqlFake;
  let dir: string;
  let instances: v1.SqlInstancesServiceClient;
  let backupRuns: v1.SqlBackupRunsServiceClient;
  let operations: v1.SqlOperationsServiceClient;
  let backupId: string;

  const connect = (instance: string, password: string, database = 'postgres', user = 'postgres') => ({
    host: '127.0.0.1',
    port: fake.portOf(project, instance),
    user,
    password,
    database,
    connectTimeoutMs: 5000,
  });
  const orderCount = (instance: string, password: string, user = 'postgres') =>
    withClient(connect(instance, password, 'shop', user), async (c) =>
      Number((await c.query<{ n: string }>('select count(*) as n from orders')).rows[0]!.n),
    );

  beforeAll(async () => {
    dir = mkdtempSync(join(process.env.LIFEBOAT_HOME!, 'cloudsql-fake-'));
    fake = await startCloudSqlFake({ dir, pgBin: findPgBin(process.env.LIFEBOAT_PG_BIN || undefined) });
    ({ instances, backupRuns, operations } = adminClients(fake));
  });

  afterAll(async () => {
    await Promise.all([instances?.close(), backupRuns?.close(), operations?.close()]);
    await fake?.close();
  });

  test('instances.insert returns a PENDING operation; once DONE the instance is RUNNABLE and postgres/rootPassword gets in', async () => {
    const [op] = await instances.insert({
      project,
      body: {
        name: source.name,
        databaseVersion: 'POSTGRES_15',
        region: 'europe-west1',
        rootPassword: source.password,
        settings: { tier: 'db-custom-1-3840', availabilityType: 'REGIONAL', userLabels: { app: 'orders' } },
      },
    });
    expect(op).toMatchObject({
      operationType: 'CREATE',
      status: 'PENDING',
      targetId: source.name,
      targetProject: project,
    });
    // The client sends enums as numbers; the fake maps them back.
    expect(fake.requests.at(-1)).toMatchObject({
      method: 'POST',
      path: `/v1/projects/${project}/instances`,
      body: { databaseVersion: 172 },
    });
    const [creating] = await instances.get({ project, instance: source.name });
    expect(creating.state).toBe('PENDING_CREATE');

    expect((await pollUntilDone(operations, op)).error).toBeNull();
    const [ready] = await instances.get({ project, instance: source.name });
    expect(ready).toMatchObject({
      state: 'RUNNABLE',
      databaseVersion: 'POSTGRES_15',
      region: 'europe-west1',
      connectionName: `${project}:europe-west1:${source.name}`,
      ipAddresses: [{ type: 'PRIVATE', ipAddress: '127.0.0.1' }],
      settings: { tier: 'db-custom-1-3840', availabilityType: 'REGIONAL', userLabels: { app: 'orders' } },
      masterInstanceName: '',
      replicaNames: [],
    });

    await withClient(connect(source.name, source.password), async (c) => {
      await c.query(`create role shop_app login password 'app-pw'`);
      await c.query('create database shop owner shop_app');
    });
    await withClient(connect(source.name, 'app-pw', 'shop', 'shop_app'), (c) =>
      c.query(
        'create table orders (id int primary key, total numeric); insert into orders select i, i * 1.5 from generate_series(1, 250) i',
      ),
    );
    expect(await orderCount(source.name, source.password)).toBe(250);
  });

  test('a second insert of the same name is 409 ALREADY_EXISTS; a missing instance is 404 NOT_FOUND', async () => {
    const duplicate = await httpError(
      instances.insert({ project, body: { name: source.name, settings: { tier: 'db-f1-micro' } } }),
    );
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.error.status).toBe('ALREADY_EXISTS');
    const missing = await httpError(instances.get({ project, instance: 'nope' }));
    expect(missing).toMatchObject({ status: 404, body: { error: { status: 'NOT_FOUND' } } });
  });

  test('backupRuns.insert dumps the instance; the run is listed SUCCESSFUL, newest first', async () => {
    const [op] = await backupRuns.insert({ project, instance: source.name, body: { description: 'drill source' } });
    expect(op.operationType).toBe('BACKUP_VOLUME');
    backupId = op.backupContext!.backupId as string;
    expect(backupId).toMatch(/^\d+$/);
    const [running] = await backupRuns.get({ project, instance: source.name, id: backupId });
    expect(['ENQUEUED', 'RUNNING']).toContain(running.status);

    expect((await pollUntilDone(operations, op)).error).toBeNull();
    const [list] = await backupRuns.list({ project, instance: source.name, maxResults: 5 });
    expect(list.items).toHaveLength(1);
    expect(list.items![0]).toMatchObject({
      id: backupId,
      status: 'SUCCESSFUL',
      type: 'ON_DEMAND',
      description: 'drill source',
      instance: source.name,
      location: 'us',
    });
    expect(Number(list.items![0]!.endTime!.seconds)).toBeGreaterThan(0);
  });

  test('restoreBackup into a second instance brings the rows, the roles and the source root password along', async () => {
    const [create] = await instances.insert({
      project,
      body: { name: target.name, rootPassword: target.password, settings: { tier: 'db-custom-1-3840' } },
    });
    expect((await pollUntilDone(operations, create)).error).toBeNull();

    const [op] = await instances.restoreBackup({
      project,
      instance: target.name,
      body: { restoreBackupContext: { backupRunId: backupId, instanceId: source.name, project } },
    });
    expect(op.operationType).toBe('RESTORE_VOLUME');
    expect((await pollUntilDone(operations, op)).error).toBeNull();

    expect(await orderCount(target.name, source.password)).toBe(250);
    expect(await orderCount(target.name, 'app-pw', 'shop_app')).toBe(250);
    await expect(withClient(connect(target.name, target.password), (c) => c.query('select 1'))).rejects.toThrow(
      /password authentication failed/,
    );
  });

  test("failNext('RESTORE_VOLUME') ends the next restore DONE with an error; a retry overwrites the half-restored target", async () => {
    fake.failNext('RESTORE_VOLUME', 'simulated: disk quota exceeded');
    const body = { restoreBackupContext: { backupRunId: backupId, instanceId: source.name, project } };
    const [failing] = await instances.restoreBackup({ project, instance: target.name, body });
    const failed = await pollUntilDone(operations, failing);
    expect(failed.status).toBe('DONE');
    expect(failed.error?.errors).toEqual([
      expect.objectContaining({ code: 'INTERNAL_ERROR', message: 'simulated: disk quota exceeded' }),
    ]);

    const [retry] = await instances.restoreBackup({ project, instance: target.name, body });
    expect((await pollUntilDone(operations, retry)).error).toBeNull();
    expect(await orderCount(target.name, source.password)).toBe(250);
  });

  test('a route the fake does not serve is a 404 that says so', async () => {
    const unfaked = await httpError(instances.restart({ project, instance: source.name }));
    expect(unfaked.status).toBe(404);
    expect(unfaked.body.error.message).toMatch(
      /POST \/v1\/projects\/lifeboat-test\/instances\/orders-primary\/restart is not faked/,
    );
  });

  test('instances.delete stops and removes both clusters, and their backup runs with them', async () => {
    const ports = [fake.portOf(project, source.name), fake.portOf(project, target.name)];
    // Held until its state is read: on a busy machine the delete would otherwise finish first.
    const release = fake.holdNext('DELETE');
    const [a] = await instances.delete({ project, instance: source.name });
    const [b] = await instances.delete({ project, instance: target.name });
    expect(a.operationType).toBe('DELETE');
    const [deleting] = await instances.get({ project, instance: source.name });
    release();
    expect(deleting.state).toBe('PENDING_DELETE');
    for (const op of [a, b]) expect((await pollUntilDone(operations, op)).error).toBeNull();

    for (const name of [source.name, target.name]) {
      expect((await httpError(instances.get({ project, instance: name }))).status).toBe(404);
      expect(() => fake.portOf(project, name)).toThrow(/no running instance/);
    }
    expect((await httpError(backupRuns.get({ project, instance: source.name, id: backupId }))).status).toBe(404);
    expect(readdirSync(join(dir, 'i'))).toEqual([]);
    expect(existsSync(join(dir, 'backups', `${project}~${source.name}`, backupId))).toBe(false);
    for (const port of ports) {
      await expect(
        withClient(
          { host: '127.0.0.1', port, user: 'postgres', password: 'x', database: 'postgres', connectTimeoutMs: 2000 },
          (c) => c.query('select 1'),
        ),
      ).rejects.toThrow(/ECONNREFUSED/);
    }
    // As on Cloud SQL, a deleted instance's name is not free again at once.
    expect(
      (await httpError(instances.insert({ project, body: { name: source.name, settings: { tier: 'db-f1-micro' } } })))
        .status,
    ).toBe(409);
    expect(fake.operations()).toHaveLength(8);
  });

  test("failNext('CREATE') leaves no instance and frees the name; close() waits for work in flight and removes every cluster", async () => {
    const own = mkdtempSync(join(process.env.LIFEBOAT_HOME!, 'cloudsql-fake-'));
    const second = await startCloudSqlFake({
      dir: own,
      pgBin: findPgBin(process.env.LIFEBOAT_PG_BIN || undefined),
      opDelayMs: 50,
    });
    const authClient = new OAuth2Client({ transporterOptions: { fetchImplementation: fetch } });
    authClient.setCredentials({ access_token: 'fake-token' });
    const options = {
      fallback: true,
      apiEndpoint: second.endpoint.host,
      port: second.endpoint.port,
      protocol: 'http',
      authClient,
    };
    const client = new v1.SqlInstancesServiceClient(options);
    const ops = new v1.SqlOperationsServiceClient(options);
    try {
      second.failNext('CREATE', 'simulated: zone out of capacity');
      const [failing] = await client.insert({ project, body: { name: 'scratch', settings: { tier: 'db-f1-micro' } } });
      const failed = await pollUntilDone(ops, failing);
      expect(failed.error?.errors?.[0]?.message).toBe('simulated: zone out of capacity');
      expect((await httpError(client.get({ project, instance: 'scratch' }))).status).toBe(404);

      await client.insert({ project, body: { name: 'scratch', settings: { tier: 'db-f1-micro' } } });
    } finally {
      await Promise.all([client.close(), ops.close()]);
      await second.close();
    }
    expect(readdirSync(join(own, 'i'))).toEqual([]);
    expect(() => second.failNext('RESTART', 'x')).toThrow(/no such operation/);
  });
});

describe("Cloud SQL fake's replication: real streaming standbys, switchover, promoteReplica, HA failover (no real cross-region latency, no Cloud SQL replication-lag metrics, no HA standby of its own)", () => {
  const primary = 'ledger-primary';
  const replica = 'ledger-replica';
  const dr = 'ledger-dr';
  // Plain: the replication code's passfiles take no ':' or '\' (the fake refuses those, see postgres.ts).
  const password = 'ledger-root-pw';
  let fake: CloudSqlFake;
  let instances: v1.SqlInstancesServiceClient;
  let backupRuns: v1.SqlBackupRunsServiceClient;
  let operations: v1.SqlOperationsServiceClient;
  type Instance = protos.google.cloud.sql.v1.IDatabaseInstance;

  const sql = <T>(instance: string, use: Parameters<typeof withClient<T>>[1]) =>
    withClient(
      {
        host: '127.0.0.1',
        port: fake.portOf(project, instance),
        user: 'postgres',
        password,
        database: 'postgres',
        connectTimeoutMs: 5000,
      },
      use,
    );
  const entries = (instance: string) =>
    sql(instance, async (c) => Number((await c.query<{ n: string }>('select count(*) as n from entries')).rows[0]!.n));
  const inRecovery = (instance: string) =>
    sql(instance, async (c) => (await c.query<{ rec: boolean }>('select pg_is_in_recovery() as rec')).rows[0]!.rec);
  const addEntries = (instance: string, from: number, to: number) =>
    sql(instance, (c) =>
      c.query('insert into entries select i, $3 from generate_series($1::int, $2::int) i', [from, to, instance]),
    );
  const slots = (instance: string) =>
    sql(instance, async (c) =>
      (await c.query<{ slot_name: string }>('select slot_name from pg_replication_slots order by 1')).rows.map(
        (r) => r.slot_name,
      ),
    );
  const get = async (instance: string): Promise<Instance> => (await instances.get({ project, instance }))[0];
  const lastRequest = (suffix: string) => fake.requests.filter((r) => r.path.endsWith(suffix)).at(-1);
  const done = async (call: Promise<[Operation, ...unknown[]]>) => pollUntilDone(operations, (await call)[0], 30_000);

  /** Replication is asynchronous: poll the replica until it shows what the primary has. */
  async function eventually<T>(read: () => Promise<T>, expected: T, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: T | undefined;
    while (Date.now() < deadline) {
      last = await read();
      if (last === expected) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`still ${String(last)} after ${timeoutMs} ms; expected ${String(expected)}`);
  }

  beforeAll(async () => {
    const dir = mkdtempSync(join(process.env.LIFEBOAT_HOME!, 'cloudsql-repl-'));
    fake = await startCloudSqlFake({ dir, pgBin: findPgBin(process.env.LIFEBOAT_PG_BIN || undefined), opDelayMs: 100 });
    ({ instances, backupRuns, operations } = adminClients(fake));
  });

  afterAll(async () => {
    await Promise.all([instances?.close(), backupRuns?.close(), operations?.close()]);
    await fake?.close();
  });

  test('a cross-region read replica (insert with masterInstanceName) streams the rows the primary had and the ones it gets later', async () => {
    const settings = { tier: 'db-custom-1-3840', availabilityType: 'REGIONAL' as const };
    expect(
      (
        await done(
          instances.insert({
            project,
            body: { name: primary, region: 'europe-west1', rootPassword: password, settings },
          }),
        )
      ).error,
    ).toBeNull();
    await sql(primary, (c) => c.query('create table entries (id int primary key, written_on text)'));
    await addEntries(primary, 1, 100);

    const [op] = await instances.insert({
      project,
      body: { name: replica, region: 'us-east1', masterInstanceName: primary, settings: { tier: 'db-custom-1-3840' } },
    });
    expect(op).toMatchObject({ operationType: 'CREATE', targetId: replica });
    expect((await pollUntilDone(operations, op, 30_000)).error).toBeNull();

    expect(await get(replica)).toMatchObject({
      state: 'RUNNABLE',
      instanceType: 'READ_REPLICA_INSTANCE',
      masterInstanceName: primary,
      region: 'us-east1',
      gceZone: 'us-east1-a',
      databaseVersion: (await get(primary)).databaseVersion,
      replicaNames: [],
    });
    expect(await get(primary)).toMatchObject({
      instanceType: 'CLOUD_SQL_INSTANCE',
      masterInstanceName: '',
      replicaNames: [replica],
    });
    // A physical copy: the primary's root password gets in, and the replica only reads.
    expect(await inRecovery(replica)).toBe(true);
    expect(await entries(replica)).toBe(100);
    await expect(addEntries(replica, 1000, 1000)).rejects.toThrow(/read-only transaction/);

    await addEntries(primary, 101, 150);
    await eventually(() => entries(replica), 150);
  });

  test('Cloud SQL refuses: promote or switch over a primary, delete a primary with replicas, back up a replica, fail over with a stale settingsVersion', async () => {
    for (const call of [
      instances.promoteReplica({ project, instance: primary }),
      instances.switchover({ project, instance: primary }),
    ]) {
      const refused = await httpError(call);
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toMatch(/not a read replica/);
    }
    const deleting = await httpError(instances.delete({ project, instance: primary }));
    expect(deleting.status).toBe(400);
    expect(deleting.body.error.message).toMatch(/has read replicas \(ledger-replica\)/);
    expect((await httpError(backupRuns.insert({ project, instance: replica, body: {} }))).body.error.message).toMatch(
      /is a read replica/,
    );
    const stale = await httpError(
      instances.failover({ project, instance: primary, body: { failoverContext: { settingsVersion: 7 } } }),
    );
    expect(stale.status).toBe(400);
    expect(stale.body.error.message).toMatch(/current settingsVersion of ledger-primary is 1/);
    const notHa = await httpError(
      instances.failover({ project, instance: replica, body: { failoverContext: { settingsVersion: 1 } } }),
    );
    expect(notHa.body.error.message).toMatch(/not configured for high availability/);
    expect(
      fake
        .operations()
        .filter((o) =>
          ['PROMOTE_REPLICA', 'SWITCHOVER', 'FAILOVER'].includes((o as Operation).operationType as string),
        ),
    ).toEqual([]);
  });

  test("failNext('SWITCHOVER') ends the switchover DONE with an error; the roles stay and the primary takes writes again", async () => {
    fake.failNext('SWITCHOVER', 'simulated: replica health check failed');
    const failed = await done(instances.switchover({ project, instance: replica }));
    expect(failed).toMatchObject({ status: 'DONE', operationType: 'SWITCHOVER' });
    expect(failed.error?.errors?.[0]?.message).toBe('simulated: replica health check failed');

    expect(await get(primary)).toMatchObject({ instanceType: 'CLOUD_SQL_INSTANCE', replicaNames: [replica] });
    expect(await get(replica)).toMatchObject({ instanceType: 'READ_REPLICA_INSTANCE', masterInstanceName: primary });
    // The fence was lifted: new sessions write again, and the replica still follows.
    await addEntries(primary, 151, 160);
    expect(await inRecovery(replica)).toBe(true);
    await eventually(() => entries(replica), 160);
  });

  test('switchover: the replica becomes the primary with every row; the former primary is a read-only streaming standby of it', async () => {
    const op = await done(instances.switchover({ project, instance: replica, dbTimeout: { seconds: 30 } }));
    expect(op).toMatchObject({ operationType: 'SWITCHOVER', targetId: replica });
    expect(op.error).toBeNull();
    expect(lastRequest('/switchover')).toMatchObject({
      method: 'POST',
      path: `/v1/projects/${project}/instances/${replica}/switchover`,
      query: { dbTimeout: '30s' },
    });

    expect(await get(replica)).toMatchObject({
      instanceType: 'CLOUD_SQL_INSTANCE',
      masterInstanceName: '',
      replicaNames: [primary],
    });
    expect(await get(primary)).toMatchObject({
      instanceType: 'READ_REPLICA_INSTANCE',
      masterInstanceName: replica,
      replicaNames: [],
    });
    expect(await inRecovery(replica)).toBe(false);
    expect(await entries(replica)).toBe(160);
    await addEntries(replica, 161, 170);
    expect(await inRecovery(primary)).toBe(true);
    await expect(addEntries(primary, 2000, 2000)).rejects.toThrow(/read-only transaction/);
    await eventually(() => entries(primary), 170);
    // The former primary no longer keeps WAL for the replica it had; the new primary keeps it for its standby.
    expect(await slots(replica)).toEqual(['cloudsql_ledger_primary']);
  });

  test('promoteReplica makes the (former primary, now) replica a writable standalone instance', async () => {
    const op = await done(instances.promoteReplica({ project, instance: primary }));
    expect(op).toMatchObject({ operationType: 'PROMOTE_REPLICA', targetId: primary });
    expect(op.error).toBeNull();
    expect(await get(primary)).toMatchObject({
      instanceType: 'CLOUD_SQL_INSTANCE',
      masterInstanceName: '',
      replicaNames: [],
    });
    expect(await get(replica)).toMatchObject({ instanceType: 'CLOUD_SQL_INSTANCE', replicaNames: [] });
    expect(await inRecovery(primary)).toBe(false);
    await addEntries(primary, 171, 175);
    expect(await entries(primary)).toBe(175);
    expect(await entries(replica)).toBe(170);
    expect(await slots(replica)).toEqual([]);
  });

  test('HA failover: settingsVersion goes up, the zone flips, the instance serves again; a stale version or failNext changes nothing', async () => {
    const before = await get(primary);
    expect(before).toMatchObject({
      gceZone: 'europe-west1-a',
      secondaryGceZone: 'europe-west1-b',
      settings: { settingsVersion: { value: '1' } },
    });
    fake.failNext('FAILOVER', 'simulated: standby zone unavailable');
    const failed = await done(
      instances.failover({ project, instance: primary, body: { failoverContext: { settingsVersion: '1' } } }),
    );
    expect(failed.error?.errors?.[0]?.message).toBe('simulated: standby zone unavailable');
    expect(await get(primary)).toMatchObject({
      gceZone: 'europe-west1-a',
      settings: { settingsVersion: { value: '1' } },
    });

    const op = await done(
      instances.failover({ project, instance: primary, body: { failoverContext: { settingsVersion: '1' } } }),
    );
    expect(op).toMatchObject({ operationType: 'FAILOVER', error: null });
    expect(lastRequest('/failover')!.body).toEqual({ failoverContext: { settingsVersion: '1' } });
    expect(await get(primary)).toMatchObject({
      gceZone: 'europe-west1-b',
      secondaryGceZone: 'europe-west1-a',
      settings: { settingsVersion: { value: '2' } },
    });
    expect(await entries(primary)).toBe(175);
    expect(
      (
        await httpError(
          instances.failover({ project, instance: primary, body: { failoverContext: { settingsVersion: '1' } } }),
        )
      ).status,
    ).toBe(400);
  });

  test('promoteReplica with failover=true (DR replica failover): the former primary becomes a replica of the promoted one; deleting a replica drops its slot', async () => {
    expect(
      (
        await done(
          instances.insert({
            project,
            body: {
              name: dr,
              region: 'asia-east1',
              masterInstanceName: primary,
              settings: { tier: 'db-custom-1-3840' },
            },
          }),
        )
      ).error,
    ).toBeNull();
    await eventually(() => entries(dr), 175);

    const op = await done(instances.promoteReplica({ project, instance: dr, failover: true }));
    expect(op.error).toBeNull();
    expect(lastRequest('/promoteReplica')).toMatchObject({
      path: `/v1/projects/${project}/instances/${dr}/promoteReplica`,
      query: { failover: 'true' },
    });
    expect(await get(dr)).toMatchObject({ instanceType: 'CLOUD_SQL_INSTANCE', replicaNames: [primary] });
    expect(await get(primary)).toMatchObject({ instanceType: 'READ_REPLICA_INSTANCE', masterInstanceName: dr });
    await addEntries(dr, 176, 180);
    await eventually(() => entries(primary), 180);

    expect(await slots(dr)).toEqual(['cloudsql_ledger_primary']);
    expect((await done(instances.delete({ project, instance: primary }))).error).toBeNull();
    expect(await get(dr)).toMatchObject({ replicaNames: [] });
    expect(await slots(dr)).toEqual([]);
    expect((await done(instances.delete({ project, instance: dr }))).error).toBeNull();
  });

  test('instances.patch activationPolicy NEVER stops the server (connections refused), ALWAYS starts it again; labels are replaced; NEVER is refused for a read replica; operations.list lists the UPDATEs (no real Cloud SQL stop timings)', async () => {
    const solo = 'fence-solo';
    expect(
      (
        await done(
          instances.insert({
            project,
            body: {
              name: solo,
              region: 'europe-west1',
              rootPassword: password,
              settings: { tier: 'db-custom-1-3840' },
            },
          }),
        )
      ).error,
    ).toBeNull();
    expect((await get(solo)).settings?.activationPolicy).toBe('ALWAYS');
    const stopping = await done(
      instances.patch({
        project,
        instance: solo,
        body: { settings: { activationPolicy: 'NEVER', userLabels: { 'lifeboat-fence-stopped': 'always' } } },
      }),
    );
    expect(stopping).toMatchObject({ operationType: 'UPDATE', targetId: solo, error: null });
    expect((await get(solo)).settings).toMatchObject({
      activationPolicy: 'NEVER',
      userLabels: { 'lifeboat-fence-stopped': 'always' },
    });
    await expect(sql(solo, (c) => c.query('select 1'))).rejects.toThrow(/ECONNREFUSED/);
    expect(
      (
        await done(
          instances.patch({
            project,
            instance: solo,
            body: { settings: { activationPolicy: 'ALWAYS', userLabels: {} } },
          }),
        )
      ).error,
    ).toBeNull();
    expect((await get(solo)).settings?.activationPolicy).toBe('ALWAYS');
    expect((await get(solo)).settings?.userLabels).toEqual({});
    expect(await sql(solo, async (c) => (await c.query<{ one: number }>('select 1 as one')).rows[0]!.one)).toBe(1);
    const [listed] = await operations.list({ project, instance: solo });
    expect((listed.items ?? []).map((o) => o.operationType)).toEqual(['UPDATE', 'UPDATE', 'CREATE']);
    expect(
      (
        await done(
          instances.insert({
            project,
            body: {
              name: `${solo}-replica`,
              region: 'us-east1',
              masterInstanceName: solo,
              settings: { tier: 'db-custom-1-3840' },
            },
          }),
        )
      ).error,
    ).toBeNull();
    const refused = await httpError(
      instances.patch({ project, instance: `${solo}-replica`, body: { settings: { activationPolicy: 'NEVER' } } }),
    );
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toMatch(/NEVER is not supported for read replicas/);
  });
});
