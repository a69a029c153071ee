// The traffic side of failover, against the test stack's real PostgreSQL regions: the proxy follows
// the topology record (and cuts what a new epoch leaves behind), refuses everyone mid-switch, and
// the canary writer records in the ledger exactly the writes a primary acknowledged.
// Every set and database here is fresh (t-<random>, traffic_<random>): the real local-a topology,
// the demo database and its ledger are never touched.
import { rmSync } from 'node:fs';
import { Client } from 'pg';
import { CanaryLedger } from '../../activities/canary-ledger';
import { withClient, type PgConnection } from '../../activities/pg/sql';
import { sameNode, TopologyStore, type NodeRef, type Topology } from '../../activities/topology';
import { createLogger } from '../../worker/logger';
import { startCanaryWriter, type CanaryWriter } from '../../services/traffic/canary-writer';
import { runTraffic, type Traffic } from '../../services/traffic/main';
import { startProxy, type ProxyOptions, type TrafficProxy } from '../../services/traffic/proxy';
import { freePort } from '../support/ports';
import { env, LogCapture, local } from '../support/stack';

const A: NodeRef = { region: 'local-a', name: 'server' };
const B: NodeRef = { region: 'local-b', name: 'server' };
const suffix = (): string => `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
const store = (): TopologyStore => new TopologyStore(env().home);
const portOf = (node: NodeRef): number => local().nodeCluster(node).state().port;
const resolve = (node: NodeRef) => ({ host: '127.0.0.1', port: portOf(node) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Everything a test opens, closed in afterAll whatever happened.
const sets: string[] = [];
const databases: string[] = [];
const proxies: TrafficProxy[] = [];
const clients: Client[] = [];
const writers: CanaryWriter[] = [];
const traffics: Traffic[] = [];

afterAll(async () => {
  await Promise.all(writers.map((w) => w.stop()));
  await Promise.all(traffics.map((t) => t.close()));
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  await Promise.all(proxies.map((p) => p.close()));
  if (databases.length) {
    await withClient(local().regionCluster('local-a').connection('postgres'), async (c) => {
      for (const db of databases) await c.query(`drop database if exists ${db} with (force)`);
    });
  }
  const ledger = new CanaryLedger(env().home);
  for (const db of databases) rmSync(ledger.path(db), { force: true });
  for (const set of sets) rmSync(store().path(set), { force: true });
});

function freshSet(): string {
  const set = `t-${suffix()}`;
  sets.push(set);
  return set;
}

async function freshDatabase(): Promise<string> {
  const db = `traffic_${suffix()}`;
  databases.push(db);
  await withClient(local().regionCluster('local-a').connection('postgres'), (c) => c.query(`create database ${db}`));
  return db;
}

/** Writes the set's next topology record, as a runbook would. */
function point(set: string, primary: NodeRef | null, previousEpoch: number): Topology {
  const standby = sameNode(primary, A) ? B : A;
  return store().write({ set, primary, standby, fenced: [], updatedBy: 'traffic test' }, previousEpoch);
}

async function proxyFor(set: string, overrides: Partial<ProxyOptions> = {}): Promise<TrafficProxy> {
  const proxy = await startProxy({
    set,
    port: 0,
    topology: store(),
    resolve,
    logger: createLogger('silent'),
    ...overrides,
  });
  proxies.push(proxy);
  return proxy;
}

/** The node's credentials (regions have their own passwords), the proxy's address. */
function via(proxy: TrafficProxy, node: NodeRef, database = 'postgres'): PgConnection {
  return { ...local().nodeCluster(node).connection(database), port: proxy.port };
}

async function connectVia(proxy: TrafficProxy, node: NodeRef): Promise<Client> {
  const conn = via(proxy, node);
  const client = new Client({ ...conn, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined); // a cut idle connection reports here; the tests look at queries
  clients.push(client);
  await client.connect();
  return client;
}

async function serverPort(client: Client): Promise<number> {
  const { rows } = await client.query<{ port: number }>("select current_setting('port')::int as port");
  return rows[0]!.port;
}

/** Resolves when the client's connection has ended; fails the test when it has not within ms. */
function endOf(client: Client, ms = 3_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the connection was not cut within ${ms} ms`)), ms);
    client.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function eventually(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

function logLines(capture: LogCapture): Array<Record<string, unknown>> {
  return capture.text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('traffic proxy', () => {
  test('a client reaches the primary the record names; a new epoch sends new clients to the new primary and cuts the old ones', async () => {
    expect(portOf(A)).not.toBe(portOf(B)); // else the test could not tell the nodes apart
    const set = freshSet();
    const capture = new LogCapture();
    const first = point(set, A, 0);
    const proxy = await proxyFor(set, { logger: createLogger('info', capture) });

    const before = await connectVia(proxy, A);
    expect(await serverPort(before)).toBe(portOf(A));
    expect(proxy.connections()).toBe(1);

    const cut = endOf(before);
    const second = point(set, B, first.epoch);
    await cut;
    await expect(before.query('select 1')).rejects.toThrow();

    const after = await connectVia(proxy, B);
    expect(await serverPort(after)).toBe(portOf(B));
    // Connections of the current epoch are left alone by later polls.
    await sleep(400);
    expect(await serverPort(after)).toBe(portOf(B));
    expect(proxy.connections()).toBe(1);

    const change = logLines(capture).find((l) => l.to === second.epoch);
    expect(change).toMatchObject({
      level: 30,
      component: 'traffic-proxy',
      set,
      from: first.epoch,
      to: second.epoch,
      primary: 'local-b/server',
      cut: 1,
    });
  });

  test('with no record, or no primary (a switch in progress), new connections are refused and open ones are cut', async () => {
    const set = freshSet();
    const proxy = await proxyFor(set);
    await expect(connectVia(proxy, A)).rejects.toThrow();

    const first = point(set, A, 0);
    const open = await connectVia(proxy, A); // the record is re-read on connect: no poll to wait for
    expect(await serverPort(open)).toBe(portOf(A));

    const cut = endOf(open);
    const switching = point(set, null, first.epoch);
    await cut;
    await expect(connectVia(proxy, A)).rejects.toThrow();
    await expect(connectVia(proxy, B)).rejects.toThrow();
    await eventually('refused connections are gone', () => proxy.connections() === 0);

    point(set, A, switching.epoch);
    const again = await connectVia(proxy, A);
    expect(await serverPort(again)).toBe(portOf(A));
  });

  test('a primary that does not accept connections closes the client instead of leaving it hanging', async () => {
    const set = freshSet();
    const nothing = await freePort();
    point(set, A, 0);
    const proxy = await proxyFor(set, { resolve: () => ({ host: '127.0.0.1', port: nothing }) });
    const started = Date.now();
    await expect(connectVia(proxy, A)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(3_000);
    await eventually('the failed pair is gone', () => proxy.connections() === 0);
  });
});

describe('canary writer', () => {
  test('the ledger holds exactly the writes the primary acknowledged, with their ids and epochs; nothing while the proxy refuses', async () => {
    const set = freshSet();
    const db = await freshDatabase();
    const first = point(set, A, 0);
    const proxy = await proxyFor(set);
    const ledger = new CanaryLedger(env().home);
    const capture = new LogCapture();
    const writer = startCanaryWriter({
      set,
      database: db,
      intervalMs: 50,
      connect: () => via(proxy, A, db),
      ledger,
      topology: store(),
      logger: createLogger('info', capture),
    });
    writers.push(writer);
    const direct = local().regionCluster('local-a').connection(db);
    const rowCount = () =>
      withClient(direct, async (c) =>
        Number((await c.query<{ n: string }>('select count(*) as n from lifeboat.canary')).rows[0]!.n),
      );

    await eventually('three canaries written', () => writer.written() >= 3);
    expect(ledger.entries(db).length).toBe(writer.written());

    const switching = point(set, null, first.epoch);
    await eventually('the proxy cut the writer', () => proxy.connections() === 0);
    await sleep(200); // a write acknowledged just before the switch is appended right after its ack
    const atSwitch = {
      ledger: ledger.entries(db).length,
      written: writer.written(),
      failed: writer.failed(),
      rows: await rowCount(),
    };
    await sleep(700);
    expect(writer.failed()).toBeGreaterThan(atSwitch.failed + 3); // it kept trying and was refused
    expect(writer.written()).toBe(atSwitch.written);
    expect(ledger.entries(db).length).toBe(atSwitch.ledger);
    expect(await rowCount()).toBe(atSwitch.rows);

    const back = point(set, A, switching.epoch);
    await eventually('writes resumed', () => writer.written() >= atSwitch.written + 3);
    await writer.stop();

    const entries = ledger.entries(db);
    expect(entries.length).toBe(writer.written());
    expect(new Set(entries.map((e) => e.epoch))).toEqual(new Set([first.epoch, back.epoch]));
    expect(entries.every((e) => e.database === db)).toBe(true);
    const rows = await withClient(
      direct,
      async (c) => (await c.query<{ id: string; written_at: Date }>('select id, written_at from lifeboat.canary')).rows,
    );
    const inDb = new Map(rows.map((r) => [Number(r.id), r.written_at.toISOString()]));
    for (const e of entries) expect(inDb.get(e.id)).toBe(e.writtenAt);
    expect(new Set(entries.map((e) => e.id)).size).toBe(entries.length);

    // Failures are logged once when they start and once when they end, not on every attempt.
    const mine = logLines(capture).filter((l) => l.component === 'canary-writer');
    expect(mine.filter((l) => l.level === 40)).toHaveLength(1);
    expect(mine.filter((l) => String(l.msg).includes('resumed'))).toHaveLength(1);
  });

  test('a write the server refuses is retried every tick and never reaches the ledger', async () => {
    const set = freshSet();
    const db = await freshDatabase();
    point(set, A, 0);
    const proxy = await proxyFor(set);
    const ledger = new CanaryLedger(env().home);
    const writer = startCanaryWriter({
      set,
      database: db,
      intervalMs: 50,
      // Right password, wrong database: every write is refused by PostgreSQL itself.
      connect: () => via(proxy, A, `${db}_missing`),
      ledger,
      topology: store(),
      logger: createLogger('silent'),
      timeoutMs: 1_000,
    });
    writers.push(writer);
    await eventually('several attempts', () => writer.failed() >= 5);
    await writer.stop();
    expect(writer.written()).toBe(0);
    expect(ledger.entries(db)).toEqual([]);
  });
});

describe('runTraffic', () => {
  test('one proxy per set and a writer per database through it; close() stops both and leaves nothing global', async () => {
    const set = freshSet();
    const db = await freshDatabase();
    const first = point(set, A, 0);
    const port = await freePort();
    const signals = ['SIGINT', 'SIGTERM'].map((s) => process.listenerCount(s));
    const traffic = await runTraffic({
      env: env(),
      sets: [{ set, port, databases: [db], credentialsFrom: A }],
      intervalMs: 50,
      logger: createLogger('silent'),
    });
    traffics.push(traffic);
    expect(['SIGINT', 'SIGTERM'].map((s) => process.listenerCount(s))).toEqual(signals);

    await eventually('canaries through the proxy', () => (traffic.status()[0]?.writers[0]?.written ?? 0) >= 2);
    expect(traffic.status()[0]).toMatchObject({ set, port });
    expect(traffic.status()[0]!.connections).toBe(1); // the writer's one reused connection, through the proxy
    const entries = new CanaryLedger(env().home).entries(db);
    expect(entries.length).toBeGreaterThanOrEqual(2);
    expect(entries.every((e) => e.epoch === first.epoch)).toBe(true);

    const client = new Client({
      ...local().regionCluster('local-a').connection('postgres'),
      port,
      connectionTimeoutMillis: 5_000,
    });
    client.on('error', () => undefined);
    clients.push(client);
    await client.connect();
    expect(await serverPort(client)).toBe(portOf(A));

    await traffic.close();
    const written = new CanaryLedger(env().home).entries(db).length;
    await sleep(200);
    expect(new CanaryLedger(env().home).entries(db).length).toBe(written);
    await expect(client.query('select 1')).rejects.toThrow();
    const late = new Client({
      ...local().regionCluster('local-a').connection('postgres'),
      port,
      connectionTimeoutMillis: 2_000,
    });
    late.on('error', () => undefined);
    await expect(late.connect()).rejects.toThrow();
  });

  test('a database listed under two sets is refused at start: the ledger is keyed by database name', async () => {
    const [one, two] = [freshSet(), freshSet()];
    await expect(
      runTraffic({
        env: env(),
        sets: [
          { set: one, port: 0, databases: ['orders'], credentialsFrom: A },
          { set: two, port: 0, databases: ['orders'], credentialsFrom: B },
        ],
        logger: createLogger('silent'),
      }),
    ).rejects.toThrow(/database "orders" is listed twice/);
  });
});
