// One root pino logger. Secrets are redacted by key wherever they sit, and credentials embedded in
// connection URLs are scrubbed from the finished line, so every message, field, error and child
// binding is covered by one pass.
import pino, { type Logger } from 'pino';

export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  '*.*.*.password',
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
  'PGPASSWORD',
  '*.PGPASSWORD',
  // Node lower-cases incoming header names, but headers we build ourselves keep the case we wrote.
  'Authorization',
  'headers.authorization',
  '*.headers.authorization',
  'headers.Authorization',
  '*.headers.Authorization',
  'env.PGPASSWORD',
  'env.TEMPORAL_API_KEY',
];

// The userinfo ends at the last @ before the first / ? or #. Quotes and backslashes are excluded so
// that, run over a JSON line, a match never leaves the string it started in (a URL in one field and
// an e-mail address in the next must not merge). RFC 3986 userinfo has neither unencoded.
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s"\\]*):([^/?#\s"\\]+)@/gi;

/** postgres://user:secret@host -> postgres://user:[REDACTED]@host, for any scheme, also with no user. */
export function scrubCredentials(text: string): string {
  return text.replace(URL_CREDENTIALS, '$1:[REDACTED]@');
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'lifeboat' },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      // Explicit, because passing `serializers` at all replaces pino's defaults: errors keep type,
      // message and stack (plain JSON of an Error is `{}`).
      serializers: { err: pino.stdSerializers.err },
      hooks: {
        // The serialized line is the last place everything passes through, after pino has already
        // dealt with circular references, BigInt and printf arguments, so scrubbing here cannot throw.
        streamWrite: scrubCredentials,
      },
    },
    destination,
  );
}
