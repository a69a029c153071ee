// Notifications from runbooks: one activity call each, never failing the runbook (a webhook that is
// down must not turn a passed drill into a failed one, nor stop a failover). They are not steps of the
// runbook: the history shows each call (and its retries), the report stays about the recovery.
import { patched, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Notification } from '../activities/notify';
import { notification } from './options';
import { describeFailure, type StepLog } from './steps';
import { regionTaskQueue, type RegionSpec, type RunbookReport } from './types';

const { notify: send } = proxyActivities<Activities>(notification);

/** Runs that started before notifications existed replay without them. */
export const NOTIFICATIONS = 'notifications';

export async function notify(steps: StepLog, region: RegionSpec, note: Notification): Promise<void> {
  if (!patched(NOTIFICATIONS)) return;
  try {
    await send.executeWithOptions(
      { taskQueue: regionTaskQueue(region.name), summary: `Notify ${note.event}: ${note.summary}` },
      [note],
    );
  } catch (err) {
    // Written where a reader of the report looks for what did not go to plan; the runbook goes on.
    steps.skip(`notify ${note.event}`, `the notification could not be sent: ${describeFailure(err)}`);
  }
}

/** The end of a failover or failback, passed or not: whoever was told it started hears how it ended. */
export function notifyFinished(steps: StepLog, region: RegionSpec, report: RunbookReport): Promise<void> {
  return notify(steps, region, finishedNote(report));
}

export function finishedNote(report: RunbookReport): Notification {
  return {
    event: 'failover.finished',
    database: report.database,
    runbook: report.runbook,
    summary: `${report.runbook} of ${report.database} ${report.outcome}`,
    outcome: report.outcome,
    ...(report.reason && { reason: report.reason }),
    rtoSeconds: report.rtoSeconds,
    rpoSeconds: report.rpoSeconds,
  };
}
