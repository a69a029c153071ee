// Waiting on a platform: a long step (a snapshot copy, a restore, a promotion) polls a describe call
// until the state it waits for. Shared by the managed providers so every wait behaves the same.
import { isVerdict } from '../errors';
import type { ActivityIo } from './provider';

/** How many passing failures in a row a wait polls through before it gives up its attempt. */
const PASSING_FAILURES_TOLERATED = 10;

/** How many times one read (a describe, a get, a list) is tried within a call. */
const READ_TRIES = 5;

/**
 * A read that changes nothing, tried again within the call when it fails in passing (throttled, 5xx,
 * no answer), up to READ_TRIES times, 0.2 s doubling between tries. A step makes several reads
 * around its one create or change call (the adopt check, the endpoint lookup, the final state);
 * were each of them to cost an attempt, a few throttled describes in a row would use up a transfer
 * step's four. Calls that create or change something are never retried here: their retries are
 * Temporal's, each one attempt in history.
 */
export async function readWithRetries<T>(passing: (err: unknown) => boolean, read: () => Promise<T>): Promise<T> {
  for (let tried = 1; ; tried++) {
    try {
      return await read();
    } catch (err) {
      if (tried >= READ_TRIES || !passing(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** (tried - 1)));
    }
  }
}

/** A wait that has learned it will never succeed this attempt (not a passing failure). */
export class StopWaiting extends Error {
  override name = 'StopWaiting';
}

/**
 * Polls `check` every `everyMs` until it returns a value. A wait can last hours and makes a describe
 * call per round: one throttled or 5xx answer is reported in the heartbeat and polled through, not
 * allowed to fail the whole step; ten in a row end the attempt for the retry policy. Verdicts, and
 * StopWaiting, end it at once; so does cancellation.
 */
export async function poll<T>(
  io: ActivityIo | undefined,
  everyMs: number,
  phase: string,
  check: () => Promise<T | undefined>,
): Promise<T> {
  let failures = 0;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
      failures = 0;
    } catch (err) {
      if (err instanceof StopWaiting || isVerdict(err) || ++failures >= PASSING_FAILURES_TOLERATED) throw err;
      io?.heartbeat({ phase, passingError: (err as Error).message, inARow: failures });
    }
    await pause(io, everyMs);
  }
}

/** Sleeps `ms`, woken (and failed) by cancellation. */
export async function pause(io: ActivityIo | undefined, ms: number): Promise<void> {
  const signal = io?.signal;
  if (signal?.aborted) throw signal.reason ?? new Error('cancelled');
  await new Promise<void>((resolve) => {
    // The listener goes with the timer: a wait of hours must not pile one up per poll.
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  if (signal?.aborted) throw signal.reason ?? new Error('cancelled');
}
