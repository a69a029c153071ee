// Object storage for portable backups, behind one small interface: a directory, an S3 bucket or a
// GCS bucket. Keys are relative to the store's root (its prefix). Writes stream: no store ever holds
// a whole backup in memory, and no reader ever sees half an object (a rename or a completed upload
// publishes it).
import type { Readable } from 'node:stream';
import type { StoreSpec } from '../../workflows/types';

export interface ObjectStore {
  /** Where the store is, for messages and reports: file:///…, s3://bucket/prefix, gs://bucket/prefix. */
  readonly url: string;

  /** Streams `body` into `key`, replacing any object there; visible only once complete. */
  put(key: string, body: Readable, signal?: AbortSignal): Promise<void>;

  /** The object's bytes as a stream; throws ObjectNotFound. */
  get(key: string, signal?: AbortSignal): Promise<Readable>;

  /** Small text objects (manifests). */
  putText(key: string, text: string): Promise<void>;
  /** null when there is no such object. */
  getText(key: string): Promise<string | null>;

  /** Every key under `prefix` ('' for all), in no particular order. */
  list(prefix: string): Promise<string[]>;

  /** Deletes the keys; a missing key is not an error. */
  delete(keys: string[]): Promise<void>;
}

export class ObjectNotFound extends Error {
  override name = 'ObjectNotFound';
}

/** Key names Lifeboat writes: plain, no `..`, no leading slash. */
export function checkKey(key: string): string {
  if (
    !/^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(key) ||
    key.split('/').some((part) => part === '' || part === '.' || part === '..')
  ) {
    throw new Error(`object key ${JSON.stringify(key)} is not a plain relative name`);
  }
  return key;
}

/** A store's root joined with a key, for URLs and prefixes. */
export function joinKey(prefix: string, key: string): string {
  const root = prefix.replace(/^\/+|\/+$/g, '');
  return root ? `${root}/${key}` : key;
}

/** The store's address as a user would write it. */
export function storeUrl(spec: StoreSpec): string {
  if (spec.kind === 'dir') return `file://${spec.path}`;
  const root = spec.prefix.replace(/^\/+|\/+$/g, '');
  return `${spec.kind === 's3' ? 's3' : 'gs'}://${spec.bucket}${root ? `/${root}` : ''}`;
}

/**
 * What `list(prefix)` asks of a bucket store, as DirStore answers it: `prefix` names a key or a folder
 * of keys, never part of a name (`db` does not match `dbx/…`). The bucket is asked for `query`; each
 * object name it returns becomes a key relative to the store's root, or null when it is not in scope.
 */
export function listScope(storePrefix: string, prefix: string): { query: string; keyOf(name: string): string | null } {
  const root = joinKey(storePrefix, '');
  const under = prefix.replace(/\/+$/, '');
  if (under) checkKey(under);
  return {
    query: root + under,
    keyOf: (name) => {
      const key = name.slice(root.length);
      return !under || key === under || key.startsWith(`${under}/`) ? key : null;
    },
  };
}

/** A store in a bucket (S3, GCS): its root is `prefix` under the bucket. */
export type BucketSpec = Extract<StoreSpec, { kind: 's3' | 'gcs' }>;

/** What the bucket stores share: their address, and how a key becomes an object name under the root. */
export abstract class BucketStore {
  readonly url: string;

  constructor(protected readonly spec: BucketSpec) {
    this.url = storeUrl(spec);
  }

  /** The object name of `key` (checked) under the store's root. */
  protected key(key: string): string {
    return joinKey(this.spec.prefix, checkKey(key));
  }
}
