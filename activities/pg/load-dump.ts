// Loading a pg_dump custom-format file into a database as `lifeboat_restore`, never as the admin:
// whatever code the dump carries (a CHECK constraint's function, an index expression, a default)
// runs with the power of a plain database owner while the data loads.
//
// What a plain owner cannot create is handled before the load, from the dump's table of contents
// (read from the file's header, not a pass over its data):
// - an extension that needs a superuser and ships with PostgreSQL, from the allow-list below, is
//   created by the admin login into the still empty database (nothing from the dump exists yet that
//   its script could pick up), and the dump's own entries for it are left out;
// - any other extension that needs a superuser is left out, and reported by name.
// Everything else is loaded with pg_restore, which carries on past an object it cannot create (an
// event trigger, an untrusted language, a table whose rows a constraint refuses): each such error is
// a finding naming the object, and what depends on it is missing in the verify that follows.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from 'pg';
import type { BackupManifest, CheckResult } from '../../workflows/types';
import { applyAccess, recreateRoles, type RecreatedRoles } from './access';
import { CommandFailed, run, start } from './process';
import { prepareRestoreRole, RESTORE_ROLE } from './roles';
import { quoteIdent, withClient, type PgConnection } from './sql';
import { withToolEnv } from './tool-env';

/**
 * Extensions of PostgreSQL's own contrib that Lifeboat creates as the admin when the dump has them
 * and the server says they need a superuser. None of them reaches files, programs or other servers
 * (so not adminpack, dblink, file_fdw, postgres_fdw, pg_surgery, pageinspect).
 */
export const ADMIN_CREATED_EXTENSIONS: ReadonlySet<string> = new Set([
  'amcheck',
  'autoinc',
  'bloom',
  'btree_gin',
  'btree_gist',
  'citext',
  'cube',
  'dict_int',
  'dict_xsyn',
  'earthdistance',
  'fuzzystrmatch',
  'hstore',
  'insert_username',
  'intagg',
  'intarray',
  'isn',
  'lo',
  'ltree',
  'moddatetime',
  'pg_buffercache',
  'pg_freespacemap',
  'pg_prewarm',
  'pg_stat_statements',
  'pg_trgm',
  'pg_visibility',
  'pgcrypto',
  'pgrowlocks',
  'pgstattuple',
  'refint',
  'seg',
  'tablefunc',
  'tcn',
  'tsm_system_rows',
  'tsm_system_time',
  'unaccent',
  'uuid-ossp',
]);

/** One line of `pg_restore --list`: `<id>; <tableoid> <oid> <desc> <schema> <name> <owner>`. */
export interface TocEntry {
  id: number;
  line: string;
  /** `<desc> [<schema>] <name>`, e.g. `TABLE DATA public orders`, `EXTENSION pg_trgm`. */
  what: string;
}

/** At most this many findings are named; the rest are counted (they go into the report and history). */
const MAX_FINDINGS = 20;

/** The dump's table of contents: pg_restore reads it from the file's header, not its data. */
export async function readToc(pgBin: string, file: string, signal?: AbortSignal): Promise<TocEntry[]> {
  const listing = await run(join(pgBin, 'pg_restore'), ['--list', file], {
    env: { PATH: process.env.PATH, LANG: 'C.UTF-8' },
    signal,
  });
  const entries: TocEntry[] = [];
  for (const line of listing.split('\n')) {
    const m = /^(\d+); \d+ \d+ (.*)$/.exec(line);
    if (!m) continue;
    // The owner is the last word, or nothing (the line then ends in a space); "-" is no schema.
    const rest = m[2]!;
    const what = rest.endsWith(' ') ? rest.trim() : rest.replace(/ \S+$/, '');
    entries.push({ id: Number(m[1]), line, what: what.replace(' - ', ' ') });
  }
  return entries;
}

export interface LoadOptions {
  pgBin: string;
  file: string;
  /** The admin login, on the (empty) database to load into. */
  admin: PgConnection;
  toc: TocEntry[];
  /** The restore role's login, when the caller made it (prepareRestoreRole) on a session of its own. */
  restorer?: PgConnection;
  signal: AbortSignal;
  heartbeat: () => void;
  /**
   * The backup's roles and per-object access (absent in older manifests): the roles are made before
   * the load, owners and privileges given after it, both by the admin (activities/pg/access.ts).
   */
  access?: Pick<BackupManifest, 'roles' | 'access'>;
  /** Told which roles were made, found, and what was withheld, for the activity's log. */
  onRoles?: (roles: RecreatedRoles) => void;
}

/**
 * Loads the dump as `lifeboat_restore` (made the database's owner first) with pg_restore --jobs=2
 * --no-owner --no-privileges; with `access`, the backup's roles are made before and its owners and
 * privileges given after, by the admin. Returns a failed check for each object (or role, or grant)
 * that could not be restored; throws when pg_restore itself failed (a damaged file, a lost
 * connection, a tool too old).
 */
export async function loadAsRestoreRole(options: LoadOptions): Promise<CheckResult[]> {
  const { admin, toc } = options;
  let restorer = options.restorer;
  let left = new Set<number>();
  let findings: CheckResult[] = [];
  const roles = options.access?.roles;
  // An admin session of its own only when there is something to do in it.
  if (!restorer || toc.some((e) => e.what.startsWith('EXTENSION ')) || roles?.length) {
    ({ restorer, left, findings } = await withClient(admin, async (client) => {
      // The roles first: the dump's policies name them, and the owners given after the load are them.
      const made = roles?.length ? await recreateRoles(client, roles) : null;
      if (made) options.onRoles?.(made);
      const prepared = {
        restorer: restorer ?? (await prepareRestoreRole(client, admin)),
        ...(await prepareExtensions(client, options)),
      };
      return { ...prepared, findings: [...(made?.findings ?? []), ...prepared.findings] };
    }));
  }
  if (options.signal.aborted) throw options.signal.reason;
  const dir = left.size > 0 ? mkdtempSync(join(tmpdir(), `lifeboat-restore-${process.pid}-`)) : null;
  try {
    const useList: string[] = [];
    if (dir) {
      // The same entries, in the same order, minus those handled above.
      writeFileSync(join(dir, 'use-list'), toc.map((e) => (left.has(e.id) ? `;${e.line}` : e.line)).join('\n') + '\n', {
        mode: 0o600,
      });
      useList.push('--use-list', join(dir, 'use-list'));
    }
    const errors = await withToolEnv(restorer, (env) =>
      pgRestore(
        join(options.pgBin, 'pg_restore'),
        [
          '--verbose',
          '--no-owner',
          '--no-privileges',
          '--jobs=2',
          ...useList,
          '--dbname',
          admin.database,
          options.file,
        ],
        env,
        options,
      ),
    );
    const byId = new Map(toc.map((e) => [e.id, e]));
    for (const error of errors.slice(0, MAX_FINDINGS)) {
      const entry = (error.entry === null ? undefined : byId.get(error.entry)) ?? entryNamedBy(toc, error.message);
      findings.push({
        name: entry ? `restore of ${entry.what}` : 'restore',
        ok: false,
        detail: `not restored: ${error.message}`,
      });
    }
    if (errors.length > MAX_FINDINGS) {
      findings.push({
        name: 'restore',
        ok: false,
        detail: `${errors.length - MAX_FINDINGS} more objects could not be restored (pg_restore reported ${errors.length} errors)`,
      });
    }
    // Owners and privileges, by the admin, once nothing of the dump runs any more: GRANT, REVOKE and
    // ALTER ... OWNER TO built from the target's catalog (access.ts), no SQL text of the dump's.
    const access = options.access;
    if (access?.access) findings.push(...(await withClient(admin, (client) => applyAccess(client, access))));
    return findings;
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The TOC entry an error names itself, for when pg_restore's "from TOC entry" line did not come
 * right before it (two --jobs workers can interleave their lines): `COPY failed for table "t"` names
 * its table's data, when exactly one TABLE DATA entry has that name.
 */
export function entryNamedBy(toc: TocEntry[], message: string): TocEntry | undefined {
  const table = /^COPY failed for table "(.+?)"(?::|$)/.exec(message)?.[1];
  if (!table) return undefined;
  const matches = toc.filter(
    (e) =>
      e.what.startsWith('TABLE DATA ') && (e.what.endsWith(` ${table}`) || e.what.endsWith(` ${quoteIdent(table)}`)),
  );
  return matches.length === 1 ? matches[0] : undefined;
}

/**
 * The dump's extensions that a plain owner cannot create: made by the admin when allow-listed, left
 * out and reported otherwise. Returns the TOC entries to leave out of the load.
 */
async function prepareExtensions(
  client: Client,
  options: LoadOptions,
): Promise<{ left: Set<number>; findings: CheckResult[] }> {
  const left = new Set<number>();
  const findings: CheckResult[] = [];
  const extensions = options.toc
    .filter((e) => e.what.startsWith('EXTENSION '))
    .map((e) => ({ entry: e, name: e.what.slice('EXTENSION '.length) }));
  if (extensions.length === 0) return { left, findings };
  // Where a plain owner may create an extension (PostgreSQL 13+: trusted ones), pg_restore does.
  const { rows } = await client.query<{ name: string }>(
    `select e.name from pg_available_extensions e
       join pg_available_extension_versions v on v.name = e.name and v.version = e.default_version
      where e.name = any($1) and v.superuser and not coalesce((to_jsonb(v) ->> 'trusted')::boolean, false)`,
    [extensions.map((e) => e.name)],
  );
  const needSuperuser = new Set(rows.map((r) => r.name));
  const commentOf = (name: string) =>
    options.toc.find(
      (e) => e.what === `COMMENT EXTENSION ${name}` || e.what === `COMMENT EXTENSION ${quoteIdent(name)}`,
    );
  const toCreate: Array<{ entry: TocEntry; name: string }> = [];
  for (const ext of extensions.filter((e) => needSuperuser.has(e.name))) {
    // Its comment goes with it: the extension's own, set when it is created.
    for (const e of [ext.entry, commentOf(ext.name)]) if (e) left.add(e.id);
    if (ADMIN_CREATED_EXTENSIONS.has(ext.name)) toCreate.push(ext);
    else {
      findings.push({
        name: `restore of EXTENSION ${ext.name}`,
        ok: false,
        detail: `not restored: it needs a superuser, and is not among the extensions Lifeboat creates itself (${[...ADMIN_CREATED_EXTENSIONS].length} of PostgreSQL's own); what uses it fails below`,
      });
    }
  }
  if (toCreate.length === 0) return { left, findings };
  const schemas = await extensionSchemas(
    options,
    toCreate.map((e) => e.entry),
  );
  for (const ext of toCreate) {
    const schema = schemas.get(ext.name);
    try {
      if (!schema) throw new Error('the dump does not say which schema it goes in');
      const exists = await client.query('select 1 from pg_namespace where nspname = $1', [schema]);
      if (!exists.rowCount) {
        // Made as the dump would have made it (owned by the restore role), so the dump's entry is left out.
        await client.query(`create schema ${quoteIdent(schema)} authorization ${RESTORE_ROLE}`);
        const schemaEntry = options.toc.find(
          (e) => e.what === `SCHEMA ${schema}` || e.what === `SCHEMA ${quoteIdent(schema)}`,
        );
        if (schemaEntry) left.add(schemaEntry.id);
      }
      await client.query(`create extension if not exists ${quoteIdent(ext.name)} with schema ${quoteIdent(schema)}`);
    } catch (err) {
      findings.push({
        name: `restore of EXTENSION ${ext.name}`,
        ok: false,
        detail: `not restored: Lifeboat could not create it: ${(err as Error).message}`,
      });
    }
  }
  return { left, findings };
}

/**
 * The schema each extension entry names, read from the SQL pg_restore would run for those entries
 * alone (the TOC does not list it). That SQL is the dump's text: only the two names are taken from
 * it, parsed strictly, and quoted again here.
 */
async function extensionSchemas(options: LoadOptions, entries: TocEntry[]): Promise<Map<string, string>> {
  const dir = mkdtempSync(join(tmpdir(), `lifeboat-restore-${process.pid}-`));
  try {
    writeFileSync(join(dir, 'extensions'), entries.map((e) => e.line).join('\n') + '\n', { mode: 0o600 });
    const sql = await run(
      join(options.pgBin, 'pg_restore'),
      ['--use-list', join(dir, 'extensions'), '--file', '-', options.file],
      {
        env: { PATH: process.env.PATH, LANG: 'C.UTF-8' },
        signal: options.signal,
      },
    );
    const ident = '("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)';
    const schemas = new Map<string, string>();
    for (const line of sql.split('\n')) {
      const m = new RegExp(`^CREATE EXTENSION IF NOT EXISTS ${ident} WITH SCHEMA ${ident};$`).exec(line);
      if (m) schemas.set(unquote(m[1]!), unquote(m[2]!));
    }
    return schemas;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function unquote(ident: string): string {
  return ident.startsWith('"') ? ident.slice(1, -1).replace(/""/g, '"') : ident;
}

interface RestoreError {
  /** The TOC entry pg_restore was working on, when it said. */
  entry: number | null;
  message: string;
}

/**
 * pg_restore without --exit-on-error: it restores what it can and says which entries failed
 * (`--verbose` names each: "from TOC entry <id>; ..."). Ending with "errors ignored on restore" is a
 * finished load with findings; any other failure (pg_restore gave up) is thrown as CommandFailed.
 * The error lines are read as they come, however many; only the first line of each is kept (its
 * CONTEXT can quote row data).
 */
function pgRestore(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  options: Pick<LoadOptions, 'signal' | 'heartbeat'>,
): Promise<RestoreError[]> {
  return new Promise((resolve, reject) => {
    const child = start(command, args, { env });
    child.stdout?.resume();
    const errors: RestoreError[] = [];
    let entry: number | null = null;
    let finished = false;
    let pending = '';
    let tail = '';
    const onLine = (line: string): void => {
      const from = /^pg_restore: from TOC entry (\d+);/.exec(line);
      if (from) entry = Number(from[1]);
      else if (line.startsWith('pg_restore: error: ')) {
        const message = line
          .slice('pg_restore: error: '.length)
          .replace(/^could not execute query: /, '')
          .replace(/\s+/g, ' ');
        errors.push({ entry, message: message.length > 300 ? `${message.slice(0, 300)}…` : message });
      } else if (/^pg_restore: warning: errors ignored on restore: \d+/.test(line)) finished = true;
      if (
        !line.startsWith('pg_restore: processing ') &&
        !line.startsWith('pg_restore: creating ') &&
        !/^pg_restore: (launching|finished) item/.test(line)
      ) {
        tail = (tail + line + '\n').slice(-8000);
      }
    };
    child.stderr?.on('data', (chunk: Buffer) => {
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop() ?? '';
      lines.forEach(onLine);
    });
    const beat = setInterval(options.heartbeat, 1000);
    const onAbort = (): void => void child.kill('SIGTERM');
    options.signal.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      clearInterval(beat);
      options.signal.removeEventListener('abort', onAbort);
    };
    child.on('error', (e) => {
      done();
      reject(e);
    });
    child.on('close', (code) => {
      done();
      if (pending) onLine(pending);
      if (options.signal.aborted) reject(options.signal.reason ?? new Error('pg_restore cancelled'));
      else if (code === 0) resolve([]);
      else if (code === 1 && finished) resolve(errors);
      else reject(new CommandFailed(`pg_restore ${args[0] ?? ''}`.trim(), code, tail));
    });
  });
}
