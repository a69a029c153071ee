// Payload encryption: every payload Lifeboat hands to Temporal (runbook inputs, activity arguments
// and results, reports, memos, summaries, failure messages) is sealed with AES-256-GCM before it
// leaves the process, so the server's database and a UI without the codec server hold ciphertext.
// The whole original Payload (its metadata too) is the plaintext; the key id rides in the clear
// metadata so rotation is "prepend a key": new data uses the first key, old data still opens.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { CodecKeys } from './codec-settings';

// The keys and settings (no Temporal SDK there, so that every command line can read them cheaply).
export { CodecConfigError, CodecKeys, codecSettings, newKeyLine, readPrivateFile } from './codec-settings';
export type { CodecSettings } from './codec-settings';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
export const CIPHER_METADATA = 'encryption-cipher';
export const CIPHER = 'AES256-GCM';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A payload that cannot be decrypted (unknown key id, tampered or truncated data). */
export class PayloadDecryptError extends Error {
  override name = 'PayloadDecryptError';
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
