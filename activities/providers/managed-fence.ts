// Fencing a managed PostgreSQL (RDS, Aurora, Cloud SQL) from inside, over SQL. There is no superuser,
// no ALTER SYSTEM and no pg_hba.conf, so read-only defaults alone are soft (a client runs
// `BEGIN READ WRITE`). What the admin login can do, and what a client cannot undo, is take LOGIN away:
//   1. every role that can log in, except Lifeboat's own login, the platform's roles (pg_*, rds*,
//      cloudsql*) and a role streaming WAL to a replica right now, loses LOGIN; which ones is recorded
//      in lifeboat.fenced_logins (database postgres) in the same transaction, so unfence re-grants
//      exactly those, and a promoted replica (which replays both) can lift the fence on itself;
//   2. every database is made read-only by default (ALTER DATABASE), which covers Lifeboat's own login;
//   3. every other client session is ended;
//   4. verified from new sessions: no such role can log in, none has a session, and a throwaway role
//      whose LOGIN the fence took logs in and is refused by the server.
// The instance stays up, so a standby can still replay to the fence's final WAL position. What it does
// not block: a client that connects as Lifeboat's own login and runs BEGIN READ WRITE. The provider
// stops the instance where the platform allows it (aws.ts, gcp.ts).
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import { isVerdict } from '../errors';
import { quoteIdent, withClient, type PgConnection } from '../pg/sql';
import { statusOver, type NodeStatus as ServerStatus } from '../pg/replication';
import type { FenceResult } from './provider';

/** Databases a platform keeps for itself and Lifeboat must not alter. */
const PLATFORM_DATABASES = ['rdsadmin', 'cloudsqladmin'];

/** Roles a platform keeps for itself (RDS's rdsadmin and rdsrepladmin, Cloud SQL's cloudsqladmin and cloudsqlreplica, pg_*). */
const PLATFORM_ROLE = '^(pg_|rds|cloudsql)';

/** The throwaway role the fence's verification logs in as; dropped again before the fence returns. */
export const PROBE_ROLE = 'lifeboat_fence_probe';

/** Roles whose LOGIN the fence takes: any that can log in but Lifeboat's own, the platform's and a WAL streamer's. */
const FENCEABLE = `rolcanlogin and rolname <> current_user and rolname !~ '${PLATFORM_ROLE}'
  and rolname not in (select usename from pg_stat_activity where backend_type = 'walsender' and usename is not null)`;

/** Client sessions the fence ends: all but this one and the platform's. */
const OTHER_SESSIONS = `backend_type = 'client backend' and pid <> pg_backend_pid() and coalesce(usename, '') <> all($1::text[])`;
const PLATFORM_USERS = ['rdsadmin', 'cloudsqladmin'];

export async function setReadOnly(client: Client, on: boolean): Promise<void> {
  // A fenced (or promoted, having replayed the fence) server starts this very session read-only.
  await client.query('set default_transaction_read_only = off');
  const { rows } = await client.query<{ datname: string }>(
    `select datname from pg_database where datallowconn and not datistemplate and datname <> all($1::text[])`,
    [PLATFORM_DATABASES],
  );
  for (const { datname } of rows) {
    await client.query(
      `alter database ${quoteIdent(datname)} ${on ? 'set default_transaction_read_only = on' : 'reset default_transaction_read_only'}`,
    );
  }
}

/** What a managed node's fence state is, read over SQL (connected to the postgres database). */
export interface SqlFenceState {
  /** The fence's marks are there: read-only defaults or logins Lifeboat took. */
  fenced: boolean;
  /** Roles the fence took LOGIN from (the record). */
  revoked: string[];
  /** Roles other than Lifeboat's own and the platform's that can log in now. */
  canLogIn: string[];
  /** A write transaction started (BEGIN READ WRITE, rolled back) in Lifeboat's own session. */
  beginsReadWrite: boolean;
  inRecovery: boolean;
}

export async function sqlFenceState(client: Client): Promise<SqlFenceState> {
  const { rows } = await client.query<{ rec: boolean; ro_default: boolean; recorded: boolean; can_log_in: string[] }>(`
    select pg_is_in_recovery() as rec,
           exists (select 1 from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase
                    where s.setrole = 0 and d.datname = current_database() and 'default_transaction_read_only=on' = any(s.setconfig)) as ro_default,
           to_regclass('lifeboat.fenced_logins') is not null as recorded,
           (select coalesce(array_agg(rolname::text order by rolname), '{}') from pg_roles
             where rolcanlogin and rolname <> current_user and rolname !~ '${PLATFORM_ROLE}') as can_log_in`);
  const r = rows[0]!;
  // A separate query: a node never fenced has no record table, and naming it would fail the whole statement.
  const revoked = r.recorded
    ? (
        await client.query<{ role: string }>('select role::text as role from lifeboat.fenced_logins order by 1')
      ).rows.map((x) => x.role)
    : [];
  return {
    fenced: r.ro_default || revoked.length > 0,
    revoked,
    canLogIn: r.can_log_in,
    beginsReadWrite: await beginsReadWrite(client),
    inRecovery: r.rec,
  };
}

/** The tested definition of writable: a read-write transaction starts (and is rolled back). */
export async function beginsReadWrite(client: Client): Promise<boolean> {
  try {
    await client.query('begin read write');
    await client.query('rollback');
    return true;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    if ((err as { code?: string }).code === '25006') return false; // read-only SQL transaction: in recovery
    throw err;
  }
}

/**
 * Would a client write here? Lifeboat's own session must be able to begin a read-write transaction,
 * and under Lifeboat's fence a role other than Lifeboat's own must still be able to log in. (A client
 * that logs in as Lifeboat's own login could still write: the fence's `how` says so.)
 */
export function writableForClients(state: SqlFenceState): boolean {
  return state.beginsReadWrite && (!state.fenced || state.canLogIn.length > 0);
}

/**
 * A reachable managed server's status: role and WAL position from `base` (statusOver), writability
 * and the fence from `state` (the tested definition above). Without a state, `base` stands.
 */
export function managedStatus(base: ServerStatus, state: SqlFenceState | null): ServerStatus {
  if (!state || !base.reachable) return base;
  if (state.inRecovery) return { ...base, writable: false, fenced: state.fenced };
  const writable = writableForClients(state);
  const fence = `LOGIN revoked from ${state.revoked.length} role(s), read-only by default`;
  const detail = writable
    ? state.fenced
      ? `primary, WRITABLE although fenced: ${state.canLogIn.join(', ')} can log in`
      : 'primary, writable'
    : state.fenced
      ? `primary, fenced (${fence})`
      : 'primary, refuses read-write transactions';
  return { ...base, writable, fenced: state.fenced, detail };
}

/** A running managed server's status over `conn`: statusOver, then its fence state read over SQL (managedStatus). */
export async function managedNodeStatus(conn: PgConnection): Promise<ServerStatus> {
  const base = await statusOver(conn, false);
  const state = base.reachable
    ? await withClient({ ...conn, connectTimeoutMs: 3000 }, sqlFenceState).catch(() => null)
    : null;
  return managedStatus(base, state);
}

/**
 * Planned: the primary must be reachable and the fence is verified from new sessions; the WAL
 * position after the fence's last write comes back for the replica to reach (`walPosition` where the
 * platform has none: Aurora). Unplanned: an unreachable primary is recorded as not fenced.
 */
export async function fenceOverSql(
  connect: () => Promise<PgConnection>,
  mode: 'planned' | 'unplanned',
  options: { walPosition: string | null },
): Promise<FenceResult & { reachable: boolean }> {
  let conn: PgConnection;
  try {
    conn = { ...(await connect()), connectTimeoutMs: mode === 'planned' ? 10_000 : 5_000 };
    const probe = await withClient(conn, (c) => createProbe(c));
    const revoked = await withClient(conn, (c) => revokeLogins(c));
    const verified = await verifyLoginFence(conn, probe);
    const finalLsn = await withClient(conn, async (c) => {
      await c.query('set default_transaction_read_only = off');
      await c.query(`drop role if exists ${quoteIdent(PROBE_ROLE)}`);
      // After the fence's own last write (the probe's drop): the standby replays all of the fence.
      return (
        options.walPosition ?? (await c.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn
      );
    });
    const how =
      `LOGIN revoked from ${revoked.revoked.length} role(s)${list(revoked.revoked)}, their sessions ended, every database read-only by default (ALTER DATABASE)` +
      `${revoked.failed.length ? `; could NOT revoke LOGIN from ${revoked.failed.join('; ')}` : ''}` +
      `${revoked.kept.length ? `; kept for WAL streaming: ${revoked.kept.join(', ')}` : ''}` +
      `; ${verified.detail}; Lifeboat's own login ${conn.user} keeps LOGIN (a client connecting as it is not fenced)`;
    return {
      confirmed: verified.ok && revoked.failed.length === 0,
      how,
      finalLsn: mode === 'planned' ? finalLsn : null,
      reachable: true,
    };
  } catch (err) {
    if (mode === 'planned' || isVerdict(err)) throw err;
    return {
      confirmed: false,
      how: `primary unreachable over SQL (${(err as Error).message})`,
      finalLsn: null,
      reachable: false,
    };
  }
}

/**
 * Undoes the SQL fence on a node: LOGIN back to exactly the recorded roles that still exist, the
 * record emptied, read-only defaults reset. Also lifts the replayed fence on a promoted replica.
 */
export async function liftSqlFence(client: Client): Promise<string[]> {
  await client.query('set default_transaction_read_only = off');
  await client.query('begin');
  try {
    let granted: string[] = [];
    const { rows } = await client.query<{ exists: boolean }>(
      `select to_regclass('lifeboat.fenced_logins') is not null as exists`,
    );
    if (rows[0]?.exists) {
      const roles = await client.query<{ role: string }>(
        `select f.role::text as role from lifeboat.fenced_logins f join pg_roles r on r.rolname = f.role order by 1`,
      );
      granted = roles.rows.map((r) => r.role);
      for (const role of granted) await client.query(`alter role ${quoteIdent(role)} login`);
      await client.query('delete from lifeboat.fenced_logins');
    }
    await setReadOnly(client, false);
    // A fence that failed half way may have left its probe role behind (no one knows its password).
    await client.query(`drop role if exists ${quoteIdent(PROBE_ROLE)}`);
    await client.query('commit');
    return granted;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}

/** The probe role, with LOGIN and a one-time password sent only as a SCRAM verifier (nothing in server logs). */
async function createProbe(c: Client): Promise<string> {
  await c.query('set default_transaction_read_only = off');
  const password = randomBytes(24).toString('base64url');
  const exists = (await c.query('select 1 from pg_roles where rolname = $1', [PROBE_ROLE])).rowCount;
  await c.query(
    `${exists ? 'alter' : 'create'} role ${quoteIdent(PROBE_ROLE)} login password ${c.escapeLiteral(scramVerifier(password))}`,
  );
  return password;
}

/** Step 1 to 3 of the fence, one transaction for the record and the revocations. */
async function revokeLogins(c: Client): Promise<{ revoked: string[]; failed: string[]; kept: string[] }> {
  await c.query('set default_transaction_read_only = off');
  await c.query('begin');
  const revoked: string[] = [];
  const failed: string[] = [];
  try {
    await c.query('create schema if not exists lifeboat');
    await c.query(
      'create table if not exists lifeboat.fenced_logins (role name primary key, fenced_at timestamptz not null default now())',
    );
    const { rows } = await c.query<{ rolname: string }>(
      `select rolname::text as rolname from pg_roles where ${FENCEABLE} order by 1`,
    );
    for (const { rolname } of rows) {
      await c.query('savepoint fence_role');
      try {
        await c.query(`alter role ${quoteIdent(rolname)} nologin`);
        if (rolname !== PROBE_ROLE) {
          await c.query('insert into lifeboat.fenced_logins (role) values ($1) on conflict do nothing', [rolname]);
          revoked.push(rolname);
        }
        await c.query('release savepoint fence_role');
      } catch (err) {
        await c.query('rollback to savepoint fence_role');
        failed.push(`${rolname} (${(err as Error).message})`);
      }
    }
    await setReadOnly(c, true);
    // The whole record: roles an earlier fence of this node took count too (unfence re-grants them all).
    const record = await c.query<{ role: string }>('select role::text as role from lifeboat.fenced_logins order by 1');
    revoked.splice(0, revoked.length, ...record.rows.map((r) => r.role));
    await c.query('commit');
  } catch (err) {
    await c.query('rollback').catch(() => undefined);
    throw err;
  }
  const kept = await c.query<{ usename: string }>(
    `select distinct usename::text as usename from pg_stat_activity where backend_type = 'walsender' and usename <> current_user and usename !~ '${PLATFORM_ROLE}'`,
  );
  // Sessions that logged in before the commit: ended, until none is left (a terminated backend lingers a moment).
  for (let i = 0; i < 50; i++) {
    const { rows } = await c.query<{ n: number }>(
      `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where ${OTHER_SESSIONS} and coalesce(usename, '') <> current_user`,
      [PLATFORM_USERS],
    );
    if (rows[0]!.n === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // Lifeboat's own login's other sessions too (an application may use it): they start read-only now.
  await c.query(`select pg_terminate_backend(pid) from pg_stat_activity where ${OTHER_SESSIONS}`, [PLATFORM_USERS]);
  return { revoked, failed, kept: kept.rows.map((r) => r.usename) };
}

/** Step 4: from new sessions, what the server says now. */
async function verifyLoginFence(conn: PgConnection, probePassword: string): Promise<{ ok: boolean; detail: string }> {
  const { canLogIn, sessions } = await withClient(conn, async (c) => ({
    canLogIn: (
      await c.query<{ rolname: string }>(`select rolname::text as rolname from pg_roles where ${FENCEABLE}`)
    ).rows.map((r) => r.rolname),
    sessions: (
      await c.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where ${OTHER_SESSIONS} and coalesce(usename, '') <> current_user`,
        [PLATFORM_USERS],
      )
    ).rows[0]!.n,
  }));
  const refused = await withClient(
    { ...conn, user: PROBE_ROLE, password: probePassword },
    async () => 'the server let it in',
  ).then(
    (why) => why,
    (err: { code?: string; message?: string }) =>
      err.code === '28000' && /not permitted to log in/.test(err.message ?? '')
        ? null
        : `${err.code ?? ''} ${err.message ?? String(err)}`.trim(),
  );
  const problems = [
    ...(canLogIn.length ? [`roles that can still log in: ${canLogIn.join(', ')}`] : []),
    ...(sessions ? [`${sessions} session(s) of other roles still open`] : []),
    ...(refused !== null ? [`a login as ${PROBE_ROLE} (LOGIN revoked) was not refused as expected: ${refused}`] : []),
  ];
  if (problems.length) return { ok: false, detail: `NOT verified: ${problems.join('; ')}` };
  return {
    ok: true,
    detail: `verified from new sessions: a login as a role without LOGIN is refused by the server, no other role can log in or has a session`,
  };
}

function list(roles: string[]): string {
  if (!roles.length) return '';
  return ` (${roles.slice(0, 10).join(', ')}${roles.length > 10 ? `, and ${roles.length - 10} more` : ''})`;
}

/** PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802, 4096 iterations as the server uses). */
export function scramVerifier(password: string): string {
  const salt = randomBytes(16);
  const iterations = 4096;
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
