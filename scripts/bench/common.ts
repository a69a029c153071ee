// What the benchmarks share: running the product as a user would (the built CLI in a child
// process), and printing their figures the same way, so that the tables of drill-vs-shell.ts and
// switchover-vs-manual.ts (and the others') read alike and a fix to one reaches all.
import { spawn, type StdioOptions } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import type { LifeboatEnv } from '../../worker/env';
import { connectClient } from '../../worker/temporal';
import type { RunbookReport, StepRecord } from '../../workflows/types';

/** Progress goes to stderr so that stdout is only the benchmark's tables. */
export const say = (line: string) => process.stderr.write(`bench: ${line}\n`);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Child processes

export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs a command to exit, timing it from spawn to exit; stdout and stderr are collected. */
export function runChild(command: string, args: string[], options: { cwd: string; stdio?: StdioOptions }): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { cwd: options.cwd, stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, seconds: Number(process.hrtime.bigint() - started) / 1e9 }));
  });
}

export function cliPath(env: LifeboatEnv): string {
  return join(env.projectRoot, 'dist', 'scripts', 'cli.js');
}

/** The stack must be up for a runbook (Temporal, the regions); bring it up the way a user would when it is not. */
export async function ensureStack(env: LifeboatEnv): Promise<void> {
  const status = await runChild(process.execPath, [cliPath(env), 'dev', 'status', '--json'], { cwd: env.projectRoot });
  if (status.code === 0) return;
  say('the dev stack is not (fully) up; running `lifeboat dev up`');
  // dev up talks on stderr; its stdout goes there too so ours stays the benchmark's table.
  const up = await runChild(process.execPath, [cliPath(env), 'dev', 'up'], { cwd: env.projectRoot, stdio: ['ignore', 2, 2] });
  if (up.code !== 0) throw new Error(`\`lifeboat dev up\` exited with ${up.code}`);
}

export { freePort } from '../../activities/pg/ports';

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
// moto_server, the AWS API stand-in (S3 for the copy benchmark, RDS for the fleet one)

export interface Moto {
  endpoint: string;
  pid: number;
  /** SIGTERM, then SIGKILL if it has not gone within 10 s. Safe to repeat. */
  stop(): Promise<void>;
}

/**
 * A moto_server of the benchmark's own, from the project's .venv (scripts/setup.sh --with-moto),
 * on a free port, logging to `log`. Every resource lives in its memory and goes with it.
 */
export async function startMoto(env: LifeboatEnv, port: number, log: string): Promise<Moto> {
  const server = join(env.projectRoot, '.venv', 'bin', 'moto_server');
  if (!existsSync(server)) throw new Error(`moto_server is missing (expected ${server}): run \`bash scripts/setup.sh --with-moto\``);
  const out = openSync(log, 'a');
  const child = spawn(server, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', out, out] });
  const endpoint = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    if (!(await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]))) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode} before it answered; see ${log}`);
    try {
      await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) });
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`moto_server did not answer on ${endpoint} within 30s; see ${log}`);
      }
      await sleep(200);
    }
  }
  return { endpoint, pid: child.pid!, stop };
}

// ---------------------------------------------------------------------------------------------
// Temporal

/**
 * The length (events) and size (bytes) of each run's history, as the server describes it; the
 * client is the one the CLI would use (TEMPORAL_ADDRESS and friends). Runs that cannot be described
 * are left out, with a note on stderr.
 */
export async function historyLengths(runs: Array<{ workflowId: string; runId?: string }>): Promise<Array<{ workflowId: string; events: number; bytes: number }>> {
  if (runs.length === 0) return [];
  const client = await connectClient();
  try {
    const sizes: Array<{ workflowId: string; events: number; bytes: number }> = [];
    for (const run of runs) {
      try {
        const described = await client.workflow.getHandle(run.workflowId, run.runId).describe();
        sizes.push({ workflowId: run.workflowId, events: described.historyLength, bytes: described.historySize ?? NaN });
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

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
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
export function runbookPhases(report: RunbookReport, wallSeconds: number, stepName: (step: StepRecord) => string = (step) => step.name): Phases {
  const phases: Phases = report.steps.map((s) => [stepName(s), stepSeconds(s)]);
  const inWorkflow = (Date.parse(report.finishedAt) - Date.parse(report.startedAt)) / 1000;
  const inSteps = report.steps.reduce((sum, s) => sum + stepSeconds(s), 0);
  phases.push(['(workflow, between steps)', inWorkflow - inSteps]);
  phases.push(['(CLI start, workflow start, result)', wallSeconds - inWorkflow]);
  phases.push(['wall', wallSeconds]);
  return phases;
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
