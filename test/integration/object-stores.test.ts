// One contract, three object stores: a directory, S3 and Cloud Storage (the last two against this
// run's moto_server and fake-gcs-server, through the real SDKs). Portable backups rely on exactly
// this: large objects stream in and out intact, a failed write leaves nothing a reader could take
// for a backup, and keys are plain relative names.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { CreateBucketCommand, HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { Storage } from '@google-cloud/storage';
import { DirStore } from '../../activities/portable/dir-store';
import { GcsStore } from '../../activities/portable/gcs-store';
import { PART_SIZE, S3Store } from '../../activities/portable/s3-store';
import { checkKey, ObjectNotFound, type ObjectStore } from '../../activities/portable/store';

const MiB = 1 << 20;
const BIG = 20 * MiB + 12_345;
const bucket = `lifeboat-stores-${process.pid}`;

interface Subject {
  title: string;
  setUp(): Promise<void>;
  /** A store of its own for one test: a fresh directory or a fresh prefix in the bucket. */
  open(name: string): ObjectStore;
  /** What only this store can show about a finished big upload, and about an abandoned one. */
  checkUpload?(key: string): Promise<void>;
  checkNothingPending?(): Promise<void>;
  tearDown(): Promise<void>;
}

function dirSubject(): Subject {
  let root = '';
  return {
    title: 'directory (a temporary directory on local disk)',
    setUp: async () => {
      root = mkdtempSync(join(tmpdir(), 'lifeboat-stores-'));
    },
    open: (name) => new DirStore(join(root, name)),
    tearDown: async () => rmSync(root, { recursive: true, force: true }),
  };
}

function s3Subject(): Subject {
  // The SDK reads AWS_ENDPOINT_URL and the test credentials the global setup left in the environment.
  const s3 = new S3Client({ region: 'us-east-1', forcePathStyle: true });
  return {
    title: 'S3 (moto: no IAM, no real durability)',
    setUp: async () => {
      expect(process.env.AWS_ENDPOINT_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    },
    open: (name) => new S3Store({ kind: 's3', bucket, prefix: `backups/${name}/`, awsRegion: 'us-east-1' }),
    checkUpload: async (key) => {
      // A multipart object's ETag ends in its number of parts.
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(head.ETag).toMatch(new RegExp(`-${Math.ceil(BIG / PART_SIZE)}"$`));
      expect(head.ContentLength).toBe(BIG);
    },
    checkNothingPending: async () => {
      const pending = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      expect(pending.Uploads ?? []).toEqual([]);
    },
    tearDown: async () => s3.destroy(),
  };
}

function gcsSubject(): Subject {
  // The library reads STORAGE_EMULATOR_HOST, left by the global setup; creating a bucket names a project.
  const storage = new Storage({ projectId: 'lifeboat-test' });
  return {
    title: 'GCS (fake-gcs-server: no IAM, no real durability)',
    setUp: async () => {
      expect(process.env.STORAGE_EMULATOR_HOST).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/storage\/v1$/);
      await storage.createBucket(bucket);
    },
    open: (name) => new GcsStore({ kind: 'gcs', bucket, prefix: `backups/${name}` }),
    checkUpload: async (key) => {
      const [metadata] = await storage.bucket(bucket).file(key).getMetadata();
      expect(Number(metadata.size)).toBe(BIG);
    },
    // An abandoned resumable upload is destroyed, but the library does not cancel the chunk request it
    // has in flight: when that is answered, its handler runs once more (and then waits for data that
    // never comes). Let it be answered here, not after this file's environment is gone, where it
    // throws into the next test file (seen on Node 24).
    checkNothingPending: () => new Promise((resolve) => setTimeout(resolve, 3000)),
    tearDown: async () => undefined,
  };
}

/**
 * `size` random bytes in 1 MiB chunks, made as they are read. `failAt` errors the stream once that
 * much has been read; `onRead` sees the running count.
 */
function randomSource(
  size: number,
  options: { failAt?: number; onRead?: (bytes: number) => void } = {},
): { stream: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  let sent = 0;
  const stream = new Readable({
    read() {
      if (options.failAt !== undefined && sent >= options.failAt) {
        this.destroy(new Error(`source failed after ${sent} bytes`));
      } else if (sent >= size) {
        this.push(null);
      } else {
        const chunk = randomBytes(Math.min(MiB, size - sent));
        sent += chunk.length;
        hash.update(chunk);
        options.onRead?.(sent);
        this.push(chunk);
      }
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe.each([dirSubject(), s3Subject(), gcsSubject()])('object store: $title', (subject) => {
  beforeAll(() => subject.setUp());
  afterAll(() => subject.tearDown());

  test('a 20 MiB random object streams in and reads back byte for byte', async () => {
    const store = subject.open('big');
    const source = randomSource(BIG);
    await store.put('base/orders.dump', source.stream);
    expect(await sha256Of(await store.get('base/orders.dump'))).toBe(source.sha256());
    await subject.checkUpload?.('backups/big/base/orders.dump');
  });

  test('small text objects go in and come back', async () => {
    const store = subject.open('text');
    const manifest = JSON.stringify({ database: 'orders', tables: { 'public.orders': 42 }, note: 'ünïcode ✓' });
    await store.putText('base/manifest.json', manifest);
    await store.putText('top.txt', '');
    expect(await store.getText('base/manifest.json')).toBe(manifest);
    expect(await store.getText('top.txt')).toBe('');
    expect(await sha256Of(await store.get('base/manifest.json'))).toBe(
      createHash('sha256').update(manifest).digest('hex'),
    );
  });

  test('a missing key: getText is null, get throws ObjectNotFound', async () => {
    const store = subject.open('missing');
    expect(await store.getText('no/such.json')).toBeNull();
    await expect(store.get('no/such.dump')).rejects.toBeInstanceOf(ObjectNotFound);
    await expect(store.get('no/such.dump')).rejects.toThrow(`no object no/such.dump in ${store.url}`);
  });

  test('a put replaces the object there', async () => {
    const store = subject.open('replace');
    await store.put('obj', Readable.from([Buffer.from('first version, longer than the second')]));
    await store.put('obj', Readable.from([Buffer.from('second')]));
    expect(await store.getText('obj')).toBe('second');
    await store.putText('obj', 'third');
    expect(await store.getText('obj')).toBe('third');
    expect(await store.list('')).toEqual(['obj']);
  });

  test('list gives keys relative to the store, under a folder or for the whole store', async () => {
    const store = subject.open('list');
    const keys = ['db/a/1.dump', 'db/a/manifest.json', 'db/b/1.dump', 'dbx/other', 'top'];
    for (const key of keys) await store.putText(key, key);
    expect((await store.list('')).sort()).toEqual(keys);
    expect((await store.list('db/a')).sort()).toEqual(['db/a/1.dump', 'db/a/manifest.json']);
    expect((await store.list('db/a/')).sort()).toEqual(['db/a/1.dump', 'db/a/manifest.json']);
    // A folder, not a name prefix: db does not take in dbx.
    expect((await store.list('db')).sort()).toEqual(['db/a/1.dump', 'db/a/manifest.json', 'db/b/1.dump']);
    expect(await store.list('top')).toEqual(['top']);
    expect(await store.list('nothing/here')).toEqual([]);
    expect(await subject.open('list-empty').list('')).toEqual([]);
  });

  test('delete removes the keys; a missing key is no error', async () => {
    const store = subject.open('delete');
    for (const key of ['x/1', 'x/2', 'y']) await store.putText(key, key);
    await store.delete(['x/1', 'y', 'never/was']);
    expect(await store.list('')).toEqual(['x/2']);
    expect(await store.getText('x/1')).toBeNull();
    await store.delete(['x/2']);
    expect(await store.list('')).toEqual([]);
  });

  test.each([
    ['half-way through a multi-part object', BIG, 10 * MiB],
    ['inside what would be a single-part object', 3 * MiB, MiB],
  ])('a source that fails %s: put rejects and nothing is visible', async (_case, size, failAt) => {
    const store = subject.open(`failed-${size}`);
    await expect(store.put('base/orders.dump', randomSource(size, { failAt }).stream)).rejects.toThrow(
      `source failed after ${failAt} bytes`,
    );
    expect(await store.list('')).toEqual([]);
    expect(await store.getText('base/orders.dump')).toBeNull();
    await expect(store.get('base/orders.dump')).rejects.toBeInstanceOf(ObjectNotFound);
    await subject.checkNothingPending?.();
  });

  test('an aborted put rejects and leaves nothing visible', async () => {
    const store = subject.open('aborted');
    const abort = new AbortController();
    const source = randomSource(200 * MiB, { onRead: (bytes) => bytes >= 12 * MiB && abort.abort() });
    await expect(store.put('base/orders.dump', source.stream, abort.signal)).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(await store.list('')).toEqual([]);
    expect(await store.getText('base/orders.dump')).toBeNull();
    await subject.checkNothingPending?.();
  });

  test.each(['../x', '/abs', 'a//b'])('the key %j is refused', async (key) => {
    const store = subject.open('keys');
    expect(() => checkKey(key)).toThrow(`object key ${JSON.stringify(key)} is not a plain relative name`);
    await expect(store.putText(key, 'x')).rejects.toThrow('is not a plain relative name');
    await expect(store.put(key, Readable.from(['x']))).rejects.toThrow('is not a plain relative name');
    await expect(store.getText(key)).rejects.toThrow('is not a plain relative name');
    await expect(store.get(key)).rejects.toThrow('is not a plain relative name');
  });
});
