// Benchmark: the RTO of an unplanned failover, from the moment the primary dies to the moment the
// standby takes a write, run by Lifeboat and done by hand with pg_ctl (the raw-tool floor).
//
//   npm run bench:unplanned -- [--runs N] [--scale N] [--probe-ms N] [--manual-promote pg_ctl|sql] [--drop]
//
//   --runs N            failover pairs to time (default 3): one Lifeboat failover and one manual promote
//                       each, the order alternating. Each run is printed, then the median (the
//                       headline) and the best. 0: none.
//   --scale N           seed scale of the benchmark database (scripts/dev/seed.ts; default 1, ~60,000 rows)
//   --probe-ms N        how often the write probe tries its INSERT on the standby (default 50)
//   --manual-promote M  how the manual side promotes: pg_ctl (pg_ctl promote -w, default) or sql (pg_promote())
//   --drop              remove the benchmark's replication set at the end: both clusters, their
//                       directories and its topology record (`--runs 0 --drop` only removes it)
//
// Needs a build (npm run build) and the dev stack; it runs `lifeboat dev up` when the stack is down.
//
// Its own replication set (scripts/bench/replica-set.ts): regions bench-ua (home server) and bench-ub
// (the streaming standby standby-of-bench-ua), database bench_unplanned seeded with the demo schema,
// a plan for them and a worker serving both regions (`cli.js worker -f <plan>`) while it runs. The
// demo database and the switchover benchmark's set are never touched.
//
// Each side, from the same starting state (home primary and writable, standby streaming, caught up):
//   1. a write probe connects to the standby's port and tries an INSERT every --probe-ms, retrying
//      on every error (read-only, refused, reset): an independent client, not Lifeboat's own check;
//   2. the home server's postmaster is sent SIGKILL (the clock starts);
//   3. at once: Lifeboat: `cli.js failover bench-unplanned --unplanned --yes --json` in a child
//      process; by hand: scripts/bench/manual-failover.sh (pg_ctl promote -w, then one psql INSERT);
//   4. measured: kill to the probe's first committed INSERT (the headline, the same clock for both
//      sides), kill to the child's exit, and for Lifeboat its report's rtoSeconds (from the
//      workflow's start: it leaves out the CLI's start-up);
//   5. the set is put back, untimed: after Lifeboat, `lifeboat failback --yes`; after the manual side,
//      the provider's own primitives (rewind the killed server into a standby, switch back).
// Figures, not asserts: it exits 1 only when a side fails.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as PgClient } from 'pg';
import pino from 'pino';
import { findPgBin } from '../../activities/pg/binaries';
import { serverOsUser } from '../../activities/pg/process';
import { quoteIdent, serverVersion, withClient, type PgConnection } from '../../activities/pg/sql';
import type { ActivityIo } from '../../activities/providers/provider';
import { nodeLabel } from '../../activities/topology';
import { loadEnv } from '../../worker/env';
import { createLogger } from '../../worker/logger';
import { buildProviders } from '../../worker/main';
import type { RunbookReport } from '../../workflows/types';
import { cliPath, ensureStack, historyLengths, machineLines, median, phaseTable, type Phases, runbookPhases, runChild, say, sleep, table } from './common';
import {
  assertStartingState,
  type Bench,
  type BenchWorker,
  dropSet,
  ensureDatabase,
  ensureSet,
  failBack,
  homeNode,
  passedReport,
  recoverSet,
  type SetNames,
  setSpec,
  startWorker,
  stopWorker,
  switchBack,
  writePlan,
} from './replica-set';

const NAMES: SetNames = {
  homeRegion: 'bench-ua',
  drRegion: 'bench-ub',
  database: 'bench_unplanned',
  // Plan keys allow lowercase letters, digits and dashes only, so the key differs from the database.
  planKey: 'bench-unplanned',
  by: 'scripts/bench/unplanned-failover.ts',
  // Both the probe's writes and the manual side's one write go here (manual-failover.sh's default --write).
  probeTable: 'failover_probe',
};
/** A side that has not made the standby writable by then has failed. */
const PROBE_TIMEOUT_SECONDS = 120;
const MIB = 1024 * 1024;

interface Options {
  runs: number;
  scale: number;
  probeMs: number;
  manualPromote: 'pg_ctl' | 'sql';
  drop: boolean;
}

/** What both sides measure on the same clock, from the SIGKILL. */
interface Side {
  /** Kill to the probe's first committed INSERT on the standby. */
  killToWritable: number;
  /** Kill to the exit of the child that did the failover (the CLI, or the script). */
  killToExit: number;
  /** Failed probe attempts between the kill and the first committed one. */
  probeFailures: number;
  /** Kill to the dead postmaster leaving the process table (its parent reaped it). */
  reapedAfter: number;
  /** Putting the set back, after: not part of the comparison. */
  restoreSeconds: number;
}

interface LifeboatRun extends Side {
  /** The CLI's own wall time, spawn to exit. */
  wallSeconds: number;
  report: RunbookReport;
  failback: { report: RunbookReport; wallSeconds: number; standbyRebuilt: boolean };
}

interface ManualRun extends Side {
  /** The script's own clock: its first command to the committed write. */
  scriptSeconds: number;
  steps: Array<{ name: string; seconds: number }>;
}

interface Pair {
  lifeboat: LifeboatRun;
  manual: ManualRun;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options {
  const options: Options = { runs: 3, scale: 1, probeMs: 50, manualPromote: 'pg_ctl', drop: false };
  const number = (flag: string, raw: string | undefined, accept: (n: number) => boolean, expected: string): number => {
    const n = Number(raw);
    if (raw === undefined || raw.trim() === '' || !Number.isFinite(n) || !accept(n)) throw new UsageError(`${flag} ${raw ?? '(missing)'}: expected ${expected}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--runs') options.runs = number(a, argv[++i], (n) => Number.isInteger(n) && n >= 0, 'a whole number, 0 or more');
    else if (a === '--scale') options.scale = number(a, argv[++i], (n) => n > 0, 'a number greater than zero');
    else if (a === '--probe-ms') options.probeMs = number(a, argv[++i], (n) => Number.isInteger(n) && n >= 1 && n <= 10_000, 'a whole number of milliseconds, 1 to 10000');
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
// The write probe

/**
 * An application that keeps trying to write to the standby's address: one pg connection, an INSERT
 * every `everyMs`, a new connection after any connection error. Before the promote each INSERT fails
 * (read-only); the first that commits after arm() is the moment the database took a write again.
 */
class WriteProbe {
  private stopped = false;
  private armedAt: bigint | null = null;
  private firstWriteAt: bigint | null = null;
  private failuresSinceArmed = 0;
  private lastError = '';
  private readonly loop: Promise<void>;

  constructor(
    private readonly conn: PgConnection,
    private readonly table: string,
    private readonly everyMs: number,
  ) {
    this.loop = this.run();
  }

  /** Counting starts here: call it right before the kill, with the kill's clock. */
  arm(at: bigint): void {
    this.armedAt = at;
    this.firstWriteAt = null;
    this.failuresSinceArmed = 0;
  }

  /** Seconds from arm() to the first committed INSERT; throws after `timeoutSeconds`. */
  async firstWrite(timeoutSeconds: number): Promise<{ seconds: number; failures: number }> {
    const deadline = Date.now() + timeoutSeconds * 1000;
    while (this.firstWriteAt === null) {
      if (Date.now() > deadline) throw new Error(`the standby took no write within ${timeoutSeconds}s of the kill (last error: ${this.lastError || 'none'})`);
      await sleep(10);
    }
    return { seconds: Number(this.firstWriteAt - this.armedAt!) / 1e9, failures: this.failuresSinceArmed };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    let client: PgClient | null = null;
    const sql = `insert into ${quoteIdent(this.table)} (by) values ('write probe')`;
    while (!this.stopped) {
      const started = Date.now();
      try {
        if (!client) {
          const c = new PgClient({ ...this.conn, connectionTimeoutMillis: 1_000, query_timeout: 2_000 });
          c.on('error', () => undefined); // a reset connection surfaces at the next query
          client = c;
          await c.connect();
        }
        await client.query(sql);
        if (this.armedAt !== null && this.firstWriteAt === null) this.firstWriteAt = process.hrtime.bigint();
      } catch (err) {
        this.lastError = (err as Error).message;
        if (this.armedAt !== null) this.failuresSinceArmed++;
        // Read-only (25006) keeps the session; anything else may have broken it: start a new one.
        if ((err as { code?: string }).code !== '25006') {
          await client?.end().catch(() => undefined);
          client = null;
        }
      }
      await sleep(Math.max(0, this.everyMs - (Date.now() - started)));
    }
    await client?.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// The two contenders

/** SIGKILL to the home server's postmaster: no shutdown, no checkpoint, as a crashed machine would. */
function killPrimary(bench: Bench): { pid: number; at: bigint } {
  const pidFile = join(bench.provider.nodeCluster(bench.home).dataDir, 'postmaster.pid');
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${pidFile} does not start with a process id`);
  const at = process.hrtime.bigint();
  process.kill(pid, 'SIGKILL');
  return { pid, at };
}

/**
 * Waits until the killed postmaster is gone from the process table, and says how long that took
 * after the kill. Until its parent reaps it, a dead process stays a zombie that kill(pid, 0) (and so
 * `pg_ctl status`) takes for a live server: the set is put back only once it is gone. The postmaster's
 * parent is PID 1 (pg_ctl daemonizes it), and whether that reaps at once depends on the machine.
 */
async function waitUntilReaped(pid: number, killedAt: bigint): Promise<number> {
  const deadline = Date.now() + 60_000;
  while (existsSync(`/proc/${pid}`)) {
    if (Date.now() > deadline) throw new Error(`the killed postmaster (pid ${pid}) is still in the process table after 60s: its parent does not reap it, so \`pg_ctl status\` takes it for running`);
    await sleep(10);
  }
  return secondsSince(killedAt);
}

const secondsSince = (at: bigint) => Number(process.hrtime.bigint() - at) / 1e9;

/** Probe on, kill, `failover` runs: the kill's clock for everything. Then the failback puts the set back. */
async function runLifeboat(bench: Bench, options: Options): Promise<LifeboatRun> {
  const probe = await startProbe(bench, options);
  try {
    const killed = killPrimary(bench);
    probe.arm(killed.at);
    const result = await runChild(process.execPath, [cliPath(bench.env), 'failover', NAMES.planKey, '-f', bench.planFile, '--unplanned', '--yes', '--json'], {
      cwd: bench.env.projectRoot,
    });
    const killToExit = secondsSince(killed.at);
    const report = passedReport('failover', result);
    const writable = await probe.firstWrite(PROBE_TIMEOUT_SECONDS);
    await probe.stop();
    const reapedAfter = await waitUntilReaped(killed.pid, killed.at);
    const restoreStarted = Date.now();
    const failback = await failBack(bench);
    return {
      killToWritable: writable.seconds,
      killToExit,
      reapedAfter,
      probeFailures: writable.failures,
      wallSeconds: result.seconds,
      report,
      failback,
      restoreSeconds: (Date.now() - restoreStarted) / 1000,
    };
  } finally {
    await probe.stop();
  }
}

async function runManual(bench: Bench, options: Options): Promise<ManualRun> {
  const { env, provider, standby } = bench;
  const replica = provider.nodeCluster(standby);
  const osUser = serverOsUser();
  const args = [
    join(env.projectRoot, 'scripts', 'bench', 'manual-failover.sh'),
    '--db', NAMES.database,
    '--host', '127.0.0.1',
    '--standby-port', String(replica.state().port),
    '--standby-passfile', replica.pgpassFile,
    '--standby-datadir', replica.dataDir,
    '--promote', options.manualPromote,
    ...(osUser ? ['--os-user', osUser.name] : []),
    '--bin', bench.pgBin,
  ];
  const probe = await startProbe(bench, options);
  try {
    const killed = killPrimary(bench);
    probe.arm(killed.at);
    const result = await runChild('bash', args, { cwd: env.projectRoot });
    const killToExit = secondsSince(killed.at);
    if (result.code !== 0) throw new Error(`manual-failover.sh exited with ${result.code}:\n${result.stderr.trim()}`);
    const writable = await probe.firstWrite(PROBE_TIMEOUT_SECONDS);
    await probe.stop();
    const parsed = parseManualOutput(result.stdout);
    const reapedAfter = await waitUntilReaped(killed.pid, killed.at);
    const restoreStarted = Date.now();
    await switchBack(bench);
    return { ...parsed, killToWritable: writable.seconds, killToExit, reapedAfter, probeFailures: writable.failures, restoreSeconds: (Date.now() - restoreStarted) / 1000 };
  } finally {
    await probe.stop();
  }
}

/** A probe on the standby, connected and failing (read-only) before the kill, so its start-up is not timed. */
async function startProbe(bench: Bench, options: Options): Promise<WriteProbe> {
  const conn = await bench.provider.connectNode(bench.standby, NAMES.database);
  const probe = new WriteProbe(conn, NAMES.probeTable, options.probeMs);
  await sleep(Math.max(200, 4 * options.probeMs));
  return probe;
}

/** manual-failover.sh prints tab-separated `step` and `rto` lines; see its header. */
function parseManualOutput(stdout: string): Pick<ManualRun, 'scriptSeconds' | 'steps'> {
  const parsed: Pick<ManualRun, 'scriptSeconds' | 'steps'> = { scriptSeconds: NaN, steps: [] };
  for (const line of stdout.split('\n')) {
    const [kind, a, b] = line.split('\t');
    if (kind === 'step') parsed.steps.push({ name: a!, seconds: Number(b) });
    else if (kind === 'rto') parsed.scriptSeconds = Number(a);
  }
  if (!Number.isFinite(parsed.scriptSeconds)) throw new Error(`manual-failover.sh printed no rto line:\n${stdout}`);
  return parsed;
}

/** One Lifeboat failover and one manual promote, each from the starting state; the order alternates. */
async function timePair(bench: Bench, options: Options, index: number): Promise<Pair> {
  const lifeboat = async () => {
    await assertStartingState(bench);
    say(`run ${index + 1}: kill, lifeboat failover --unplanned (then failback)`);
    const run = await runLifeboat(bench, options);
    say(
      `run ${index + 1}: lifeboat passed: writable ${run.killToWritable.toFixed(2)}s after the kill, CLI done at ${run.killToExit.toFixed(2)}s ` +
        `(rtoSeconds ${run.report.rtoSeconds!.toFixed(2)}); fence: ${run.report.failover?.fence?.how ?? 'n/a'}; put back in ${run.restoreSeconds.toFixed(2)}s`,
    );
    return run;
  };
  const manual = async () => {
    await assertStartingState(bench);
    say(`run ${index + 1}: kill, manual promote (then switch back)`);
    const run = await runManual(bench, options);
    say(`run ${index + 1}: manual done: writable ${run.killToWritable.toFixed(2)}s after the kill (script ${run.scriptSeconds.toFixed(2)}s); put back in ${run.restoreSeconds.toFixed(2)}s`);
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

function summaryTable(pairs: Pair[]): string {
  const columns = (p: Pair) => [p.lifeboat.killToWritable, p.lifeboat.report.rtoSeconds!, p.lifeboat.killToExit, p.manual.killToWritable, p.manual.scriptSeconds];
  const row = (label: string, v: number[]) => [label, ...v.map((n) => n.toFixed(2)), (v[0]! / v[3]!).toFixed(1)];
  const rows = pairs.map((p, i) => row(`run ${i + 1}`, columns(p)));
  if (pairs.length > 1) {
    const all = pairs.map(columns);
    const by = (f: (values: number[]) => number) => all[0]!.map((_, c) => f(all.map((r) => r[c]!)));
    rows.push(row('median', by(median)), row('best', by((values) => Math.min(...values))));
  }
  return table(['', 'lifeboat kill->writable s', 'lifeboat rtoSeconds', 'lifeboat kill->CLI exit s', 'manual kill->writable s', 'manual script s', 'ratio (writable)'], rows);
}

function manualPhases(run: ManualRun): Phases {
  const inSteps = run.steps.reduce((sum, s) => sum + s.seconds, 0);
  return [
    ...run.steps.map((s): [string, number] => [s.name, s.seconds]),
    ['(kill to script exit, outside its steps)', run.killToExit - inSteps],
    ['kill -> script exit', run.killToExit],
  ];
}

function restoreTable(pairs: Pair[]): string {
  const rows = pairs.map((p, i) => [
    `run ${i + 1}`,
    p.lifeboat.failback.wallSeconds.toFixed(2),
    p.lifeboat.failback.standbyRebuilt ? 'yes' : 'no',
    p.lifeboat.restoreSeconds.toFixed(2),
    p.manual.restoreSeconds.toFixed(2),
  ]);
  return table(['restore (not compared)', 'failback wall s', 'standby rebuilt after', 'lifeboat restore s', 'manual switch back s'], rows);
}

async function historyTable(pairs: Pair[]): Promise<string> {
  const rows: string[][] = [];
  for (const [runbook, reports] of [
    ['unplanned failover', pairs.map((p) => p.lifeboat.report)],
    ['failback', pairs.map((p) => p.lifeboat.failback.report)],
  ] as const) {
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

function scopeNotes(options: Options, pairs: Pair[]): string[] {
  const fences = [...new Set(pairs.map((p) => p.lifeboat.report.failover?.fence?.how ?? 'n/a'))];
  const fenceAttempts = pairs.map((p) => p.lifeboat.report.steps.find((s) => s.name === 'fence primary')?.attempts ?? 0);
  const reaped = pairs.flatMap((p) => [p.lifeboat.reapedAfter, p.manual.reapedAfter]);
  const failures = pairs.flatMap((p) => [p.lifeboat.probeFailures, p.manual.probeFailures]);
  return [
    'What is measured (one clock, started by the SIGKILL of the primary\'s postmaster):',
    `  kill->writable       the first INSERT committed on the standby's port by an independent pg client that`,
    `                       retries every ${options.probeMs} ms (resolution: one interval); ${Math.min(...failures)}-${Math.max(...failures)} failed tries per run before it.`,
    '  manual script        manual-failover.sh\'s own clock: ' + (options.manualPromote === 'pg_ctl' ? 'pg_ctl promote -w' : 'select pg_promote()') + ', then one psql INSERT. No fence,',
    '                       no check, no record, no client repointed: the raw-tool floor.',
    '  lifeboat rtoSeconds  the report\'s figure, from the workflow\'s start (the CLI\'s start-up is before it) to the',
    '                       RPO check on the new primary: cancel drills, read topology, preflight, approval record',
    '                       (--yes), fence with a deadline, hold traffic, promote, repoint, smoke tests (a write and',
    '                       the plan\'s checks), RPO from the canary ledger; each a Temporal activity round trip.',
    `  fence                ${fences.join('; ')}; attempts per run: ${fenceAttempts.join(', ')}`,
    `  zombie               the killed postmaster left the process table ${Math.min(...reaped).toFixed(2)}-${Math.max(...reaped).toFixed(2)} s after the kill (reaped by`,
    '                       its parent, PID 1): until then `pg_ctl status` reports it running, and a fence that',
    '                       runs in that window fails its first attempt ("server does not shut down") and is retried.',
  ];
}

// ---------------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  const loadBefore = loadavg();
  const env = loadEnv();
  const provider = buildProviders(env).local;
  if (options.runs === 0) {
    if (options.drop) await dropSet(provider, env, NAMES);
    else say('--runs 0: nothing to do (add --drop to remove the bench set)');
    return 0;
  }
  await ensureStack(env);
  const pgBin = findPgBin(env.pgBin);
  const planDir = mkdtempSync(join(tmpdir(), 'lifeboat-bench-'));
  const { file: planFile } = writePlan(env, planDir, NAMES);
  const io: ActivityIo = { heartbeat: () => undefined, signal: new AbortController().signal, logger: createLogger('warn', pino.destination(2)) };
  const set = setSpec(NAMES);
  const bench: Bench = { env, provider, names: NAMES, set, home: homeNode(NAMES), standby: provider.standbyNodeFor(set), pgBin, planFile, io };

  let worker: BenchWorker | null = null;
  const pairs: Pair[] = [];
  let dbBytes = 0;
  let pgVersion = '';
  let histories = '';
  try {
    await ensureSet(provider, NAMES);
    pgVersion = (await withClient(provider.nodeCluster(bench.home).connection('postgres'), (client) => serverVersion(client))).version;
    worker = await startWorker(env, planFile, NAMES);
    await recoverSet(bench);
    dbBytes = await ensureDatabase(provider.nodeCluster(bench.home), NAMES, options.scale);
    for (let i = 0; i < options.runs; i++) pairs.push(await timePair(bench, options, i));
    histories = await historyTable(pairs);
  } finally {
    if (worker) await stopWorker(worker);
    rmSync(planDir, { recursive: true, force: true });
    if (options.drop) await dropSet(provider, env, NAMES);
    else say(`kept the ${set.set} set (${nodeLabel(bench.home)}, ${nodeLabel(bench.standby)}) for the next run (--drop removes it)`);
  }

  const out = [
    '',
    ...machineLines(pgVersion, pgBin, loadBefore),
    `database    ${NAMES.database} (${(dbBytes / MIB).toFixed(1)} MiB, seed scale ${options.scale}) on ${nodeLabel(bench.home)}, ` +
      `streaming to ${nodeLabel(bench.standby)}; idle (no writes but the probe's); one worker serves both regions`,
    '',
    summaryTable(pairs),
    '',
    phaseTable('lifeboat failover step (seconds)', pairs.map((p) => runbookPhases(p.lifeboat.report, p.lifeboat.wallSeconds))),
    '',
    phaseTable('manual step (seconds)', pairs.map((p) => manualPhases(p.manual))),
    '',
    restoreTable(pairs),
    '',
    histories,
    '',
    ...scopeNotes(options, pairs),
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
      process.stderr.write(`bench: ${err.message}\nusage: npm run bench:unplanned -- [--runs N] [--scale N] [--probe-ms N] [--manual-promote pg_ctl|sql] [--drop]\n`);
      process.exit(2);
    }
    process.stderr.write(`bench: FAILED: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
