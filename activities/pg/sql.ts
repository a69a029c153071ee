// SQL that every provider shares: a PostgreSQL database is a PostgreSQL database once reached,
// whether it runs here, on RDS or on Cloud SQL.
import { Client, type QueryArrayConfig } from 'pg';
import type { Canary, CheckResult, SqlCheck } from '../../workflows/types';

/** How to reach one database. Holds a secret: lives in activity memory only. */
export interface PgConnection {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** A libpq passfile with the same credentials, for the command-line tools (local servers only). */
  passfile?: string;
  /**
   * TLS, verified: managed databases require it. `ca` adds the platform's certificate bundle;
   * `skipHostnameCheck` pins trust to that CA alone, for servers whose certificates do not name the
   * address clients reach them at (Cloud SQL's per-instance CA).
   */
  ssl?: { ca?: string; skipHostnameCheck?: boolean };
  /** Default 10 s; status probes use less, so a dead node answers "unreachable" quickly. */
  connectTimeoutMs?: number;
}

export async function withClient<T>(conn: PgConnection, use: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({
    host: conn.host,
    port: conn.port,
    user: conn.user,
    password: conn.password,
    database: conn.database,
    application_name: 'lifeboat',
    connectionTimeoutMillis: conn.connectTimeoutMs ?? 10_000,
    ...(conn.ssl && {
      ssl: {
        rejectUnauthorized: true,
        ...(conn.ssl.ca && { ca: conn.ssl.ca }),
        ...(conn.ssl.skipHostnameCheck && { checkServerIdentity: () => undefined }),
      },
    }),
  });
  // A session the server ends (a fence, a shutdown) fails the query in flight; the client also emits
  // 'error', which without a listener is an uncaught exception that takes the whole worker down.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Environment for pg_dump / pg_restore / psql: credentials through a passfile, never argv or PGPASSWORD. */
export function libpqEnv(conn: PgConnection): NodeJS.ProcessEnv {
  if (!conn.passfile)
    throw new Error(`no passfile for ${conn.host}:${conn.port}: command-line tools are only run against local servers`);
  return {
    PATH: process.env.PATH,
    LANG: 'C.UTF-8',
    PGHOST: conn.host,
    PGPORT: String(conn.port),
    PGUSER: conn.user,
    PGDATABASE: conn.database,
    PGPASSFILE: conn.passfile,
    PGAPPNAME: 'lifeboat',
    PGCONNECT_TIMEOUT: '10',
  };
}

/** One libpq passfile line; `:` and `\` in a field are escaped, as libpq reads them. */
export function passfileLine(port: number, password: string): string {
  return `127.0.0.1:${port}:*:postgres:${password.replace(/[\\:]/g, (c) => `\\${c}`)}\n`;
}

/** The password field of a passfile line written by passfileLine, unescaped. */
export function passwordOfPassfileLine(line: string): string {
  return splitEscaped(line.replace(/\r?\n[\s\S]*$/, ''))[4] ?? '';
}

/** A passfile line's five fields; a backslash escapes the next character, the last field takes the rest. */
function splitEscaped(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && i + 1 < line.length) field += line[++i];
    else if (c === ':' && fields.length < 4) {
      fields.push(field);
      field = '';
    } else field += c;
  }
  return [...fields, field];
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export async function serverVersion(client: Client): Promise<{ version: string; num: number }> {
  const { rows } = await client.query<{ v: string; n: string }>(
    "select current_setting('server_version') as v, current_setting('server_version_num') as n",
  );
  const row = rows[0];
  if (!row) throw new Error('server did not report its version');
  return { version: row.v.split(' ')[0] ?? row.v, num: Number(row.n) };
}

/**
 * Every ordinary table the backup carries: user schemas plus Lifeboat's canary table. Unlogged ones
 * too (pg_dump carries their rows; a physical restore brings them back empty, see digest.ts).
 */
export async function listTables(client: Client): Promise<string[]> {
  const { rows } = await client.query<{ s: string; t: string }>(`
    select n.nspname as s, c.relname as t
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind = 'r' and c.relpersistence in ('p', 'u')
       and n.nspname not in ('pg_catalog', 'information_schema')
       and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
     order by 1, 2`);
  return rows.map((r) => `${quoteIdent(r.s)}.${quoteIdent(r.t)}`);
}

const CANARY_DDL = `
  create schema if not exists lifeboat;
  create table if not exists lifeboat.canary (
    id bigserial primary key,
    token text not null unique,
    written_at timestamptz not null default clock_timestamp()
  )`;

/**
 * Writes one canary row and returns it once the commit is acknowledged. The token makes a retried
 * write find the row the first attempt made instead of adding a second one.
 */
export async function writeCanary(client: Client, token: string): Promise<Canary> {
  await client.query(CANARY_DDL);
  const { rows } = await client.query<{ id: string; written_at: Date }>(
    `insert into lifeboat.canary (token) values ($1)
       on conflict (token) do update set token = excluded.token
     returning id, written_at`,
    [token],
  );
  const row = rows[0];
  if (!row) throw new Error('canary insert returned no row');
  return { id: Number(row.id), writtenAt: row.written_at.toISOString() };
}

/** The newest canary in a database, or null when it has none (or no canary table at all). */
export async function newestCanary(client: Client, before?: string): Promise<Canary | null> {
  // An ordinary table only: a restored dump could make lifeboat.canary a view calling its own functions.
  const exists = await client.query(
    `select exists (select 1 from pg_class where oid = to_regclass('lifeboat.canary') and relkind = 'r') as present`,
  );
  if (!exists.rows[0]?.present) return null;
  const { rows } = await client.query<{ id: string; written_at: Date }>(
    // Compared at millisecond precision: `before` comes from a JavaScript Date (a ledger entry, say),
    // which has lost the row's microseconds; the row it names must still count as at or before it.
    `select id, written_at from lifeboat.canary
      where $1::timestamptz is null or date_trunc('milliseconds', written_at) <= $1::timestamptz
      order by written_at desc, id desc limit 1`,
    [before ?? null],
  );
  const row = rows[0];
  return row ? { id: Number(row.id), writtenAt: row.written_at.toISOString() } : null;
}

/**
 * Runs the plan's checks read-only: a check passes when it returns one row whose first column is true.
 * `client` must be a login without superuser (roles.ts runChecksWithoutSuperuser makes one).
 */
export async function runChecks(client: Client, checks: SqlCheck[]): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks) {
    try {
      await client.query('begin read only');
      await client.query("set local statement_timeout = '60s'");
      // The extended protocol runs exactly one statement: `select true; commit; drop table t` would
      // otherwise end the read-only transaction and run the rest (pg's types lack queryMode).
      const res = await client.query({ text: check.sql, rowMode: 'array', queryMode: 'extended' } as QueryArrayConfig);
      await client.query('rollback');
      const rows = res.rows as unknown[][];
      const first = rows[0]?.[0];
      if (rows.length !== 1)
        results.push({ name: check.name, ok: false, detail: `returned ${rows.length} rows; expected exactly 1` });
      else if (first !== true)
        results.push({
          name: check.name,
          ok: false,
          detail: `first column was ${JSON.stringify(first)}; expected true`,
        });
      else results.push({ name: check.name, ok: true, detail: 'returned true' });
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      results.push({ name: check.name, ok: false, detail: `query failed: ${(err as Error).message}` });
    }
  }
  return results;
}
