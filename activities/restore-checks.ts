// What a restored database is checked against: every table of the manifest (rows and content), its
// sequences and large objects, the plan's checks, the newest canary. Shared by drills (scratch
// instances) and cross-cloud recovery.
import {
  ErrorType,
  type BackupManifest,
  type CheckResult,
  type DatabaseTarget,
  type RestoreVerification,
  type SqlCheck,
} from '../workflows/types';
import { verdict } from './errors';
import { compareAccess } from './pg/access';
import { runChecksWithoutSuperuser } from './pg/roles';
import {
  allTableStats,
  compareLargeObjects,
  compareSequences,
  isUnreadable,
  largeObjectStats,
  sequenceStats,
  unquote,
} from './pg/digest';
import { listTables, newestCanary, withClient, type PgConnection } from './pg/sql';
import type { ActivityIo, DatabaseProvider } from './providers/provider';

/**
 * Every table against the manifest (rows and content), the plan's checks, and the newest canary.
 * Lifeboat's own reads use the admin login `conn`, with the search path pinned to pg_catalog (the
 * restored database's owner may have set another, to put functions of its own before the built-in
 * ones); the plan's checks run as a login without superuser (runChecksWithoutSuperuser), beside them.
 */
export async function verifyAgainstManifest(
  conn: PgConnection,
  manifest: BackupManifest,
  checks: SqlCheck[],
  io: ActivityIo,
): Promise<RestoreVerification> {
  const checked = runChecksWithoutSuperuser(conn, checks);
  checked.catch(() => undefined); // awaited below; until then a rejection is not unhandled
  return withClient(conn, (client) =>
    withClient(conn, async (second) => {
      // Read-only transactions: the v2 digests pin their settings in savepoints inside them.
      for (const c of [client, second]) await c.query('set search_path = pg_catalog, pg_temp; begin read only');
      // The manifest names tables schema.table unquoted: each is found among the restored tables by
      // that name, so a dot inside a schema's or a table's name does not lose it.
      const present = new Map<string, string>();
      for (const q of await listTables(client)) present.set(unquote(q), q);
      // Physical restores (RDS, Cloud SQL) bring unlogged tables back empty: those are not compared.
      const physical = manifest.dumpFormat !== 'pg_dump-custom';
      const compared = manifest.tables.filter((t) => !(physical && t.unlogged) && present.has(t.table));
      const expected = new Map(
        compared.map((t) => [
          present.get(t.table)!,
          { algorithm: t.algorithm ?? ('md5-text' as const), textColumns: t.textColumns },
        ]),
      );
      const quoted = [...expected.keys()];
      const stats = await allTableStats([client, second], quoted, {
        expected,
        onTable: (done) => io.heartbeat({ phase: 'table checksums', done }),
      });
      const found = new Map(stats.map((s) => [s.table, s]));
      // A platform's manifest is read moments before its snapshot: say so where it could matter.
      const snapshotWindow = physical ? ' (or the table was written between the manifest and the snapshot)' : '';
      const tables: CheckResult[] = manifest.tables.map((want) => {
        const got = found.get(want.table);
        if (physical && want.unlogged && present.has(want.table)) {
          return {
            name: want.table,
            ok: true,
            notCompared: true,
            detail: `not compared: an unlogged table, which a restore from a platform snapshot brings back empty (the backup had ${want.rows} rows)`,
          };
        }
        if (!got) return { name: want.table, ok: false, detail: 'missing from the restored database' };
        if (isUnreadable(got))
          return { name: want.table, ok: true, notCompared: true, detail: `not compared: ${got.unreadable}` };
        if (got.rows !== want.rows)
          return {
            name: want.table,
            ok: false,
            detail: `${got.rows} rows; the backup had ${want.rows}${snapshotWindow}`,
          };
        if (got.checksum !== want.checksum)
          return {
            name: want.table,
            ok: false,
            detail: `${got.rows} rows but content checksum differs from the backup's${snapshotWindow}`,
          };
        return { name: want.table, ok: true, detail: `${got.rows} rows, checksum matches` };
      });
      if (tables.length === 0)
        tables.push({ name: '(tables)', ok: false, detail: 'the manifest lists no tables: nothing was verified' });
      // Sequences and large objects, where the manifest recorded them (older ones did not).
      const window = physical ? 'the snapshot' : 'the dump';
      const sequences = manifest.sequences
        ? compareSequences(manifest.sequences, await sequenceStats(client), window)
        : [];
      const largeObjects = manifest.largeObjects
        ? [compareLargeObjects(manifest.largeObjects, await largeObjectStats(client), window)]
        : [];
      const newest = await newestCanary(client);
      for (const c of [client, second]) await c.query('commit');
      // Owners, privileges and roles, where the manifest records them (older ones do not: no check);
      // once the checks' own login, which holds a grant while they run, is gone.
      const checkResults = await checked;
      const access = await compareAccess(client, manifest);
      return {
        tables,
        objects: [...sequences, ...largeObjects],
        checks: checkResults,
        newestCanary: newest,
        ...(manifest.access && { access }),
      };
    }),
  );
}

/** A connection that works, or a failure that says why (a missing database is a verdict). */
export async function connectOrExplain(p: DatabaseProvider, target: DatabaseTarget) {
  const conn = await p.connect(target);
  try {
    await withClient(conn, async () => undefined);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '3D000') {
      throw verdict(
        ErrorType.DatabaseNotFound,
        `database ${target.database} does not exist in region ${target.region.name}`,
      );
    }
    throw new Error(
      `cannot reach ${target.database} in ${target.region.name} at ${conn.host}:${conn.port}: ${(err as Error).message}`,
    );
  }
  return conn;
}
