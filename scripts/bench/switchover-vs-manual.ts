// Benchmark: the RTO of a planned switchover run by Lifeboat next to the same fence + promote done
// by hand with psql and pg_ctl.
//
//   node dist/scripts/bench/switchover-vs-manual.js [--runs N] [--scale N] [--manual-promote pg_ctl|sql] [--drop]
//
//   --runs N            switchover pairs to time (default 3): one Lifeboat failover and one manual
//                       switchover each, the order alternating. Each run is printed, then the median
//                       (the headline) and the best (the cost without interference). 0: none.
//   --scale N           seed scale of the benchmark database (scripts/dev/seed.ts; default 1, ~60,000 rows)
//   --manual-promote M  how the manual side promotes: pg_ctl (pg_ctl promote -w, default) or sql (pg_promote())
//   --drop              remove the benchmark's replication set at the end: both clusters, their
//                       directories and its topology record (`--runs 0 --drop` only removes it)
//
// Needs a build (npm run build) and the dev stack; it runs `lifeboat dev up` when the stack is down.
//
// It never touches the demo database's replication set (local-a/local-b). It makes its own, and
// reuses it on later runs: regions bench-a (home server) and bench-b (DR, where the streaming
// standby standby-of-bench-a runs), database bench_shop seeded with the demo schema and data. The
// dev worker polls only the demo plan's region queues, so the benchmark writes a plan for its set
// and runs a worker for it (`cli.js worker -f <plan>`) for as long as it runs.
//
// Lifeboat's side goes through the real product, as a user would: `cli.js failover bench-shop
// --planned --yes --json` in a child process; its report's rtoSeconds is the figure, and
// `cli.js failback --yes --json` puts the set back (timed too, not compared). The manual side is
// scripts/bench/manual-switchover.sh; the set is put back after it with the product's own
// primitives (the provider's rebuildAsStandby, fence, waitForReplay and promote, as a failback does).
// Both sides start from the same state: the home server primary and writable, the standby streaming
// and caught up. Figures, not asserts: it exits 1 only when a side fails.
//
// Putting the set back needs one thing the product does not do (untimed, on both sides): a
// CHECKPOINT on a freshly promoted node before anything is rewound against it, else pg_rewind finds
// "no rewind required" and leaves a standby on the old timeline (see checkpoint()). A standby that
// does not stream after a failback is rebuilt, and the restore table says so.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { stringify as toYaml } from 'yaml';
import type { LocalCluster } from '../../activities/pg/cluster';
import { findPgBin } from '../../activities/pg/binaries';
import { serverOsUser } from '../../activities/pg/process';
import { quoteIdent, serverVersion, withClient } from '../../activities/pg/sql';
import type { LocalProvider } from '../../activities/providers/local';
import type { ActivityIo } from '../../activities/providers/provider';
import { nodeLabel, sameNode } from '../../activities/topology';
import { loadEnv, type LifeboatEnv } from '../../worker/env';
import { createLogger } from '../../worker/logger';
import { buildProviders } from '../../worker/main';
import { loadPlanFile } from '../../worker/plan';
import type { NodeRef, ReplicaSetSpec, RunbookReport, SqlCheck } from '../../workflows/types';
import { DEMO_DATABASE } from '../dev/stack';
import { seedDemo } from '../dev/seed';
import { cliPath, ensureStack, freePort, machineLines, median, phaseTable, type Phases, runbookPhases, runChild, say, sleep, table } from './common';

const HOME_REGION = 'bench-a';
const DR_REGION = 'bench-b';
const BENCH_DB = 'bench_shop';
/** Plan keys allow lowercase letters, digits and dashes only, so the key differs from the database. */
const PLAN_KEY = 'bench-shop';
/** The set is named after its home region, as the plan's failover input names it. */
const SET: ReplicaSetSpec = {
  set: HOME_REGION,
  home: { name: HOME_REGION, provider: 'local' },
  dr: { name: DR_REGION, provider: 'local' },
};
const HOME: NodeRef = { region: HOME_REGION, name: 'server' };
/** The table the manual side's one write goes to (manual-switchover.sh's default --write). */
const PROBE_TABLE = 'switchover_probe';
/** How long a standby may take to stream and catch up before a run (after a rebuild it replays first). */
const CATCH_UP_SECONDS = 120;
/**
 * How long a rebuilt standby gets to start streaming before it is taken for one that cannot: a
 * standby left on the old timeline (see checkpoint()) retries every 5 s and never streams.
 */
const STREAM_GRACE_SECONDS = 15;
const MIB = 1024 * 1024;

interface Options {
  runs: number;
  scale: number;
  manualPromote: 'pg_ctl' | 'sql';
  drop: boolean;
}

interface LifeboatRun {
  wallSeconds: number;
  report: RunbookReport;
  /** The failback that put the set back: not part of the comparison. */
  failback: {
    wallSeconds: number;
    report: RunbookReport;
    /** The failback passed but left the standby unable to stream: the benchmark rebuilt it. */
    standbyRebuilt: boolean;
    /** Checkpoint, failback and any rebuild, until the standby streams again. */
    restoreSeconds: number;
  };
}

interface ManualRun {
  /** The script's own clock: its first command to the committed write. */
  rtoSeconds: number;
  steps: Array<{ name: string; seconds: number }>;
  finalLsn: string;
  /** Putting the set back with the product's primitives: not part of the comparison. */
  restoreSeconds: number;
}

interface Pair {
  lifeboat: LifeboatRun;
  manual: ManualRun;
}

/** What every step needs: the environment, the provider and the set's two nodes. */
interface Bench {
  env: LifeboatEnv;
  provider: LocalProvider;
  standby: NodeRef;
  pgBin: string;
  planFile: string;
  /** For the provider calls an activity would make: no heartbeat to send, never cancelled, warnings to stderr. */
  io: ActivityIo;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options {
  const options: Options = { runs: 3, scale: 1, manualPromote: 'pg_ctl', drop: false };
  const number = (flag: string, raw: string | undefined, accept: (n: number) => boolean, expected: string): number => {
    const n = Number(raw);
    if (raw === undefined || raw.trim() === '' || !Number.isFinite(n) || !accept(n)) throw new UsageError(`${flag} ${raw ?? '(missing)'}: expected ${expected}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--runs') options.runs = number(a, argv[++i], (n) => Number.isInteger(n) && n >= 0, 'a whole number, 0 or more');
    else if (a === '--scale') options.scale = number(a, argv[++i], (n) => n > 0, 'a number greater than zero');
    else if (a === '--manual-promote') {
      const how = argv[++i];
      if (how !== 'pg_ctl' && how !== 'sql') throw new UsageError(`--manual-promote ${how ?? '(missing)'}: expected pg_ctl or sql`);
      options.manualPromote = how;
    } else if (a === '--drop') options.drop = true;
    else throw new UsageError(`unknown argument ${a}`);
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// The plan and its worker

/**
 * The bench set's plan: bench-shop on bench-a with a standby in bench-b. Its checks are the demo
 * plan's (the schema is the same), so the smoke tests after the promote do what the demo's would.
 */
function writePlan(env: LifeboatEnv, dir: string): { file: string; checks: SqlCheck[] } {
  const demo = loadPlanFile(join(env.projectRoot, 'scripts', 'dev', 'demo-plan.yaml')).plan.databases[DEMO_DATABASE];
  if (!demo) throw new Error(`the demo plan has no database ${DEMO_DATABASE} to take the checks from`);
  const plan = {
    regions: { [HOME_REGION]: { provider: 'local' }, [DR_REGION]: { provider: 'local' } },
    databases: {
      [PLAN_KEY]: {
        primary: { region: HOME_REGION, database: BENCH_DB },
        dr: { region: DR_REGION, standby: true },
        objectives: { rpo: '15m', rto: '30m' },
        checks: demo.checks,
      },
    },
  };
  const file = join(dir, 'bench-plan.yaml');
  writeFileSync(file, `# Written by scripts/bench/switchover-vs-manual.ts for one benchmark; deleted when it ends.\n${toYaml(plan)}`);
  return { file, checks: demo.checks };
}

interface BenchWorker {
  child: ChildProcess;
  log: string;
}

/** `lifeboat worker -f <plan>`: serves the bench regions' queues (and the shared runbook queue). */
async function startWorker(env: LifeboatEnv, planFile: string): Promise<BenchWorker> {
  const log = join(env.home, 'bench-switchover-worker.log');
  const out = openSync(log, 'w');
  const child = spawn(process.execPath, [cliPath(env), 'worker', '-f', planFile], { cwd: env.projectRoot, stdio: ['ignore', out, out] });
  closeSync(out);
  const deadline = Date.now() + 90_000;
  while (!readFileSync(log, 'utf8').includes('worker ready')) {
    if (child.exitCode !== null) throw new Error(`the bench worker exited with ${child.exitCode} before it was ready; see ${log}`);
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error(`the bench worker was not ready within 90s; see ${log}`);
    }
    await sleep(100);
  }
  say(`worker for ${HOME_REGION}/${DR_REGION} ready (pid ${child.pid}), log ${log}`);
  return { child, log };
}

/** SIGTERM lets the worker drain; one that does not stop within 30 s is killed. */
async function stopWorker(worker: BenchWorker): Promise<void> {
  const { child } = worker;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const stopped = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]);
  if (!stopped) {
    child.kill('SIGKILL');
    await exited;
  }
  say(`worker stopped (pid ${child.pid})`);
}

// ---------------------------------------------------------------------------------------------
// The bench replication set

/**
 * The home server (created on a free port the first time), the standby and the topology record
 * (LocalProvider.ensureReplicaSet), every node of the set running. Reused when they exist.
 */
async function ensureSet(provider: LocalProvider): Promise<void> {
  const home = provider.regionCluster(HOME_REGION);
  const created = !home.isInitialized();
  const state = await home.ensureRunning({ name: HOME_REGION, port: created ? await freePort() : home.state().port, disposable: false });
  say(`${nodeLabel(HOME)} ${created ? 'created' : 'reused'} on 127.0.0.1:${state.port}`);
  const existed = provider.topologies.read(SET.set) !== null;
  // The port is only used when the standby is made; the home server holds its own, so they differ.
  const topology = await provider.ensureReplicaSet(SET, await freePort(), 'scripts/bench/switchover-vs-manual.ts');
  for (const node of [topology.primary, topology.standby, ...topology.fenced]) {
    if (!node) continue;
    const cluster = provider.nodeCluster(node);
    if (cluster.isInitialized() && !(await cluster.isRunning())) await cluster.start();
  }
  const standby = provider.standbyNodeFor(SET);
  say(`${nodeLabel(standby)} ${existed ? 'reused' : 'created'}${provider.nodeCluster(standby).isInitialized() ? ` on 127.0.0.1:${provider.nodeCluster(standby).state().port}` : ''}`);
}

/**
 * Brings the set back to the starting state, whatever an interrupted earlier run left: the home
 * server primary and writable, the standby streaming from it, the topology record saying so.
 */
async function recoverSet(bench: Bench): Promise<void> {
  const { provider, standby } = bench;
  let topology = provider.topologies.read(SET.set)!;
  const startOver = `inspect it with \`lifeboat status ${PLAN_KEY} -f <plan>\`, or start over with --runs 0 --drop`;
  if (!topology.primary) throw new Error(`${SET.set} is mid-switch (its topology record has no primary, written by ${topology.updatedBy}); ${startOver}`);
  if (sameNode(topology.primary, standby)) {
    say(`an earlier run left ${nodeLabel(standby)} primary: failing back with Lifeboat`);
    await checkpoint(bench, standby);
    // The failback takes a home server that already looks like a standby as one; if it cannot
    // stream (an earlier failback rewound it against a stale timeline), its wait would never end.
    if ((await provider.nodeStatus(HOME)).inRecovery) await ensureStandbyOf(bench, standby, HOME);
    await runRunbook(bench.env, ['failback', PLAN_KEY, '-f', bench.planFile, '--yes', '--json']);
    topology = provider.topologies.read(SET.set)!;
  }
  if (!sameNode(topology.primary, HOME) || !sameNode(topology.standby, standby) || topology.fenced.length) {
    throw new Error(`${SET.set} is not in the starting shape (primary ${nodeLabel(topology.primary)}, standby ${nodeLabel(topology.standby)}, fenced ${topology.fenced.map(nodeLabel).join(', ') || 'none'}); ${startOver}`);
  }
  const [home, replica] = await Promise.all([provider.nodeStatus(HOME), provider.nodeStatus(standby)]);
  if (!home.reachable || !replica.reachable) throw new Error(`${nodeLabel(HOME)}: ${home.detail}; ${nodeLabel(standby)}: ${replica.detail}; ${startOver}`);
  if (replica.inRecovery && !home.inRecovery && !home.writable) {
    say(`an earlier manual run left ${nodeLabel(HOME)} fenced before the promote: lifting the fence`);
    await provider.unfence(HOME);
  } else if (!replica.inRecovery && !home.writable) {
    say(`an earlier manual run left ${nodeLabel(standby)} primary: switching back`);
    await switchBack(bench);
  }
  // Covers the rest: a standby promoted beside a writable home server, or one that does not stream.
  if (await ensureStandbyOf(bench, HOME, standby)) say(`rebuilt ${nodeLabel(standby)} as the standby of ${nodeLabel(HOME)}`);
}

/**
 * The bench database at the wanted seed scale, and the manual side's probe table. The scale is
 * recorded as the database's comment; a database seeded at another scale is made again.
 */
async function ensureDatabase(home: LocalCluster, scale: number): Promise<number> {
  const stamp = `seeded by scripts/bench/switchover-vs-manual.ts at scale ${scale}`;
  const fresh = await withClient(home.connection('postgres'), async (client) => {
    const { rows } = await client.query<{ comment: string | null }>(
      `select shobj_description(oid, 'pg_database') as comment from pg_database where datname = $1`,
      [BENCH_DB],
    );
    if (rows[0] && rows[0].comment === stamp) return false;
    if (rows[0]) say(`${BENCH_DB} was ${rows[0].comment ?? 'not seeded by this benchmark'}: making it again`);
    await client.query(`drop database if exists ${quoteIdent(BENCH_DB)} with (force)`);
    await client.query(`create database ${quoteIdent(BENCH_DB)}`);
    return true;
  });
  const started = Date.now();
  await withClient(home.connection(BENCH_DB), async (client) => {
    if (fresh) await seedDemo(client, scale);
    await client.query(`create table if not exists ${quoteIdent(PROBE_TABLE)} (id bigserial primary key, by text not null, at timestamptz not null default clock_timestamp())`);
  });
  const bytes = await withClient(home.connection('postgres'), async (client) => {
    // The stamp goes on last: a seed cut short is made again next time.
    if (fresh) await client.query(`comment on database ${quoteIdent(BENCH_DB)} is '${stamp.replace(/'/g, "''")}'`);
    const { rows } = await client.query<{ bytes: string }>('select pg_database_size($1) as bytes', [BENCH_DB]);
    return Number(rows[0]!.bytes);
  });
  say(`${BENCH_DB} ${fresh ? `seeded at scale ${scale} in ${((Date.now() - started) / 1000).toFixed(1)}s` : `reused (scale ${scale})`}: ${(bytes / MIB).toFixed(1)} MiB`);
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

async function waitCaughtUp(bench: Bench, primary: NodeRef, standby: NodeRef): Promise<void> {
  if (!(await caughtUpWithin(bench, primary, standby, CATCH_UP_SECONDS))) {
    const lag = await bench.provider.replicationLag(primary, standby).catch(() => null);
    throw new Error(`${nodeLabel(standby)} did not catch up with ${nodeLabel(primary)} within ${CATCH_UP_SECONDS}s (${lag ? `streaming ${lag.streaming}, lag ${lag.lagBytes} bytes` : 'lag unreadable'})`);
  }
}

/**
 * CHECKPOINT on a freshly promoted node, before anything is rewound against it. PostgreSQL writes
 * the new timeline into the control file only at the end-of-recovery checkpoint, which a promote
 * requests spread out (up to checkpoint_completion_target x checkpoint_timeout: minutes). Until it
 * ends, pg_rewind reads the old timeline from the source, answers "no rewind required", and the
 * node it was to rewind comes up as a standby on the old timeline that never streams. The
 * product's makeStandby does not do this (see the benchmark's report); the benchmark does, so that
 * its runs can follow each other.
 */
async function checkpoint(bench: Bench, node: NodeRef): Promise<void> {
  await withClient(bench.provider.nodeCluster(node).connection('postgres'), (client) => client.query('checkpoint'));
}

/**
 * Makes sure `node` streams from `primary`; if it does not within STREAM_GRACE_SECONDS, it is
 * rebuilt with the provider's own primitives. It is stopped cleanly and fenced first: rebuildAsStandby
 * answers "already" for a running node that is in recovery, streaming or not. Returns whether it
 * had to rebuild.
 */
async function ensureStandbyOf(bench: Bench, primary: NodeRef, node: NodeRef): Promise<boolean> {
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

/** Both sides start here: the record says home primary, the home server is writable, the standby caught up. */
async function assertStartingState(bench: Bench): Promise<void> {
  const { provider, standby } = bench;
  const topology = provider.topologies.read(SET.set);
  if (!topology || !sameNode(topology.primary, HOME) || !sameNode(topology.standby, standby) || topology.fenced.length) {
    throw new Error(`${SET.set} is not in its starting shape: ${JSON.stringify(topology)}`);
  }
  const home = await provider.nodeStatus(HOME);
  if (!home.writable || home.fenced) throw new Error(`${nodeLabel(HOME)} is not a writable primary: ${home.detail}${home.fenced ? ' (FENCED)' : ''}`);
  await waitCaughtUp(bench, HOME, standby);
}

/**
 * Puts the set back after a manual switchover, as a failback would, with the provider's own
 * primitives: rewind the old primary into a standby of the promoted one, switch the roles back
 * without losing a write (fence, wait for replay, promote), rewind the other into the standby
 * again, each rewind after a checkpoint on its source (see checkpoint()). The topology record was
 * never changed by the manual side, so it is right again after.
 */
async function switchBack(bench: Bench): Promise<void> {
  const { provider, standby, io } = bench;
  await checkpoint(bench, standby);
  await provider.rebuildAsStandby(HOME, standby, io);
  await waitCaughtUp(bench, standby, HOME);
  const fence = await provider.fence(standby, 'planned');
  if (!fence.confirmed || !fence.finalLsn) throw new Error(`could not fence ${nodeLabel(standby)} to switch back: ${fence.how}`);
  await provider.waitForReplay(HOME, fence.finalLsn, io);
  await provider.promote(HOME);
  await checkpoint(bench, HOME);
  await provider.rebuildAsStandby(standby, HOME, io);
  await waitCaughtUp(bench, HOME, standby);
}

async function dropSet(provider: LocalProvider, env: LifeboatEnv): Promise<void> {
  const standby = provider.standbyNodeFor(SET);
  for (const node of [standby, HOME]) {
    const cluster = provider.nodeCluster(node);
    // destroy() stops the server (immediate) and deletes its root; an unfinished one has no state to stop by.
    if (existsSync(cluster.root)) await cluster.destroy();
  }
  for (const region of [HOME_REGION, DR_REGION]) rmSync(join(env.home, 'regions', region), { recursive: true, force: true });
  rmSync(provider.topologies.path(SET.set), { force: true });
  say(`dropped the ${SET.set} set: ${nodeLabel(HOME)}, ${nodeLabel(standby)}, their region directories and the topology record`);
}

// ---------------------------------------------------------------------------------------------
// The two contenders

/** Runs a failover or failback through the CLI; anything but a passed report with an RTO is an error. */
async function runRunbook(env: LifeboatEnv, args: string[]): Promise<{ wallSeconds: number; report: RunbookReport }> {
  const result = await runChild(process.execPath, [cliPath(env), ...args], { cwd: env.projectRoot });
  let report: RunbookReport;
  try {
    report = JSON.parse(result.stdout) as RunbookReport;
  } catch {
    throw new Error(`\`lifeboat ${args[0]}\` exited with ${result.code} without a JSON report:\n${result.stderr.trim() || result.stdout.trim()}`);
  }
  if (report.outcome !== 'passed' || result.code !== 0 || report.rtoSeconds === null) {
    const failedSteps = (report.steps ?? []).filter((s) => s.status === 'failed').map((s) => `${s.name}: ${s.detail ?? ''}`);
    const failedChecks = (report.checks ?? []).filter((c) => !c.ok).map((c) => `check ${c.name}: ${c.detail}`);
    throw new Error(
      `the ${args[0]} did not pass (exit ${result.code}, outcome ${report.outcome}, rtoSeconds ${report.rtoSeconds}): ${report.reason ?? 'no reason given'}` +
        [...failedSteps, ...failedChecks].map((line) => `\n  ${line}`).join('') +
        (result.stderr.trim() ? `\n${result.stderr.trim()}` : ''),
    );
  }
  return { wallSeconds: result.seconds, report };
}

/**
 * The failover, then the failback that puts the set back. Two things the product does not do are
 * done around the failback (untimed; see checkpoint() and ensureStandbyOf()): a checkpoint on the
 * promoted standby first, else the failback rewinds the home server against a stale timeline and
 * then waits for it forever; and a rebuild of the standby after, when the failback's own last
 * rewind (right after it promoted the home server) left it on the old timeline.
 */
async function runLifeboat(bench: Bench): Promise<LifeboatRun> {
  const failover = await runRunbook(bench.env, ['failover', PLAN_KEY, '-f', bench.planFile, '--planned', '--yes', '--json']);
  const restoreStarted = Date.now();
  await checkpoint(bench, bench.standby);
  const failback = await runRunbook(bench.env, ['failback', PLAN_KEY, '-f', bench.planFile, '--yes', '--json']);
  const standbyRebuilt = await ensureStandbyOf(bench, HOME, bench.standby);
  return { ...failover, failback: { ...failback, standbyRebuilt, restoreSeconds: (Date.now() - restoreStarted) / 1000 } };
}

async function runManual(bench: Bench, promote: Options['manualPromote']): Promise<ManualRun> {
  const { env, provider, standby } = bench;
  const home = provider.nodeCluster(HOME);
  const replica = provider.nodeCluster(standby);
  const script = join(env.projectRoot, 'scripts', 'bench', 'manual-switchover.sh');
  const osUser = serverOsUser();
  const args = [
    script,
    '--db', BENCH_DB,
    '--host', '127.0.0.1',
    '--primary-port', String(home.state().port),
    '--standby-port', String(replica.state().port),
    '--primary-passfile', home.pgpassFile,
    '--standby-passfile', replica.pgpassFile,
    '--standby-datadir', replica.dataDir,
    '--promote', promote,
    ...(osUser ? ['--os-user', osUser.name] : []),
    '--bin', bench.pgBin,
  ];
  const result = await runChild('bash', args, { cwd: env.projectRoot });
  if (result.code !== 0) throw new Error(`manual-switchover.sh exited with ${result.code}:\n${result.stderr.trim()}`);
  const parsed = parseManualOutput(result.stdout);
  const restoreStarted = Date.now();
  await switchBack(bench);
  return { ...parsed, restoreSeconds: (Date.now() - restoreStarted) / 1000 };
}

/** manual-switchover.sh prints tab-separated `step`, `final_lsn` and `rto` lines; see its header. */
function parseManualOutput(stdout: string): Omit<ManualRun, 'restoreSeconds'> {
  const parsed: Omit<ManualRun, 'restoreSeconds'> = { rtoSeconds: NaN, steps: [], finalLsn: '' };
  for (const line of stdout.split('\n')) {
    const [kind, a, b] = line.split('\t');
    if (kind === 'step') parsed.steps.push({ name: a!, seconds: Number(b) });
    else if (kind === 'final_lsn') parsed.finalLsn = a!;
    else if (kind === 'rto') parsed.rtoSeconds = Number(a);
  }
  if (!Number.isFinite(parsed.rtoSeconds)) throw new Error(`manual-switchover.sh printed no rto line:\n${stdout}`);
  return parsed;
}

/**
 * One Lifeboat switchover and one manual switchover, each from the starting state and each putting
 * it back. The order alternates between runs so neither side always follows the other's rebuild.
 */
async function timePair(bench: Bench, options: Options, index: number): Promise<Pair> {
  const lifeboat = async () => {
    await assertStartingState(bench);
    say(`run ${index + 1}: lifeboat failover --planned (then failback)`);
    const run = await runLifeboat(bench);
    say(`run ${index + 1}: lifeboat passed in ${run.wallSeconds.toFixed(2)}s (rtoSeconds ${run.report.rtoSeconds!.toFixed(2)}); failback ${run.failback.wallSeconds.toFixed(2)}s`);
    return run;
  };
  const manual = async () => {
    await assertStartingState(bench);
    say(`run ${index + 1}: manual switchover (then switch back)`);
    const run = await runManual(bench, options.manualPromote);
    say(`run ${index + 1}: manual done, RTO ${run.rtoSeconds.toFixed(2)}s (fenced at ${run.finalLsn}); switched back in ${run.restoreSeconds.toFixed(2)}s`);
    return run;
  };
  if (index % 2 === 0) {
    const l = await lifeboat();
    return { lifeboat: l, manual: await manual() };
  }
  const m = await manual();
  return { lifeboat: await lifeboat(), manual: m };
}

// ---------------------------------------------------------------------------------------------
// Reporting

/** Per run, then the median (the headline) and the best; the ratio is Lifeboat's RTO over the manual one. */
function summaryTable(pairs: Pair[]): string {
  const row = (label: string, wall: number, rto: number, manual: number) => [label, wall.toFixed(2), rto.toFixed(2), manual.toFixed(2), (rto / manual).toFixed(1)];
  const rows = pairs.map((p, i) => row(`run ${i + 1}`, p.lifeboat.wallSeconds, p.lifeboat.report.rtoSeconds!, p.manual.rtoSeconds));
  if (pairs.length > 1) {
    const min = (values: number[]) => Math.min(...values);
    for (const [label, by] of [['median', median], ['best', min]] as const) {
      rows.push(row(label, by(pairs.map((p) => p.lifeboat.wallSeconds)), by(pairs.map((p) => p.lifeboat.report.rtoSeconds!)), by(pairs.map((p) => p.manual.rtoSeconds))));
    }
  }
  return table(['', 'lifeboat wall s', 'lifeboat rtoSeconds', 'manual RTO s', 'ratio'], rows);
}

/** Putting the set back after each side: shown for what it costs, not compared. */
function restoreTable(pairs: Pair[]): string {
  const rows = pairs.map((p, i) => [
    `run ${i + 1}`,
    p.lifeboat.failback.wallSeconds.toFixed(2),
    p.lifeboat.failback.report.rtoSeconds!.toFixed(2),
    p.lifeboat.failback.standbyRebuilt ? 'yes' : 'no',
    p.lifeboat.failback.restoreSeconds.toFixed(2),
    p.manual.restoreSeconds.toFixed(2),
  ]);
  return table(['restore (not compared)', 'failback wall s', 'failback rtoSeconds', 'standby rebuilt after', 'lifeboat restore s', 'manual switch back s'], rows);
}

function manualPhases(run: ManualRun): Phases {
  const inSteps = run.steps.reduce((sum, s) => sum + s.seconds, 0);
  return [...run.steps.map((s): [string, number] => [s.name, s.seconds]), ['(bash, between steps)', run.rtoSeconds - inSteps], ['RTO', run.rtoSeconds]];
}

/** What the two RTOs cover: the manual side is the brief's four steps, Lifeboat's is a runbook. */
function scopeNotes(checks: SqlCheck[], promote: Options['manualPromote']): string[] {
  return [
    'What is measured:',
    `  manual RTO           manual-switchover.sh's own clock, first psql to the committed write: fence (read-only,`,
    `                       sessions ended, final LSN) -> poll replay every 0.1 s -> ${promote === 'pg_ctl' ? 'pg_ctl promote -w' : 'select pg_promote()'} -> one insert.`,
    '                       Nothing checked beyond the replay wait, nothing recorded, no client repointed.',
    '  lifeboat rtoSeconds  the report\'s figure: the workflow\'s start to the RPO check on the new primary. Beyond the',
    '                       manual steps it covers: cancel running drills of the database (a visibility query);',
    '                       read the topology record; preflight (both nodes\' roles, the standby\'s lag and slot',
    '                       against the RPO objective); a canary write on the primary; the approval record',
    '                       (pre-approved by --yes); the fence confirmed from a new session, with a FENCED marker;',
    '                       hold traffic (topology record: no primary); repoint traffic (record: the new primary);',
    `                       smoke tests (a canary write and the plan's ${checks.length} checks, read-only); the RPO check (the`,
    '                       start canary is on the new primary); and for each of its steps a Temporal round trip',
    '                       (an activity task on the region\'s queue, a workflow task to schedule the next step).',
    '  lifeboat wall        adds the CLI\'s start-up, the workflow start and fetching the result.',
  ];
}

// ---------------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  const loadBefore = loadavg();
  const env = loadEnv();
  const provider = buildProviders(env).local;
  if (options.runs === 0) {
    if (options.drop) await dropSet(provider, env);
    else say('--runs 0: nothing to do (add --drop to remove the bench set)');
    return 0;
  }
  await ensureStack(env);
  const pgBin = findPgBin(env.pgBin);
  const planDir = mkdtempSync(join(tmpdir(), 'lifeboat-bench-'));
  const { file: planFile, checks } = writePlan(env, planDir);
  const io: ActivityIo = {
    heartbeat: () => undefined,
    signal: new AbortController().signal,
    logger: createLogger('warn', pino.destination(2)),
  };
  const bench: Bench = { env, provider, standby: provider.standbyNodeFor(SET), pgBin, planFile, io };

  let worker: BenchWorker | null = null;
  const pairs: Pair[] = [];
  let dbBytes = 0;
  let pgVersion = '';
  try {
    await ensureSet(provider);
    // Read now: --drop removes the set before the table is printed.
    pgVersion = (await withClient(provider.nodeCluster(HOME).connection('postgres'), (client) => serverVersion(client))).version;
    worker = await startWorker(env, planFile);
    await recoverSet(bench);
    dbBytes = await ensureDatabase(provider.nodeCluster(HOME), options.scale);
    for (let i = 0; i < options.runs; i++) pairs.push(await timePair(bench, options, i));
  } finally {
    if (worker) await stopWorker(worker);
    rmSync(planDir, { recursive: true, force: true });
    if (options.drop) await dropSet(provider, env);
    else say(`kept the ${SET.set} set (${nodeLabel(HOME)}, ${nodeLabel(bench.standby)}) for the next run (--drop removes it)`);
  }

  const out = [
    '',
    ...machineLines(pgVersion, pgBin, loadBefore),
    `database    ${BENCH_DB} (${(dbBytes / MIB).toFixed(1)} MiB, seed scale ${options.scale}) on ${nodeLabel(HOME)}, ` +
      `streaming to ${nodeLabel(bench.standby)} through a physical slot; planned switchover, RPO 0 on both sides`,
    '',
    summaryTable(pairs),
    '',
    phaseTable('lifeboat failover step (seconds)', pairs.map((p) => runbookPhases(p.lifeboat.report, p.lifeboat.wallSeconds))),
    '',
    phaseTable('manual step (seconds)', pairs.map((p) => manualPhases(p.manual))),
    '',
    restoreTable(pairs),
    '',
    ...scopeNotes(checks, options.manualPromote),
    '',
    `failover workflows: ${pairs.map((p) => `${p.lifeboat.report.workflowId} ${p.lifeboat.report.runId}`).join(', ')}`,
    '',
  ];
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\nusage: node dist/scripts/bench/switchover-vs-manual.js [--runs N] [--scale N] [--manual-promote pg_ctl|sql] [--drop]\n`);
      process.exit(2);
    }
    process.stderr.write(`bench: FAILED: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
