// The step log behind every runbook's report and progress query: each step's status, attempts and
// times, recorded as the runbook moves. Deterministic: times come from the workflow clock.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  TimeoutFailure,
} from '@temporalio/workflow';
import type { Attempted, StepRecord } from './types';

export interface Progress {
  steps: StepRecord[];
  /** Every step now running (some run side by side). */
  running: string[];
  /** The most recently started of them, if any. */
  current: string | null;
  /** What the runbook is waiting for, in words. */
  waitingFor: string | null;
}

export class StepLog {
  readonly steps: StepRecord[] = [];

  /** Runs one step; on failure the step is recorded with the reason and the error rethrown. */
  async run<T>(name: string, waitingFor: string, step: () => Promise<Attempted<T>>): Promise<T> {
    const record: StepRecord = { name, status: 'running', attempts: 0, startedAt: now(), detail: waitingFor };
    this.steps.push(record);
    try {
      const { value, attempt } = await step();
      record.status = 'completed';
      record.attempts = attempt;
      delete record.detail;
      return value;
    } catch (err) {
      record.status = 'failed';
      record.attempts = attemptsOf(err);
      record.detail = describeFailure(err);
      throw err;
    } finally {
      record.finishedAt = now();
    }
  }

  /** Adds what a finished step established (who approved, say) to its record. */
  annotate(name: string, detail: string): void {
    const record = [...this.steps].reverse().find((s) => s.name === name);
    if (record) record.detail = detail;
  }

  skip(name: string, why: string): void {
    this.steps.push({ name, status: 'skipped', attempts: 0, detail: why });
  }

  progress(): Progress {
    const running = this.steps.filter((s) => s.status === 'running');
    const latest = running[running.length - 1];
    return {
      steps: this.steps,
      running: running.map((s) => s.name),
      current: latest?.name ?? null,
      waitingFor:
        running
          .map((s) => s.detail)
          .filter(Boolean)
          .join('; ') || null,
    };
  }
}

/**
 * Two steps that run side by side. When one fails the other is cancelled, and both have settled (so
 * the report says how each ended) before the first failure is thrown: the cause, never the
 * cancellation it led to.
 */
export async function sideBySide<A, B>(a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> {
  const scope = new CancellationScope();
  let first: { error: unknown } | undefined;
  const settled = <T>(step: () => Promise<T>): Promise<T | undefined> =>
    scope.run(step).catch((error: unknown) => {
      if (!first) {
        first = { error };
        scope.cancel();
      }
      return undefined;
    });
  const [x, y] = await Promise.all([settled(a), settled(b)]);
  if (first) throw first.error;
  return [x as A, y as B];
}

export function now(): string {
  return new Date(Date.now()).toISOString();
}

/** The attempt count the activity stamped on its last failure, else 1. */
function attemptsOf(err: unknown): number {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) {
    const detail = cause.details?.[0] as { attempt?: unknown } | undefined;
    if (typeof detail?.attempt === 'number') return detail.attempt;
  }
  return 1;
}

/** One line that says why a step failed, from the innermost cause that has something to say. */
export function describeFailure(err: unknown): string {
  let cause: unknown = err;
  while (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  // An activity cancelled in flight fails with an empty-message CancelledFailure as its cause.
  if (cause instanceof CancelledFailure) return 'cancelled';
  if (cause instanceof TimeoutFailure) return `timed out (${cause.timeoutType ?? 'unknown'} timeout)`;
  if (cause instanceof ApplicationFailure) return cause.type ? `${cause.type}: ${cause.message}` : cause.message;
  if (cause instanceof Error) return cause.message;
  return String(cause);
}

/** The failure's type string, where it has one (see ErrorType). */
export function failureType(err: unknown): string | undefined {
  let cause: unknown = err;
  while (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
}
