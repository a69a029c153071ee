// Failures with a stable type. A verdict is non-retryable; everything else is left to the retry policy.
import { ApplicationFailure } from '@temporalio/common';
import type { ErrorType } from '../workflows/types';

/** Whether a failure is a verdict (non-retryable): a wait or a fallback must not swallow it. */
export function isVerdict(err: unknown): boolean {
  return (err as { nonRetryable?: boolean } | null)?.nonRetryable === true;
}

/** Whether a failure is a verdict of this type (BackupNotFound, …). */
export function isVerdictOf(err: unknown, type: ErrorType): boolean {
  return isVerdict(err) && (err as { type?: string }).type === type;
}

export function verdict(type: ErrorType, message: string, details?: Record<string, unknown>): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true, details: details ? [details] : undefined });
}
