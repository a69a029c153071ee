// Portable backups: what crosses clouds. A pg_dump custom-format file and its manifest in a region's
// object store (S3, GCS or a directory), under `<database>/<backupId>/`. Any provider's database can
// be dumped into one (pg_dump reaches RDS, Cloud SQL and local servers alike) and any provider's
// instance restored from one, so a backup taken on one cloud is proven on the other.
//
// Integrity: the manifest holds the dump's sha256 and size and every table's rows and checksum. The
// manifest is written last (its presence marks a backup complete); every copy is hashed as it
// streams and published only when the hash matches; a restore downloads, hashes and compares before
// it touches the target.
import { createHash, randomInt } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, pipeline as streamPipeline, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ErrorType,
  type BackupManifest,
  type BackupRef,
  type CheckResult,
  type ProviderKind,
  type RegionSpec,
  type StoreSpec,
} from '../../workflows/types';
import { isVerdictOf, verdict } from '../errors';
import { loadAsRestoreRole, readToc } from '../pg/load-dump';
import { applyAccess, recreateRoles } from '../pg/access';
import { run } from '../pg/process';
import { quoteIdent, withClient, type PgConnection } from '../pg/sql';
import { processAlive, withToolEnv } from '../pg/tool-env';
import { privateDir, PRIVATE_FILE } from '../private-files';
import type { ActivityIo } from '../providers/provider';
import { assertServerCanLoad, dumpWithManifest, hashing, toolTooOld } from './logical-dump';
import { openStore } from './open-store';
import { ObjectNotFound, storeUrl, type ObjectStore } from './store';

const DUMP = 'dump.pgdump';
const MANIFEST = 'manifest.json';

export interface PortableConfig {
  pgBin: string;
  /** Where a restore stages the downloaded dump (pg_restore --jobs needs a seekable file). */
  workDir: string;
  /** Tests may hand in stores; otherwise each spec opens its own. */
  open?: (spec: StoreSpec) => ObjectStore;
}

/** How a restore treats a target database that already exists. */
export type RestoreTarget =
  /** A drill's scratch instance: whatever is there was left by an earlier attempt; start clean. */
  | { kind: 'scratch' }
  /**
   * A real DR instance: a database this run marked is redone; anybody else's is renamed aside, never
   * dropped, and the name it was kept under is returned.
   */
  | { kind: 'recovery'; marker: string; asideName: string };

export class PortableBackups {
  constructor(private readonly config: PortableConfig) {}

  /** pg_dump of the database `conn` reaches, streamed into the region's store with its manifest. */
  async create(
    conn: PgConnection,
    region: RegionSpec,
    source: ProviderKind,
    backupId: string,
    createdBy: string,
    io: ActivityIo,
  ): Promise<BackupRef> {
    const spec = storeOf(region);
    const store = this.store(spec);
    const prefix = keyOf(conn.database, backupId, '');
    const existing = await this.readManifest(store, conn.database, backupId).catch((err: Error) => {
      if (isVerdictOf(err, ErrorType.BackupNotFound)) return null;
      throw err;
    });
    if (existing) {
      io.logger.info(
        { backupId, store: store.url },
        'portable backup already complete from an earlier attempt; adopting it',
      );
      return refFor(region, spec, existing);
    }
    // Whatever a failed attempt left under this backup's prefix (no manifest: never listed) goes first.
    await store.delete(await store.list(prefix));
    const body = new PassThrough({ highWaterMark: 1 << 20 });
    const upload = store.put(keyOf(conn.database, backupId, DUMP), body, io.signal);
    // Either side failing stops the other: a failed upload would leave pg_dump blocked on a full pipe,
    // and a failed dump must not be published as a (short) object. Both settle before the rethrow,
    // so no upload of this attempt is still running when the next attempt starts.
    const dumped = dumpWithManifest(
      conn,
      this.config.pgBin,
      body,
      { backupId, database: conn.database, provider: source, sourceRegion: region.name, createdBy },
      io,
    );
    const [made, uploaded] = await Promise.allSettled([
      dumped.catch((err: Error) => {
        body.destroy(err);
        throw err;
      }),
      upload.catch((err: Error) => {
        body.destroy(err);
        throw err;
      }),
    ]);
    if (made.status === 'rejected') throw made.reason;
    if (uploaded.status === 'rejected') throw uploaded.reason;
    const manifest = made.value;
    await store.putText(keyOf(conn.database, backupId, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
    return refFor(region, spec, manifest);
  }

  async manifest(ref: BackupRef): Promise<BackupManifest> {
    return this.readManifest(this.store(storeOfRef(ref)), ref.database, ref.backupId);
  }

  /** Streams the stored dump through sha256 and compares it with the manifest. */
  async verify(ref: BackupRef, io: ActivityIo): Promise<BackupManifest> {
    const store = this.store(storeOfRef(ref));
    const manifest = await this.readManifest(store, ref.database, ref.backupId);
    const { sha256, sizeBytes } = await hashStream(await this.getDump(store, ref), io, 'sha256');
    checkAgainst(manifest, sha256, sizeBytes, `portable backup ${ref.backupId} in ${store.url}`);
    return manifest;
  }

  /**
   * Copies a backup into another region's store, store to store (S3 to GCS, a directory to S3, …),
   * streamed and hashed on the way; the copy's manifest is written only when the hash matches.
   * A complete copy with the same sha256 is adopted.
   */
  async copy(ref: BackupRef, to: RegionSpec, io: ActivityIo): Promise<BackupRef> {
    const from = this.store(storeOfRef(ref));
    const toSpec = storeOf(to);
    const dest = this.store(toSpec);
    if (dest.url === from.url) {
      throw verdict(
        ErrorType.InvalidInput,
        `region ${to.name} keeps its portable backups in ${dest.url}, the store the backup is in: a copy needs a store of its own`,
      );
    }
    const manifest = await this.readManifest(from, ref.database, ref.backupId);
    // Only "there is no (valid) copy" leads to replacing one; any other failure is the attempt's.
    const there = await this.readManifest(dest, ref.database, ref.backupId).catch((err: unknown) => {
      if (isVerdictOf(err, ErrorType.BackupNotFound) || isVerdictOf(err, ErrorType.BackupManifestInvalid)) return null;
      throw err;
    });
    if (there?.sha256 === manifest.sha256) {
      io.logger.info(
        { backupId: ref.backupId, to: dest.url },
        'copy already in place from an earlier attempt; adopting it',
      );
      return refFor(to, toSpec, there);
    }
    // A copy that is not complete and right is replaced: its manifest goes first, so it stops counting.
    await dest.delete([keyOf(ref.database, ref.backupId, MANIFEST), keyOf(ref.database, ref.backupId, DUMP)]);
    const hash = createHash('sha256');
    let bytes = 0;
    // pipeline, not pipe: a source that fails half way (a reset download) must fail the upload, not
    // go unheard (an unhandled 'error' event takes the whole worker down).
    const body = streamPipeline(
      await this.getDump(from, ref),
      hashing(hash, (n) => {
        bytes += n;
        io.heartbeat({ phase: 'copy', bytes, of: manifest.sizeBytes });
      }),
      () => undefined, // the error reaches `body`, and put rejects with it
    );
    await dest.put(keyOf(ref.database, ref.backupId, DUMP), body, io.signal);
    const sha256 = hash.digest('hex');
    if (sha256 !== manifest.sha256 || bytes !== manifest.sizeBytes) {
      await dest.delete([keyOf(ref.database, ref.backupId, DUMP)]);
      // A source that no longer matches its manifest is a verdict (verify throws it); otherwise the
      // damage happened in transit, and another attempt may well succeed.
      await this.verify(ref, io);
      throw new Error(
        `copy of ${ref.backupId} to ${dest.url} came out as sha256 ${sha256} (${bytes} bytes); expected ${manifest.sha256} (${manifest.sizeBytes} bytes)`,
      );
    }
    await dest.putText(keyOf(ref.database, ref.backupId, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
    return refFor(to, toSpec, manifest);
  }

  /** Complete portable backups of `database` (every database when omitted) in the region's store, newest first. */
  async list(region: RegionSpec, database?: string): Promise<BackupRef[]> {
    const spec = storeOf(region);
    const store = this.store(spec);
    const keys = await store.list(database ? `${database}/` : '');
    const refs: BackupRef[] = [];
    for (const key of keys) {
      const [db, backupId, file] = key.split('/');
      if (file !== MANIFEST || !db || !backupId) continue;
      const manifest = await this.readManifest(store, db, backupId).catch(() => null);
      if (manifest) refs.push(refFor(region, spec, manifest));
    }
    return refs.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.backupId.localeCompare(a.backupId));
  }

  /** The manifest goes first: a half-deleted backup is no longer listed as complete. */
  async delete(ref: BackupRef): Promise<void> {
    await this.store(storeOfRef(ref)).delete([
      keyOf(ref.database, ref.backupId, MANIFEST),
      keyOf(ref.database, ref.backupId, DUMP),
    ]);
  }

  /**
   * Restores into the database `conn` names, on any server: the dump is downloaded and checked
   * against the manifest first, so a damaged copy fails before the target is touched. Into a scratch
   * instance the dump is loaded as `lifeboat_restore`, the database's owner, never as the admin
   * (activities/pg/load-dump.ts), and `findings` names each object that could not be restored.
   */
  async restoreInto(
    ref: BackupRef,
    conn: PgConnection,
    target: RestoreTarget,
    io: ActivityIo,
  ): Promise<{ setAside: string | null; findings: CheckResult[] }> {
    const store = this.store(storeOfRef(ref));
    const manifest = await this.readManifest(store, ref.database, ref.backupId);
    privateDir(this.config.workDir);
    // pid first (a later worker removes what a dead one left), then a suffix no other attempt shares.
    const staged = join(
      this.config.workDir,
      `${ref.backupId}.${process.pid}.${Date.now()}${randomInt(1000, 10000)}.pgdump`,
    );
    const tooOld = (err: unknown): never => {
      throw toolTooOld(err, this.config.pgBin, `backup ${ref.backupId}`) ?? err;
    };
    try {
      const hash = createHash('sha256');
      let bytes = 0;
      await pipeline(
        await this.getDump(store, ref),
        hashing(hash, (n) => {
          bytes += n;
          io.heartbeat({ phase: 'download', bytes, of: manifest.sizeBytes });
        }),
        createWriteStream(staged, { mode: PRIVATE_FILE, flags: 'wx' }),
        { signal: io.signal },
      );
      const sha256 = hash.digest('hex');
      if (sha256 !== manifest.sha256 || bytes !== manifest.sizeBytes) {
        // Retryable: the copy was verified at rest just before, so this is most likely damage on the
        // way; a copy damaged at rest fails every attempt, and the step then fails with this message.
        throw new Error(
          `portable backup ${ref.backupId} as downloaded from ${store.url} does not match its manifest: sha256 ${sha256} (${bytes} bytes), expected ${manifest.sha256} (${manifest.sizeBytes} bytes); nothing was restored`,
        );
      }

      const admin = { ...conn, database: 'postgres' };
      await withClient(admin, (client) =>
        assertServerCanLoad(client, manifest, `the target at ${conn.host}:${conn.port}`),
      );
      if (target.kind === 'scratch') {
        // Both settle before either failure is thrown: nothing of this attempt is left running.
        const [toc, cleaned] = await Promise.allSettled([
          readToc(this.config.pgBin, staged, io.signal),
          cleanScratchDatabase(conn),
        ]);
        if (toc.status === 'rejected')
          throw toolTooOld(toc.reason, this.config.pgBin, `backup ${ref.backupId}`) ?? toc.reason;
        if (cleaned.status === 'rejected') throw cleaned.reason;
        const findings = await loadAsRestoreRole({
          pgBin: this.config.pgBin,
          file: staged,
          admin: conn,
          toc: toc.value,
          access: manifest,
          onRoles: (roles) =>
            io.logger.info(
              { created: roles.created, existing: roles.existing, withheld: roles.withheld },
              'roles of the backup',
            ),
          signal: io.signal,
          heartbeat: () => io.heartbeat({ phase: 'pg_restore' }),
        }).catch(tooOld);
        return { setAside: null, findings };
      }
      // A recovery target becomes the database's new home: it is loaded as the admin, with the
      // backup's roles made first and its owners and privileges given after (activities/pg/access.ts).
      const setAside = await prepareRecoveryDatabase(conn, target);
      const findings: CheckResult[] = [];
      if (manifest.roles?.length) {
        const made = await withClient(conn, (client) => recreateRoles(client, manifest.roles ?? []));
        io.logger.info(
          { created: made.created, existing: made.existing, withheld: made.withheld },
          'roles of the backup',
        );
        findings.push(...made.findings);
      }
      const beat = setInterval(() => io.heartbeat({ phase: 'pg_restore' }), 1000);
      try {
        await withToolEnv(conn, (env) =>
          run(
            join(this.config.pgBin, 'pg_restore'),
            ['--exit-on-error', '--no-owner', '--no-privileges', '--jobs=2', '--dbname', conn.database, staged],
            {
              env,
              signal: io.signal,
            },
          ),
        ).catch(tooOld);
      } finally {
        clearInterval(beat);
      }
      if (manifest.access) findings.push(...(await withClient(conn, (client) => applyAccess(client, manifest))));
      return { setAside, findings };
    } finally {
      rmSync(staged, { force: true });
    }
  }

  /**
   * Staged dumps are plaintext copies of a database: a worker killed mid-restore leaves one behind.
   * Each carries its worker's pid, so a later worker removes those whose worker is gone.
   */
  sweepOrphans(): string[] {
    if (!existsSync(this.config.workDir)) return [];
    const removed: string[] = [];
    for (const name of readdirSync(this.config.workDir)) {
      const pid = /\.(\d+)\.\d+\.pgdump$/.exec(name)?.[1];
      if (pid && !processAlive(Number(pid))) {
        rmSync(join(this.config.workDir, name), { force: true });
        removed.push(name);
      }
    }
    return removed;
  }

  private store(spec: StoreSpec): ObjectStore {
    return (this.config.open ?? openStore)(spec);
  }

  private async getDump(store: ObjectStore, ref: BackupRef): Promise<Readable> {
    try {
      return await store.get(keyOf(ref.database, ref.backupId, DUMP));
    } catch (err) {
      if (err instanceof ObjectNotFound)
        throw verdict(
          ErrorType.BackupNotFound,
          `portable backup ${ref.backupId} in ${store.url} has a manifest but no dump`,
        );
      throw err;
    }
  }

  private async readManifest(store: ObjectStore, database: string, backupId: string): Promise<BackupManifest> {
    const key = keyOf(database, backupId, MANIFEST);
    const text = await store.getText(key);
    if (text === null)
      throw verdict(ErrorType.BackupNotFound, `no portable backup ${backupId} of ${database} in ${store.url}`);
    let manifest: BackupManifest;
    try {
      manifest = JSON.parse(text) as BackupManifest;
    } catch (err) {
      throw verdict(
        ErrorType.BackupManifestInvalid,
        `manifest ${store.url}/${key} is not valid JSON: ${(err as Error).message}`,
      );
    }
    if (
      manifest.formatVersion !== 1 ||
      manifest.backupId !== backupId ||
      // The ref is built from the manifest: another database here would point a restore elsewhere.
      manifest.database !== database ||
      manifest.dumpFormat !== 'pg_dump-custom' ||
      !/^[0-9a-f]{64}$/.test(manifest.sha256) ||
      !Array.isArray(manifest.tables)
    ) {
      throw verdict(
        ErrorType.BackupManifestInvalid,
        `manifest ${store.url}/${key} does not describe portable backup ${backupId} of ${database} (format 1, pg_dump-custom, sha256, tables expected)`,
      );
    }
    return manifest;
  }
}

/** The region's store, or a verdict naming the plan setting that is missing. */
export function storeOf(region: RegionSpec): StoreSpec {
  if (!region.store)
    throw verdict(
      ErrorType.InvalidInput,
      `region ${region.name} has no store for portable backups; set regions.${region.name}.store in the plan`,
    );
  return region.store;
}

function storeOfRef(ref: BackupRef): StoreSpec {
  if (!ref.store)
    throw verdict(ErrorType.InvalidInput, `backup ${ref.backupId} is not a portable backup (it has no store)`);
  return ref.store;
}

function keyOf(database: string, backupId: string, file: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(backupId))
    throw verdict(ErrorType.InvalidInput, `backup id ${JSON.stringify(backupId)} is not a plain name`);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database))
    throw verdict(
      ErrorType.InvalidInput,
      `database name ${JSON.stringify(database)} cannot name portable backups (letters, digits and _ only)`,
    );
  return `${database}/${backupId}/${file}`;
}

function refFor(region: RegionSpec, spec: StoreSpec, manifest: BackupManifest): BackupRef {
  return {
    backupId: manifest.backupId,
    database: manifest.database,
    region: region.name,
    provider: manifest.provider,
    createdAt: manifest.createdAt,
    sizeBytes: manifest.sizeBytes,
    sha256: manifest.sha256,
    location: `${storeUrl(spec)}/${manifest.database}/${manifest.backupId}/${DUMP}`,
    store: spec,
    copyChecksSource: true,
  };
}

function checkAgainst(manifest: BackupManifest, sha256: string, sizeBytes: number, what: string): void {
  if (sha256 !== manifest.sha256 || sizeBytes !== manifest.sizeBytes) {
    throw verdict(
      ErrorType.BackupChecksumMismatch,
      `${what} does not match its manifest: sha256 ${sha256} (${sizeBytes} bytes), expected ${manifest.sha256} (${manifest.sizeBytes} bytes)`,
      { expected: manifest.sha256, actual: sha256 },
    );
  }
}

async function hashStream(
  body: Readable,
  io: ActivityIo,
  phase: string,
): Promise<{ sha256: string; sizeBytes: number }> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  const onAbort = (): void =>
    void body.destroy(io.signal.reason instanceof Error ? io.signal.reason : new Error('cancelled'));
  io.signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      sizeBytes += chunk.length;
      io.heartbeat({ phase, bytes: sizeBytes });
    }
  } finally {
    io.signal.removeEventListener('abort', onAbort);
  }
  return { sha256: hash.digest('hex'), sizeBytes };
}

/** A scratch database holding anything (a failed attempt's half restore) is dropped and made anew. */
async function cleanScratchDatabase(conn: PgConnection): Promise<void> {
  await withClient({ ...conn, database: 'postgres' }, async (client) => {
    await client.query(`drop database if exists ${quoteIdent(conn.database)} with (force)`);
    await client.query(`create database ${quoteIdent(conn.database)}`);
  });
}

/**
 * The recovery target's database: absent, it is created; marked by this run (an earlier attempt),
 * it is redone; anything else is renamed aside and kept: a failover never destroys data.
 */
async function prepareRecoveryDatabase(
  conn: PgConnection,
  target: Extract<RestoreTarget, { kind: 'recovery' }>,
): Promise<string | null> {
  return withClient({ ...conn, database: 'postgres' }, async (client) => {
    const { rows } = await client.query<{ marker: string | null }>(
      'select shobj_description(d.oid, $2) as marker from pg_database d where d.datname = $1',
      [conn.database, 'pg_database'],
    );
    const db = quoteIdent(conn.database);
    const asideExists = async () =>
      ((await client.query('select 1 from pg_database where datname = $1', [target.asideName])).rowCount ?? 0) > 0;
    if (rows.length > 0) {
      await client.query(
        'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
        [conn.database],
      );
      // Unmarked while this run's aside copy exists: an earlier attempt renamed the original, created
      // this one and died before marking it. It holds nothing but that attempt's work.
      if (rows[0]!.marker === target.marker || (await asideExists())) {
        await client.query(`drop database ${db} with (force)`);
      } else {
        await client.query(`alter database ${db} rename to ${quoteIdent(target.asideName)}`);
      }
    }
    await client.query(`create database ${db}`);
    await client.query(`comment on database ${db} is '${target.marker.replace(/'/g, "''")}'`);
    // Asked again (a retried attempt), the answer is the same: the aside database is still there.
    return (await asideExists()) ? target.asideName : null;
  });
}
