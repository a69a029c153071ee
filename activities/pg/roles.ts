// The roles other people's data and SQL run as, instead of Lifeboat's admin login (a superuser on
// local servers and the Cloud SQL fake): a restore loads a dump as `lifeboat_restore`, the owner of
// the database it loads into and nothing more; the plan's checks run as a throwaway login whose only
// power is pg_read_all_data. Neither can run programs or read the server's files, so a function in a
// dump (a CHECK constraint, an index expression) or a check that tries to gets a permission error.
//
// Passwords are made here, used in memory and in a 0600 passfile, and never sent to the server: the
// server gets a SCRAM verifier (what `\password` sends), so a statement log shows no password.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import { ErrorType, type CheckResult, type SqlCheck } from '../../workflows/types';
import { verdict } from '../errors';
import { quoteIdent, runChecks, withClient, type PgConnection } from './sql';

/** The role restores load dumps as; it owns the database it loads into. */
export const RESTORE_ROLE = 'lifeboat_restore';

/** Checks' logins are named `lifeboat_check_<random>`: one per run, dropped after it. */
const CHECK_ROLE_PREFIX = 'lifeboat_check_';

/** A SCRAM-SHA-256 verifier for `password`, as PostgreSQL stores it (RFC 5802/7677). */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** A fresh password: base64url, so it needs no quoting anywhere (SQL, passfiles). */
function newPassword(): string {
  return randomBytes(24).toString('base64url');
}

async function isSuperuser(client: Client): Promise<boolean> {
  return (await client.query<{ s: string }>(`select current_setting('is_superuser') as s`)).rows[0]?.s === 'on';
}

/**
 * Makes `lifeboat_restore` (a login without any attribute or membership) if it is missing, gives it a
 * new password, and makes it the owner of the database `admin` is connected to. A role of that name
 * with more power than that is refused, not used. Returns how to connect as it.
 */
export async function prepareRestoreRole(admin: Client, conn: PgConnection): Promise<PgConnection> {
  const { rows } = await admin.query<{ powers: string[]; owner: boolean }>(
    `select array_remove(array[
              case when rolsuper then 'SUPERUSER' end, case when rolcreaterole then 'CREATEROLE' end,
              case when rolcreatedb then 'CREATEDB' end, case when rolreplication then 'REPLICATION' end,
              case when rolbypassrls then 'BYPASSRLS' end]
            || array(select m.roleid::regrole::text from pg_auth_members m where m.member = r.oid), null) as powers,
            exists (select 1 from pg_database where datname = current_database() and datdba = r.oid) as owner
       from pg_roles r where rolname = $1`,
    [RESTORE_ROLE],
  );
  const found = rows[0];
  if (found && found.powers.length > 0) {
    throw verdict(
      ErrorType.ProviderRejected,
      `role ${RESTORE_ROLE} on ${conn.host}:${conn.port} has ${found.powers.join(', ')}: Lifeboat restores only as a role without any, ` +
        `so that nothing in a dump runs with more; drop the role (Lifeboat makes it again) or take those away`,
    );
  }
  const password = newPassword();
  await admin.query(`${found ? 'alter' : 'create'} role ${RESTORE_ROLE} login password '${scramVerifier(password)}'`);
  if (!found?.owner) {
    // A platform admin that is no superuser may only give a database to a role it is a member of.
    if (!found && !(await isSuperuser(admin))) await admin.query(`grant ${RESTORE_ROLE} to current_user`);
    await admin.query(`alter database ${quoteIdent(conn.database)} owner to ${RESTORE_ROLE}`);
  }
  return loginFor(conn, RESTORE_ROLE, password);
}

/** The same server and database as `conn`, as another login (no passfile: it holds `conn`'s password). */
function loginFor(conn: PgConnection, user: string, password: string): PgConnection {
  return {
    host: conn.host,
    port: conn.port,
    user,
    password,
    database: conn.database,
    ...(conn.ssl && { ssl: conn.ssl }),
    ...(conn.connectTimeoutMs && { connectTimeoutMs: conn.connectTimeoutMs }),
  };
}

/**
 * The plan's checks, each in a read-only transaction (runChecks), as a login made for this run that
 * can read every table (pg_read_all_data) and do nothing else: a check that reaches for a superuser's
 * power (pg_read_binary_file, COPY ... TO PROGRAM, pg_terminate_backend) fails with the permission
 * error as its result. `admin` is the login that makes it (and drops it afterwards) on the database
 * the checks run in. When the login cannot be made or used, every check fails saying so: they never
 * fall back to the admin login.
 */
export async function runChecksWithoutSuperuser(admin: PgConnection, checks: SqlCheck[]): Promise<CheckResult[]> {
  if (checks.length === 0) return [];
  const notRun = (what: string, err: unknown): CheckResult[] =>
    checks.map((check) => ({ name: check.name, ok: false, detail: `not run: ${what}: ${(err as Error).message}` }));
  return withClient(admin, async (client) => {
    let reader: PgConnection;
    try {
      reader = await createReader(client, admin);
    } catch (err) {
      if (!(err as { code?: string }).code) throw err; // not the server's answer (a lost connection): retried
      return notRun('Lifeboat could not make a login without superuser for the checks', err);
    }
    try {
      return await withClient(reader, (c) => runChecks(c, checks));
    } catch (err) {
      // runChecks reports each check's own failure: what reaches here is the login itself refused.
      if (!(err as { code?: string }).code) throw err;
      return notRun(`the checks' login ${reader.user} could not connect`, err);
    } finally {
      await dropReader(client, reader.user);
    }
  });
}

async function createReader(admin: Client, conn: PgConnection): Promise<PgConnection> {
  // Logins an earlier run could not drop (a killed worker) expire; they are removed here.
  const { rows: stale } = await admin.query<{ name: string }>(
    `select rolname as name from pg_roles where rolname like $1 and rolvaliduntil < now() - interval '1 hour'`,
    [`${CHECK_ROLE_PREFIX.replace(/_/g, '\\_')}%`],
  );
  for (const { name } of stale) await dropReader(admin, name);

  const name = `${CHECK_ROLE_PREFIX}${randomBytes(6).toString('hex')}`;
  const password = newPassword();
  // Valid for an hour: a login left behind by a killed worker stops working on its own.
  const until = new Date(Date.now() + 3_600_000).toISOString();
  await admin.query(
    `create role ${name} login connection limit 2 valid until '${until}' password '${scramVerifier(password)}'`,
  );
  if (!(await isSuperuser(admin))) await admin.query(`grant ${name} to current_user`); // so that it may drop what it granted
  try {
    await admin.query(`grant pg_read_all_data to ${name}`);
  } catch (err) {
    // PostgreSQL 13 and older have no pg_read_all_data; a platform admin may not hand it out. The
    // tables the admin may grant, then: a check reading any other fails with the permission error.
    if (!['42704', '42501', '0LP01'].includes((err as { code?: string }).code ?? '')) throw err;
    await admin.query(`
      do $$ declare s name; begin
        for s in select nspname from pg_namespace where nspname not in ('pg_catalog', 'information_schema') and nspname not like 'pg\\_%' loop
          begin
            execute format('grant usage on schema %I to ${name}', s);
            execute format('grant select on all tables in schema %I to ${name}', s);
          exception when insufficient_privilege then null;
          end;
        end loop;
      end $$`);
  }
  // A database that does not let PUBLIC connect (a common hardening) still lets the checks in.
  await admin
    .query(`grant connect on database ${quoteIdent(conn.database)} to ${name}`)
    .catch((err: { code?: string }) => {
      if (err.code !== '42501') throw err;
    });
  return loginFor(conn, name, password);
}

/** Best effort: a login not dropped now expires within the hour, and the next run removes it. */
async function dropReader(admin: Client, name: string): Promise<void> {
  await admin.query(`drop owned by ${quoteIdent(name)}`).catch(() => undefined);
  await admin.query(`drop role if exists ${quoteIdent(name)}`).catch(() => undefined);
}
