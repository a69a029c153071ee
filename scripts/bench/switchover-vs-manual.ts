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
// The set, its plan, its worker and putting it back are scripts/bench/replica-set.ts, shared with
// unplanned-failover.ts. A standby that does not stream after a failback is rebuilt, and the restore
// table says so.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { findPgBin } from '../../activities/pg/binaries';
import { serverOsUser } from '../../activities/pg/process';
import { serverVersion, withClient } from '../../activities/pg/sql';
import type { ActivityIo } from '../../activities/providers/provider';
import { nodeLabel } from '../../activities/topology';
import { loadEnv } from '../../worker/env';
import { createLogger } from '../../worker/logger';
import { buildProviders } from '../../worker/main';
import type { RunbookReport, SqlCheck } from '../../workflows/types';
import { ensureStack, historyLengths, machineLines, median, phaseTable, type Phases, runbookPhases, runChild, say, table } from './common';
import {
  assertStartingState,
  type Bench,
  type BenchWorker,
  dropSet,
  ensureDatabase,
  ensureSet,
  failBack,
  homeNode,
  recoverSet,
  runRunbook,
  type SetNames,
  setSpec,
  startWorker,
  stopWorker,
  switchBack,
  writePlan,
} from './replica-set';

const NAMES: SetNames = {
  homeRegion: 'bench-a',
  drRegion: 'bench-b',
  database: 'bench_shop',
  // Plan keys allow lowercase letters, digits and dashes only, so the key differs from the database.
  planKey: 'bench-shop',
  by: 'scripts/bench/switchover-vs-manual.ts',
  // The table the manual side's one write goes to (manual-switchover.sh's default --write).
  probeTable: 'switchover_probe',
};
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
// The two contenders

/** The failover, then the failback that puts the set back (untimed; see failBack() in replica-set.ts). */
async function runLifeboat(bench: Bench): Promise<LifeboatRun> {
  const failover = await runRunbook(bench.env, ['failover', NAMES.planKey, '-f', bench.planFile, '--planned', '--yes', '--json']);
  const restoreStarted = Date.now();
  const failback = await failBack(bench);
  return { ...failover, failback: { ...failback, restoreSeconds: (Date.now() - restoreStarted) / 1000 } };
}

async function runManual(bench: Bench, promote: Options['manualPromote']): Promise<ManualRun> {
  const { env, provider, standby } = bench;
  const home = provider.nodeCluster(bench.home);
  const replica = provider.nodeCluster(standby);
  const script = join(env.projectRoot, 'scripts', 'bench', 'manual-switchover.sh');
  const osUser = serverOsUser();
  const args = [
    script,
    '--db', NAMES.database,
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

interface HistoryRow {
  runbook: string;
  events: number[];
  bytes: number[];
}

/** History events (and bytes) of every Lifeboat run: the README's "Workflow history" figures. */
async function historyRows(pairs: Pair[]): Promise<HistoryRow[]> {
  const of = async (runbook: string, reports: RunbookReport[]): Promise<HistoryRow> => {
    const sizes = await historyLengths(reports.map((r) => ({ workflowId: r.workflowId, runId: r.runId })));
    return { runbook, events: sizes.map((s) => s.events), bytes: sizes.map((s) => s.bytes) };
  };
  return [await of('planned failover', pairs.map((p) => p.lifeboat.report)), await of('failback', pairs.map((p) => p.lifeboat.failback.report))];
}

function historyTable(rows: HistoryRow[]): string {
  const range = (values: number[]) => (values.length ? `${Math.min(...values)} / ${median(values)} / ${Math.max(...values)}` : '-');
  return table(
    ['workflow history', 'runs', 'events min / median / max', 'KiB median'],
    rows.map((r) => [r.runbook, String(r.events.length), range(r.events), r.bytes.length ? (median(r.bytes) / 1024).toFixed(1) : '-']),
  );
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
    if (options.drop) await dropSet(provider, env, NAMES);
    else say('--runs 0: nothing to do (add --drop to remove the bench set)');
    return 0;
  }
  await ensureStack(env);
  const pgBin = findPgBin(env.pgBin);
  const planDir = mkdtempSync(join(tmpdir(), 'lifeboat-bench-'));
  const { file: planFile, checks } = writePlan(env, planDir, NAMES);
  const io: ActivityIo = {
    heartbeat: () => undefined,
    signal: new AbortController().signal,
    logger: createLogger('warn', pino.destination(2)),
  };
  const set = setSpec(NAMES);
  const bench: Bench = { env, provider, names: NAMES, set, home: homeNode(NAMES), standby: provider.standbyNodeFor(set), pgBin, planFile, io };

  let worker: BenchWorker | null = null;
  const pairs: Pair[] = [];
  let dbBytes = 0;
  let pgVersion = '';
  let histories: HistoryRow[] = [];
  try {
    await ensureSet(provider, NAMES);
    // Read now: --drop removes the set before the table is printed.
    pgVersion = (await withClient(provider.nodeCluster(bench.home).connection('postgres'), (client) => serverVersion(client))).version;
    worker = await startWorker(env, planFile, NAMES);
    await recoverSet(bench);
    dbBytes = await ensureDatabase(provider.nodeCluster(bench.home), NAMES, options.scale);
    for (let i = 0; i < options.runs; i++) pairs.push(await timePair(bench, options, i));
    histories = await historyRows(pairs);
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
    historyTable(histories),
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
