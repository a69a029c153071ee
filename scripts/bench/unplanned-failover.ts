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
// a plan for them and a worker serving both regions (`lifeboat worker -f <plan>`) while it runs. The
// demo database and the switchover benchmark's set are never touched.
//
// Each side, from the same starting state (home primary and writable, standby streaming, caught up):
//   1. a write probe connects to the standby's port and tries an INSERT every --probe-ms, retrying
//      on every error (read-only, refused, reset): an independent client, not Lifeboat's own check;
//   2. the home server's postmaster is sent SIGKILL (the clock starts);
//   3. at once: Lifeboat: `lifeboat failover bench-unplanned --unplanned --yes --json` in a child
//      process; by hand: scripts/bench/manual-failover.sh (pg_ctl promote -w, then one psql INSERT);
//   4. measured: kill to the probe's first committed INSERT (the headline, the same clock for both
//      sides), kill to the child's exit, and for Lifeboat its report's rtoSeconds (from the
//      workflow's start: it leaves out the CLI's start-up);
//   5. the set is put back, untimed: after Lifeboat, `lifeboat failback --yes`; after the manual side,
//      the provider's own primitives (rewind the killed server into a standby, switch back).
// Figures, not asserts: it exits 1 only when a side fails.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client as PgClient } from 'pg';
import { quoteIdent, type PgConnection } from '../../activities/pg/sql';
import { nodeLabel } from '../../activities/topology';
import type { RunbookReport } from '../../workflows/types';
import {
  cliPath,
  type ManualScriptRun,
  numberOption,
  passedReport,
  type Phases,
  runChild,
  runMain,
  runManualScript,
  scriptPhases,
  sleep,
  summaryRows,
  table,
} from './common';
import {
  type Bench,
  BENCH_SETS,
  manualStandbyArgs,
  parseSetOptions,
  runSetBenchmark,
  type SetBenchmark,
  type SetOptions,
  type SetPair,
} from './replica-set';

const NAMES = BENCH_SETS.unplanned;
/** A side that has not made the standby writable by then has failed. */
const PROBE_TIMEOUT_SECONDS = 120;

interface Options extends SetOptions {
  probeMs: number;
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
}

interface LifeboatRun extends Side {
  /** The CLI's own wall time, spawn to exit. */
  wallSeconds: number;
  report: RunbookReport;
}

type ManualRun = Side & Pick<ManualScriptRun, 'scriptSeconds' | 'steps'>;

/** A round, each side with the set put back after it (see runSetBenchmark). */
type Pair = SetPair<LifeboatRun, ManualRun>;

function parseOptions(argv: string[]): Options {
  let probeMs = 50;
  const set = parseSetOptions(argv, {
    '--probe-ms': (value, flag) =>
      (probeMs = numberOption(
        flag,
        value(),
        (n) => Number.isInteger(n) && n >= 1 && n <= 10_000,
        'a whole number of milliseconds, 1 to 10000',
      )),
  });
  return { ...set, probeMs };
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
      if (Date.now() > deadline)
        throw new Error(
          `the standby took no write within ${timeoutSeconds}s of the kill (last error: ${this.lastError || 'none'})`,
        );
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
    if (Date.now() > deadline)
      throw new Error(
        `the killed postmaster (pid ${pid}) is still in the process table after 60s: its parent does not reap it, so \`pg_ctl status\` takes it for running`,
      );
    await sleep(10);
  }
  return secondsSince(killedAt);
}

const secondsSince = (at: bigint) => Number(process.hrtime.bigint() - at) / 1e9;

/**
 * One side on the kill's clock: a probe on the standby, the kill, then `failover` (which says when
 * its child exited, and checks that it did its job), the probe's first write and the dead
 * postmaster reaped: only then may runSetBenchmark put the set back.
 */
async function killAndFailOver<R>(
  bench: Bench,
  options: Options,
  failover: (killedAt: bigint) => Promise<{ killToExit: number; figures: R }>,
): Promise<Side & R> {
  const probe = await startProbe(bench, options);
  try {
    const killed = killPrimary(bench);
    probe.arm(killed.at);
    const { killToExit, figures } = await failover(killed.at);
    const writable = await probe.firstWrite(PROBE_TIMEOUT_SECONDS);
    await probe.stop();
    const reapedAfter = await waitUntilReaped(killed.pid, killed.at);
    return { ...figures, killToWritable: writable.seconds, killToExit, reapedAfter, probeFailures: writable.failures };
  } finally {
    await probe.stop();
  }
}

/** `failover --unplanned` through the CLI right after the kill (runSetBenchmark fails back after it). */
function runLifeboat(bench: Bench, options: Options): Promise<LifeboatRun> {
  const args = [cliPath(bench.env), 'failover', NAMES.planKey, '-f', bench.planFile, '--unplanned', '--yes', '--json'];
  return killAndFailOver(bench, options, async (killedAt) => {
    const result = await runChild(process.execPath, args, { cwd: bench.env.projectRoot });
    const killToExit = secondsSince(killedAt);
    return { killToExit, figures: { wallSeconds: result.seconds, report: passedReport('failover', result) } };
  });
}

/** manual-failover.sh right after the kill (runSetBenchmark switches back after it, with the provider's primitives). */
function runManual(bench: Bench, options: Options): Promise<ManualRun> {
  const args = manualStandbyArgs(bench, options.manualPromote);
  return killAndFailOver(bench, options, async (killedAt) => {
    // It prints tab-separated `step` and `rto` lines; see its header.
    const { scriptSeconds, steps } = await runManualScript(bench.env, 'manual-failover.sh', args);
    return { killToExit: secondsSince(killedAt), figures: { scriptSeconds, steps } };
  });
}

/** A probe on the standby, connected and failing (read-only) before the kill, so its start-up is not timed. */
async function startProbe(bench: Bench, options: Options): Promise<WriteProbe> {
  const conn = await bench.provider.connectNode(bench.standby, NAMES.database);
  const probe = new WriteProbe(conn, NAMES.probeTable, options.probeMs);
  await sleep(Math.max(200, 4 * options.probeMs));
  return probe;
}

// ---------------------------------------------------------------------------------------------
// Reporting

function summaryTable(pairs: Pair[]): string {
  const columns = (p: Pair) => [
    p.lifeboat.killToWritable,
    p.lifeboat.report.rtoSeconds!,
    p.lifeboat.killToExit,
    p.manual.killToWritable,
    p.manual.scriptSeconds,
  ];
  const row = (label: string, v: number[]) => [label, ...v.map((n) => n.toFixed(2)), (v[0]! / v[3]!).toFixed(1)];
  return table(
    [
      '',
      'lifeboat kill->writable s',
      'lifeboat rtoSeconds',
      'lifeboat kill->CLI exit s',
      'manual kill->writable s',
      'manual script s',
      'ratio (writable)',
    ],
    summaryRows(pairs.map(columns), row),
  );
}

function manualPhases(run: ManualRun): Phases {
  return scriptPhases(run.steps, '(kill to script exit, outside its steps)', ['kill -> script exit', run.killToExit]);
}

function scopeNotes(options: Options, pairs: Pair[]): string[] {
  const fences = [...new Set(pairs.map((p) => p.lifeboat.report.failover?.fence?.how ?? 'n/a'))];
  const fenceAttempts = pairs.map(
    (p) => p.lifeboat.report.steps.find((s) => s.name === 'fence primary')?.attempts ?? 0,
  );
  const reaped = pairs.flatMap((p) => [p.lifeboat.reapedAfter, p.manual.reapedAfter]);
  const failures = pairs.flatMap((p) => [p.lifeboat.probeFailures, p.manual.probeFailures]);
  return [
    "What is measured (one clock, started by the SIGKILL of the primary's postmaster):",
    `  kill->writable       the first INSERT committed on the standby's port by an independent pg client that`,
    `                       retries every ${options.probeMs} ms (resolution: one interval); ${Math.min(...failures)}-${Math.max(...failures)} failed tries per run before it.`,
    "  manual script        manual-failover.sh's own clock: " +
      (options.manualPromote === 'pg_ctl' ? 'pg_ctl promote -w' : 'select pg_promote()') +
      ', then one psql INSERT. No fence,',
    '                       no check, no record, no client repointed: the raw-tool floor.',
    "  lifeboat rtoSeconds  the report's figure, from the workflow's start (the CLI's start-up is before it) to the",
    '                       RPO check on the new primary: cancel drills, read topology, preflight, approval record',
    '                       (--yes), fence with a deadline, hold traffic, promote, repoint, smoke tests (a write and',
    "                       the plan's checks), RPO from the canary ledger; each a Temporal activity round trip.",
    `  fence                ${fences.join('; ')}; attempts per run: ${fenceAttempts.join(', ')}`,
    `  zombie               the killed postmaster left the process table ${Math.min(...reaped).toFixed(2)}-${Math.max(...reaped).toFixed(2)} s after the kill (reaped by`,
    '                       its parent, PID 1): until then `pg_ctl status` reports it running, and a fence that',
    '                       runs in that window fails its first attempt ("server does not shut down") and is retried.',
  ];
}

// ---------------------------------------------------------------------------------------------

const UNPLANNED: SetBenchmark<LifeboatRun, ManualRun, Options> = {
  names: NAMES,
  failover: 'unplanned failover',
  lifeboat: (bench, options) => ({
    what: 'kill, lifeboat failover --unplanned (then failback)',
    run: () => runLifeboat(bench, options),
    done: (run) =>
      `lifeboat passed: writable ${run.killToWritable.toFixed(2)}s after the kill, CLI done at ${run.killToExit.toFixed(2)}s ` +
      `(rtoSeconds ${run.report.rtoSeconds!.toFixed(2)}); fence: ${run.report.failover?.fence?.how ?? 'n/a'}; put back in ${run.restoreSeconds.toFixed(2)}s`,
  }),
  manual: (bench, options) => ({
    what: 'kill, manual promote (then switch back)',
    run: () => runManual(bench, options),
    done: (run) =>
      `manual done: writable ${run.killToWritable.toFixed(2)}s after the kill (script ${run.scriptSeconds.toFixed(2)}s); put back in ${run.restoreSeconds.toFixed(2)}s`,
  }),
  report: ({ bench, measured: { pairs } }, options) => ({
    shape: `streaming to ${nodeLabel(bench.standby)}; idle (no writes but the probe's); one worker serves both regions`,
    summary: summaryTable(pairs),
    manualPhases,
    notes: scopeNotes(options, pairs),
  }),
};

runMain(
  (argv) => runSetBenchmark(UNPLANNED, parseOptions(argv)),
  'npm run bench:unplanned -- [--runs N] [--scale N] [--probe-ms N] [--manual-promote pg_ctl|sql] [--drop]',
);
