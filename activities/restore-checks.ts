// What a restored database is checked against: every table of the manifest (rows and content), the
// plan's checks, the newest canary. Shared by drills (scratch instances) and cross-cloud recovery.
import { ErrorType, type BackupManifest, type CheckResult, type DatabaseTarget, type RestoreVerification, type SqlCheck } from '../workflows/types';
import { verdict } from './errors';
import { compareAccess } from './pg/access';
import { runChecksWithoutSuperuser } from './pg/roles';
import { allTableStats, listTables, newestCanary, withClient, type PgConnection } from './pg/sql';
import type { ActivityIo, DatabaseProvider } from './providers/provider';

/**
 * Every table against the manifest (rows and content), the plan's checks, and the newest canary.
 * Lifeboat's own reads use the admin login `conn`, with the search path pinned to pg_catalog (the
 * restored database's owner may have set another, to put functions of its own before the built-in
 * ones); the plan's checks run as a login without superuser (runChecksWithoutSuperuser), beside them.
 */
export async function verifyAgainstManifest(conn: PgConnection, manifest: BackupManifest, checks: SqlCheck[], io: ActivityIo): Promise<RestoreVerification> {
  const checked = runChecksWithoutSuperuser(conn, checks);
  checked.catch(() => undefined); // awaited below; until then a rejection is not unhandled
  return withClient(conn, (client) =>
    withClient(conn, async (second) => {
      for (const c of [client, second]) await c.query('set search_path = pg_catalog, pg_temp');
      const present = new Set(await listTables(client));
      const algorithms = new Map(manifest.tables.map((t) => [quoteQualified(t.table), t.algorithm ?? ('md5-text' as const)]));
      const quoted = [...algorithms.keys()].filter((q) => present.has(q));
      const stats = await allTableStats([client, second], quoted, {
        algorithms,
        onTable: (done) => io.heartbeat({ phase: 'table checksums', done }),
      });
      const found = new Map(stats.map((s) => [s.table, s]));
      // An RDS manifest is read moments before the snapshot is taken: say so where it could matter.
      const snapshotWindow = manifest.dumpFormat === 'rds-snapshot' ? ' (or the table was written between the manifest and the snapshot)' : '';
      const tables: CheckResult[] = manifest.tables.map((want) => {
        const got = found.get(want.table);
        if (!got) return { name: want.table, ok: false, detail: 'missing from the restored database' };
        if (got.rows !== want.rows) return { name: want.table, ok: false, detail: `${got.rows} rows; the backup had ${want.rows}${snapshotWindow}` };
        if (got.checksum !== want.checksum) return { name: want.table, ok: false, detail: `${got.rows} rows but content checksum differs from the backup's${snapshotWindow}` };
        return { name: want.table, ok: true, detail: `${got.rows} rows, checksum matches` };
      });
      if (tables.length === 0) tables.push({ name: '(tables)', ok: false, detail: 'the manifest lists no tables: nothing was verified' });
      // Owners, privileges and roles, where the manifest records them (older ones do not: no check);
      // once the checks' own login, which holds a grant while they run, is gone.
      const checkResults = await checked;
      const access = await compareAccess(client, manifest);
      return { tables, checks: checkResults, newestCanary: await newestCanary(client), ...(manifest.access && { access }) };
    }),
  );
}


function quoteQualified(name: string): string {
  const dot = name.indexOf('.');
  const quote = (part: string): string => `"${part.replace(/"/g, '""')}"`;
  return `${quote(name.slice(0, dot))}.${quote(name.slice(dot + 1))}`;
}

/** A connection that works, or a failure that says why (a missing database is a verdict). */
export async function connectOrExplain(p: DatabaseProvider, target: DatabaseTarget) {
  const conn = await p.connect(target);
  try {
    await withClient(conn, async () => undefined);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '3D000') {
      throw verdict(ErrorType.DatabaseNotFound, `database ${target.database} does not exist in region ${target.region.name}`);
    }
    throw new Error(`cannot reach ${target.database} in ${target.region.name} at ${conn.host}:${conn.port}: ${(err as Error).message}`);
  }
  return conn;
}
