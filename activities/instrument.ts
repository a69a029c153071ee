// The wrapper every activity runs in: a logger that names the run, a steady heartbeat, cancellation
// handed to the body, the attempt number returned for the report, and failures stamped with the
// attempt that failed.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import type { Attempted } from '../workflows/types';
import type { ActivityIo } from './providers/provider';

export function instrument<I, O>(root: Logger, name: string, body: (input: I, io: ActivityIo) => Promise<O>) {
  return async (input: I): Promise<Attempted<O>> => {
    const ctx = Context.current();
    const { attempt, workflowExecution } = ctx.info;
    const logger = root.child({ activity: name, workflowId: workflowExecution?.workflowId, attempt });
    const io: ActivityIo = { heartbeat: (details) => ctx.heartbeat(details), signal: ctx.cancellationSignal, logger };
    const started = Date.now();
    logger.info('activity started');
    // A steady heartbeat while the body runs: a dead worker is noticed within the heartbeat timeout
    // and a cancellation is delivered even while the body waits on a child process.
    const beat = setInterval(() => ctx.heartbeat(), 2000);
    try {
      const value = await body(input, io);
      logger.info({ ms: Date.now() - started }, 'activity completed');
      return { value, attempt };
    } catch (err) {
      logger.warn(
        { ms: Date.now() - started, err: { type: (err as ApplicationFailure).type, message: (err as Error).message } },
        'activity failed',
      );
      if (err instanceof ApplicationFailure) {
        throw ApplicationFailure.create({
          message: err.message,
          type: err.type ?? undefined,
          nonRetryable: err.nonRetryable ?? false,
          details: [{ ...((err.details?.[0] as object | undefined) ?? {}), attempt }],
        });
      }
      if (ctx.cancellationSignal.aborted) throw err;
      throw ApplicationFailure.create({
        message: (err as Error).message ?? String(err),
        type: (err as Error).name ?? 'Error',
        nonRetryable: false,
        details: [{ attempt }],
      });
    } finally {
      clearInterval(beat);
    }
  };
}
