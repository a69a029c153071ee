// The payload codec's keys and settings, read from the environment at every start (loadEnv): the
// key file's format, its permissions check and the codec server's port and token. Nothing here loads
// the Temporal SDK, so a command that never touches a payload (plan validate, --help) starts without
// it; the codec itself (codec.ts) re-exports all of this.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inspect } from 'node:util';

const KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A codec setting that cannot be used (keys, token, port, the codec server's address or origins): the message names the setting, the value or line, and what is expected. Never key material. */
export class CodecConfigError extends Error {
  override name = 'CodecConfigError';
}

/**
 * The keys this process holds: the first encrypts, all decrypt. Printing, logging or JSON-encoding
 * it shows the ids and where they came from, never the key bytes.
 */
export class CodecKeys {
  private constructor(
    private readonly keys: ReadonlyMap<string, Buffer>,
    /** The id new payloads are encrypted with. */
    readonly encryptingId: string,
    /** Where the keys came from (a file path or an environment variable's name), for error messages. */
    readonly source: string,
  ) {}

  /** Lines of `<key-id> <base64 of 32 bytes>`; blank lines and `#` comments are skipped; the first key encrypts. */
  static parse(text: string, source: string): CodecKeys {
    const keys = new Map<string, Buffer>();
    text.split(/\r?\n/).forEach((raw, index) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const where = `${source} line ${index + 1}`;
      const fields = line.split(/\s+/);
      if (fields.length !== 2)
        throw new CodecConfigError(`${where}: expected "<key-id> <base64 key>" (two fields), got ${fields.length}`);
      const [id, encoded] = fields as [string, string];
      addKey(keys, id, encoded, where);
    });
    const first = keys.keys().next();
    if (first.done)
      throw new CodecConfigError(
        `${source} holds no key; expected lines of "<key-id> <base64 of 32 random bytes>" (make one with: echo "k1 $(openssl rand -base64 32)")`,
      );
    return new CodecKeys(keys, first.value, source);
  }

  /** A key file, refused when group or others may read it. */
  static fromFile(path: string): CodecKeys {
    return CodecKeys.parse(readPrivateFile(path, 'codec key file'), path);
  }

  /** One key from a single value `<key-id>:<base64>` (LIFEBOAT_CODEC_KEY). */
  static fromValue(value: string, source: string): CodecKeys {
    const colon = value.indexOf(':');
    if (colon < 0) throw new CodecConfigError(`${source}: expected "<key-id>:<base64 of 32 bytes>" (no ":" found)`);
    const id = value.slice(0, colon).trim();
    const keys = new Map<string, Buffer>();
    addKey(keys, id, value.slice(colon + 1).trim(), source);
    return new CodecKeys(keys, id, source);
  }

  get ids(): string[] {
    return [...this.keys.keys()];
  }

  key(id: string): Buffer | undefined {
    return this.keys.get(id);
  }

  toJSON(): { source: string; ids: string[]; encryptingId: string } {
    return { source: this.source, ids: this.ids, encryptingId: this.encryptingId };
  }

  [inspect.custom](): string {
    return `CodecKeys { source: ${this.source}, ids: [${this.ids.join(', ')}] }`;
  }

  toString(): string {
    return this[inspect.custom]();
  }
}

function addKey(keys: Map<string, Buffer>, id: string, encoded: string, where: string): void {
  if (!KEY_ID.test(id))
    throw new CodecConfigError(
      `${where}: key id "${id}" is not valid; expected 1-64 of letters, digits, ".", "_", "-", starting with a letter or digit`,
    );
  if (keys.has(id)) throw new CodecConfigError(`${where}: key id "${id}" appears twice; each key needs its own id`);
  if (!BASE64.test(encoded))
    throw new CodecConfigError(
      `${where}: the key of "${id}" is not base64; expected base64 of 32 random bytes (openssl rand -base64 32)`,
    );
  const key = Buffer.from(encoded, 'base64');
  if (key.length !== KEY_BYTES)
    throw new CodecConfigError(
      `${where}: the key of "${id}" is ${key.length} bytes; AES-256 needs exactly ${KEY_BYTES} (openssl rand -base64 32)`,
    );
  keys.set(id, key);
}

/** Reads a file that holds a secret, refusing it when group or others have any access to it. */
export function readPrivateFile(path: string, what: string): string {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch (err) {
    throw new CodecConfigError(
      `${what} ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  if (mode & 0o077) {
    throw new CodecConfigError(
      `${what} ${path} has mode 0${mode.toString(8)}; it must not be open to group or others (expected 0600): chmod 600 ${path}`,
    );
  }
  return readFileSync(path, 'utf8');
}

/** A fresh key line for a new key file: `<id> <base64>`. */
export function newKeyLine(id: string): string {
  if (!KEY_ID.test(id)) throw new CodecConfigError(`key id "${id}" is not valid`);
  return `${id} ${randomBytes(KEY_BYTES).toString('base64')}`;
}

/** The codec settings of LifeboatEnv. */
export interface CodecSettings {
  /** LIFEBOAT_CODEC_KEYS_FILE, LIFEBOAT_CODEC_KEY, else `<home>/codec-keys` when it exists; none: payloads stay plain. */
  keys?: CodecKeys;
  /** Where the key file `lifeboat dev up` makes (and the fallback above) lives. */
  defaultKeyFile: string;
  /** The codec server's port (LIFEBOAT_CODEC_PORT, default 8234). */
  port: number;
  /** Bearer token the codec server requires (LIFEBOAT_CODEC_SERVER_TOKEN or the file LIFEBOAT_CODEC_SERVER_TOKEN_FILE). */
  serverToken?: string;
}

/** Reads the codec settings from an environment (loadEnv passes its own). */
export function codecSettings(env: NodeJS.ProcessEnv, home: string): CodecSettings {
  const defaultKeyFile = join(home, 'codec-keys');
  const file = env.LIFEBOAT_CODEC_KEYS_FILE || undefined;
  const value = env.LIFEBOAT_CODEC_KEY || undefined;
  if (file && value)
    throw new CodecConfigError(
      'LIFEBOAT_CODEC_KEYS_FILE and LIFEBOAT_CODEC_KEY are both set; set one (a key file holds several keys for rotation)',
    );
  const keys = file
    ? CodecKeys.fromFile(resolve(file))
    : value
      ? CodecKeys.fromValue(value, 'LIFEBOAT_CODEC_KEY')
      : existsSync(defaultKeyFile)
        ? CodecKeys.fromFile(defaultKeyFile)
        : undefined;
  const rawPort = env.LIFEBOAT_CODEC_PORT || '8234';
  const port = /^\d+$/.test(rawPort) ? Number(rawPort) : NaN;
  if (!(port >= 1 && port <= 65535))
    throw new CodecConfigError(`LIFEBOAT_CODEC_PORT=${rawPort} is not a port; expected an integer from 1 to 65535`);
  const token = env.LIFEBOAT_CODEC_SERVER_TOKEN || undefined;
  const tokenFile = env.LIFEBOAT_CODEC_SERVER_TOKEN_FILE || undefined;
  if (token && tokenFile)
    throw new CodecConfigError(
      'LIFEBOAT_CODEC_SERVER_TOKEN and LIFEBOAT_CODEC_SERVER_TOKEN_FILE are both set; set one',
    );
  const serverToken = tokenFile ? readPrivateFile(resolve(tokenFile), 'codec server token file').trim() : token;
  if (serverToken !== undefined && serverToken.length < 16) {
    throw new CodecConfigError(
      `the codec server token (${tokenFile ?? 'LIFEBOAT_CODEC_SERVER_TOKEN'}) is ${serverToken.length} characters; expected at least 16 (openssl rand -hex 32)`,
    );
  }
  return { keys, defaultKeyFile, port, serverToken };
}
