// What an AWS failure becomes decides whether a runbook step retries or stops: a refusal retried
// wastes the whole retry budget before the operator sees the cause, and a hiccup treated as final
// fails a failover that one more attempt would have finished. The errors below are the SDK's own
// exception classes, or RDSServiceException with the error code as its name, which is what the SDK
// builds for codes its model does not list (Throttling, AccessDenied, InvalidParameterValue...).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DBInstanceAlreadyExistsFault,
  DBInstanceNotFoundFault,
  DBSnapshotNotFoundFault,
  DBSubnetGroupNotFoundFault,
  InsufficientDBInstanceCapacityFault,
  InvalidDBInstanceStateFault,
  KMSKeyNotAccessibleFault,
  RDSServiceException,
  SnapshotQuotaExceededFault,
} from '@aws-sdk/client-rds';
import { ApplicationFailure } from '@temporalio/common';
import { awsFailure } from '../../activities/providers/aws-errors';
import { AwsProvider } from '../../activities/providers/aws';
import { createSnapshot } from '../../activities/providers/aws-snapshots';
import { ErrorType } from '../../workflows/types';

const CALL = 'DeleteDBSnapshot lifeboat-b1 in us-east-1';

function meta(httpStatusCode: number) {
  return { $metadata: { httpStatusCode, requestId: 'req-1', attempts: 1, totalRetryDelay: 0 } };
}

/** What the SDK throws for an error code its model has no class for. */
function unmodeled(name: string, httpStatusCode: number, message = `message of ${name}`): RDSServiceException {
  return new RDSServiceException({
    name,
    $fault: httpStatusCode >= 500 ? 'server' : 'client',
    message,
    ...meta(httpStatusCode),
  });
}

function expectVerdict(failure: Error, type: ErrorType): void {
  expect(failure).toBeInstanceOf(ApplicationFailure);
  expect({
    type: (failure as ApplicationFailure).type,
    nonRetryable: (failure as ApplicationFailure).nonRetryable,
  }).toEqual({ type, nonRetryable: true });
}

/** Retryable: a plain Error, so the activity's Temporal retry policy decides. */
function expectRetryable(failure: Error): void {
  expect(failure).toBeInstanceOf(Error);
  expect(failure).not.toBeInstanceOf(ApplicationFailure);
}

describe('awsFailure: refusals a retry cannot change are verdicts', () => {
  test.each<[string, () => unknown, ErrorType]>([
    [
      'DBSnapshotNotFoundFault (404)',
      () => new DBSnapshotNotFoundFault({ message: 'DBSnapshot lifeboat-b1 not found.', ...meta(404) }),
      ErrorType.BackupNotFound,
    ],
    [
      'DBInstanceNotFoundFault (404)',
      () => new DBInstanceNotFoundFault({ message: 'DBInstance orders not found.', ...meta(404) }),
      ErrorType.DatabaseNotFound,
    ],
    [
      'DBSubnetGroupNotFoundFault (404): a plan setting names nothing',
      () => new DBSubnetGroupNotFoundFault({ message: 'DBSubnetGroup scratch not found.', ...meta(404) }),
      ErrorType.InvalidInput,
    ],
    [
      'KMSKeyNotAccessibleFault (400)',
      () => new KMSKeyNotAccessibleFault({ message: 'The specified KMS key is not accessible.', ...meta(400) }),
      ErrorType.InvalidInput,
    ],
    [
      'InvalidParameterValue (400)',
      () => unmodeled('InvalidParameterValue', 400, 'Invalid DB instance class: db.x9.huge'),
      ErrorType.InvalidInput,
    ],
    ['InvalidParameterCombination (400)', () => unmodeled('InvalidParameterCombination', 400), ErrorType.InvalidInput],
    [
      'DBInstanceAlreadyExistsFault (400)',
      () => new DBInstanceAlreadyExistsFault({ message: 'DB instance already exists', ...meta(400) }),
      ErrorType.ProviderRejected,
    ],
    [
      'SnapshotQuotaExceededFault (400)',
      () => new SnapshotQuotaExceededFault({ message: 'Cannot create more than 100 manual snapshots', ...meta(400) }),
      ErrorType.ProviderRejected,
    ],
    [
      'AccessDenied (403)',
      () =>
        unmodeled(
          'AccessDenied',
          403,
          'User: arn:aws:sts::1:assumed-role/lifeboat is not authorized to perform: rds:DeleteDBSnapshot',
        ),
      ErrorType.AccessDenied,
    ],
    [
      'NotAuthorized (400), the RDS common error for a missing permission',
      () => unmodeled('NotAuthorized', 400),
      ErrorType.AccessDenied,
    ],
    [
      'OptInRequired (403): the account is not subscribed to RDS in the region',
      () => unmodeled('OptInRequired', 403),
      ErrorType.AccessDenied,
    ],
    ['any other 403, whatever its code', () => unmodeled('UnknownError', 403, 'Forbidden'), ErrorType.AccessDenied],
    [
      'no credentials at all (the provider chain fails before a request)',
      () =>
        Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }),
      ErrorType.AccessDenied,
    ],
  ])('%s', (_what, makeError, type) => {
    const failure = awsFailure(makeError(), CALL);
    expectVerdict(failure, type);
    expect(failure.message).toContain(CALL);
  });

  test('the message says which call, which error, which HTTP status and what AWS said', () => {
    const failure = awsFailure(
      new DBSnapshotNotFoundFault({ message: 'DBSnapshot lifeboat-b1 not found.', ...meta(404) }),
      CALL,
    );
    expect(failure.message).toBe(`${CALL}: DBSnapshotNotFoundFault (HTTP 404): DBSnapshot lifeboat-b1 not found.`);
  });

  test('access denied points at the IAM policy', () => {
    expect(awsFailure(unmodeled('AccessDenied', 403), CALL).message).toMatch(/IAM policy/);
  });
});

describe('awsFailure: hiccups stay retryable', () => {
  test.each<[string, () => unknown]>([
    ['Throttling (400), what RDS sends', () => unmodeled('Throttling', 400, 'Rate exceeded')],
    ['ThrottlingException (400)', () => unmodeled('ThrottlingException', 400, 'Rate exceeded')],
    ['InternalFailure (500)', () => unmodeled('InternalFailure', 500)],
    [
      'InsufficientDBInstanceCapacityFault (400): AWS calls it passing, likeliest in a regional event',
      () => new InsufficientDBInstanceCapacityFault({ message: 'Insufficient capacity.', ...meta(400) }),
    ],
    ['ServiceUnavailable (503)', () => unmodeled('ServiceUnavailable', 503)],
    [
      "a 500 named 'Error', as moto answers a call it does not implement",
      () => Object.assign(new Error('Internal Server Error'), meta(500)),
    ],
    [
      'a network error: no HTTP status, no $metadata',
      () => Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' }),
    ],
    [
      'a network error as the SDK throws it: $metadata without a status',
      () =>
        Object.assign(new Error('socket hang up'), {
          code: 'ECONNRESET',
          $metadata: { attempts: 1, totalRetryDelay: 0 },
        }),
    ],
    [
      'InvalidDBInstanceStateFault (400): the instance is mid-transition',
      () =>
        new InvalidDBInstanceStateFault({ message: 'Instance lifeboat-d1 is not in available state.', ...meta(400) }),
    ],
    [
      'ExpiredToken (403): the credential chain refreshes it before the next attempt',
      () => unmodeled('ExpiredToken', 403, 'The security token included in the request is expired'),
    ],
    [
      'RequestExpired (400): clock skew, which the SDK corrects after one failure',
      () => unmodeled('RequestExpired', 400),
    ],
    [
      'RequestTimeTooSkewed (403): clock skew, not a refusal like the other 403s',
      () => unmodeled('RequestTimeTooSkewed', 403),
    ],
  ])('%s', (_what, makeError) => {
    const failure = awsFailure(makeError(), CALL);
    expectRetryable(failure);
    expect(failure.message).toContain(CALL);
  });

  test('a thrown non-Error still produces a message naming the call', () => {
    const failure = awsFailure('socket closed', CALL);
    expectRetryable(failure);
    expect(failure.message).toBe(`${CALL}: Error: socket closed`);
  });
});

describe('the provider against a stub RDS endpoint', () => {
  const ENV = [
    'AWS_ENDPOINT_URL',
    'AWS_ENDPOINT_URL_RDS',
    'AWS_IGNORE_CONFIGURED_ENDPOINT_URLS',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
  ] as const;
  const saved = new Map<string, string | undefined>();
  const region = { name: 'aws-east', provider: 'aws' as const, settings: { awsRegion: 'us-east-1' } };

  let server: Server;
  let requests: string[];
  let reply: { status: number; code: string; message: string };

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        requests.push(body);
        res.writeHead(reply.status, { 'content-type': 'text/xml' });
        res.end(
          `<ErrorResponse><Error><Type>Sender</Type><Code>${reply.code}</Code><Message>${reply.message}</Message></Error><RequestId>x</RequestId></ErrorResponse>`,
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  beforeEach(() => {
    requests = [];
    for (const name of ENV) saved.set(name, process.env[name]);
    // The global setup points the SDK at moto; this suite talks to its own stub instead.
    for (const name of ['AWS_ENDPOINT_URL_RDS', 'AWS_IGNORE_CONFIGURED_ENDPOINT_URLS', 'AWS_SESSION_TOKEN'])
      delete process.env[name];
    process.env.AWS_ENDPOINT_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    process.env.AWS_ACCESS_KEY_ID = 'testing';
    process.env.AWS_SECRET_ACCESS_KEY = 'testing';
  });

  afterEach(() => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  /** The error listBackups throws; a success fails the test here rather than passing for an error. */
  async function listBackupsFailure(): Promise<Error> {
    // listBackups never reads the topology records kept under home.
    const provider = new AwsProvider({ secrets: {}, pollMs: 10, home: join(tmpdir(), 'lifeboat-aws-errors-test') });
    const outcome = await provider.listBackups(region).then(
      (refs) => ({ refs }),
      (err: unknown) => ({ err }),
    );
    if (!('err' in outcome))
      throw new Error(`expected listBackups to fail against the stub; it returned ${JSON.stringify(outcome.refs)}`);
    expect(outcome.err).toBeInstanceOf(Error);
    return outcome.err as Error;
  }

  test('a throttled read is tried five times within the call, then comes back retryable, for Temporal to retry', async () => {
    reply = { status: 400, code: 'Throttling', message: 'Rate exceeded' };
    const failure = await listBackupsFailure();
    // The SDK's own retries are off (maxAttempts: 1); a read (and only a read) is asked again by
    // Lifeboat within the call, so a few throttled describes do not use up a step's attempts.
    expect(requests).toHaveLength(5);
    for (const request of requests) expect(request).toContain('Action=DescribeDBSnapshots');
    expectRetryable(failure);
    expect(failure.message).toMatch(/Throttling/);
    expect(failure.message).toContain('DescribeDBSnapshots in us-east-1');
  });

  test("a throttled call that creates something is sent once: its retry is Temporal's, one attempt in history", async () => {
    reply = { status: 400, code: 'Throttling', message: 'Rate exceeded' };
    const provider = new AwsProvider({ secrets: {}, pollMs: 10, home: join(tmpdir(), 'lifeboat-aws-errors-test') });
    const failure = await createSnapshot(provider.rds('us-east-1'), 'instance', 'db-1', 'lifeboat-snap-1', []).then(
      () => new Error('expected CreateDBSnapshot to fail against the stub'),
      (err: Error) => err,
    );
    expect(requests).toHaveLength(1);
    expect(requests[0]).toContain('Action=CreateDBSnapshot');
    expectRetryable(failure);
    expect(failure.message).toMatch(/^CreateDBSnapshot lifeboat-snap-1 of db-1: Throttling/);
  });

  test('a denied call is sent once and becomes an AccessDenied verdict', async () => {
    reply = { status: 403, code: 'AccessDenied', message: 'not authorized to perform: rds:DescribeDBSnapshots' };
    const failure = await listBackupsFailure();
    expect(requests).toHaveLength(1);
    expectVerdict(failure, ErrorType.AccessDenied);
    expect(failure.message).toContain('DescribeDBSnapshots in us-east-1');
  });

  test('an endpoint that refuses connections is a retryable error', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    process.env.AWS_ENDPOINT_URL = `http://127.0.0.1:${port}`;
    const failure = await listBackupsFailure();
    expectRetryable(failure);
    expect(failure.message).toMatch(/DescribeDBSnapshots in us-east-1: .*ECONNREFUSED/);
  });
});
