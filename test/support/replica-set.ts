// A replication set of a test file's own, for the failover and failback runbooks: a home region's
// server with a seeded database, its streaming standby in a DR region, the plan that names them, and
// the canary writer going through the set's traffic proxy (so the ledger holds acknowledged writes).
// The stack's shared local-a/local-b regions are never touched.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { CanaryLedger, type LedgerEntry } from '../../activities/canary-ledger';
import { withClient } from '../../activities/pg/sql';
import { acceptsReadWrite } from '../../activities/pg/replication';
import { LocalCluster } from '../../activities/pg/cluster';
import { findPgBin } from '../../activities/pg/binaries';
import { seedDemo } from '../../scripts/dev/seed';
import { runTraffic, type Traffic } from '../../services/traffic/main';
import { createLogger } from '../../worker/logger';
import { drillInput, failbackInput, failoverInput, type LoadedPlan } from '../../worker/plan';
import { DatabaseAttr, ProviderAttr, RunbookAttr, TriggeredByAttr } from '../../workflows/search-attributes';
import type { Progress } from '../../workflows/steps';
import {
  RUNBOOK_TASK_QUEUE,
  type FailbackInput,
  type FailoverInput,
  type NodeRef,
  type ReplicaSetSpec,
  type RunbookReport,
  type TopologyView,
} from '../../workflows/types';
import { freePort } from './ports';
import { createDatabases, env, local, LogCapture, parsePlan } from './stack';
import { localPlanText } from './wf-local-plan';
import { runbookReport } from '../../workflows/runbook-failure';

export const label = (n: NodeRef | null | undefined): string => (n ? `${n.region}/${n.name}` : '(none)');
export const same = (a: NodeRef | null | undefined, b: NodeRef | null | undefined): boolean =>
  Boolean(a && b && a.region === b.region && a.name === b.name);
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ReplicaSetFixture {
  set: ReplicaSetSpec;
  /** The home region's server: the primary when the set is at home. */
  home: NodeRef;
  /** The streaming standby in the DR region. */
  standby: NodeRef;
  /** The database's name in the plan and in PostgreSQL (and the canary ledger's key). */
  database: string;
  plan: LoadedPlan;
  /** The plan on disk, for CLI commands and subprocess workers. */
  planFile: string;
  traffic: Traffic;
  /** What the traffic proxy and canary writer logged. */
  trafficLog: LogCapture;
  /** Stops the canary writer and both PostgreSQL servers. Safe to repeat. */
  close(): Promise<void>;
}

/** The set's plan: its database (the key is the database's name) on `home`, with a streaming standby in `dr`. */
export function planText(home: string, dr: string, database: string): string {
  return localPlanText([
    {
      key: database,
      database,
      home,
      dr,
      standby: true,
      objectives: { rpo: '1m', rto: '10m' },
      checks: [
        { name: 'orders exist', sql: 'select count(*) > 0 from orders' },
        {
          name: 'every order line has its order',
          sql: 'select not exists (select 1 from order_items i left join orders o on o.id = i.order_id where o.id is null)',
        },
      ],
    },
  ]);
}

/**
 * Creates (or finds, if this stack already has them) the home server, the seeded database, the
 * standby and the topology record, writes the plan file and starts the canary writer (every 100 ms).
 */
export async function createReplicaSet(options: {
  home: string;
  dr: string;
  database: string;
}): Promise<ReplicaSetFixture> {
  const { home: homeRegion, dr, database } = options;
  const p = local();
  const server = p.regionCluster(homeRegion);
  await server.ensureRunning({ name: homeRegion, port: await freePort(), disposable: false });
  await createDatabases(server.connection('postgres'), [database]);
  await withClient(server.connection(database), (c) => seedDemo(c, 0.05));
  const set: ReplicaSetSpec = {
    set: homeRegion,
    home: { name: homeRegion, provider: 'local' },
    dr: { name: dr, provider: 'local' },
  };
  await p.ensureReplicaSet(set, await freePort(), 'test');

  const text = planText(homeRegion, dr, database);
  const dir = join(env().home, 'plans');
  mkdirSync(dir, { recursive: true });
  const planFile = join(dir, `${homeRegion}.yaml`);
  writeFileSync(planFile, text);
  const plan = parsePlan(readFileSync(planFile, 'utf8'), planFile);

  const trafficLog = new LogCapture();
  const traffic = await runTraffic({
    env: env(),
    sets: [
      {
        set: homeRegion,
        port: await freePort(),
        databases: [database],
        credentialsFrom: { region: homeRegion, name: 'server' },
      },
    ],
    intervalMs: 100,
    logger: createLogger('info', trafficLog),
  });
  const home: NodeRef = { region: homeRegion, name: 'server' };
  const standby = p.standbyNodeFor(set);
  let closing: Promise<void> | undefined;
  return {
    set,
    home,
    standby,
    database,
    plan,
    planFile,
    traffic,
    trafficLog,
    close: () =>
      (closing ??= (async () => {
        await traffic.close();
        // The stack's teardown deletes LIFEBOAT_HOME: no server of ours may outlive it.
        for (const node of [home, standby])
          await local()
            .nodeCluster(node)
            .stop('immediate')
            .catch(() => undefined);
      })()),
  };
}

export function topologyOf(fx: ReplicaSetFixture): TopologyView {
  const record = local().topologies.read(fx.set.set);
  if (!record) throw new Error(`no topology record for ${fx.set.set}`);
  return record;
}

/** The set as it was made: primary home, standby streaming from it, nothing fenced. */
export function expectAtHome(fx: ReplicaSetFixture): TopologyView {
  const topology = topologyOf(fx);
  expect({ primary: topology.primary, standby: topology.standby, fenced: topology.fenced }).toEqual({
    primary: fx.home,
    standby: fx.standby,
    fenced: [],
  });
  return topology;
}

/** Passed, and if not, the report's own reason in the failure message. */
export function expectPassed(report: RunbookReport): void {
  expect({ outcome: report.outcome, reason: report.reason }).toEqual({ outcome: 'passed', reason: undefined });
  expect(report.checks.filter((c) => !c.ok)).toEqual([]);
}

/**
 * Never two writable primaries: of every node of the set, exactly the one the topology record names
 * as primary accepts writes (none while a switch holds traffic).
 */
export async function expectOneWritablePrimary(fx: ReplicaSetFixture): Promise<void> {
  const nodes = [fx.home, fx.standby];
  const statuses = await Promise.all(nodes.map((n) => local().nodeStatus(n)));
  const writable = nodes.filter((_, i) => statuses[i]!.writable).map(label);
  const primary = topologyOf(fx).primary;
  expect({ writable, details: nodes.map((n, i) => `${label(n)}: ${statuses[i]!.detail}`) }).toEqual({
    writable: primary ? [label(primary)] : [],
    details: expect.any(Array),
  });
}

/**
 * Would a new session on `node` take a write (can it open a READ WRITE transaction)? Asked directly, with a client of the test's own: the
 * fence ends every session on a primary, and this probe must survive being one of them.
 */
export async function acceptsWrites(node: NodeRef): Promise<boolean> {
  let conn;
  try {
    conn = await local().connectNode(node, 'postgres');
  } catch {
    return false; // mid-rebuild: no state, no server
  }
  const c = new PgClient({
    host: conn.host,
    port: conn.port,
    user: conn.user,
    password: conn.password,
    database: conn.database,
    connectionTimeoutMillis: 2_000,
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    // Tested, not read from a setting: any client can turn default_transaction_read_only off.
    return await acceptsReadWrite(c);
  } catch {
    return false; // down, starting, or its session was ended under us
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * Samples every node of the set in the background and records each moment at which more than one
 * of them would accept a write: the check between the after-each-runbook checks.
 */
export function watchWritable(
  fx: ReplicaSetFixture,
  everyMs = 200,
): { stop(): Promise<{ samples: number; violations: string[] }> } {
  const nodes = [fx.home, fx.standby];
  let stopped = false;
  let samples = 0;
  const violations: string[] = [];
  const loop = (async () => {
    while (!stopped) {
      const writable = await Promise.all(nodes.map(acceptsWrites));
      samples++;
      const both = nodes.filter((_, i) => writable[i]);
      if (both.length > 1)
        violations.push(`${new Date().toISOString()}: ${both.map(label).join(' and ')} both accept writes`);
      await sleep(everyMs);
    }
  })();
  let stopping: Promise<{ samples: number; violations: string[] }> | undefined;
  return {
    stop: () =>
      (stopping ??= (async () => {
        stopped = true;
        await loop;
        return { samples, violations };
      })()),
  };
}

/** The per-database lock the CLI uses as the workflow ID of every failover and failback. */
export const lockId = (database: string): string => `lifeboat/${database}/failover`;

/** Starts a failover or failback the way the CLI does: under the lock ID, with the search attributes. */
export function startTopologyRunbook(
  c: Client,
  runbook: 'failover' | 'failback',
  input: FailoverInput | FailbackInput,
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  return c.workflow.start(runbook, {
    taskQueue: RUNBOOK_TASK_QUEUE,
    workflowId: lockId(input.database),
    args: [input],
    typedSearchAttributes: [
      { key: DatabaseAttr, value: input.database },
      { key: RunbookAttr, value: runbook },
      { key: ProviderAttr, value: 'local' },
      { key: TriggeredByAttr, value: 'test' },
    ],
  });
}

/** Waits for a runbook's report; then, whatever it says, exactly one node of the set may accept writes. */
export async function topologyReport(fx: ReplicaSetFixture, handle: WorkflowHandle): Promise<RunbookReport> {
  const report = await runbookReport(handle);
  await expectOneWritablePrimary(fx);
  return report;
}

/** A pre-approved failover of the set's database, started as the CLI starts one, to its report (topologyReport). */
export async function runFailover(
  c: Client,
  fx: ReplicaSetFixture,
  mode: 'planned' | 'unplanned',
): Promise<RunbookReport> {
  const input = failoverInput(fx.plan, fx.database, { mode, preApproved: true, triggeredBy: 'test' });
  return topologyReport(fx, await startTopologyRunbook(c, 'failover', input));
}

/** A pre-approved failback of the set's database, started as the CLI starts one, to its report (topologyReport). */
export async function runFailback(
  c: Client,
  fx: ReplicaSetFixture,
  options: { discardDivergent?: boolean } = {},
): Promise<RunbookReport> {
  const input = failbackInput(fx.plan, fx.database, { preApproved: true, triggeredBy: 'test', ...options });
  return topologyReport(fx, await startTopologyRunbook(c, 'failback', input));
}

/** A drill of the set's database, started as the CLI starts one: its own ID, the search attributes a failover finds it by. */
export function startDrill(c: Client, fx: ReplicaSetFixture): Promise<WorkflowHandle> {
  return c.workflow.start('drill', {
    taskQueue: RUNBOOK_TASK_QUEUE,
    workflowId: `lifeboat/${fx.database}/drill/${new Date().toISOString()}`,
    args: [drillInput(fx.plan, fx.database, { fromLatestBackup: false, triggeredBy: 'test' })],
    typedSearchAttributes: [
      { key: DatabaseAttr, value: fx.database },
      { key: RunbookAttr, value: 'drill' },
      { key: ProviderAttr, value: 'local' },
      { key: TriggeredByAttr, value: 'test' },
    ],
  });
}

/**
 * An application transaction on the primary holding an exclusive lock on `orders`, so that a drill's
 * pg_dump waits for it: a backup in flight when a failover fences the primary. Call release() after.
 */
export async function holdOrdersLock(fx: ReplicaSetFixture): Promise<{ release(): Promise<void> }> {
  const locker = new PgClient(await local().connectNode(fx.home, fx.database));
  locker.on('error', () => undefined); // the fence ends this session
  await locker.connect();
  await locker.query('begin');
  await locker.query('lock table orders in access exclusive mode');
  return { release: () => locker.end().catch(() => undefined) };
}

/**
 * A drill of the set's database whose backup (pg_dump) waits behind an application's lock on the
 * primary (holdOrdersLock): its sessions are open there when a failover's fence ends every session.
 * release() cancels the drill if it still runs, then ends the lock's session.
 */
export async function drillWaitingOnLock(
  c: Client,
  fx: ReplicaSetFixture,
  timeoutMs = 60_000,
): Promise<{ drill: WorkflowHandle; release(): Promise<void> }> {
  const lock = await holdOrdersLock(fx);
  let drill: WorkflowHandle | undefined;
  const release = async () => {
    await drill?.cancel().catch(() => undefined);
    await lock.release();
  };
  try {
    drill = await startDrill(c, fx);
    await waitForStep(drill, 'drillProgress', 'backup', timeoutMs);
    await waitForLockWaiter(fx);
    return { drill, release };
  } catch (err) {
    await release();
    throw err;
  }
}

/** Waits until some session on the home server waits for a lock (the drill's backup, behind holdOrdersLock). */
export async function waitForLockWaiter(fx: ReplicaSetFixture, timeoutMs = 30_000): Promise<void> {
  await waitUntil(`a session of ${fx.database} on ${label(fx.home)} waits for a lock`, timeoutMs, async () =>
    withClient(await local().connectNode(fx.home, fx.database), async (c) => {
      const { rows } = await c.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where datname = $1 and wait_event_type = 'Lock'`,
        [fx.database],
      );
      return rows[0]!.n > 0;
    }),
  );
}

export async function waitUntil(what: string, timeoutMs: number, condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(100);
  }
}

/** Waits until the runbook's progress query shows `step` running. */
export async function waitForStep(
  handle: WorkflowHandle,
  query: string,
  step: string,
  timeoutMs = 60_000,
): Promise<Progress> {
  const deadline = Date.now() + timeoutMs;
  let last: Progress | null = null;
  for (;;) {
    last = (await handle.query<Progress>(query).catch(() => null)) ?? last;
    if (last?.running.includes(step)) return last;
    if (last?.steps.some((s) => s.name === step && s.status !== 'running'))
      throw new Error(`${handle.workflowId}: step "${step}" ended before it was seen running`);
    if (Date.now() > deadline)
      throw new Error(`${handle.workflowId} never reached step "${step}" (progress: ${JSON.stringify(last)})`);
    await sleep(50);
  }
}

/** The newest acknowledged canary of `database` written under `epoch` or later, waiting for one. */
export async function canaryAtEpoch(database: string, epoch: number, timeoutMs = 20_000): Promise<LedgerEntry> {
  const ledger = new CanaryLedger(env().home);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = ledger
      .entries(database)
      .filter((e) => e.epoch >= epoch)
      .at(-1);
    if (found) return found;
    if (Date.now() > deadline)
      throw new Error(
        `the canary writer acknowledged no write to ${database} at epoch ${epoch} or later within ${timeoutMs} ms`,
      );
    await sleep(100);
  }
}

/**
 * Which acknowledged canaries the node's lifeboat.canary table lacks. A canary is its id and its
 * commit time together: after an unplanned failover the new primary's sequence can hand out again
 * ids the dead primary had already used for writes that were lost.
 */
export async function missingCanaries(
  node: NodeRef,
  database: string,
  canaries: Array<{ id: number; writtenAt: string }>,
): Promise<Array<{ id: number; writtenAt: string }>> {
  const present = await withClient(await local().connectNode(node, database), async (c) => {
    const { rows } = await c.query<{ id: string; written_at: Date }>(
      'select id, written_at from lifeboat.canary where id = any($1::bigint[])',
      [canaries.map((e) => e.id)],
    );
    return new Set(rows.map((r) => `${r.id}@${r.written_at.toISOString()}`));
  });
  return canaries.filter((e) => !present.has(`${e.id}@${e.writtenAt}`)).map(({ id, writtenAt }) => ({ id, writtenAt }));
}

/** Waits until `standby` has replayed everything `primary` had written when this was called. */
export async function waitForStandbyToCatchUp(
  primary: NodeRef,
  standby: NodeRef,
  database: string,
  timeoutMs = 30_000,
): Promise<string> {
  const target = await withClient(
    await local().connectNode(primary, database),
    async (c) => (await c.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn,
  );
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reached = await withClient(
      await local().connectNode(standby, database),
      async (c) =>
        (
          await c.query<{ ok: boolean }>('select coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) as ok', [
            target,
          ])
        ).rows[0]!.ok,
    ).catch(() => false);
    if (reached) return target;
    if (Date.now() > deadline)
      throw new Error(
        `${label(standby)} did not replay ${label(primary)}'s WAL up to ${target} within ${timeoutMs} ms`,
      );
    await sleep(100);
  }
}

/**
 * Starts the preserved copy of a node on a free port (it can only start in recovery: it replays its
 * own WAL and stays read-only) and returns which of `canaries` it holds.
 */
export async function canariesInCopy(
  root: string,
  database: string,
  canaries: Array<{ id: number }>,
): Promise<number[]> {
  const copy = new LocalCluster(root, findPgBin(env().pgBin));
  copy.writeState({ ...copy.state(), port: await freePort() });
  await copy.start();
  try {
    for (let i = 0; ; i++) {
      const ids = await withClient(copy.connection(database), async (c) => {
        const { rows } = await c.query<{ id: string }>(
          'select id from lifeboat.canary where id = any($1::bigint[]) order by id',
          [canaries.map((e) => e.id)],
        );
        return rows.map((r) => Number(r.id));
      }).catch((err: Error) => (i < 50 ? null : Promise.reject(err)));
      if (ids) return ids;
      await sleep(200);
    }
  } finally {
    await copy.stop('immediate');
  }
}
