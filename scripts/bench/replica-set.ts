// A replication set of a benchmark's own, for the benchmarks that move a primary role
// (switchover-vs-manual.ts, unplanned-failover.ts): a home region's server with a seeded database,
// its streaming standby in a DR region, the topology record, a plan naming them and a worker serving
// their queues. Each benchmark names its own regions, so they never touch each other's set or the
// demo database's (local-a/local-b). The set is kept between runs (seeding and a standby take longer
// than a run); `dropSet` removes it. Both benchmarks take the same options (parseSetOptions) and
// the same main (runSetBenchmark): a benchmark names its set, its Lifeboat side, its manual side and
// its own tables (a SetBenchmark); the rounds, putting the set back and the report are shared.
//
// Putting the set back after a manual side uses the product's own primitives (the local
// provider's rebuildAsStandby, fence, waitForReplay, promote: what a failback does), plus one thing
// the product does not do: a CHECKPOINT on a freshly promoted node before anything is rewound
// against it (see checkpoint()).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { findPgBin } from '../../activities/pg/binaries';
import type { LocalCluster } from '../../activities/pg/cluster';
import { serverOsUser } from '../../activities/pg/process';
import { quoteIdent, serverVersion, withClient } from '../../activities/pg/sql';
import type { LocalProvider } from '../../activities/providers/local';
import type { ActivityIo } from '../../activities/providers/provider';
import { nodeLabel, sameNode } from '../../activities/topology';
import { loadEnv, type LifeboatEnv } from '../../worker/env';
import { buildProviders } from '../../worker/main';
import { loadPlanFile } from '../../worker/plan';
import type { NodeRef, ReplicaSetSpec, RunbookReport, SqlCheck } from '../../workflows/types';
import { stopProcess } from '../../test/support/cli';
import { DEMO_DATABASE } from '../dev/stack';
import { seedDemo } from '../dev/seed';
import {
  announced,
  benchIo,
  cliPath,
  ensureStack,
  type Flags,
  freePort,
  historyLengths,
  inAlternatingOrder,
  machineLines,
  median,
  MIB,
  numberOption,
  parseFlags,
  phaseTable,
  type Phases,
  positiveOption,
  runbookPhases,
  runRunbook,
  say,
  sleep,
  table,
  UsageError,
} from './common';

/** How long a standby may take to stream and catch up before a run (after a rebuild it replays first). */
const CATCH_UP_SECONDS = 120;
/**
 * How long a rebuilt standby gets to start streaming before it is taken for one that cannot: a
 * standby left on the old timeline (see checkpoint()) retries every 5 s and never streams.
 */
const STREAM_GRACE_SECONDS = 15;

/** Which set: its regions, its database, and who made it (for the topology record and the plan's header). */
export interface SetNames {
  homeRegion: string;
  drRegion: string;
  /** The database's name in PostgreSQL. */
  database: string;
  /** Its key in the plan: lowercase letters, digits and dashes only. */
  planKey: string;
  /** The benchmark's own path, e.g. scripts/bench/unplanned-failover.ts. */
  by: string;
  /** A table for the benchmark's own writes, made in the database (replicated to the standby). */
  probeTable: string;
}

/**
 * A set's names from its two regions (home, then DR), its database, its probe table and the
 * benchmark's path. Plan keys allow lowercase letters, digits and dashes only: the key is the
 * database's name with dashes for underscores.
 */
function setNames(names: {
  regions: [home: string, dr: string];
  database: string;
  probeTable: string;
  by: string;
}): SetNames {
  const [homeRegion, drRegion] = names.regions;
  const { database, probeTable, by } = names;
  return { homeRegion, drRegion, database, planKey: database.replaceAll('_', '-'), by, probeTable };
}

/** The set of each set benchmark, side by side: no two may share a region or a database. */
export const BENCH_SETS = {
  switchover: setNames({
    regions: ['bench-a', 'bench-b'],
    database: 'bench_shop',
    // The table the manual side's one write goes to (manual-switchover.sh's default --write).
    probeTable: 'switchover_probe',
    by: 'scripts/bench/switchover-vs-manual.ts',
  }),
  unplanned: setNames({
    regions: ['bench-ua', 'bench-ub'],
    database: 'bench_unplanned',
    // Both the probe's writes and the manual side's one write go here (manual-failover.sh's default --write).
    probeTable: 'failover_probe',
    by: 'scripts/bench/unplanned-failover.ts',
  }),
};

/** What every step needs: the environment, the provider, the set and its two nodes. */
export interface Bench {
  env: LifeboatEnv;
  provider: LocalProvider;
  names: SetNames;
  set: ReplicaSetSpec;
  home: NodeRef;
  standby: NodeRef;
  pgBin: string;
  planFile: string;
  /** For the provider calls an activity would make: no heartbeat to send, never cancelled, warnings to stderr. */
  io: ActivityIo;
}

/** The set is named after its home region, as the plan's failover input names it. */
export function setSpec(names: SetNames): ReplicaSetSpec {
  return {
    set: names.homeRegion,
    home: { name: names.homeRegion, provider: 'local' },
    dr: { name: names.drRegion, provider: 'local' },
  };
}

export function homeNode(names: SetNames): NodeRef {
  return { region: names.homeRegion, name: 'server' };
}

// ---------------------------------------------------------------------------------------------
// The plan and its worker

/**
 * The set's plan: the database on the home region with a standby in the DR region. Its checks are
 * the demo plan's (the schema is the same), so the smoke tests after a promote do what the demo's would.
 */
export function writePlan(env: LifeboatEnv, dir: string, names: SetNames): { file: string; checks: SqlCheck[] } {
  const demo = loadPlanFile(join(env.projectRoot, 'scripts', 'dev', 'demo-plan.yaml')).plan.databases[DEMO_DATABASE];
  if (!demo) throw new Error(`the demo plan has no database ${DEMO_DATABASE} to take the checks from`);
  const plan = {
    regions: { [names.homeRegion]: { provider: 'local' }, [names.drRegion]: { provider: 'local' } },
    databases: {
      [names.planKey]: {
        primary: { region: names.homeRegion, database: names.database },
        dr: { region: names.drRegion, standby: true },
        objectives: { rpo: '15m', rto: '30m' },
        checks: demo.checks,
      },
    },
  };
  const file = join(dir, 'bench-plan.yaml');
  writeFileSync(file, `# Written by ${names.by} for one benchmark; deleted when it ends.\n${toYaml(plan)}`);
  return { file, checks: demo.checks };
}

export interface BenchWorker {
  child: ChildProcess;
  log: string;
}

/** `lifeboat worker -f <plan>`: serves the set's region queues (and the shared runbook queue). */
export async function startWorker(env: LifeboatEnv, planFile: string, names: SetNames): Promise<BenchWorker> {
  const log = join(env.home, `bench-${names.homeRegion}-worker.log`);
  const out = openSync(log, 'w');
  const child = spawn(process.execPath, [cliPath(env), 'worker', '-f', planFile], {
    cwd: env.projectRoot,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  const deadline = Date.now() + 90_000;
  while (!readFileSync(log, 'utf8').includes('worker ready')) {
    if (child.exitCode !== null)
      throw new Error(`the bench worker exited with ${child.exitCode} before it was ready; see ${log}`);
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error(`the bench worker was not ready within 90s; see ${log}`);
    }
    await sleep(100);
  }
  say(`worker for ${names.homeRegion}/${names.drRegion} ready (pid ${child.pid}), log ${log}`);
  return { child, log };
}

/** SIGTERM lets the worker drain; one that does not stop within 30 s is killed. */
export async function stopWorker(worker: BenchWorker): Promise<void> {
  await stopProcess(worker.child, 30_000);
  say(`worker stopped (pid ${worker.child.pid})`);
}

// ---------------------------------------------------------------------------------------------
// The set

/**
 * The home server (created on a free port the first time), the standby and the topology record
 * (LocalProvider.ensureReplicaSet), every node of the set running. Reused when they exist.
 */
export async function ensureSet(provider: LocalProvider, names: SetNames): Promise<void> {
  const home = homeNode(names);
  const set = setSpec(names);
  const cluster = provider.regionCluster(names.homeRegion);
  const created = !cluster.isInitialized();
  const state = await cluster.ensureRunning({
    name: names.homeRegion,
    port: created ? await freePort() : cluster.state().port,
    disposable: false,
  });
  say(`${nodeLabel(home)} ${created ? 'created' : 'reused'} on 127.0.0.1:${state.port}`);
  const existed = provider.topologies.read(set.set) !== null;
  // The port is only used when the standby is made; the home server holds its own, so they differ.
  const topology = await provider.ensureReplicaSet(set, await freePort(), names.by);
  for (const node of [topology.primary, topology.standby, ...topology.fenced]) {
    if (!node) continue;
    const c = provider.nodeCluster(node);
    if (c.isInitialized() && !(await c.isRunning())) await c.start();
  }
  const standby = provider.standbyNodeFor(set);
  const standbyCluster = provider.nodeCluster(standby);
  say(
    `${nodeLabel(standby)} ${existed ? 'reused' : 'created'}${standbyCluster.isInitialized() ? ` on 127.0.0.1:${standbyCluster.state().port}` : ''}`,
  );
}

/**
 * Brings the set back to the starting state, whatever an interrupted earlier run left: the home
 * server primary and writable, the standby streaming from it, the topology record saying so.
 */
export async function recoverSet(bench: Bench): Promise<void> {
  const { provider, standby, home, set, names } = bench;
  let topology = provider.topologies.read(set.set)!;
  const startOver = `inspect it with \`lifeboat status ${names.planKey} -f <plan>\`, or start over with --runs 0 --drop`;
  if (!topology.primary)
    throw new Error(
      `${set.set} is mid-switch (its topology record has no primary, written by ${topology.updatedBy}); ${startOver}`,
    );
  if (sameNode(topology.primary, standby)) {
    say(`an earlier run left ${nodeLabel(standby)} primary: failing back with Lifeboat`);
    await checkpoint(bench, standby);
    // The failback takes a home server that already looks like a standby as one; if it cannot
    // stream (an earlier failback rewound it against a stale timeline), its wait would never end.
    if ((await provider.nodeStatus(home)).inRecovery) await ensureStandbyOf(bench, standby, home);
    await runRunbook(bench.env, ['failback', names.planKey, '-f', bench.planFile, '--yes', '--json']);
    topology = provider.topologies.read(set.set)!;
  }
  if (!sameNode(topology.primary, home) || !sameNode(topology.standby, standby) || topology.fenced.length) {
    throw new Error(
      `${set.set} is not in the starting shape (primary ${nodeLabel(topology.primary)}, standby ${nodeLabel(topology.standby)}, fenced ${topology.fenced.map(nodeLabel).join(', ') || 'none'}); ${startOver}`,
    );
  }
  const [homeStatus, replica] = await Promise.all([provider.nodeStatus(home), provider.nodeStatus(standby)]);
  if (!homeStatus.reachable || !replica.reachable)
    throw new Error(`${nodeLabel(home)}: ${homeStatus.detail}; ${nodeLabel(standby)}: ${replica.detail}; ${startOver}`);
  if (replica.inRecovery && !homeStatus.inRecovery && !homeStatus.writable) {
    say(`an earlier manual run left ${nodeLabel(home)} fenced before the promote: lifting the fence`);
    await provider.unfence(home);
  } else if (!replica.inRecovery && !homeStatus.writable) {
    say(`an earlier manual run left ${nodeLabel(standby)} primary: switching back`);
    await switchBack(bench);
  }
  // Covers the rest: a standby promoted beside a writable home server, or one that does not stream.
  if (await ensureStandbyOf(bench, home, standby))
    say(`rebuilt ${nodeLabel(standby)} as the standby of ${nodeLabel(home)}`);
}

/**
 * The set's database at the wanted seed scale, and the benchmark's probe table. The scale is
 * recorded as the database's comment; a database seeded at another scale is made again.
 */
export async function ensureDatabase(home: LocalCluster, names: SetNames, scale: number): Promise<number> {
  const stamp = `seeded by ${names.by} at scale ${scale}`;
  const db = names.database;
  const fresh = await withClient(home.connection('postgres'), async (client) => {
    const { rows } = await client.query<{ comment: string | null }>(
      `select shobj_description(oid, 'pg_database') as comment from pg_database where datname = $1`,
      [db],
    );
    if (rows[0] && rows[0].comment === stamp) return false;
    if (rows[0]) say(`${db} was ${rows[0].comment ?? 'not seeded by this benchmark'}: making it again`);
    await client.query(`drop database if exists ${quoteIdent(db)} with (force)`);
    await client.query(`create database ${quoteIdent(db)}`);
    return true;
  });
  const started = Date.now();
  await withClient(home.connection(db), async (client) => {
    if (fresh) await seedDemo(client, scale);
    await client.query(
      `create table if not exists ${quoteIdent(names.probeTable)} (id bigserial primary key, by text not null, at timestamptz not null default clock_timestamp())`,
    );
  });
  const bytes = await withClient(home.connection('postgres'), async (client) => {
    // The stamp goes on last: a seed cut short is made again next time.
    if (fresh) await client.query(`comment on database ${quoteIdent(db)} is '${stamp.replace(/'/g, "''")}'`);
    const { rows } = await client.query<{ bytes: string }>('select pg_database_size($1) as bytes', [db]);
    return Number(rows[0]!.bytes);
  });
  say(
    `${db} ${fresh ? `seeded at scale ${scale} in ${((Date.now() - started) / 1000).toFixed(1)}s` : `reused (scale ${scale})`}: ${(bytes / MIB).toFixed(1)} MiB`,
  );
  return bytes;
}

/** Polls until `standby` streams from `primary` with nothing left to replay; false when `seconds` pass first. */
async function caughtUpWithin(bench: Bench, primary: NodeRef, standby: NodeRef, seconds: number): Promise<boolean> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const lag = await bench.provider.replicationLag(primary, standby).catch(() => null);
    if (lag?.streaming && lag.lagBytes === 0) return true;
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
}

export async function waitCaughtUp(bench: Bench, primary: NodeRef, standby: NodeRef): Promise<void> {
  if (!(await caughtUpWithin(bench, primary, standby, CATCH_UP_SECONDS))) {
    const lag = await bench.provider.replicationLag(primary, standby).catch(() => null);
    throw new Error(
      `${nodeLabel(standby)} did not catch up with ${nodeLabel(primary)} within ${CATCH_UP_SECONDS}s (${lag ? `streaming ${lag.streaming}, lag ${lag.lagBytes} bytes` : 'lag unreadable'})`,
    );
  }
}

/**
 * CHECKPOINT on a freshly promoted node, before anything is rewound against it. PostgreSQL writes
 * the new timeline into the control file only at the end-of-recovery checkpoint, which a promote
 * requests spread out (up to checkpoint_completion_target x checkpoint_timeout: minutes). Until it
 * ends, pg_rewind reads the old timeline from the source, answers "no rewind required", and the
 * node it was to rewind comes up as a standby on the old timeline that never streams. The
 * product's makeStandby now checkpoints its source first; the benchmark also does it before a
 * failback, so that its runs can follow each other whatever the product version.
 */
export async function checkpoint(bench: Bench, node: NodeRef): Promise<void> {
  await withClient(bench.provider.nodeCluster(node).connection('postgres'), (client) => client.query('checkpoint'));
}

/**
 * Makes sure `node` streams from `primary`; if it does not within STREAM_GRACE_SECONDS, it is
 * rebuilt with the provider's own primitives. It is stopped cleanly and fenced first: rebuildAsStandby
 * answers "already" for a running node that is in recovery, streaming or not. Returns whether it
 * had to rebuild.
 */
export async function ensureStandbyOf(bench: Bench, primary: NodeRef, node: NodeRef): Promise<boolean> {
  if (await caughtUpWithin(bench, primary, node, STREAM_GRACE_SECONDS)) return false;
  const { provider, io } = bench;
  say(`${nodeLabel(node)} does not stream from ${nodeLabel(primary)}: rebuilding it`);
  await checkpoint(bench, primary);
  await provider.nodeCluster(node).stop('fast');
  await provider.fence(node, 'unplanned');
  await provider.rebuildAsStandby(node, primary, io);
  await waitCaughtUp(bench, primary, node);
  return true;
}

/** Every run starts here: the record says home primary, the home server is writable, the standby caught up. */
export async function assertStartingState(bench: Bench): Promise<void> {
  const { provider, standby, home, set } = bench;
  const topology = provider.topologies.read(set.set);
  if (
    !topology ||
    !sameNode(topology.primary, home) ||
    !sameNode(topology.standby, standby) ||
    topology.fenced.length
  ) {
    throw new Error(`${set.set} is not in its starting shape: ${JSON.stringify(topology)}`);
  }
  const status = await provider.nodeStatus(home);
  if (!status.writable || status.fenced)
    throw new Error(
      `${nodeLabel(home)} is not a writable primary: ${status.detail}${status.fenced ? ' (FENCED)' : ''}`,
    );
  await waitCaughtUp(bench, home, standby);
}

/**
 * Puts the set back after a switch done by hand (the topology record never changed), as a failback
 * would, with the provider's own primitives: rewind the old primary (running and fenced, or killed)
 * into a standby of the promoted one, switch the roles back without losing a write (fence, wait for
 * replay, promote), rewind the other into the standby again, each rewind after a checkpoint on its
 * source (see checkpoint()).
 */
export async function switchBack(bench: Bench): Promise<void> {
  const { provider, standby, home, io } = bench;
  await checkpoint(bench, standby);
  await provider.rebuildAsStandby(home, standby, io);
  await waitCaughtUp(bench, standby, home);
  const fence = await provider.fence(standby, 'planned');
  if (!fence.confirmed || !fence.finalLsn)
    throw new Error(`could not fence ${nodeLabel(standby)} to switch back: ${fence.how}`);
  await provider.waitForReplay(home, fence.finalLsn, io);
  await provider.promote(home);
  await checkpoint(bench, home);
  await provider.rebuildAsStandby(standby, home, io);
  await waitCaughtUp(bench, home, standby);
}

export interface Failback {
  wallSeconds: number;
  report: RunbookReport;
  /** The failback passed but left the standby unable to stream: the benchmark rebuilt it. */
  standbyRebuilt: boolean;
}

/**
 * After a Lifeboat failover: a checkpoint on the promoted standby (see checkpoint()), the failback
 * through the CLI, and a rebuild of the standby when the failback's own last rewind left it unable
 * to stream. Returns the failback's figures.
 */
export async function failBack(bench: Bench): Promise<Failback> {
  await checkpoint(bench, bench.standby);
  const failback = await runRunbook(bench.env, [
    'failback',
    bench.names.planKey,
    '-f',
    bench.planFile,
    '--yes',
    '--json',
  ]);
  const standbyRebuilt = await ensureStandbyOf(bench, bench.home, bench.standby);
  return { ...failback, standbyRebuilt };
}

export async function dropSet(provider: LocalProvider, env: LifeboatEnv, names: SetNames): Promise<void> {
  const set = setSpec(names);
  const standby = provider.standbyNodeFor(set);
  const home = homeNode(names);
  for (const node of [standby, home]) {
    const cluster = provider.nodeCluster(node);
    // destroy() stops the server (immediate) and deletes its root; an unfinished one has no state to stop by.
    if (existsSync(cluster.root)) await cluster.destroy();
  }
  for (const region of [names.homeRegion, names.drRegion])
    rmSync(join(env.home, 'regions', region), { recursive: true, force: true });
  rmSync(provider.topologies.path(set.set), { force: true });
  say(
    `dropped the ${set.set} set: ${nodeLabel(home)}, ${nodeLabel(standby)}, their region directories and the topology record`,
  );
}

// ---------------------------------------------------------------------------------------------
// What both set benchmarks do around their rounds

/** How the manual side promotes: `pg_ctl promote -w`, or `select pg_promote()`. */
export type ManualPromote = 'pg_ctl' | 'sql';

export interface SetOptions {
  runs: number;
  scale: number;
  manualPromote: ManualPromote;
  drop: boolean;
}

/** --runs, --scale, --manual-promote and --drop, and `more`: a benchmark's own flags. */
export function parseSetOptions(argv: string[], more: Flags = {}): SetOptions {
  const options: SetOptions = { runs: 3, scale: 1, manualPromote: 'pg_ctl', drop: false };
  parseFlags(argv, {
    '--runs': (value, flag) =>
      (options.runs = numberOption(flag, value(), (n) => Number.isInteger(n) && n >= 0, 'a whole number, 0 or more')),
    '--scale': (value, flag) => (options.scale = positiveOption(flag, value(), false)),
    '--manual-promote': (value) => {
      const how = value();
      if (how !== 'pg_ctl' && how !== 'sql')
        throw new UsageError(`--manual-promote ${how ?? '(missing)'}: expected pg_ctl or sql`);
      options.manualPromote = how;
    },
    '--drop': () => (options.drop = true),
    ...more,
  });
  return options;
}

/** What onBenchSet hands back for the tables: the set, what it was measured on, and the rounds' results. */
export interface SetRun<T> {
  bench: Bench;
  /** The plan's checks (the demo plan's). */
  checks: SqlCheck[];
  pgVersion: string;
  dbBytes: number;
  measured: T;
}

/**
 * The set, its plan and its worker around `measure`: the stack up, the set made or reused and put
 * back in its starting state, the database seeded; afterwards the worker stopped, the plan removed,
 * and the set dropped (--drop) or kept. With --runs 0 it only drops (or says so) and returns null.
 */
export async function onBenchSet<T>(
  names: SetNames,
  options: SetOptions,
  measure: (bench: Bench) => Promise<T>,
): Promise<SetRun<T> | null> {
  const env = loadEnv();
  const provider = buildProviders(env).local;
  if (options.runs === 0) {
    if (options.drop) await dropSet(provider, env, names);
    else say('--runs 0: nothing to do (add --drop to remove the bench set)');
    return null;
  }
  await ensureStack(env);
  const pgBin = findPgBin(env.pgBin);
  const planDir = mkdtempSync(join(tmpdir(), 'lifeboat-bench-'));
  const { file: planFile, checks } = writePlan(env, planDir, names);
  const set = setSpec(names);
  const bench: Bench = {
    env,
    provider,
    names,
    set,
    home: homeNode(names),
    standby: provider.standbyNodeFor(set),
    pgBin,
    planFile,
    io: benchIo(),
  };

  let worker: BenchWorker | null = null;
  try {
    await ensureSet(provider, names);
    // Read now: --drop removes the set before the table is printed.
    const pgVersion = (
      await withClient(provider.nodeCluster(bench.home).connection('postgres'), (client) => serverVersion(client))
    ).version;
    worker = await startWorker(env, planFile, names);
    await recoverSet(bench);
    const dbBytes = await ensureDatabase(provider.nodeCluster(bench.home), names, options.scale);
    return { bench, checks, pgVersion, dbBytes, measured: await measure(bench) };
  } finally {
    if (worker) await stopWorker(worker);
    rmSync(planDir, { recursive: true, force: true });
    if (options.drop) await dropSet(provider, env, names);
    else
      say(
        `kept the ${set.set} set (${nodeLabel(bench.home)}, ${nodeLabel(bench.standby)}) for the next run (--drop removes it)`,
      );
  }
}

/** What a Lifeboat side of a set benchmark measured: the failover's report and wall time. */
export interface LifeboatSide {
  wallSeconds: number;
  report: RunbookReport;
}

/** One side of a round: what it does (said on stderr before it starts), the run, and what it says when done. */
export interface SetSide<T, R = T> {
  what: string;
  run: () => Promise<T>;
  done: (result: R) => string;
}

/** A side's figures, and how long putting the set back after it took (checkpoint, failback or switch back, any rebuild): not compared. */
export type PutBack<T> = T & { restoreSeconds: number };

/** One round: each side's figures with the set put back after it, after Lifeboat's by its failback. */
export interface SetPair<L extends LifeboatSide, M> {
  lifeboat: PutBack<L> & { failback: Failback };
  manual: PutBack<M>;
}

/** The parts of a set benchmark's output that are its own (see setReport). */
export interface ReportParts<M> {
  /** The rest of the database line: how the set is shaped for this benchmark. */
  shape: string;
  summary: string;
  manualPhases: (manual: M) => Phases;
  notes: string[];
}

/** What makes a set benchmark its own: its set, its two sides and its tables; runSetBenchmark does the rest. */
export interface SetBenchmark<L extends LifeboatSide, M, O extends SetOptions = SetOptions> {
  names: SetNames;
  /** What its failovers are called in the history table. */
  failover: string;
  lifeboat: (bench: Bench, options: O) => SetSide<L, SetPair<L, M>['lifeboat']>;
  manual: (bench: Bench, options: O) => SetSide<M, PutBack<M>>;
  report: (run: SetRun<SetRounds<L, M>>, options: O) => ReportParts<M>;
}

export interface SetRounds<L extends LifeboatSide, M> {
  pairs: Array<SetPair<L, M>>;
  /** The history table of Lifeboat's failovers and failbacks. */
  histories: string;
}

/**
 * A set benchmark's main: --runs rounds of its two sides on its set (see onBenchSet), each side from
 * the starting state and the set put back after it (a failback after Lifeboat's, switchBack after
 * the manual one), the order alternating between rounds so that neither side always follows the
 * other's restore; then its report on stdout (none with --runs 0).
 */
export async function runSetBenchmark<O extends SetOptions, L extends LifeboatSide, M>(
  benchmark: SetBenchmark<L, M, O>,
  options: O,
): Promise<number> {
  const loadBefore = loadavg();
  const secondsSince = (started: number) => (Date.now() - started) / 1000;
  const run = await onBenchSet(benchmark.names, options, async (bench): Promise<SetRounds<L, M>> => {
    const failedBack = async (result: L): Promise<SetPair<L, M>['lifeboat']> => {
      const started = Date.now();
      const failback = await failBack(bench);
      return { ...result, failback, restoreSeconds: secondsSince(started) };
    };
    const switchedBack = async (result: M): Promise<PutBack<M>> => {
      const started = Date.now();
      await switchBack(bench);
      return { ...result, restoreSeconds: secondsSince(started) };
    };
    const fromStartingState = <T, R>(round: string, side: SetSide<T, R>, putBack: (result: T) => Promise<R>) => {
      const announce = announced(
        `${round}: ${side.what}`,
        async () => putBack(await side.run()),
        (result) => `${round}: ${side.done(result)}`,
      );
      return async () => {
        await assertStartingState(bench);
        return announce();
      };
    };
    const pairs: Array<SetPair<L, M>> = [];
    for (let i = 0; i < options.runs; i++) {
      const [lifeboat, manual] = await inAlternatingOrder<[SetPair<L, M>['lifeboat'], PutBack<M>]>(i, [
        fromStartingState(`run ${i + 1}`, benchmark.lifeboat(bench, options), failedBack),
        fromStartingState(`run ${i + 1}`, benchmark.manual(bench, options), switchedBack),
      ]);
      pairs.push({ lifeboat, manual });
    }
    const histories = await historyTable([
      [benchmark.failover, pairs.map((p) => p.lifeboat.report)],
      ['failback', pairs.map((p) => p.lifeboat.failback.report)],
    ]);
    return { pairs, histories };
  });
  if (run) process.stdout.write(setReport(run, options, loadBefore, benchmark.report(run, options)));
  return 0;
}

/** Putting the set back after each side: shown for what it costs, not compared. */
function restoreTable(pairs: Array<SetPair<LifeboatSide, unknown>>): string {
  const rows = pairs.map((p, i) => [
    `run ${i + 1}`,
    p.lifeboat.failback.wallSeconds.toFixed(2),
    p.lifeboat.failback.report.rtoSeconds!.toFixed(2),
    p.lifeboat.failback.standbyRebuilt ? 'yes' : 'no',
    p.lifeboat.restoreSeconds.toFixed(2),
    p.manual.restoreSeconds.toFixed(2),
  ]);
  return table(
    [
      'restore (not compared)',
      'failback wall s',
      'failback rtoSeconds',
      'standby rebuilt after',
      'lifeboat restore s',
      'manual switch back s',
    ],
    rows,
  );
}

/**
 * A set benchmark's output: the machine, the database (`shape`: the rest of its line), the summary,
 * each side's steps, the restore table, the history, the notes and the failovers' workflow IDs.
 */
function setReport<L extends LifeboatSide, M>(
  run: SetRun<SetRounds<L, M>>,
  options: SetOptions,
  loadBefore: number[],
  parts: ReportParts<M>,
): string {
  const {
    bench,
    dbBytes,
    measured: { pairs, histories },
  } = run;
  return (
    [
      '',
      ...machineLines(run.pgVersion, bench.pgBin, loadBefore),
      `database    ${bench.names.database} (${(dbBytes / MIB).toFixed(1)} MiB, seed scale ${options.scale}) on ${nodeLabel(bench.home)}, ` +
        parts.shape,
      '',
      parts.summary,
      '',
      phaseTable(
        'lifeboat failover step (seconds)',
        pairs.map((p) => runbookPhases(p.lifeboat.report, p.lifeboat.wallSeconds)),
      ),
      '',
      phaseTable(
        'manual step (seconds)',
        pairs.map((p) => parts.manualPhases(p.manual)),
      ),
      '',
      restoreTable(pairs),
      '',
      histories,
      '',
      ...parts.notes,
      '',
      `failover workflows: ${pairs.map((p) => `${p.lifeboat.report.workflowId} ${p.lifeboat.report.runId}`).join(', ')}`,
      '',
    ].join('\n') + '\n'
  );
}

/**
 * The arguments both manual scripts take for the standby they promote (manual-switchover.sh adds
 * the primary's): the database, its port, passfile and data directory, how to promote, and as whom.
 */
export function manualStandbyArgs(bench: Bench, promote: ManualPromote): string[] {
  const replica = bench.provider.nodeCluster(bench.standby);
  const osUser = serverOsUser();
  return [
    '--db',
    bench.names.database,
    '--host',
    '127.0.0.1',
    '--standby-port',
    String(replica.state().port),
    '--standby-passfile',
    replica.pgpassFile,
    '--standby-datadir',
    replica.dataDir,
    '--promote',
    promote,
    ...(osUser ? ['--os-user', osUser.name] : []),
    '--bin',
    bench.pgBin,
  ];
}

/** History events (and bytes) of every Lifeboat run, per runbook: the README's "Workflow history" figures. */
async function historyTable(runbooks: Array<[runbook: string, reports: RunbookReport[]]>): Promise<string> {
  const rows: string[][] = [];
  for (const [runbook, reports] of runbooks) {
    const sizes = await historyLengths(reports.map((r) => ({ workflowId: r.workflowId, runId: r.runId })));
    const events = sizes.map((s) => s.events);
    rows.push([
      runbook,
      String(sizes.length),
      events.length ? `${Math.min(...events)} / ${median(events)} / ${Math.max(...events)}` : '-',
      sizes.length ? (median(sizes.map((s) => s.bytes)) / 1024).toFixed(1) : '-',
    ]);
  }
  return table(['workflow history', 'runs', 'events min / median / max', 'KiB median'], rows);
}
