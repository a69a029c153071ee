// The manifest of a managed-database backup (an RDS snapshot, a Cloud SQL backup run), kept IN the
// database: those platforms' backups are opaque volumes with no room for Lifeboat's manifest beside
// them. It is written in a transaction that commits before the platform is asked for the backup, so
// every backup, copy and restore carries its own; the platform's own metadata (tags, description)
// carries the manifest's digest, which proves the restored manifest is the one for that backup.
import { createHash } from 'node:crypto';
import type { Client } from 'pg';
import { ErrorType, type BackupManifest, type ProviderKind, type TableStats } from '../../workflows/types';
import { verdict } from '../errors';
import { accessDigestForm, captureAccess } from '../pg/access';
import { allTableStats, largeObjectStats, markUnlogged, readableOrThrow, sequenceStats } from '../pg/digest';
import { listTables, newestCanary, serverVersion, withClient, type PgConnection } from '../pg/sql';
import type { ActivityIo } from './provider';

const MANIFEST_DDL = `
  create schema if not exists lifeboat;
  create table if not exists lifeboat.backup_manifest (
    backup_id text primary key,
    manifest jsonb not null,
    written_at timestamptz not null default clock_timestamp()
  )`;

/** Lifeboat's own bookkeeping table changes with every backup: it is never part of a manifest. */
const MANIFEST_TABLE = '"lifeboat"."backup_manifest"';

/**
 * Reads the primary's tables and newest canary and stores that manifest in the database. The backup
 * is taken moments later; a table written in between will differ from its manifest entry.
 */
export async function captureManifest(
  client: Client,
  meta: {
    backupId: string;
    createdBy: string;
    database: string;
    sourceRegion: string;
    provider: ProviderKind;
    dumpFormat: BackupManifest['dumpFormat'];
  },
  io: ActivityIo,
): Promise<BackupManifest> {
  await client.query(MANIFEST_DDL);
  await client.query('begin isolation level repeatable read');
  try {
    const version = await serverVersion(client);
    const tables = (await listTables(client)).filter((t) => t !== MANIFEST_TABLE);
    const read = await allTableStats([client], tables, {
      onTable: (done) => io.heartbeat({ phase: 'table checksums', done }),
    });
    const fail = (m: string) => verdict(ErrorType.AccessDenied, `backup ${meta.backupId} of ${meta.database}: ${m}`);
    const stats: TableStats[] = await markUnlogged(client, readableOrThrow(read, fail), tables);
    const sequences = await sequenceStats(client);
    const largeObjects = await largeObjectStats(client);
    const { roles, access } = await captureAccess(client);
    const manifest: BackupManifest = {
      formatVersion: 1,
      backupId: meta.backupId,
      database: meta.database,
      provider: meta.provider,
      sourceRegion: meta.sourceRegion,
      createdAt: new Date().toISOString(),
      createdBy: meta.createdBy,
      dumpFormat: meta.dumpFormat,
      serverVersion: version.version,
      serverVersionNum: version.num,
      sizeBytes: 0,
      sha256: '',
      tables: stats,
      newestCanary: await newestCanary(client),
      sequences,
      largeObjects,
      roles,
      access,
    };
    manifest.sha256 = manifestDigest(manifest);
    await client.query(
      `insert into lifeboat.backup_manifest (backup_id, manifest) values ($1, $2)
         on conflict (backup_id) do update set manifest = excluded.manifest, written_at = clock_timestamp()`,
      [meta.backupId, JSON.stringify(manifest)],
    );
    await client.query('commit');
    return manifest;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}

/** The manifest a restored database holds for `backupId`, checked against the digest the platform kept. */
export async function readRestoredManifest(
  conn: PgConnection,
  backupId: string,
  expectedDigest: string,
): Promise<BackupManifest> {
  return withClient(conn, async (client) => {
    const { rows } = await client
      .query<{ manifest: BackupManifest }>('select manifest from lifeboat.backup_manifest where backup_id = $1', [
        backupId,
      ])
      .catch((err: { code?: string }) => {
        if (err.code === '42P01') return { rows: [] }; // no manifest table at all
        throw err;
      });
    const stored = rows[0]?.manifest;
    if (!stored)
      throw verdict(
        ErrorType.BackupManifestInvalid,
        `the database restored from ${backupId} holds no manifest for it (lifeboat.backup_manifest)`,
      );
    if (manifestDigest(stored) !== expectedDigest) {
      throw verdict(
        ErrorType.BackupManifestInvalid,
        `the manifest inside ${backupId} does not match the digest the platform kept for it (${expectedDigest})`,
      );
    }
    return stored;
  });
}

/**
 * The digest of what a manifest says about the data (its own sha256 field left out). Built from
 * arrays, not objects: PostgreSQL's jsonb reorders object keys, and the digest must survive that.
 */
export function manifestDigest(manifest: BackupManifest): string {
  const { backupId, database, serverVersionNum, tables, newestCanary: canary, sequences, largeObjects } = manifest;
  // What later manifests added is appended only where present, each part named: an older
  // manifest's digest is unchanged.
  const canonical: unknown[] = [
    backupId,
    database,
    serverVersionNum,
    tables.map((t) => [
      t.table,
      t.rows,
      t.checksum,
      t.algorithm ?? null,
      ...(t.textColumns ? [t.textColumns] : []),
      ...(t.unlogged ? [true] : []),
    ]),
    canary ? [canary.id, canary.writtenAt] : null,
  ];
  if (sequences)
    canonical.push([
      'sequences',
      sequences.map((q) => [q.sequence, q.lastValue, q.isCalled, q.increment, q.unreadable ?? null]),
    ]);
  if (largeObjects)
    canonical.push([
      'largeObjects',
      'unreadable' in largeObjects
        ? [largeObjects.unreadable]
        : [largeObjects.count, largeObjects.bytes, largeObjects.checksum],
    ]);
  if (manifest.roles || manifest.access) canonical.push(['access', accessDigestForm(manifest)]);
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex');
}
