// Payload encryption: every payload Lifeboat hands to Temporal (runbook inputs, activity arguments
// and results, reports, memos, summaries, failure messages) is sealed with AES-256-GCM before it
// leaves the process, so the server's database and a UI without the codec server hold ciphertext.
// The whole original Payload (its metadata too) is the plaintext; the key id rides in the clear
// metadata so rotation is "prepend a key": new data uses the first key, old data still opens.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inspect } from 'node:util';
import { METADATA_ENCODING_KEY, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
export const CIPHER_METADATA = 'encryption-cipher';
export const CIPHER = 'AES256-GCM';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A codec setting that cannot be used (keys, token, port, the codec server's address or origins): the message names the setting, the value or line, and what is expected. Never key material. */
export class CodecConfigError extends Error {
  override name = 'CodecConfigError';
}

/** A payload that cannot be decrypted (unknown key id, tampered or truncated data). */
export class PayloadDecryptError extends Error {
  override name = 'PayloadDecryptError';
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

const text = (bytes: Uint8Array | null | undefined): string | undefined =>
  bytes ? Buffer.from(bytes).toString('utf8') : undefined;

/**
 * AES-256-GCM over the serialized Payload, a random 12-byte IV per payload, the key id and cipher
 * name bound as associated data (a payload cannot be relabelled to another key). Data layout:
 * IV | ciphertext | 16-byte tag.
 */
export class AesGcmCodec implements PayloadCodec {
  constructor(private readonly keys: CodecKeys) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.seal(payload));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) =>
      text(payload.metadata?.[METADATA_ENCODING_KEY]) === ENCRYPTED_ENCODING ? this.open(payload) : payload,
    );
  }

  private seal(payload: Payload): Payload {
    const id = this.keys.encryptingId;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys.key(id)!, iv);
    cipher.setAAD(associatedData(id));
    const plaintext = temporal.api.common.v1.Payload.encode(payload).finish();
    const sealed = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: {
        [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING),
        [KEY_ID_METADATA]: Buffer.from(id),
        [CIPHER_METADATA]: Buffer.from(CIPHER),
      },
      data: sealed,
    };
  }

  private open(payload: Payload): Payload {
    const id = text(payload.metadata?.[KEY_ID_METADATA]);
    if (!id)
      throw new PayloadDecryptError(
        `an encrypted payload has no ${KEY_ID_METADATA} metadata; cannot tell which key sealed it`,
      );
    const cipherName = text(payload.metadata?.[CIPHER_METADATA]) ?? CIPHER;
    if (cipherName !== CIPHER)
      throw new PayloadDecryptError(
        `a payload sealed with key "${id}" uses cipher "${cipherName}"; Lifeboat reads only ${CIPHER}`,
      );
    const key = this.keys.key(id);
    if (!key) {
      throw new PayloadDecryptError(
        `a payload was encrypted with key "${id}", which this process does not have (it has ${this.keys.ids.map((k) => `"${k}"`).join(', ')} from ${this.keys.source}); ` +
          'add that key back to the key file (below the current first line) to read it',
      );
    }
    const data = Buffer.from(payload.data ?? []);
    if (data.length < IV_BYTES + TAG_BYTES)
      throw new PayloadDecryptError(
        `a payload sealed with key "${id}" is ${data.length} bytes, too short to be ${CIPHER} data`,
      );
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
    decipher.setAAD(associatedData(id));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new PayloadDecryptError(
        `a payload sealed with key "${id}" failed authentication: it was altered or corrupted, or the key under that id changed`,
      );
    }
    return temporal.api.common.v1.Payload.decode(plaintext);
  }
}

function associatedData(keyId: string): Buffer {
  return Buffer.from(`${CIPHER}:${keyId}`);
}

/**
 * What clients and workers pass as `dataConverter` when keys are configured (undefined: plain
 * payloads, as without a codec). Failure messages and stack traces are moved into an encoded
 * attribute (the failure converter module), since a database error can quote the data it choked on.
 */
export function lifeboatDataConverter(keys: CodecKeys | undefined): DataConverter | undefined {
  if (!keys) return undefined;
  return { payloadCodecs: [new AesGcmCodec(keys)], failureConverterPath: require.resolve('./failure-converter') };
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
