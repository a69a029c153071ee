// What a Cloud SQL Admin API error means for a step. @google-cloud/sql 0.25 over REST throws the HTTP
// status in `code` (a GaxiosError with the Google JSON error as its message); newer versions throw
// gRPC codes. Both must map the same way: a verdict for what a retry cannot change, else retryable.
import { ApplicationFailure } from '@temporalio/common';
import { gcpFailure, httpStatusOf } from '../../activities/providers/gcp-errors';
import { ErrorType } from '../../workflows/types';

/** A GaxiosError as 0.25 throws it: status in code and status, the body as the message. */
function gaxios(status: number, googleStatus: string, message: string) {
  return Object.assign(new Error(JSON.stringify({ error: { code: status, message, status: googleStatus } })), {
    code: status,
    status,
    response: { status },
  });
}

const cases: Array<[string, unknown, string | null]> = [
  ['404 NOT_FOUND', gaxios(404, 'NOT_FOUND', 'The Cloud SQL instance does not exist.'), ErrorType.InvalidInput],
  [
    '403 PERMISSION_DENIED',
    gaxios(403, 'PERMISSION_DENIED', 'The client is not authorized to make this request.'),
    ErrorType.AccessDenied,
  ],
  [
    '401 UNAUTHENTICATED',
    gaxios(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.'),
    ErrorType.AccessDenied,
  ],
  [
    '400 INVALID_ARGUMENT',
    gaxios(400, 'INVALID_ARGUMENT', 'Invalid request: tier is invalid.'),
    ErrorType.InvalidInput,
  ],
  ['429 RESOURCE_EXHAUSTED (a quota per minute passes)', gaxios(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded'), null],
  ['503 UNAVAILABLE', gaxios(503, 'UNAVAILABLE', 'The service is currently unavailable.'), null],
  ['500 with an HTML body', Object.assign(new Error('<html>oops</html>'), { code: 500, status: 500 }), null],
  ['a reset connection (no status)', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), null],
  [
    'gRPC NOT_FOUND (5) from a newer client',
    Object.assign(new Error('5 NOT_FOUND: gone'), { code: 5 }),
    ErrorType.InvalidInput,
  ],
  [
    'gRPC PERMISSION_DENIED (7) from a newer client',
    Object.assign(new Error('7 PERMISSION_DENIED'), { code: 7 }),
    ErrorType.AccessDenied,
  ],
  ['gRPC UNAVAILABLE (14) from a newer client', Object.assign(new Error('14 UNAVAILABLE'), { code: 14 }), null],
];

describe('gcpFailure', () => {
  test.each(cases)('%s', (_name, err, type) => {
    const failure = gcpFailure(err, 'instances.get shop-main in shop-prod');
    expect(failure.message).toContain('instances.get shop-main in shop-prod');
    if (type === null) {
      expect(failure).not.toBeInstanceOf(ApplicationFailure);
    } else {
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure).toMatchObject({ type, nonRetryable: true });
    }
  });

  test('the Google error body is read into the message: status and text, not raw JSON', () => {
    const failure = gcpFailure(gaxios(404, 'NOT_FOUND', 'The Cloud SQL instance does not exist.'), 'instances.get x');
    expect(failure.message).toBe('instances.get x: HTTP 404 NOT_FOUND: The Cloud SQL instance does not exist.');
  });

  test('a 404 can be named for what is missing (a backup run is BackupNotFound)', () => {
    expect(
      gcpFailure(gaxios(404, 'NOT_FOUND', 'no such run'), 'backupRuns.get 1', ErrorType.BackupNotFound),
    ).toMatchObject({ type: ErrorType.BackupNotFound });
  });

  test('the HTTP status is found however the client reports it', () => {
    expect(httpStatusOf({ response: { status: 409 } })).toBe(409);
    expect(httpStatusOf({ status: 403 })).toBe(403);
    expect(httpStatusOf({ code: 404 })).toBe(404);
    expect(httpStatusOf({ code: 6 })).toBe(409);
    expect(httpStatusOf({ code: 'ECONNREFUSED' })).toBeUndefined();
  });
});
