// Benchmark: the RTO of a planned switchover run by Lifeboat next to the same fence + promote done
// by hand with psql and pg_ctl.
//
//   npm run bench:switchover -- [--runs N] [--scale N] [--manual-promote pg_ctl|sql] [--drop]
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
// and runs a worker for it (`lifeboat worker -f <plan>`) for as long as it runs.
//
// Lifeboat's side goes through the real product, as a user would: `lifeboat failover bench-shop
// --planned --yes --json` in a child process; its report's rtoSeconds is the figure, and
// `lifeboat failback --yes --json` puts the set back (timed too, not compared). The manual side is
// scripts/bench/manual-switchover.sh; the set is put back after it with the product's own
// primitives (the provider's rebuildAsStandby, fence, waitForReplay and promote, as a failback does).
// Both sides start from the same state: the home server primary and writable, the standby streaming
// and caught up. Figures, not asserts: it exits 1 only when a side fails.
//
// The set, its plan, its worker and putting it back are scripts/bench/replica-set.ts, shared with
// unplanned-failover.ts. A standby that does not stream after a failback is rebuilt, and the restore
// table says so.
import { nodeLabel } from '../../activities/topology';
import type { RunbookReport, SqlCheck } from '../../workflows/types';
import {
  type ManualScriptRun,
  type Phases,
  runMain,
  runManualScript,
  runRunbook,
  scriptPhases,
  summaryRows,
  table,
} from './common';
import {
  type Bench,
  BENCH_SETS,
  type ManualPromote,
  manualStandbyArgs,
  parseSetOptions,
  runSetBenchmark,
  type SetBenchmark,
  type SetPair,
} from './replica-set';

const NAMES = BENCH_SETS.switchover;

interface LifeboatRun {
  wallSeconds: number;
  report: RunbookReport;
}

interface ManualRun extends Pick<ManualScriptRun, 'steps'> {
  /** manual-switchover.sh's own clock: its first command to the committed write. */
  rtoSeconds: number;
  finalLsn: string;
}

/** A round, each side with the set put back after it (see runSetBenchmark). */
type Pair = SetPair<LifeboatRun, ManualRun>;

// ---------------------------------------------------------------------------------------------
// The two contenders

/** The failover through the CLI (runSetBenchmark fails back after it). */
function runLifeboat(bench: Bench): Promise<LifeboatRun> {
  return runRunbook(bench.env, ['failover', NAMES.planKey, '-f', bench.planFile, '--planned', '--yes', '--json']);
}

async function runManual(bench: Bench, promote: ManualPromote): Promise<ManualRun> {
  const home = bench.provider.nodeCluster(bench.home);
  const args = [
    ...manualStandbyArgs(bench, promote),
    '--primary-port',
    String(home.state().port),
    '--primary-datadir',
    home.dataDir,
    '--primary-passfile',
    home.pgpassFile,
  ];
  // It prints tab-separated `step`, `final_lsn` and `rto` lines; see its header.
  const { steps, scriptSeconds, lines } = await runManualScript(bench.env, 'manual-switchover.sh', args);
  return { rtoSeconds: scriptSeconds, steps, finalLsn: lines.find((fields) => fields[0] === 'final_lsn')?.[1] ?? '' };
}

// ---------------------------------------------------------------------------------------------
// Reporting

/**
 * Per run, then the median (the headline) and the best. Two ratios over the manual RTO (fence to a
 * committed write on the new primary): Lifeboat's write outage (fence to the record pointing clients
 * at the new primary: the same span) and its whole rtoSeconds (declared to verified).
 */
function summaryTable(pairs: Pair[]): string {
  const row = (label: string, [wall, rto, outage, manual]: number[]) => [
    label,
    wall!.toFixed(2),
    rto!.toFixed(2),
    outage!.toFixed(2),
    manual!.toFixed(2),
    (outage! / manual!).toFixed(2),
    (rto! / manual!).toFixed(2),
  ];
  const rows = summaryRows(
    pairs.map((p) => [
      p.lifeboat.wallSeconds,
      p.lifeboat.report.rtoSeconds!,
      writeOutage(p.lifeboat.report),
      p.manual.rtoSeconds,
    ]),
    row,
  );
  return table(
    [
      '',
      'lifeboat wall s',
      'lifeboat rtoSeconds',
      'lifeboat write outage s',
      'manual RTO s',
      'ratio (outage)',
      'ratio (rtoSeconds)',
    ],
    rows,
  );
}

/** The report's write outage; a worker too old to report it fails the benchmark rather than guess. */
function writeOutage(report: RunbookReport): number {
  const outage = report.failover?.writeOutageSeconds;
  if (typeof outage !== 'number')
    throw new Error(
      `the failover report has no failover.writeOutageSeconds (a worker older than the build?): ${report.workflowId}`,
    );
  return outage;
}

function manualPhases(run: ManualRun): Phases {
  return scriptPhases(run.steps, '(bash, between steps)', ['RTO', run.rtoSeconds]);
}

/** What the two RTOs cover: the manual side is the brief's four steps, Lifeboat's is a runbook. */
function scopeNotes(checks: SqlCheck[], promote: ManualPromote): string[] {
  return [
    'What is measured:',
    `  manual RTO           manual-switchover.sh's own clock, first command to the committed write: the same real fence`,
    `                       as Lifeboat's (standby.signal, pg_ctl stop -m fast, the shutdown checkpoint's LSN)`,
    `                       -> poll replay every 0.1 s -> ${promote === 'pg_ctl' ? 'pg_ctl promote -w' : 'select pg_promote()'} -> one insert.`,
    '                       Nothing checked beyond the replay wait, nothing recorded, no client repointed.',
    "  lifeboat write       the report's failover.writeOutageSeconds: the start of the fence to the topology record",
    '  outage               pointing clients at the promoted node; the span the manual RTO covers (its last step, one',
    '                       write, stands for the repoint). Compare this with the manual RTO.',
    "  lifeboat rtoSeconds  the report's figure: the workflow's start to the RPO check on the new primary. Beyond the",
    '                       manual steps it covers: cancel running drills of the database (a visibility query)',
    "                       beside reading the topology record; preflight (both nodes' roles, the standby's lag and",
    '                       slot against the RPO objective) beside a canary write on the primary; the approval record',
    '                       (pre-approved by --yes); the fence (the same demote) confirmed from pg_controldata;',
    '                       hold traffic (topology record: no primary) beside the wait for replay; repoint traffic',
    `                       (record: the new primary); smoke tests (a canary write and the plan's ${checks.length} checks, read-only)`,
    '                       beside the RPO check (the start canary is on the new primary); and for each of its steps',
    "                       a Temporal round trip (an activity task on the region's queue, a workflow task to",
    '                       schedule the next step).',
    "  lifeboat wall        adds the CLI's start-up, the workflow start and fetching the result.",
    '  step table           steps that run side by side overlap, so their shares add up to more than 100 %;',
    '                       "(workflow, between steps)" is the time no step was running.',
  ];
}

// ---------------------------------------------------------------------------------------------

const SWITCHOVER: SetBenchmark<LifeboatRun, ManualRun> = {
  names: NAMES,
  failover: 'planned failover',
  lifeboat: (bench) => ({
    what: 'lifeboat failover --planned (then failback)',
    run: () => runLifeboat(bench),
    done: (run) =>
      `lifeboat passed in ${run.wallSeconds.toFixed(2)}s (rtoSeconds ${run.report.rtoSeconds!.toFixed(2)}); failback ${run.failback.wallSeconds.toFixed(2)}s`,
  }),
  manual: (bench, options) => ({
    what: 'manual switchover (then switch back)',
    run: () => runManual(bench, options.manualPromote),
    done: (run) =>
      `manual done, RTO ${run.rtoSeconds.toFixed(2)}s (fenced at ${run.finalLsn}); switched back in ${run.restoreSeconds.toFixed(2)}s`,
  }),
  report: ({ bench, checks, measured: { pairs } }, options) => ({
    shape: `streaming to ${nodeLabel(bench.standby)} through a physical slot; planned switchover, RPO 0 on both sides`,
    summary: summaryTable(pairs),
    manualPhases,
    notes: scopeNotes(checks, options.manualPromote),
  }),
};

runMain(
  (argv) => runSetBenchmark(SWITCHOVER, parseSetOptions(argv)),
  'npm run bench:switchover -- [--runs N] [--scale N] [--manual-promote pg_ctl|sql] [--drop]',
);
