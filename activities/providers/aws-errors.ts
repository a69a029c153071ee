// What an AWS error means for a runbook step. A refusal that a retry cannot change (a missing
// snapshot, a denied permission, a bad parameter, a quota) becomes a non-retryable verdict with the
// call it came from; throttling, 5xx and network failures stay ordinary errors, so the activity's
// Temporal retry policy retries them with backoff and each attempt shows in history.
import { ErrorType } from '../../workflows/types';
import { verdict } from '../errors';

const NOT_FOUND: Record<string, ErrorType> = {
  DBSnapshotNotFound: ErrorType.BackupNotFound,
  DBClusterSnapshotNotFound: ErrorType.BackupNotFound,
  DBInstanceNotFound: ErrorType.DatabaseNotFound,
  DBClusterNotFound: ErrorType.DatabaseNotFound,
  GlobalClusterNotFound: ErrorType.DatabaseNotFound,
};

const ACCESS_DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'NotAuthorized',
  'UnauthorizedOperation',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'SignatureDoesNotMatch',
  'AuthFailure',
  'IncompleteSignature',
  'CredentialsProviderError',
]);

const RETRYABLE = new Set([
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'RequestThrottled',
  'ServiceUnavailable',
  'InternalFailure',
  'InternalError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ExpiredToken',
  'ExpiredTokenException',
  // Clock skew: the SDK corrects its clock offset from the failed response, so the next attempt passes.
  'RequestExpired',
  'RequestTimeTooSkewed',
  'RequestInTheFuture',
]);

/**
 * Throttling, a 5xx, or no answer at all (DNS, a reset connection, a timeout): what passes when asked
 * again. A denied call never does, even without an HTTP status (no credentials found).
 */
export function isPassingAwsError(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  const name = e?.name ?? 'Error';
  const status = e?.$metadata?.httpStatusCode;
  if (ACCESS_DENIED.has(name)) return false;
  return RETRYABLE.has(name) || status === undefined || status >= 500 || status === 429;
}

/** Strips a trailing "Fault" so DBSnapshotNotFoundFault and DBSnapshotNotFound read alike. */
function baseName(name: string): string {
  return name.endsWith('Fault') ? name.slice(0, -5) : name;
}

export function awsFailure(err: unknown, call: string): Error {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number }; $fault?: string };
  const name = e?.name ?? 'Error';
  const base = baseName(name);
  const status = e?.$metadata?.httpStatusCode;
  const message = `${call}: ${name}${status ? ` (HTTP ${status})` : ''}: ${e?.message ?? String(err)}`;
  if (ACCESS_DENIED.has(name))
    return verdict(ErrorType.AccessDenied, `${message}; Lifeboat's IAM policy is in the README`);
  if (isPassingAwsError(err)) return new Error(message);
  // Any other refusal of the caller (OptInRequired, a proxy's 403 with no AWS code) is not going to
  // pass on a retry either.
  if (status === 401 || status === 403)
    return verdict(ErrorType.AccessDenied, `${message}; Lifeboat's IAM policy is in the README`);
  const notFound = NOT_FOUND[base];
  if (notFound) return verdict(notFound, message);
  if (
    /NotFound$/.test(base) ||
    base.startsWith('InvalidParameter') ||
    base === 'ValidationError' ||
    base === 'KMSKeyNotAccessible'
  ) {
    return verdict(ErrorType.InvalidInput, message);
  }
  // InsufficientDBInstanceCapacity is not here: AWS documents it as passing, and it is likeliest in a regional event.
  if (/QuotaExceeded$|AlreadyExists$|^StorageTypeNotSupported/.test(base))
    return verdict(ErrorType.ProviderRejected, message);
  // InvalidDBInstanceState and friends: the resource is mid-transition, which passes.
  return new Error(message);
}
