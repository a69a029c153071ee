// Failures with a stable type. A verdict is non-retryable; everything else is left to the retry policy.
import { ApplicationFailure } from '@temporalio/common';
import type { ErrorType } from '../workflows/types';

export function verdict(type: ErrorType, message: string, details?: Record<string, unknown>): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true, details: details ? [details] : undefined });
}
