// The chaos harness: real `lifeboat worker` processes killed with SIGKILL at a runbook's step
// boundaries, the Temporal dev server killed and started again mid-run, and what a run must leave
// behind checked afterwards. The default jest run takes a reduced set of cases; LIFEBOAT_CHAOS=full
// (`npm run chaos`) takes every step boundary of every runbook.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { CanaryLedger } from '../../activities/canary-ledger';
import { withClient } from '../../activities/pg/sql';
import { seedDemo } from '../../scripts/dev/seed';
import { portOpen, startTemporal } from '../../scripts/dev/stack';
import {
  backupInput,
  drillInput,
  failbackInput,
  failoverInput,
  loadPlanFile,
  type LoadedPlan,
} from '../../worker/plan';
import { runTag } from '../../workflows/shared-steps';
import type { Progress } from '../../workflows/steps';
import { RUNBOOK_TASK_QUEUE, type RunbookReport } from '../../workflows/types';
import { CLI, stopProcess } from '../support/cli';
import {
  canaryAtEpoch,
  createReplicaSet,
  expectOneWritablePrimary,
  label,
  missingCanaries,
  same,
  sleep,
  startTopologyRunbook,
  topologyOf,
  waitForStandbyToCatchUp,
  watchWritable,
  type ReplicaSetFixture,
} from '../support/replica-set';
import { env, local } from '../support/stack';
import { localPlanText } from '../support/wf-local-plan';
import { deliberateOutageFile, temporalPidFile } from '../support/temporal-watchdog';
import { runbookReport } from '../../workflows/runbook-failure';

/** Every boundary of every runbook, or the reduced set the default test run takes. */
export const FULL = process.env.LIFEBOAT_CHAOS === 'full';
export const MODE = FULL ? 'full' : 'reduced';

/** A step boundary: the moment the `nth` step of that name has started (and the one before it is done). */
export interface Boundary {
  step: string;
  nth: number;
}

export const boundary = (step: string, nth = 1): Boundary => ({ step, nth });

/** A step's name with what differs from run to run (the scratch instance's name) left out. */
const stepKey = (name: string): string => name.replace(/\bdrill-[0-9a-f]{8}\b/g, 'drill-*');
const isStep = (name: string, at: Boundary): boolean => stepKey(name) === stepKey(at.step);

export const boundaryLabel = (b: Boundary): string => (b.nth > 1 ? `${b.step} (#${b.nth})` : b.step);

/** Every step a run took, in the order they started: the boundaries to kill a worker at. */
export function boundariesOf(report: RunbookReport): Boundary[] {
  const seen = new Map<string, number>();
  return report.steps
    .filter((s) => s.status !== 'skipped')
    .map((s) => {
      const key = stepKey(s.name);
      const nth = (seen.get(key) ?? 0) + 1;
      seen.set(key, nth);
      return boundary(key, nth);
    });
}

/**
 * `lifeboat worker -f plan` processes, one serving at a time, with the test stack's environment.
 * A worker that exits without being killed here is started again (what a supervisor does), and
 * counted, so a test can say whether that was needed.
 */
export class WorkerProcesses {
  current: ChildProcess | null = null;
  /** Exits nobody asked for, with the end of the process's stderr. */
  readonly unexpectedExits: string[] = [];
  private readonly all: ChildProcess[] = [];
  private readonly stderr = new Map<ChildProcess, string>();
  private readonly expected = new Set<ChildProcess>();

  constructor(private readonly planFile: string) {}

  start(): ChildProcess {
    const child = spawn(process.execPath, [CLI, 'worker', '-f', this.planFile], {
      env: { ...process.env, LIFEBOAT_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.stderr.set(child, '');
    child.stderr!.on('data', (chunk: Buffer) =>
      this.stderr.set(child, (this.stderr.get(child)! + chunk.toString()).slice(-8_000)),
    );
    child.once('exit', (code, signal) => {
      if (this.expected.has(child)) return;
      this.unexpectedExits.push(
        `worker pid ${child.pid} exited (${code ?? signal}): ${this.stderr.get(child)!.trim().split('\n').slice(-3).join(' | ')}`,
      );
      if (this.current === child) this.start();
    });
    this.all.push(child);
    this.current = child;
    return child;
  }

  /** SIGKILL to the serving worker process, then a new one; returns both pids. */
  async killAndReplace(): Promise<{ killed: number; started: number }> {
    const victim = this.current;
    if (!victim || victim.exitCode !== null || victim.signalCode !== null)
      throw new Error('no live worker process to kill');
    this.expected.add(victim);
    const exited = once(victim, 'exit');
    victim.kill('SIGKILL');
    await exited;
    if (victim.signalCode !== 'SIGKILL')
      throw new Error(`worker pid ${victim.pid} ended by ${victim.signalCode ?? victim.exitCode}, not SIGKILL`);
    return { killed: victim.pid!, started: this.start().pid! };
  }

  /** Stops every worker process this started (SIGTERM, then SIGKILL after 15 s). */
  async stopAll(): Promise<void> {
    await Promise.all(
      this.all.map((child) => {
        this.expected.add(child);
        return stopProcess(child);
      }),
    );
    this.current = null;
  }
}

export interface KillPoint {
  boundary: Boundary;
  /** The boundary step's state when the worker died: running, or already completed. */
  stepWas: string;
  killed: number;
  started: number;
}

/**
 * Waits until the progress query shows the boundary's step started, and returns its record as the
 * query showed it. Fails if the run ends first (that boundary was never exercised) or after `timeoutMs`.
 */
export async function waitForBoundary(
  handle: WorkflowHandle,
  query: string,
  at: Boundary,
  timeoutMs = 180_000,
): Promise<Progress['steps'][number]> {
  const deadline = Date.now() + timeoutMs;
  let last: Progress | null = null;
  for (let round = 0; ; round++) {
    last = (await handle.query<Progress>(query).catch(() => null)) ?? last;
    const record = last?.steps.filter((s) => isStep(s.name, at))[at.nth - 1];
    if (record) return record;
    if (round % 20 === 19 && (await handle.describe()).status.name !== 'RUNNING') {
      throw new Error(
        `${handle.workflowId} ended without reaching "${boundaryLabel(at)}" (progress: ${JSON.stringify(last?.steps.map((s) => `${s.name}:${s.status}`))})`,
      );
    }
    if (Date.now() > deadline)
      throw new Error(`${handle.workflowId} never reached "${boundaryLabel(at)}" within ${timeoutMs} ms`);
    await sleep(15);
  }
}

/**
 * Waits until the progress query shows the boundary's step started, then SIGKILLs the worker
 * process and starts a new one. Fails if the run ends first: that boundary was never exercised.
 */
export async function killWorkerAt(
  handle: WorkflowHandle,
  query: string,
  at: Boundary,
  workers: WorkerProcesses,
): Promise<KillPoint> {
  const stepWas = (await waitForBoundary(handle, query, at)).status;
  const pids = await workers.killAndReplace();
  const status = (await handle.describe()).status.name;
  if (status !== 'RUNNING')
    throw new Error(
      `${handle.workflowId}: the run was already ${status} when its worker was killed at "${boundaryLabel(at)}": the boundary was not exercised`,
    );
  return { boundary: at, stepWas, ...pids };
}

/** The run's result, waiting through a Temporal server that is away for a while (restarts). */
export async function resultThroughOutages(handle: WorkflowHandle, timeoutMs = 600_000): Promise<RunbookReport> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await runbookReport(handle);
    } catch (err) {
      if (err instanceof WorkflowFailedError || Date.now() > deadline) throw err;
      await sleep(500);
    }
  }
}

export interface AttemptSummary {
  /** Activities that took more than one attempt, with the failure before the last one. */
  retried: { activity: string; attempt: number; lastFailure: string }[];
  /** Extra attempts over the whole run (sum of attempt - 1). */
  extraAttempts: number;
  /** ActivityTaskFailed / ActivityTaskTimedOut events: activities that ran out of attempts or were not retryable. */
  failedEvents: number;
  timedOutEvents: number;
  /** Workflow tasks that failed or timed out (a worker killed while running one). */
  workflowTaskTimeouts: number;
}

/**
 * Retries as the history shows them. Temporal writes one ActivityTaskStarted per scheduled
 * activity, when it finishes: its attempt is the number of tries, its lastFailure why the one
 * before failed (an injected fault, or a heartbeat timeout when the worker was killed).
 */
export async function attemptsIn(handle: WorkflowHandle): Promise<AttemptSummary> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = new Map(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType!.name!]),
  );
  const started = events.map((e) => e.activityTaskStartedEventAttributes).filter((a) => a !== null && a !== undefined);
  const retried = started
    .filter((a) => (a.attempt ?? 1) > 1)
    .map((a) => ({
      activity: scheduled.get(String(a.scheduledEventId)) ?? '?',
      attempt: a.attempt!,
      lastFailure: oneLine(a.lastFailure?.message ?? ''),
    }));
  return {
    retried,
    extraAttempts: retried.reduce((n, a) => n + a.attempt - 1, 0),
    failedEvents: events.filter((e) => e.activityTaskFailedEventAttributes).length,
    timedOutEvents: events.filter((e) => e.activityTaskTimedOutEventAttributes).length,
    workflowTaskTimeouts: events.filter(
      (e) => e.workflowTaskTimedOutEventAttributes || e.workflowTaskFailedEventAttributes,
    ).length,
  };
}

export function describeAttempts(a: AttemptSummary): string {
  const byActivity = new Map<string, number>();
  for (const r of a.retried) byActivity.set(r.activity, (byActivity.get(r.activity) ?? 0) + r.attempt - 1);
  const parts = [
    a.retried.length === 0
      ? 'every activity once'
      : `+${a.extraAttempts} retries (${[...byActivity].map(([name, n]) => `${name} +${n}`).join(', ')})`,
  ];
  if (a.failedEvents + a.timedOutEvents > 0)
    parts.push(`${a.failedEvents} ActivityTaskFailed, ${a.timedOutEvents} ActivityTaskTimedOut`);
  if (a.workflowTaskTimeouts > 0) parts.push(`${a.workflowTaskTimeouts} workflow task(s) timed out or failed`);
  return parts.join('; ');
}

const oneLine = (text: string): string => text.split('\n')[0]!.slice(0, 160);

/** The one line each chaos run prints. */
export function chaosLine(fields: {
  runbook: string;
  at: string;
  outcome: string;
  attempts: string;
  checked: string[];
  seconds: number;
}): void {
  console.log(
    `chaos[${MODE}] ${fields.runbook} | ${fields.at} | ${fields.outcome} | ${fields.attempts} | ${fields.seconds.toFixed(1)}s | checked: ${fields.checked.join('; ')}`,
  );
}

// --- processes left behind --------------------------------------------------------------------

interface ProcessView {
  pid: number;
  exe: string;
  cmdline: string;
  environ: string;
}

function processes(): ProcessView[] {
  const views: ProcessView[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (!cmdline) continue; // a kernel thread, or a zombie
      let exe = '';
      let environ = '';
      try {
        exe = readlinkSync(`/proc/${entry}/exe`);
        environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
      } catch {
        // gone meanwhile, or not ours to read
      }
      views.push({ pid: Number(entry), exe, cmdline, environ });
    } catch {
      // the process ended while being read
    }
  }
  return views;
}

const TOOLS = /\/(pg_dump|pg_restore|pg_basebackup|pg_rewind|psql)$/;

/**
 * PostgreSQL tools (pg_dump, pg_restore, pg_basebackup, pg_rewind) still running that work on this
 * stack (their command line or environment names `needle`): after a run has finished, each is a
 * leak (an orphan of a killed worker). Given `graceMs` to finish what they were doing.
 */
export async function leftoverTools(needle: string, graceMs = 5_000): Promise<string[]> {
  const deadline = Date.now() + graceMs;
  for (;;) {
    const found = processes()
      .filter((p) => TOOLS.test(p.exe) && (p.cmdline.includes(needle) || p.environ.includes(needle)))
      .map((p) => `${p.pid} ${p.cmdline.slice(0, 200)}`);
    if (found.length === 0 || Date.now() > deadline) return found;
    await sleep(250);
  }
}

/** PostgreSQL servers whose data directory lies under `dir`. */
export function postmastersUnder(dir: string): string[] {
  return processes()
    .filter((p) => / -D /.test(p.cmdline) && /\/postgres$/.test(p.exe) && p.cmdline.includes(` -D ${dir}`))
    .map((p) => p.cmdline.split(' -D ')[1]!.split(' ')[0]!);
}

/** The directories a local region holds besides its backups and scratch instances: its servers. */
export function localServers(region: string): string[] {
  const dir = join(env().home, 'regions', region);
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((name) => !['backups', 'scratch'].includes(name))
        .sort()
    : [];
}

// --- the Temporal dev server ------------------------------------------------------------------

function currentTemporalPid(): number {
  const file = temporalPidFile(env().home);
  const pid = Number(existsSync(file) ? readFileSync(file, 'utf8').trim() : process.env.LIFEBOAT_TEST_TEMPORAL_PID);
  if (!pid)
    throw new Error('no Temporal dev server pid: LIFEBOAT_TEST_TEMPORAL_PID is unset (the jest global setup sets it)');
  return pid;
}

export interface TemporalRestart {
  oldPid: number;
  newPid: number;
  /** From the kill until the new server answered. */
  outageMs: number;
}

/**
 * Kills the test stack's Temporal dev server with SIGKILL, leaves it down `downMs`, and starts it
 * again on the same ports and SQLite file (scripts/dev/stack.ts startTemporal: it starts a server
 * unless stack.json names a live one; the tests' stack writes none). The new pid goes where the
 * global teardown looks; the outage is marked deliberate, so that the test stack's watchdog
 * (test/support/temporal-watchdog.ts) leaves it alone.
 */
export async function restartTemporal(downMs: number): Promise<TemporalRestart> {
  const oldPid = currentTemporalPid();
  const args = readFileSync(`/proc/${oldPid}/cmdline`, 'utf8').split('\0');
  const flag = (name: string): number => {
    const value = Number(args[args.indexOf(name) + 1]);
    if (!args.includes(name) || !value)
      throw new Error(`the Temporal dev server (pid ${oldPid}) was not started with ${name}: ${args.join(' ')}`);
    return value;
  };
  const ports = { temporal: flag('--port'), ui: flag('--ui-port'), pgBase: 0 };
  const marker = deliberateOutageFile(env().home);
  writeFileSync(marker, `${Date.now()}\n`);
  try {
    const killedAt = Date.now();
    process.kill(oldPid, 'SIGKILL');
    while (await portOpen(ports.temporal)) await sleep(50);
    await sleep(downMs);
    const started = await startTemporal(env(), ports, () => undefined);
    if (started.pid === oldPid) throw new Error(`startTemporal kept pid ${oldPid}, which was killed`);
    writeFileSync(temporalPidFile(env().home), `${started.pid}\n`);
    process.env.LIFEBOAT_TEST_TEMPORAL_PID = String(started.pid);
    return { oldPid, newPid: started.pid, outageMs: Date.now() - killedAt };
  } finally {
    rmSync(marker, { force: true });
  }
}

// --- runbooks under chaos, and what each must leave behind -------------------------------------

/** What is done to a run while it runs. */
export type Disruption =
  { kind: 'none' } | { kind: 'kill-worker'; at: Boundary } | { kind: 'restart-temporal'; at: Boundary; downMs: number };

export const noDisruption: Disruption = { kind: 'none' };
export const killWorker = (at: Boundary): Disruption => ({ kind: 'kill-worker', at });
export const restartTemporalAt = (at: Boundary, downMs = 3_000): Disruption => ({
  kind: 'restart-temporal',
  at,
  downMs,
});

export interface ChaosRun {
  report: RunbookReport;
  attempts: AttemptSummary;
  /** What the disruption did, in words. */
  what: string;
}

/** Applies the disruption once the run reaches its boundary; returns what was done, in words. */
async function disrupt(
  handle: WorkflowHandle,
  query: string,
  d: Disruption,
  workers: WorkerProcesses,
): Promise<string> {
  if (d.kind === 'none') return 'no disruption (baseline)';
  if (d.kind === 'kill-worker') {
    const kill = await killWorkerAt(handle, query, d.at, workers);
    return `worker SIGKILL at "${boundaryLabel(d.at)}" (step ${kill.stepWas}; pid ${kill.killed} -> ${kill.started})`;
  }
  await waitForBoundary(handle, query, d.at);
  const restart = await restartTemporal(d.downMs);
  return `Temporal SIGKILL at "${boundaryLabel(d.at)}", back after ${(restart.outageMs / 1000).toFixed(1)}s (pid ${restart.oldPid} -> ${restart.newPid})`;
}

/** Runs a disrupted run, then its checks; prints the run's line whether the checks pass or not. */
async function chaosRun(
  runbook: string,
  d: Disruption,
  start: () => Promise<{ handle: WorkflowHandle; query: string }>,
  check: (report: RunbookReport, handle: WorkflowHandle, checked: string[]) => Promise<void>,
  workers: WorkerProcesses,
): Promise<ChaosRun> {
  const began = Date.now();
  const exitsBefore = workers.unexpectedExits.length;
  const { handle, query } = await start();
  let what = d.kind === 'none' ? 'no disruption (baseline)' : `${d.kind} at "${boundaryLabel(d.at)}" (not reached)`;
  const checked: string[] = [];
  let report: RunbookReport | undefined;
  let attempts: AttemptSummary | undefined;
  try {
    what = await disrupt(handle, query, d, workers);
    report = await resultThroughOutages(handle);
    attempts = await attemptsIn(handle);
    await check(report, handle, checked);
    // A worker process that died on its own (not killed here) was restarted, as a supervisor would:
    // that is a finding, not a pass.
    expect(workers.unexpectedExits.slice(exitsBefore)).toEqual([]);
    if (d.kind === 'restart-temporal') checked.push('worker process reconnected by itself (no restart needed)');
    return { report, attempts, what };
  } finally {
    chaosLine({
      runbook,
      at: what,
      outcome: report ? `${report.outcome}${report.reason ? ` (${report.reason.slice(0, 200)})` : ''}` : 'no result',
      attempts: attempts ? describeAttempts(attempts) : '-',
      checked: checked.length ? checked : ['(checks did not complete)'],
      seconds: (Date.now() - began) / 1000,
    });
  }
}

export function passed(report: RunbookReport, checked: string[]): void {
  expect({ outcome: report.outcome, reason: report.reason, failedChecks: report.checks.filter((c) => !c.ok) }).toEqual({
    outcome: 'passed',
    reason: undefined,
    failedChecks: [],
  });
  checked.push(`passed (${report.checks.length} checks)`);
}

/**
 * The Drill and Backup runbooks of one database of their own on the stack's local-a and local-b,
 * served by worker processes of this bench.
 */
export class BackupBench {
  private seq = 0;

  private constructor(
    private readonly temporal: Client,
    readonly workers: WorkerProcesses,
    readonly plan: LoadedPlan,
    readonly name: string,
    readonly pgDatabase: string,
    readonly keep: number,
  ) {}

  /** Seeds `pgDatabase` on local-a (scale 1: about 60,000 rows) and writes its plan. */
  static async create(temporal: Client, name: string, keep = 2): Promise<BackupBench> {
    const pgDatabase = name.replace(/-/g, '_');
    const cluster = local().regionCluster('local-a');
    await withClient(cluster.connection('postgres'), async (c) => {
      const exists = await c.query('select 1 from pg_database where datname = $1', [pgDatabase]);
      if (!exists.rowCount) await c.query(`create database ${pgDatabase}`);
    });
    await withClient(cluster.connection(pgDatabase), (c) => seedDemo(c, 1));
    const dir = join(env().home, 'plans');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      localPlanText([
        {
          key: name,
          database: pgDatabase,
          home: 'local-a',
          dr: 'local-b',
          objectives: { rpo: '15m', rto: '30m' },
          retention: { keep },
          checks: [{ name: 'orders exist', sql: 'select count(*) > 0 from orders' }],
        },
      ]),
    );
    const workers = new WorkerProcesses(file);
    workers.start();
    return new BackupBench(temporal, workers, loadPlanFile(file), name, pgDatabase, keep);
  }

  async run(runbook: 'drill' | 'backup', d: Disruption): Promise<ChaosRun> {
    const localB = { name: 'local-b', provider: 'local' as const };
    const scratchBefore = await local().listScratch(localB);
    return chaosRun(
      `${runbook} (local)`,
      d,
      async () => {
        const input =
          runbook === 'drill'
            ? drillInput(this.plan, this.name, { fromLatestBackup: false, triggeredBy: 'chaos' })
            : backupInput(this.plan, this.name, { triggeredBy: 'chaos' });
        const handle = await this.temporal.workflow.start(runbook, {
          taskQueue: RUNBOOK_TASK_QUEUE,
          workflowId: `chaos/${this.name}/${runbook}/${Date.now()}-${this.seq++}`,
          args: [input],
        });
        return { handle, query: `${runbook}Progress` };
      },
      async (report, handle, checked) => {
        passed(report, checked);
        const { runId } = await handle.describe();
        const backupId = report.backup!.backupId;
        expect(backupId).toMatch(new RegExp(`^${this.name}-\\d{8}T\\d{6}Z-${runTag(runId)}$`));
        // One backup and one copy of this run, under the id the run derives: none made twice, none left half made.
        for (const region of ['local-a', 'local-b']) {
          const since = (await local().listBackups({ name: region, provider: 'local' }, this.pgDatabase)).filter(
            (b) => b.createdAt >= report.startedAt,
          );
          expect({ region, backups: since.map((b) => b.backupId) }).toEqual({ region, backups: [backupId] });
          expect({ region, incomplete: incompleteBackups(region, this.name) }).toEqual({ region, incomplete: [] });
        }
        checked.push(`one backup + one copy (${backupId})`);
        if (runbook === 'backup') {
          for (const region of ['local-a', 'local-b'])
            expect(
              (await local().listBackups({ name: region, provider: 'local' }, this.pgDatabase)).length,
            ).toBeLessThanOrEqual(this.keep);
          checked.push(`retention keep ${this.keep} in both regions`);
        } else {
          const scratch = `drill-${runTag(runId)}`;
          expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
          expect(await local().listScratch(localB)).toEqual(scratchBefore);
          expect(postmastersUnder(join(env().home, 'regions', 'local-b', 'scratch'))).toEqual([]);
          checked.push(`scratch ${scratch} deleted, no scratch server running`);
        }
        expect(await leftoverTools(this.pgDatabase)).toEqual([]);
        expect(await leftoverTools(backupId)).toEqual([]);
        checked.push('no pg_dump/pg_restore left running');
      },
      this.workers,
    );
  }

  close(): Promise<void> {
    return this.workers.stopAll();
  }
}

/** Backup directories of this database with no manifest: a dump a killed attempt left half written. */
function incompleteBackups(region: string, name: string): string[] {
  const root = join(env().home, 'regions', region, 'backups');
  if (!existsSync(root)) return [];
  return readdirSync(root).filter((id) => id.startsWith(`${name}-`) && !existsSync(join(root, id, 'manifest.json')));
}

/**
 * Failover and failback of a replication set of its own (createReplicaSet: a home server, its
 * streaming standby, the traffic proxy and the canary writer), served by worker processes.
 */
export class SwitchoverBench {
  private constructor(
    private readonly temporal: Client,
    readonly workers: WorkerProcesses,
    readonly fx: ReplicaSetFixture,
  ) {}

  static async create(temporal: Client, home: string, dr: string, database: string): Promise<SwitchoverBench> {
    const fx = await createReplicaSet({ home, dr, database });
    const workers = new WorkerProcesses(fx.planFile);
    workers.start();
    await canaryAtEpoch(database, topologyOf(fx).epoch);
    return new SwitchoverBench(temporal, workers, fx);
  }

  get atHome(): boolean {
    const t = topologyOf(this.fx);
    return same(t.primary, this.fx.home) && same(t.standby, this.fx.standby) && t.fenced.length === 0;
  }

  async run(runbook: 'failover' | 'failback', mode: 'planned' | 'unplanned', d: Disruption): Promise<ChaosRun> {
    const { fx } = this;
    const db = fx.database;
    const startMs = Date.now();
    const before = topologyOf(fx);
    const sampler = watchWritable(fx);
    let stopped = false;
    const stopSampler = async () => {
      stopped = true;
      return sampler.stop();
    };
    try {
      return await chaosRun(
        runbook === 'failover' ? `${mode} failover (local)` : 'failback (local)',
        d,
        async () => {
          const input =
            runbook === 'failover'
              ? failoverInput(fx.plan, db, { mode, preApproved: true, triggeredBy: 'chaos' })
              : failbackInput(fx.plan, db, { preApproved: true, triggeredBy: 'chaos' });
          return { handle: await startTopologyRunbook(this.temporal, runbook, input), query: `${runbook}Progress` };
        },
        async (report, _handle, checked) => {
          const writable = await stopSampler();
          passed(report, checked);
          const after = topologyOf(fx);
          if (runbook === 'failover') {
            if (mode === 'planned') {
              // The demoted primary follows the new one: the set keeps a standby.
              expect({ primary: after.primary, standby: after.standby, fenced: after.fenced }).toEqual({
                primary: fx.standby,
                standby: fx.home,
                fenced: [],
              });
              checked.push(`primary ${label(fx.standby)}, ${label(fx.home)} demoted to its standby`);
            } else {
              expect({ primary: after.primary, standby: after.standby, fenced: after.fenced }).toEqual({
                primary: fx.standby,
                standby: null,
                fenced: [fx.home],
              });
              checked.push(`primary ${label(fx.standby)}, ${label(fx.home)} fenced`);
            }
          } else {
            expect({ primary: after.primary, standby: after.standby, fenced: after.fenced }).toEqual({
              primary: fx.home,
              standby: fx.standby,
              fenced: [],
            });
            await waitForStandbyToCatchUp(fx.home, fx.standby, db);
            checked.push(`home again, ${label(fx.standby)} streaming`);
          }
          expect(after.epoch).toBeGreaterThan(before.epoch);
          expect(writable.violations).toEqual([]);
          await expectOneWritablePrimary(fx);
          checked.push(`never two writable primaries (${writable.samples} samples)`);
          // No server made twice: each region still holds exactly the node it had.
          expect([localServers(fx.home.region), localServers(fx.standby.region)]).toEqual([
            ['cluster'],
            [fx.standby.name],
          ]);
          expect(await leftoverTools(join(env().home, 'regions', fx.home.region))).toEqual([]);
          expect(await leftoverTools(join(env().home, 'regions', fx.standby.region))).toEqual([]);
          checked.push('no extra server, no pg_rewind/pg_basebackup left');
          // The canary writer goes on through the proxy, and (switchovers) lost nothing it was told was written.
          await canaryAtEpoch(db, after.epoch);
          const acknowledged = new CanaryLedger(env().home)
            .entries(db)
            .filter((e) => Date.parse(e.writtenAt) >= startMs);
          const missing = await missingCanaries(after.primary!, db, acknowledged);
          if (runbook === 'failover' && mode === 'unplanned') {
            // The old primary is reachable in these runs: the fence must have stopped it within its deadline.
            expect(report.failover?.fence).toMatchObject({ confirmed: true });
            expect(report.rpoSeconds).not.toBeNull();
            checked.push(
              `fence confirmed; RPO ${report.rpoSeconds}s reported; ${missing.length} of ${acknowledged.length} canaries of the run not on the new primary (unplanned: allowed)`,
            );
          } else {
            expect({ missing }).toEqual({ missing: [] });
            checked.push(`all ${acknowledged.length} canaries acknowledged during the run on ${label(after.primary)}`);
          }
        },
        this.workers,
      );
    } finally {
      if (!stopped) await sampler.stop();
    }
  }

  /** After a failed case: a plain failback, which re-protects whatever is not a working standby. */
  async repair(): Promise<void> {
    if (this.atHome) return;
    await this.run('failback', 'planned', noDisruption).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.workers.stopAll();
    await this.fx.close();
  }
}

/**
 * Runs every case, collecting failures instead of stopping at the first: a chaos run should say
 * which boundaries fail, not only the first. `after` runs after a failed case (a repair).
 */
export async function runCases<T>(
  cases: T[],
  run: (c: T) => Promise<unknown>,
  name: (c: T) => string,
  after?: () => Promise<void>,
): Promise<string[]> {
  const failures: string[] = [];
  for (const c of cases) {
    try {
      await run(c);
    } catch (err) {
      failures.push(`${name(c)}: ${(err as Error).message.split('\n').slice(0, 12).join('\n')}`);
      await after?.();
    }
  }
  return failures;
}
