// Calling activity code directly from a test, outside a worker: an ActivityIo that heartbeats
// nowhere, and an activity Context (silent log, no metrics) for code that reads Context.current().
import pino from 'pino';
import { asyncLocalStorage, Context, type Info } from '@temporalio/activity';
import { noopMetricMeter } from '@temporalio/common';
import type { ActivityIo } from '../../activities/providers/provider';

export const silentIo: ActivityIo = {
  heartbeat: () => undefined,
  signal: new AbortController().signal,
  logger: pino({ level: 'silent' }),
};

const silentLog = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** Runs `fn` as attempt 1 of an activity of the run `workflowId`/`runId`. */
export function inActivity<T>(
  run: { workflowId: string; runId: string; activityType: string },
  fn: () => Promise<T>,
): Promise<T> {
  const info = {
    attempt: 1,
    activityType: run.activityType,
    workflowExecution: { workflowId: run.workflowId, runId: run.runId },
  } as unknown as Info;
  const ctx = new Context(
    info,
    new Promise<never>(() => undefined),
    new AbortController().signal,
    () => undefined,
    undefined,
    silentLog,
    noopMetricMeter,
    {} as ConstructorParameters<typeof Context>[7],
  );
  return asyncLocalStorage.run(ctx, fn);
}
