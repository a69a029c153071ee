// What goes over the wire between @google-cloud/sql (REST fallback, `enum-encoding=int`) and the
// fake: Google's JSON error envelope, the request enums that arrive as numbers, RFC3339 times.
import { protos } from '@google-cloud/sql';

const sql = protos.google.cloud.sql.v1;

/** An HTTP error in Google's envelope; the client surfaces the body text as the error message. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly httpCode: number,
    readonly status: string,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }

  toJson(): object {
    return {
      error: {
        code: this.httpCode,
        message: this.message,
        status: this.status,
        errors: [{ message: this.message, domain: 'global', reason: this.reason }],
      },
    };
  }
}

export const notFound = (reason: string, message: string) => new ApiError(404, 'NOT_FOUND', reason, message);
export const badRequest = (reason: string, message: string) => new ApiError(400, 'INVALID_ARGUMENT', reason, message);
export const conflict = (reason: string, message: string) => new ApiError(409, 'ALREADY_EXISTS', reason, message);

/** Request enums arrive as numbers (the client always sets enum-encoding=int); a hand-made call may send names. */
export function enumName(values: Record<string | number, string | number>, value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') {
    const name = values[value];
    return typeof name === 'string' ? name : undefined;
  }
  return undefined;
}

export const databaseVersionName = (value: unknown) => enumName(sql.SqlDatabaseVersion, value);
export const availabilityTypeName = (value: unknown) => enumName(sql.SqlAvailabilityType, value);
export const activationPolicyName = (value: unknown) => enumName(sql.Settings.SqlActivationPolicy, value);

export const rfc3339 = (date: Date) => date.toISOString();

/** A body the client sends when a method has none is the two bytes `""`. */
export function parseBody(raw: string): Record<string, unknown> {
  const text = raw.trim();
  if (text === '' || text === '""') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw badRequest('parseError', `request body is not JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw badRequest(
      'parseError',
      `request body is ${JSON.stringify(parsed).slice(0, 40)}; expected a JSON object or ""`,
    );
  }
  return parsed as Record<string, unknown>;
}
