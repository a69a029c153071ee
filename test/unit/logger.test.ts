// One root pino logger: secrets never reach the log, whether they sit under a known key or inside a
// connection URL (STYLE.md rule 8).
import type { DestinationStream } from 'pino';
import { createLogger, REDACT_PATHS, scrubCredentials } from '../../worker/logger';

function capture(level = 'debug') {
  const lines: string[] = [];
  const stream: DestinationStream = { write: (line: string) => void lines.push(line) };
  const logger = createLogger(level, stream);
  return {
    logger,
    text: () => lines.join(''),
    records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const SECRETS = [
  'pw-top-1',
  'pw-nested-2',
  'pw-in-connstring-3',
  'tok-4',
  'key-5',
  's3cret',
  'secret-6',
  'bearer-7',
  'pgpass-8',
  'tempkey-9',
];

function expectNoSecrets(text: string, secrets: string[] = SECRETS): void {
  for (const secret of secrets) expect(text).not.toContain(secret);
}

describe('createLogger redaction', () => {
  test('secrets under known keys and credentials in the message never reach the output', () => {
    const { logger, text, records } = capture();
    logger.info(
      {
        password: 'pw-top-1',
        conn: { host: 'db.internal', port: 5432, password: 'pw-nested-2' },
        connectionString: 'postgres://app:pw-in-connstring-3@db.internal/orders',
        token: 'tok-4',
        apiKey: 'key-5',
        secret: 'secret-6',
        headers: { authorization: 'Bearer bearer-7' },
        env: { PGPASSWORD: 'pgpass-8', TEMPORAL_API_KEY: 'tempkey-9', PGHOST: 'db.internal' },
        db: 'orders',
      },
      'connecting to postgres://user:s3cret@host/db',
    );
    const out = text();
    expectNoSecrets(out);
    expect(out).toContain('[REDACTED]');

    const [record] = records();
    expect(record).toMatchObject({
      level: 30,
      service: 'lifeboat',
      msg: 'connecting to postgres://user:[REDACTED]@host/db',
      password: '[REDACTED]',
      conn: { host: 'db.internal', port: 5432, password: '[REDACTED]' },
      connectionString: '[REDACTED]',
      token: '[REDACTED]',
      apiKey: '[REDACTED]',
      secret: '[REDACTED]',
      headers: { authorization: '[REDACTED]' },
      env: { PGPASSWORD: '[REDACTED]', TEMPORAL_API_KEY: '[REDACTED]', PGHOST: 'db.internal' },
      db: 'orders',
    });
  });

  test('a password two levels down, and in objects inside arrays, is redacted', () => {
    const { logger, text, records } = capture();
    logger.info(
      { region: { primary: { password: 'pw-deep-1' } }, replicas: [{ host: 'r1', password: 'pw-array-2' }] },
      'topology',
    );
    expectNoSecrets(text(), ['pw-deep-1', 'pw-array-2']);
    expect(records()[0]).toMatchObject({
      region: { primary: { password: '[REDACTED]' } },
      replicas: [{ host: 'r1', password: '[REDACTED]' }],
    });
  });

  test('credentials in URLs are scrubbed from any string field, however deep, keeping the rest of the URL', () => {
    const { logger, text, records } = capture();
    logger.info(
      {
        target: { url: 'postgresql://restore:pw-url-1@scratch.local:5433/orders?sslmode=require' },
        urls: ['https://ci:pw-url-2@example.com/x'],
      },
      'restore target',
    );
    expectNoSecrets(text(), ['pw-url-1', 'pw-url-2']);
    expect(records()[0]).toMatchObject({
      target: { url: 'postgresql://restore:[REDACTED]@scratch.local:5433/orders?sslmode=require' },
      urls: ['https://ci:[REDACTED]@example.com/x'],
    });
  });

  test('printf-style arguments are scrubbed too', () => {
    const { logger, text, records } = capture();
    logger.info('connecting to %s as %s', 'postgres://app:pw-fmt-1@db/orders', 'app');
    expectNoSecrets(text(), ['pw-fmt-1']);
    expect(records()[0]!.msg).toBe('connecting to postgres://app:[REDACTED]@db/orders as app');
  });

  test('a plain message without secrets is left alone', () => {
    const { logger, records } = capture();
    logger.info(
      { db: 'orders', region: 'local-a', url: 'postgres://db.internal:5432/orders' },
      'backup of orders took 12s',
    );
    expect(records()[0]).toMatchObject({
      db: 'orders',
      region: 'local-a',
      url: 'postgres://db.internal:5432/orders',
      msg: 'backup of orders took 12s',
    });
  });

  test('child loggers keep their bindings and still redact', () => {
    const { logger, text, records } = capture();
    const child = logger.child({ db: 'orders', region: 'local-b', provider: 'local' });
    child.warn({ conn: { password: 'pw-child-1' }, connectionString: 'postgres://a:pw-child-2@h/db' }, 'lag is high');
    expectNoSecrets(text(), ['pw-child-1', 'pw-child-2']);
    expect(records()[0]).toMatchObject({
      level: 40,
      db: 'orders',
      region: 'local-b',
      provider: 'local',
      conn: { password: '[REDACTED]' },
    });
  });

  test('the level is honoured', () => {
    const { logger, records } = capture('warn');
    logger.info('not shown');
    logger.debug('not shown either');
    logger.error('shown');
    expect(records().map((r) => r.msg)).toEqual(['shown']);
  });

  test('PGPASSWORD, Authorization headers and passwords three levels down are redacted', () => {
    const { logger, text, records } = capture();
    logger.info(
      {
        PGPASSWORD: 'pgpass-top-1',
        child: { PGPASSWORD: 'pgpass-nested-2' },
        Authorization: 'Bearer auth-top-3',
        request: { headers: { Authorization: 'Bearer auth-nested-4', accept: 'json' } },
        fleet: { orders: { primary: { password: 'pw-three-5', host: 'db' } } },
      },
      'spawn',
    );
    expectNoSecrets(text(), ['pgpass-top-1', 'pgpass-nested-2', 'auth-top-3', 'auth-nested-4', 'pw-three-5']);
    expect(records()[0]).toMatchObject({
      PGPASSWORD: '[REDACTED]',
      child: { PGPASSWORD: '[REDACTED]' },
      Authorization: '[REDACTED]',
      request: { headers: { Authorization: '[REDACTED]', accept: 'json' } },
      fleet: { orders: { primary: { password: '[REDACTED]', host: 'db' } } },
    });
  });

  test('the redaction paths cover the keys the design names', () => {
    for (const key of [
      'password',
      '*.password',
      'connectionString',
      'token',
      'apiKey',
      'env.PGPASSWORD',
      'env.TEMPORAL_API_KEY',
    ]) {
      expect(REDACT_PATHS).toContain(key);
    }
  });
});

// Regressions of the old formatters.log, which round-tripped every record through JSON.stringify and
// a regex that could span fields: credentials are now scrubbed from the finished line (hooks.streamWrite).
describe('createLogger: errors, bindings and odd values', () => {
  test('an Error logged on its own keeps its message and stack, and its message is scrubbed', () => {
    const { logger, text, records } = capture();
    logger.error(new Error('restore failed: postgres://app:pw-err-1@db/orders refused'));
    expectNoSecrets(text(), ['pw-err-1']);
    const err = records()[0]!.err as { type?: string; message?: string; stack?: string };
    expect(err.type).toBe('Error');
    expect(err.message).toContain('restore failed');
    expect(err.stack).toContain('restore failed');
  });

  test('{ err } keeps the error (today it becomes {})', () => {
    const { logger, records } = capture();
    logger.error({ err: new Error('disk full') }, 'backup failed');
    expect(records()[0]!.err).toMatchObject({ type: 'Error', message: 'disk full' });
  });

  test('credentials in child-logger bindings are scrubbed', () => {
    const { logger, text } = capture();
    logger.child({ target: 'postgres://app:pw-binding-1@db/orders' }).info('connected');
    expectNoSecrets(text(), ['pw-binding-1']);
  });

  test('a URL followed by an address with @ does not swallow the next field', () => {
    const { logger, records } = capture();
    logger.info({ uiUrl: 'http://localhost:8233', owner: 'alice@corp.example' }, 'report');
    expect(records()[0]).toMatchObject({ uiUrl: 'http://localhost:8233', owner: 'alice@corp.example' });
  });

  test('a log call never throws, whatever it is given', () => {
    const { logger, records } = capture();
    const loop: Record<string, unknown> = { name: 'loop' };
    loop.self = loop;
    expect(() => logger.info({ loop }, 'circular')).not.toThrow();
    expect(() => logger.info({ a: 'x://u', b: '"c@d' }, 'quotes')).not.toThrow();
    expect(records()).toHaveLength(2);
  });

  test('a BigInt field does not throw', () => {
    const { logger, records } = capture();
    expect(() => logger.info({ walBytes: 12345678901234567890n }, 'lag')).not.toThrow();
    expect(records()).toHaveLength(1);
  });

  test('credentials in the stack of a nested error cause are scrubbed', () => {
    const { logger, text, records } = capture();
    const err = new Error('restore failed', {
      cause: new Error('connect postgres://app:pw-cause-1@db/orders: refused'),
    });
    logger.error({ err }, 'drill failed');
    expectNoSecrets(text(), ['pw-cause-1']);
    expect(JSON.stringify(records()[0]!.err)).toContain('postgres://app:[REDACTED]@db/orders');
  });

  test('a URL and a quote in neighbouring fields stay two fields, each unchanged', () => {
    const { logger, records } = capture();
    logger.info({ a: 'see http://h:1', b: '"x@y' }, 'neighbours');
    expect(records()[0]).toMatchObject({ a: 'see http://h:1', b: '"x@y' });
  });

  test('a URL with a password but no user name is scrubbed (redis://:pw@host)', () => {
    expect(scrubCredentials('redis://:pw-nouser-1@cache:6379')).toBe('redis://:[REDACTED]@cache:6379');
  });
});

describe('scrubCredentials', () => {
  test.each([
    ['postgres://user:s3cret@host/db', 'postgres://user:[REDACTED]@host/db'],
    [
      'postgresql://app:p%40ss@db.internal:5432/orders?sslmode=require',
      'postgresql://app:[REDACTED]@db.internal:5432/orders?sslmode=require',
    ],
    ['HTTPS://Admin:Hunter2@EXAMPLE.com', 'HTTPS://Admin:[REDACTED]@EXAMPLE.com'],
    ['git+ssh://deploy:k3y@git.example.com/repo.git', 'git+ssh://deploy:[REDACTED]@git.example.com/repo.git'],
    [
      'from postgres://a:x@h1/db to postgres://b:y@h2/db',
      'from postgres://a:[REDACTED]@h1/db to postgres://b:[REDACTED]@h2/db',
    ],
    ['line one postgres://a:x@h\nline two', 'line one postgres://a:[REDACTED]@h\nline two'],
    ['redis://:pw@cache:6379', 'redis://:[REDACTED]@cache:6379'],
    // The userinfo ends at the last @ before the host, so an unencoded @ in the password is covered.
    ['postgres://app:p@ss@db/orders', 'postgres://app:[REDACTED]@db/orders'],
    ['{"url":"postgres://a:x@h/db","owner":"b@c"}', '{"url":"postgres://a:[REDACTED]@h/db","owner":"b@c"}'],
  ])('%p -> %p', (input, expected) => {
    expect(scrubCredentials(input)).toBe(expected);
  });

  test.each([
    ['postgres://host:5432/db'],
    ['postgres://user@host/db'],
    ['backup of orders took 12s'],
    ['mail ops@example.com about it'],
    ['127.0.0.1:7233'],
    ['https://example.com/path?q=a:b@c'],
    ['{"uiUrl":"http://localhost:8233","owner":"alice@corp.example"}'],
    [''],
  ])('%p has no credentials and is unchanged', (input) => {
    expect(scrubCredentials(input)).toBe(input);
  });

  test('scrubbing is idempotent', () => {
    const once = scrubCredentials('postgres://user:s3cret@host/db');
    expect(scrubCredentials(once)).toBe(once);
  });
});
