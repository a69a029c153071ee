// How a run refused by the worker's input check (worker/input-check.ts) is told apart from one that ran.
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { RunbookReport } from '../../workflows/types';
import type { LogCapture } from './stack';
import { reportOfFailure } from '../../workflows/runbook-failure';

/** How a run ended: the report's outcome and reason, or (a runbook that fails its workflow) the failure's. */
export async function endOf(handle: WorkflowHandle): Promise<{ status: string; outcome: string; reason: string }> {
  const ended = await handle.result().then(
    (report: RunbookReport) => ({ outcome: report.outcome, reason: report.reason ?? '' }),
    (err: unknown) => {
      const report = reportOfFailure(err);
      if (report) return { outcome: report.outcome, reason: report.reason ?? '' };
      const cause = err instanceof WorkflowFailedError ? err.cause : err;
      const type = (cause as { type?: string } | undefined)?.type;
      return { outcome: 'failed', reason: `${type ? `${type}: ` : ''}${(cause as Error)?.message ?? String(cause)}` };
    },
  );
  return { status: (await handle.describe()).status.name, ...ended };
}

/**
 * No activity of the run did anything: every one it scheduled failed with LifeboatInputMismatch at
 * its first attempt (no retry), none completed, and no activity body logged a start for the run.
 */
export async function expectNothingRan(handle: WorkflowHandle, log: LogCapture): Promise<void> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = events
    .filter((e) => e.activityTaskScheduledEventAttributes)
    .map((e) => e.activityTaskScheduledEventAttributes!.activityType?.name);
  const failed = events
    .filter((e) => e.activityTaskFailedEventAttributes)
    .map((e) => e.activityTaskFailedEventAttributes!.failure?.applicationFailureInfo?.type);
  const attempts = events
    .filter((e) => e.activityTaskStartedEventAttributes)
    .map((e) => e.activityTaskStartedEventAttributes!.attempt);
  expect(scheduled.length).toBeGreaterThan(0);
  expect(events.filter((e) => e.activityTaskCompletedEventAttributes)).toEqual([]);
  expect(failed).toEqual(scheduled.map(() => 'LifeboatInputMismatch'));
  expect(attempts).toEqual(scheduled.map(() => 1));
  const lines = log.text.split('\n').filter((line) => line.includes(`"workflowId":"${handle.workflowId}"`));
  expect(lines.filter((line) => line.includes('"msg":"activity started"'))).toEqual([]);
  expect(lines.filter((line) => line.includes('run refused')).length).toBeGreaterThan(0);
}
