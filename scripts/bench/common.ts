// What the benchmarks share: their command line, running the product as a user would (the built
// CLI in a child process) and their shell scripts (which print `step` lines, see lib.sh), timing
// sides in alternating order, and printing their figures the same way, so that the tables of
// drill-vs-shell.ts and switchover-vs-manual.ts (and the others') read alike and a fix to one reaches all.
import { spawn, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { ActivityIo } from '../../activities/providers/provider';
import type { LifeboatEnv } from '../../worker/env';
import { createLogger } from '../../worker/logger';
import { connectClient } from '../../worker/temporal';
import type { RunbookReport, StepRecord } from '../../workflows/types';

/** Progress goes to stderr so that stdout is only the benchmark's tables. */
export const say = (line: string) => process.stderr.write(`bench: ${line}\n`);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export { freePort } from '../../activities/pg/ports';

export const MIB = 1024 * 1024;

/** For the provider calls an activity would make: no heartbeat to send, never cancelled, warnings to stderr. */
export function benchIo(): ActivityIo {
  return {
    heartbeat: () => undefined,
    signal: new AbortController().signal,
    logger: createLogger('warn', pino.destination(2)),
  };
}

// ---------------------------------------------------------------------------------------------
// The command line

/** A bad argument: the benchmark prints it with its usage line and exits 2. */
export class UsageError extends Error {}

/** A flag's number, or a UsageError saying what was expected. */
export function numberOption(
  flag: string,
  raw: string | undefined,
  accept: (n: number) => boolean,
  expected: string,
): number {
  const n = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isFinite(n) || !accept(n))
    throw new UsageError(`${flag} ${raw ?? '(missing)'}: expected ${expected}`);
  return n;
}

export function positiveOption(flag: string, raw: string | undefined, integer: boolean): number {
  return numberOption(
    flag,
    raw,
    (n) => n > 0 && (!integer || Number.isInteger(n)),
    `a ${integer ? 'whole ' : ''}number greater than zero`,
  );
}

/**
 * What a benchmark does with each flag it takes. `value()` reads the argument after the flag (one
 * call per value; undefined when there is none); `flag` is the flag itself, for the error message.
 */
export type Flags = Record<string, (value: () => string | undefined, flag: string) => void>;

/** Applies each argument's flag in turn; an argument that is not one of `flags` is a UsageError. */
export function parseFlags(argv: string[], flags: Flags): void {
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const apply = Object.hasOwn(flags, flag) ? flags[flag] : undefined;
    if (!apply) throw new UsageError(`unknown argument ${flag}`);
    apply(() => argv[++i], flag);
  }
}

/** A copy of a benchmark's default options with each argument's flag applied to it in turn (see parseFlags). */
export function optionsFrom<T extends object>(argv: string[], defaults: T, flags: (options: T) => Flags): T {
  const options = { ...defaults };
  parseFlags(argv, flags(options));
  return options;
}

/** Runs a benchmark's main and exits with its code: 2 and the usage line for a UsageError, 1 for anything else. */
export function runMain(main: (argv: string[]) => Promise<number>, usage: string): void {
  // Called inside then(): a main that throws before it returns its promise is reported the same way.
  Promise.resolve(process.argv.slice(2))
    .then(main)
    .then(
      (code) => process.exit(code),
      (err: unknown) => {
        if (err instanceof UsageError) {
          process.stderr.write(`bench: ${err.message}\nusage: ${usage}\n`);
          process.exit(2);
        }
        process.stderr.write(`bench: FAILED: ${(err as Error)?.stack ?? String(err)}\n`);
        process.exit(1);
      },
    );
}

// ---------------------------------------------------------------------------------------------
// Child processes

export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs a command to exit, timing it from spawn to exit; stdout and stderr are collected. */
export function runChild(
  command: string,
  args: string[],
  options: { cwd: string; stdio?: StdioOptions },
): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { cwd: options.cwd, stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code, stdout, stderr, seconds: Number(process.hrtime.bigint() - started) / 1e9 }),
    );
  });
}

export function cliPath(env: LifeboatEnv): string {
  return join(env.projectRoot, 'dist', 'cli', 'main.js');
}

/** Runs a runbook through the CLI with --json; anything but a passed report with an RTO is an error. */
export async function runRunbook(
  env: LifeboatEnv,
  args: string[],
): Promise<{ wallSeconds: number; report: RunbookReport }> {
  const result = await runChild(process.execPath, [cliPath(env), ...args], { cwd: env.projectRoot });
  return { wallSeconds: result.seconds, report: passedReport(args[0]!, result) };
}

/** The report a `--json` CLI run printed, if it passed; an error saying why otherwise. */
export function passedReport(
  what: string,
  result: { code: number | null; stdout: string; stderr: string },
): RunbookReport {
  let report: RunbookReport;
  try {
    report = JSON.parse(result.stdout) as RunbookReport;
  } catch {
    throw new Error(
      `\`lifeboat ${what}\` exited with ${result.code} without a JSON report:\n${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  if (report.outcome !== 'passed' || result.code !== 0 || report.rtoSeconds === null) {
    const failedSteps = (report.steps ?? [])
      .filter((s) => s.status === 'failed')
      .map((s) => `${s.name}: ${s.detail ?? ''}`);
    const failedChecks = (report.checks ?? []).filter((c) => !c.ok).map((c) => `check ${c.name}: ${c.detail}`);
    throw new Error(
      `the ${what} did not pass (exit ${result.code}, outcome ${report.outcome}, rtoSeconds ${report.rtoSeconds}): ${report.reason ?? 'no reason given'}` +
        [...failedSteps, ...failedChecks].map((line) => `\n  ${line}`).join('') +
        (result.stderr.trim() ? `\n${result.stderr.trim()}` : ''),
    );
  }
  return report;
}

/** One of the benchmark's shell scripts (scripts/bench/<name>) to exit; a non-zero exit is an error with its stderr. */
export async function runScript(env: LifeboatEnv, name: string, args: string[]): Promise<ChildResult> {
  const result = await runChild('bash', [join(env.projectRoot, 'scripts', 'bench', name), ...args], {
    cwd: env.projectRoot,
  });
  if (result.code !== 0) throw new Error(`${name} exited with ${result.code}:\n${result.stderr.trim()}`);
  return result;
}

/** What a manual script (manual-switchover.sh, manual-failover.sh) printed, see its header: its timed steps, its own clock and its other lines. */
export interface ManualScriptRun {
  steps: StepTime[];
  /** The script's own clock (its `rto` line): its first command to the committed write. */
  scriptSeconds: number;
  /** Its other lines (`final_lsn <lsn>`...), each as its fields. */
  lines: string[][];
}

/** Runs a manual script (scripts/bench/<script>) to exit; one that printed no `rto` line is an error. */
export async function runManualScript(env: LifeboatEnv, script: string, args: string[]): Promise<ManualScriptRun> {
  const { stdout } = await runScript(env, script, args);
  const { steps, lines } = parseScriptOutput(stdout);
  const scriptSeconds = Number(lines.find((fields) => fields[0] === 'rto')?.[1] ?? NaN);
  if (!Number.isFinite(scriptSeconds)) throw new Error(`${script} printed no rto line:\n${stdout}`);
  return { steps, scriptSeconds, lines };
}

export interface StepTime {
  name: string;
  seconds: number;
}

/**
 * What a bench shell script printed: tab-separated lines, `step <name> <seconds>` for its timed steps
 * and lines of its own kinds (`rto <seconds>`, `rows <table> <n>`...), each as its fields.
 */
export function parseScriptOutput(stdout: string): { steps: StepTime[]; lines: string[][] } {
  const parsed: { steps: StepTime[]; lines: string[][] } = { steps: [], lines: [] };
  for (const line of stdout.split('\n')) {
    const fields = line.split('\t');
    if (fields[0] === 'step') parsed.steps.push({ name: fields[1]!, seconds: Number(fields[2]) });
    else if (line) parsed.lines.push(fields);
  }
  return parsed;
}

/**
 * Runs the sides of one round in order, or in reverse order in odd rounds, so that none always runs
 * first (or always gets the page cache another one warmed); the results come in the given order.
 */
export async function inAlternatingOrder<T extends unknown[]>(
  round: number,
  sides: { [K in keyof T]: () => Promise<T[K]> },
): Promise<T> {
  const order = sides.map((_, i) => i);
  if (round % 2) order.reverse();
  const results: unknown[] = [];
  for (const i of order) results[i] = await sides[i]!();
  return results as T;
}

/** A side of a round that says on stderr when it starts and how it went. */
export function announced<T>(before: string, run: () => Promise<T>, after: (result: T) => string): () => Promise<T> {
  return async () => {
    say(before);
    const result = await run();
    say(after(result));
    return result;
  };
}

/**
 * The stack must be up for a runbook (Temporal, the regions), with the worker on the code just built:
 * `lifeboat dev up`, as a user would run it. It starts what is down and restarts a worker whose build
 * is older than dist/; with everything up to date it changes nothing. (Only asking `dev status` once
 * let a benchmark time the worker of an earlier build.)
 */
export async function ensureStack(env: LifeboatEnv, planFile?: string): Promise<void> {
  say(
    `running \`lifeboat dev up${planFile ? ' -f <bench plan>' : ''}\` (starts what is down, restarts a worker on older code${planFile ? ' or another plan' : ''})`,
  );
  // dev up talks on stderr; its stdout goes there too so ours stays the benchmark's table.
  // With a plan, the stack's worker serves it: a worker refuses runs its own plan does not yield.
  const up = await runChild(process.execPath, [cliPath(env), 'dev', 'up', ...(planFile ? ['-f', planFile] : [])], {
    cwd: env.projectRoot,
    stdio: ['ignore', 2, 2],
  });
  if (up.code !== 0) throw new Error(`\`lifeboat dev up\` exited with ${up.code}`);
}

/** What a process has used so far, from /proc (Linux): CPU seconds (its own, and its reaped children's) and memory. */
export interface ProcessUsage {
  cpuSeconds: number;
  childrenCpuSeconds: number;
  /** Peak resident set size (VmHWM), bytes. */
  peakRssBytes: number;
  rssBytes: number;
}

/** null when the process is gone (or there is no /proc). */
export function processUsage(pid: number): ProcessUsage | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: the fields after it start past its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = (i: number) => Number(fields[i - 3]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return {
      cpuSeconds: (ticks(14) + ticks(15)) / CLOCK_TICKS,
      childrenCpuSeconds: (ticks(16) + ticks(17)) / CLOCK_TICKS,
      peakRssBytes: kib('VmHWM'),
      rssBytes: kib('VmRSS'),
    };
  } catch {
    return null;
  }
}

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

// ---------------------------------------------------------------------------------------------
// Temporal

/**
 * The length (events) and size (bytes) of each run's history, as the server describes it; the
 * client is the one the CLI would use (TEMPORAL_ADDRESS and friends). Runs that cannot be described
 * are left out, with a note on stderr.
 */
export async function historyLengths(
  runs: Array<{ workflowId: string; runId?: string }>,
): Promise<Array<{ workflowId: string; events: number; bytes: number }>> {
  if (runs.length === 0) return [];
  const client = await connectClient();
  try {
    const sizes: Array<{ workflowId: string; events: number; bytes: number }> = [];
    for (const run of runs) {
      try {
        const described = await client.workflow.getHandle(run.workflowId, run.runId).describe();
        sizes.push({
          workflowId: run.workflowId,
          events: described.historyLength,
          bytes: described.historySize ?? NaN,
        });
      } catch (err) {
        say(`could not describe ${run.workflowId} ${run.runId ?? ''}: ${(err as Error).message}`);
      }
    }
    return sizes;
  } finally {
    await client.connection.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Reporting

export function stepSeconds(step: StepRecord): number {
  return step.startedAt && step.finishedAt ? (Date.parse(step.finishedAt) - Date.parse(step.startedAt)) / 1000 : 0;
}

/** The time at least one step was running: steps that ran side by side count once. */
export function coveredSeconds(steps: StepRecord[]): number {
  const spans = steps
    .filter((s) => s.startedAt && s.finishedAt)
    .map((s) => [Date.parse(s.startedAt!), Date.parse(s.finishedAt!)] as const)
    .sort((a, b) => a[0] - b[0]);
  let covered = 0;
  let end = -Infinity;
  for (const [from, to] of spans) {
    if (to <= end) continue;
    covered += to - Math.max(from, end);
    end = to;
  }
  return covered / 1000;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * One row per run, then, with more than one run, the median (the headline) and the best (the cost
 * without interference from other work) of each column. `row` formats a row from its label and values.
 */
export function summaryRows(runs: number[][], row: (label: string, values: number[]) => string[]): string[][] {
  const rows = runs.map((values, i) => row(`run ${i + 1}`, values));
  if (runs.length > 1) {
    const column = (c: number) => runs.map((values) => values[c]!);
    const by = (f: (values: number[]) => number) => runs[0]!.map((_, c) => f(column(c)));
    rows.push(
      row('median', by(median)),
      row(
        'best',
        by((values) => Math.min(...values)),
      ),
    );
  }
  return rows;
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The machine, its load and the PostgreSQL the figures were taken on: they do not compare across machines. */
export function machineLines(pg: string, pgBin: string, loadBefore: number[]): string[] {
  const load = (l: number[]) => l.map((n) => n.toFixed(2)).join(' ');
  return [
    `machine     ${availableParallelism()} CPUs (${cpus()[0]?.model.trim() ?? 'unknown model'}), ${(totalmem() / 1024 ** 3).toFixed(1)} GiB memory`,
    // Other work on the machine skews both sides; the load average says how much there was.
    `load avg    ${load(loadBefore)} before, ${load(loadavg())} after`,
    `postgresql  ${pg} (${pgBin}), node ${process.version}`,
  ];
}

/** Seconds per named phase of one run, in order, ending with the run's total (its wall time, or an RTO). */
export type Phases = Array<[name: string, seconds: number]>;

/**
 * A runbook's steps, plus what lies between them and outside the workflow (CLI start-up, Temporal),
 * ending with the wall time. `stepName` lets a benchmark give steps named per run one name, so
 * that the runs line up in the phase table.
 */
export function runbookPhases(
  report: RunbookReport,
  wallSeconds: number,
  stepName: (step: StepRecord) => string = (step) => step.name,
): Phases {
  const phases: Phases = report.steps.map((s) => [stepName(s), stepSeconds(s)]);
  const inWorkflow = (Date.parse(report.finishedAt) - Date.parse(report.startedAt)) / 1000;
  phases.push(['(workflow, between steps)', inWorkflow - coveredSeconds(report.steps)]);
  phases.push(['(CLI start, workflow start, result)', wallSeconds - inWorkflow]);
  phases.push(['wall', wallSeconds]);
  return phases;
}

/**
 * A shell script's steps, then what lies outside them (`outside`), ending with its total (`total`:
 * a name and the seconds of the script's own clock, or of one started before it).
 */
export function scriptPhases(steps: StepTime[], outside: string, total: [name: string, seconds: number]): Phases {
  const inSteps = steps.reduce((sum, s) => sum + s.seconds, 0);
  return [...steps.map((s): [string, number] => [s.name, s.seconds]), [outside, total[1] - inSteps], total];
}

/**
 * One row per phase, one column per run, then the median and its share of the median total. The
 * total is the last phase, by name, since each benchmark measures a side by its own figure.
 */
export function phaseTable(title: string, runs: Phases[]): string {
  const names = [...new Set(runs.flatMap((phases) => phases.map(([name]) => name)))];
  const total = runs[0]!.at(-1)![0];
  const seconds = (phases: Phases, name: string) => phases.find(([n]) => n === name)?.[1];
  // Gaps computed from millisecond timestamps can come out a hair below zero.
  const medianOf = (name: string) => median(runs.map((phases) => Math.max(0, seconds(phases, name) ?? 0)));
  const rows = names.map((name) => [
    name,
    ...runs.map((phases) => {
      const s = seconds(phases, name);
      return s === undefined ? '-' : Math.max(0, s).toFixed(2);
    }),
    medianOf(name).toFixed(2),
    `${((100 * medianOf(name)) / medianOf(total)).toFixed(0)}%`,
  ]);
  return table([title, ...runs.map((_, i) => `run ${i + 1}`), 'median', 'share'], rows);
}
