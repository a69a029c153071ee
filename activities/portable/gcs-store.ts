// A Cloud Storage bucket (or a prefix in one) as an object store. A put is a resumable upload sent
// in 8 MiB chunks: a failed chunk is sent again, not the whole backup, and the object is created only
// when the last chunk lands, so an upload that fails or is aborted leaves nothing visible (GCS drops
// the unfinished session after a week). The library checks a CRC32C of what it sent, and of what a
// full read returns.
//
// Credentials are Application Default Credentials. STORAGE_EMULATOR_HOST (an emulator's address) is
// honoured by the library itself, which then sends no credentials; see emulatorOptions.
import { addAbortSignal, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Storage, type Bucket, type StorageOptions } from '@google-cloud/storage';
import type { StoreSpec } from '../../workflows/types';
import { BucketStore, listScope, ObjectNotFound, type ObjectStore } from './store';

/** Resumable chunks must be multiples of 256 KiB; one chunk is all a put holds in memory. */
export const CHUNK_SIZE = 8 << 20;

type GcsSpec = Extract<StoreSpec, { kind: 'gcs' }>;

export class GcsStore extends BucketStore implements ObjectStore {
  private readonly bucket: Bucket;

  constructor(spec: GcsSpec, storage: Storage = new Storage(emulatorOptions())) {
    super(spec);
    this.bucket = storage.bucket(spec.bucket);
  }

  async put(key: string, body: Readable, signal?: AbortSignal): Promise<void> {
    const upload = this.bucket
      .file(this.key(key))
      .createWriteStream({ resumable: true, chunkSize: CHUNK_SIZE, validation: 'crc32c' });
    await pipeline(body, upload, ...(signal ? [{ signal }] : []));
  }

  async get(key: string, signal?: AbortSignal): Promise<Readable> {
    const file = this.bucket.file(this.key(key));
    // A read stream reports a missing object only once read: ask first, so get() itself throws.
    try {
      await file.getMetadata();
    } catch (err) {
      if (isMissing(err)) throw new ObjectNotFound(`no object ${key} in ${this.url}`);
      throw err;
    }
    const stream = file.createReadStream({ validation: 'crc32c' });
    return signal ? addAbortSignal(signal, stream) : stream;
  }

  async putText(key: string, text: string): Promise<void> {
    await this.bucket
      .file(this.key(key))
      .save(text, { resumable: false, validation: 'crc32c', contentType: 'text/plain; charset=utf-8' });
  }

  async getText(key: string): Promise<string | null> {
    try {
      const [bytes] = await this.bucket.file(this.key(key)).download({ validation: 'crc32c' });
      return bytes.toString('utf8');
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const scope = listScope(this.spec.prefix, prefix);
    // autoPaginate (the default) follows every page token.
    const [files] = await this.bucket.getFiles({ prefix: scope.query });
    return files.map((file) => scope.keyOf(file.name)).filter((key): key is string => key !== null);
  }

  async delete(keys: string[]): Promise<void> {
    for (const key of keys) await this.bucket.file(this.key(key)).delete({ ignoreNotFound: true });
  }
}

/**
 * The only place the emulator shows. The library takes STORAGE_EMULATOR_HOST verbatim as the root of
 * the JSON API, so for fake-gcs-server it must be http://HOST:PORT/storage/v1; it would put the
 * upload API (/upload/storage/v1/…) under that same path, where it is not. Uploads get the
 * emulator's origin instead. Empty when the variable is unset (production) or has no path.
 */
function emulatorOptions(): StorageOptions {
  const emulator = process.env.STORAGE_EMULATOR_HOST;
  if (!emulator || !/^https?:\/\//.test(emulator)) return {};
  const url = new URL(emulator);
  return url.pathname.replace(/\/+$/, '') ? { apiEndpoint: url.origin } : {};
}

function isMissing(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 404;
}
