// The one place a StoreSpec becomes an ObjectStore. A worker keeps one store (one SDK client, one
// connection pool) per distinct spec for its whole life.
import type { StoreSpec } from '../../workflows/types';
import { DirStore } from './dir-store';
import { GcsStore } from './gcs-store';
import { S3Store } from './s3-store';
import type { ObjectStore } from './store';

const stores = new Map<string, ObjectStore>();

export function openStore(spec: StoreSpec): ObjectStore {
  // Sorted fields: the same spec built in another order is the same store.
  const id = JSON.stringify(spec, Object.keys(spec).sort());
  let store = stores.get(id);
  if (!store) {
    store = newStore(spec);
    stores.set(id, store);
  }
  return store;
}

function newStore(spec: StoreSpec): ObjectStore {
  switch (spec.kind) {
    case 's3':
      return new S3Store(spec);
    case 'gcs':
      return new GcsStore(spec);
    case 'dir':
      return new DirStore(spec.path);
  }
}
