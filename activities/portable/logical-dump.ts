// A logical backup of one database with its manifest: pg_dump (custom format) under one exported
// snapshot, and each table's rows and checksum read in that same snapshot, so the manifest says
// exactly what the dump holds. The local provider keeps it in a file; portable backups stream it
// into object storage. Any server a PgConnection reaches will do, local or managed.
import { createHash, type Hash } from 'node:crypto';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { ErrorType, type BackupManifest, type ProviderKind } from '../../workflows/types';
import type { Client } from 'pg';
import { captureAccess } from '../pg/access';
import { CommandFailed, runPiped } from '../pg/process';
import { verdict } from '../errors';
import { allTableStats, largeObjectStats, markUnlogged, readableOrThrow, sequenceStats } from '../pg/digest';
import { listTables, newestCanary, serverVersion, withClient, type PgConnection } from '../pg/sql';
import { withToolEnv } from '../pg/tool-env';
import type { ActivityIo } from '../providers/provider';

export interface DumpIdentity {
  backupId: string;
  /** The PostgreSQL database dumped (conn.database). */
  database: string;
  provider: ProviderKind;
  sourceRegion: string;
  createdBy: string;
}

/**
 * Dumps `conn.database` into `sink`, hashing as the bytes stream by, and returns the manifest. The
 * sink is ended when the dump ends; the caller decides when the bytes count as stored.
 */
export async function dumpWithManifest(
  conn: PgConnection,
  pgBin: string,
  sink: NodeJS.WritableStream,
  who: DumpIdentity,
  io: ActivityIo,
): Promise<BackupManifest> {
  return withClient(conn, async (client) => {
    // One exported snapshot: pg_dump and the statistics below see exactly the same data.
    await client.query('begin isolation level repeatable read read only');
    const snapshot = (await client.query<{ id: string }>('select pg_export_snapshot() as id')).rows[0]!.id;
    // The backup holds the data as of its snapshot: that moment, not the dump's end, is its age.
    const snapshotAt = new Date().toISOString();
    const version = await serverVersion(client);
    const tables = await listTables(client);
    const canary = await newestCanary(client);
    const { roles, access } = await captureAccess(client);

    // The dump and the statistics run side by side; Promise.all owns both from the start, so a
    // failing dump can never become an unhandled rejection while the statistics are still running.
    // Sequences are read first, before pg_dump reads them: they are not transactional, so a busy
    // one can only have moved on (never back) by the time the dump holds it.
    const sequences = await sequenceStats(client);
    const [{ sha256, sizeBytes }, [stats, largeObjects]] = await Promise.all([
      dump(conn, pgBin, snapshot, version.num, sink, io),
      withClient(conn, async (helper) => {
        await helper.query('begin isolation level repeatable read read only');
        await helper.query(`set transaction snapshot '${snapshot.replace(/'/g, "''")}'`);
        const read = await allTableStats([client, helper], tables);
        return [read, await largeObjectStats(helper)] as const;
      }),
    ]);
    const tableStats = await markUnlogged(
      client,
      readableOrThrow(stats, (m) => verdict(ErrorType.AccessDenied, `backup ${who.backupId} of ${who.database}: ${m}`)),
      tables,
    );
    await client.query('commit');
    return {
      formatVersion: 1,
      backupId: who.backupId,
      database: who.database,
      provider: who.provider,
      sourceRegion: who.sourceRegion,
      createdAt: snapshotAt,
      createdBy: who.createdBy,
      dumpFormat: 'pg_dump-custom',
      serverVersion: version.version,
      serverVersionNum: version.num,
      sizeBytes,
      sha256,
      tables: tableStats,
      newestCanary: canary,
      sequences,
      largeObjects,
      roles,
      access,
    } satisfies BackupManifest;
  });
}

async function dump(
  conn: PgConnection,
  pgBin: string,
  snapshot: string,
  serverVersionNum: number,
  sink: NodeJS.WritableStream,
  io: ActivityIo,
): Promise<{ sha256: string; sizeBytes: number }> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  await withToolEnv(conn, (env) =>
    runPiped(
      join(pgBin, 'pg_dump'),
      ['--format=custom', `--compress=${dumpCompression(serverVersionNum)}`, `--snapshot=${snapshot}`, conn.database],
      { env, signal: io.signal },
      hashing(hash, (n) => {
        sizeBytes += n;
        io.heartbeat({ phase: 'pg_dump', bytes: sizeBytes });
      }),
      sink,
    ).catch((err: unknown) => {
      throw toolTooOld(err, pgBin) ?? err;
    }),
  );
  return { sha256: hash.digest('hex'), sizeBytes };
}

/** pg_restore cannot load a dump into an older server: a verdict before anything is touched. */
export async function assertServerCanLoad(client: Client, manifest: BackupManifest, where: string): Promise<void> {
  const version = await serverVersion(client);
  if (manifest.serverVersionNum > version.num) {
    throw verdict(
      ErrorType.ServerVersionTooOld,
      `backup ${manifest.backupId} was taken from PostgreSQL ${manifest.serverVersion}; ${where} runs ${version.version}, and pg_restore cannot load a dump into an older server`,
    );
  }
}

/**
 * pg_dump older than the server, or pg_restore older than the dump's format: no retry changes that,
 * the worker's PostgreSQL client tools must be upgraded. `subject` (e.g. "backup <id>") leads the message.
 */
export function toolTooOld(err: unknown, pgBin: string, subject?: string): Error | null {
  if (
    !(err instanceof CommandFailed) ||
    !/server version mismatch|unsupported version .* in file header/i.test(err.stderr)
  )
    return null;
  return verdict(
    ErrorType.ServerVersionTooOld,
    `${subject ? `${subject}: ` : ''}the worker's PostgreSQL client tools in ${pgBin} are older than the server or the dump (${err.message}); install newer ones or set LIFEBOAT_PG_BIN`,
  );
}

/**
 * Cheap compression: lz4 where pg_dump has it (16+), else gzip level 1. The dump is on the drill's
 * critical path, and level 1 keeps most of the size win for a fraction of the default's CPU.
 */
export function dumpCompression(serverVersionNum: number): string {
  return serverVersionNum >= 160000 ? 'lz4' : '1';
}

/** A pass-through stream that feeds a hash and reports how many bytes went by. */
export function hashing(hash: Hash, onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
}
