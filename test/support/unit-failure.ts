import type { ApplicationFailure } from '@temporalio/common';

/** The error `promise` is rejected with, as the ApplicationFailure activity code throws; a success fails the test. */
export async function failure(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const outcome = await promise.then(
    () => ({ rejected: false as const }),
    (error: unknown) => ({ rejected: true as const, error }),
  );
  if (!outcome.rejected) throw new Error('expected a failure, got success');
  return outcome.error as ApplicationFailure;
}
