// One root pino logger. Secrets are redacted by key wherever they sit, and credentials embedded in
// connection URLs are scrubbed from every message and string field.
import pino, { type Logger } from 'pino';

export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'passfile',
  '*.passfile',
  'connectionString',
  '*.connectionString',
  'apiKey',
  '*.apiKey',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'headers.authorization',
  '*.headers.authorization',
  'env.PGPASSWORD',
  'env.TEMPORAL_API_KEY',
];

/** postgres://user:secret@host -> postgres://user:[REDACTED]@host, for any scheme. */
export function scrubCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]+):([^@\s]+)@/gi, '$1:[REDACTED]@');
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'lifeboat' },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => (typeof a === 'string' ? scrubCredentials(a) : a)) as Parameters<typeof method>);
        },
      },
      formatters: {
        log(object) {
          return JSON.parse(scrubCredentials(JSON.stringify(object))) as Record<string, unknown>;
        },
      },
    },
    destination,
  );
}
