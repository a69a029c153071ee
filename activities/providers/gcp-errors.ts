// What a Cloud SQL Admin API error means for a runbook step. @google-cloud/sql over REST throws a
// GaxiosError whose `code` is the HTTP status (newer versions put the gRPC code there instead; both
// are read). A refusal a retry cannot change becomes a non-retryable verdict naming the call; quota,
// 5xx and network failures stay ordinary errors for the activity's Temporal retry policy.
import { ErrorType } from '../../workflows/types';
import { verdict } from '../errors';

/** gRPC status codes as the newer clients report them, mapped to the HTTP status they stand for. */
const GRPC_TO_HTTP: Record<number, number> = {
  3: 400,
  5: 404,
  6: 409,
  7: 403,
  8: 429,
  9: 400,
  10: 409,
  13: 500,
  14: 503,
  16: 401,
};

export function httpStatusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; status?: unknown; response?: { status?: number } };
  if (typeof e?.response?.status === 'number') return e.response.status;
  if (typeof e?.status === 'number') return e.status;
  if (typeof e?.code === 'number') return e.code >= 100 ? e.code : GRPC_TO_HTTP[e.code];
  return undefined;
}

/** The Google JSON error's own message when the body is one, else the error's message. */
function messageOf(err: unknown): string {
  const raw = (err as Error)?.message ?? String(err);
  try {
    const parsed = JSON.parse(raw) as { error?: { message?: string; status?: string } };
    if (parsed.error?.message) return `${parsed.error.status ?? 'error'}: ${parsed.error.message}`;
  } catch {
    // not JSON: the message as it is
  }
  return raw.split('\n')[0] ?? raw;
}

export function gcpFailure(err: unknown, call: string, notFound: ErrorType = ErrorType.InvalidInput): Error {
  const status = httpStatusOf(err);
  const message = `${call}: ${status ? `HTTP ${status} ` : ''}${messageOf(err)}`;
  if (status === 401 || status === 403)
    return verdict(ErrorType.AccessDenied, `${message}; Lifeboat's IAM roles are in the README`);
  if (status === 404) return verdict(notFound, message);
  if (status === 400) return verdict(ErrorType.InvalidInput, message);
  return new Error(message);
}

/** Quota (429), a 5xx, or no answer at all (a reset connection, a timeout): what passes when asked again. */
export function isPassingGcpError(err: unknown): boolean {
  const status = httpStatusOf(err);
  return status === undefined || status === 429 || status >= 500;
}

export const isNotFound = (err: unknown): boolean => httpStatusOf(err) === 404;
export const isConflict = (err: unknown): boolean => httpStatusOf(err) === 409;
