// Fencing a managed PostgreSQL (RDS, Cloud SQL) over SQL. There is no superuser and no ALTER SYSTEM,
// so the fence makes every database read-only by default (ALTER DATABASE ... SET
// default_transaction_read_only) and ends the other client sessions. A replica replays the fence
// too: whoever promotes one lifts it there (setReadOnly(off)). It is a soft fence: a client can still
// `SET default_transaction_read_only = off` in its own session.
import type { Client } from 'pg';
import { isVerdict } from '../errors';
import { quoteIdent, withClient, type PgConnection } from '../pg/sql';
import type { FenceResult } from './provider';

/** Databases a platform keeps for itself and Lifeboat must not alter. */
const PLATFORM_DATABASES = ['rdsadmin', 'cloudsqladmin'];

export async function setReadOnly(client: Client, on: boolean): Promise<void> {
  // A fenced (or promoted, having replayed the fence) server starts this very session read-only.
  await client.query('set default_transaction_read_only = off');
  const { rows } = await client.query<{ datname: string }>(`select datname from pg_database where datallowconn and not datistemplate and datname <> all($1::text[])`, [PLATFORM_DATABASES]);
  for (const { datname } of rows) {
    await client.query(`alter database ${quoteIdent(datname)} ${on ? 'set default_transaction_read_only = on' : 'reset default_transaction_read_only'}`);
  }
}

export async function isFencedByLifeboat(client: Client): Promise<boolean> {
  const { rows } = await client.query<{ fenced: boolean }>(
    `select exists (select 1 from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase
                     where s.setrole = 0 and d.datname = current_database() and 'default_transaction_read_only=on' = any(s.setconfig)) as fenced`,
  );
  return rows[0]?.fenced ?? false;
}

/**
 * Planned: the primary must be reachable and the fence is confirmed from a new session; the WAL
 * position after the last write comes back for the replica to reach (`walPosition` false where the
 * platform has none: Aurora). Unplanned: an unreachable primary is recorded as not fenced.
 */
export async function fenceOverSql(connect: () => Promise<PgConnection>, mode: 'planned' | 'unplanned', options: { walPosition: string | null }): Promise<FenceResult> {
  try {
    const conn = { ...(await connect()), connectTimeoutMs: mode === 'planned' ? 10_000 : 5_000 };
    const finalLsn = await withClient(conn, async (c) => {
      await setReadOnly(c, true);
      await c.query(`select pg_terminate_backend(pid) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid() and usename <> all($1::text[])`, [['rdsadmin', 'cloudsqladmin']]);
      return options.walPosition ?? (await c.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
    });
    const readOnly = await withClient(conn, async (c) => (await c.query<{ ro: string }>(`select current_setting('default_transaction_read_only') as ro`)).rows[0]!.ro === 'on');
    return { confirmed: readOnly, how: 'every database read-only by default (ALTER DATABASE), client sessions ended', finalLsn: mode === 'planned' ? finalLsn : null };
  } catch (err) {
    if (mode === 'planned' || isVerdict(err)) throw err;
    return { confirmed: false, how: `primary unreachable (${(err as Error).message}); traffic moves away from it: keep it from taking writes before it returns`, finalLsn: null };
  }
}
