// The runbook kit: the frame every runbook runs in, so that a runbook reads as its steps and their
// undos, top to bottom (compare temporalio/samples-typescript saga/src/workflows.ts).
//
//   return runbook({ kind: 'drill', input, progress: drillProgressQuery, ... }, async (run) => {
//     const dr = run.in(input.dr);
//     run.undo(`tear down ${scratch.name}`, () => dr.teardown.dropScratchInstance({ scratch }), torndown);
//     await run.step('restore', () => dr.long.restoreBackup({ ref, scratch }), `restore of ${ref.backupId}`);
//   });
//
// The frame owns: the report (started, finished, its search attributes), the step log and the progress
// query, cancellation (a cancelled run still cleans up, then ends cancelled), ONE cleanup stack (a
// drill's teardowns and a switchover's undos alike: registered as steps succeed, run newest first in a
// non-cancellable scope, each failure recorded and failing the run), the work left in the background,
// and the notification of how the run ended.
//
// Replay: what a run records is the activity type, its task queue, its options and the order of the
// commands; the frame schedules the same commands in the same order as the code it replaced. The
// summary the Temporal UI shows beside an activity (userMetadata) is not checked on replay: the kit
// writes it from the step ("restore: restore of X into Y").
//
// When a patched() marker may go (the rule): a marker protects runs that started before it. Once the
// oldest run that can still be open (running, or kept and replayed: the longest runbook plus the
// namespace's retention) started after the release that added the marker, the release after that may
// call deprecatePatch(id) instead of patched(id) and drop the old branch; the release after THAT, when
// no run started under the patched() release can be open either, removes the deprecatePatch call.
// Recorded histories in test/replay made before a marker pin it: remove such a history (and say so)
// in the same change that deprecates the marker. None is deprecated yet: seven markers are pinned by a
// recorded pre-patch history (checks-alongside-next-step, scratch-alongside-backup, notifications,
// switchover-side-by-side, demoted-primary-follows, approval-audit, failed-runbook-fails-workflow:
// drill-passed-v1-*, failback.json, failover-planned.json, drill-failed-v1-completed.json);
// check-before-undoing-promote and readiness-scratch-sweep are not, but
// Lifeboat has no release record saying when they shipped, so no one can say no older run is open.
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
  type ActivityOptions,
  type QueryDefinition,
  type WorkflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Notification } from '../activities/notify';
import { notify } from './notify';
import {
  fenceWithDeadline,
  longTransfer,
  notification,
  provisioning,
  quickCall,
  readinessProbe,
  scratchSweep,
  teardown,
} from './options';
import { finishReport, startReport, type ReportSubject } from './report';
import { RUNBOOK_FAILED } from './runbook-failure';
import { describeFailure, StepLog, type Progress } from './steps';
import { regionTaskQueue, type Attempted, type CheckResult, type RegionSpec, type RunbookReport } from './types';

/** Every activity, called with its one input (and, where the step's own words do not fit, a summary). */
export type Calls = {
  [K in keyof Activities]: (
    input: Parameters<Activities[K]>[0],
    summary?: string,
  ) => Promise<Awaited<ReturnType<Activities[K]>>>;
};

/** The activities of one region (its task queue), by options preset. */
export interface RegionCalls {
  quick: Calls;
  long: Calls;
  provisioning: Calls;
  teardown: Calls;
  notification: Calls;
  fence: Calls;
  probe: Calls;
  sweep: Calls;
}

const presets = {
  quick: quickCall,
  long: longTransfer,
  provisioning,
  teardown,
  notification,
  fence: fenceWithDeadline,
  probe: readinessProbe,
  sweep: scratchSweep,
};

export interface RunbookSpec<I> {
  kind: RunbookReport['runbook'];
  input: I;
  validate: (input: I) => void;
  subject: (input: I) => ReportSubject;
  progress: QueryDefinition<Progress>;
  /** Where the end of the run is told, and what; null: nothing to tell. Runs in the non-cancellable finish. */
  finished?: {
    region: (input: I) => RegionSpec;
    note: (report: RunbookReport, cancelled: boolean) => Notification | null;
  };
}

interface Cleanup {
  name: string;
  run: () => Promise<Attempted<unknown>>;
  done: (value: unknown) => string;
}

/** One run of a runbook: its report, its step log, its cleanup stack and its activities by region. */
export class Run {
  readonly steps = new StepLog();
  readonly info: WorkflowInfo = workflowInfo();
  readonly declaredStart: number;
  private readonly cleanups: Cleanup[] = [];
  private readonly background: Array<Promise<unknown>> = [];
  private summary: string | undefined;
  private readonly regions = new Map<string, RegionCalls>();

  readonly report: RunbookReport;

  constructor(kind: RunbookReport['runbook'], subject: ReportSubject) {
    this.report = startReport(kind, subject, this.info);
    this.declaredStart = Date.now();
  }

  /**
   * One step of the runbook: recorded in the report (status, attempts, times; `waitingFor` while it
   * runs), and the summary of the activity it calls.
   */
  step<T>(name: string, call: () => Promise<Attempted<T>>, waitingFor: string = name): Promise<T> {
    return this.steps.run(name, waitingFor, () => {
      // Activities are scheduled synchronously: a call made before the step's first await is summarized as the step.
      const outer = this.summary;
      this.summary = waitingFor === name ? name : `${name}: ${waitingFor}`;
      try {
        return call();
      } finally {
        this.summary = outer;
      }
    });
  }

  /** The activities of a region, by options preset. */
  in(region: RegionSpec): RegionCalls {
    const known = this.regions.get(region.name);
    if (known) return known;
    const calls = {} as RegionCalls;
    for (const [key, preset] of Object.entries(presets) as Array<[keyof RegionCalls, ActivityOptions]>)
      calls[key] = this.callsIn(region, preset);
    this.regions.set(region.name, calls);
    return calls;
  }

  /** The activities of a region with options of the runbook's own (a preset with a timeout from the input). */
  callsIn(region: RegionSpec, preset: ActivityOptions): Calls {
    const activities = proxyActivities<Activities>({ ...preset, taskQueue: regionTaskQueue(region.name) });
    return new Proxy({} as Calls, {
      get: (_, name) => (input: unknown, summary?: string) =>
        activities[name as keyof Activities].executeWithOptions(
          { summary: summary ?? this.summary ?? `${String(name)} in ${region.name}` },
          [input as never],
        ),
    });
  }

  /**
   * Registers what undoes a step (or tears down what it made), before the step: a step that fails half
   * way is undone too, so an undo must be safe to run when its step did nothing. `done` says in the
   * report what the undo found.
   */
  undo<T>(name: string, run: () => Promise<Attempted<T>>, done: (value: T) => string = () => 'done'): void {
    this.cleanups.unshift({ name, run, done: done as (value: unknown) => string });
  }

  /** Past the point of no return (a promote): nothing registered so far is undone. */
  forgetUndos(): void {
    this.cleanups.length = 0;
  }

  /** Work off the critical path (a notification) that the run awaits, after its cleanups, before it ends. */
  inBackground(work: Promise<unknown>): void {
    this.background.push(work);
  }

  /** Adds checks to the report. */
  check(...checks: CheckResult[]): void {
    this.report.checks.push(...checks);
  }

  /**
   * Failed checks make a failed run, the reason naming each (`what` says of what, given how many
   * failed): true when every check passed.
   */
  passedChecks(what: (failed: number, all: number) => string): boolean {
    const failed = this.report.checks.filter((c) => !c.ok);
    if (failed.length === 0) return true;
    this.fail(
      `${what(failed.length, this.report.checks.length)}: ${failed.map((c) => `${c.name} (${c.detail})`).join('; ')}`,
    );
    return false;
  }

  /** Seconds since the run's declared start, for the RTO. */
  elapsed(): number {
    return (Date.now() - this.declaredStart) / 1000;
  }

  fail(reason: string): void {
    this.report.outcome = 'failed';
    this.report.reason = reason;
  }

  /** Runs the cleanup stack newest first; each failure is recorded, fails the run, and the rest still run. */
  async cleanUp(): Promise<void> {
    for (const cleanup of this.cleanups.splice(0)) {
      try {
        const value = await this.steps.run(cleanup.name, cleanup.name, cleanup.run);
        this.report.cleanup.push({ name: cleanup.name, ok: true, detail: cleanup.done(value) });
      } catch (err) {
        this.report.cleanup.push({ name: cleanup.name, ok: false, detail: describeFailure(err) });
        this.report.outcome = 'failed';
        this.report.reason = [this.report.reason, `cleanup failed: ${cleanup.name}: ${describeFailure(err)}`]
          .filter(Boolean)
          .join('; ');
      }
    }
  }

  /** Awaits the work left in the background; it never fails. */
  async settle(): Promise<void> {
    await Promise.all(this.background.splice(0));
  }
}

/** What a teardown found, for the report. */
export const torndown = (r: { existed: boolean }): string => (r.existed ? 'deleted' : 'nothing to delete');

/**
 * Runs a runbook in the frame: the report, the failure or cancellation of any step, then (always, and
 * not cancellable) the cleanups, the background work and the notification of the end.
 */
export async function runbook<I>(spec: RunbookSpec<I>, body: (run: Run) => Promise<void>): Promise<RunbookReport> {
  spec.validate(spec.input);
  const run = new Run(spec.kind, spec.subject(spec.input));
  setHandler(spec.progress, () => run.steps.progress());
  let cancelled: unknown;
  try {
    await body(run);
  } catch (err) {
    if (isCancellation(err)) cancelled = err;
    // Cancelled while a step was in flight, and the step then failed rather than stopped (a failover's
    // fence ended its sessions): still a cancelled run, not a failed one.
    else if (CancellationScope.current().consideredCancelled)
      cancelled = new CancelledFailure(`cancelled; the step in flight then failed: ${describeFailure(err)}`);
    run.fail(describeFailure(err));
  } finally {
    await CancellationScope.nonCancellable(async () => {
      await run.cleanUp();
      await run.settle();
      const note = spec.finished?.note(run.report, Boolean(cancelled));
      if (note) await notify(run.steps, spec.finished!.region(spec.input), note);
    });
  }
  finishReport(run.report, run.steps);
  if (cancelled) throw cancelled;
  // Runs started before this patch completed with a failed report; they still do on replay.
  if (run.report.outcome === 'failed' && patched(FAILED_RUNBOOK_FAILS_WORKFLOW)) {
    throw ApplicationFailure.create({
      type: RUNBOOK_FAILED,
      message: `${run.report.runbook} of ${run.report.database} failed: ${run.report.reason ?? 'see the report'}`,
      nonRetryable: true,
      details: [run.report],
    });
  }
  return run.report;
}

/** Since this patch a runbook whose outcome is `failed` ends as a Failed workflow (workflows/runbook-failure.ts). */
export const FAILED_RUNBOOK_FAILS_WORKFLOW = 'failed-runbook-fails-workflow';
