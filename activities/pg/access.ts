// Roles, owners and privileges: what a backup records of them, how a restore brings them back, and
// how a restored database is checked against them.
//
// A backup records the roles its database uses (owners, grantees, grantors, default privileges'
// roles, and their memberships both ways), never a password, and each object's owner and ACL named
// without OIDs (captureAccess). A restore still loads the dump as lifeboat_restore with --no-owner
// --no-privileges (load-dump.ts), so nothing in the dump runs with more than a database owner's power;
// around that load the admin login
// - before it, creates the roles the server lacks (recreateRoles): their attributes and memberships,
//   never a password, never SUPERUSER, never CREATEROLE before PostgreSQL 16 (it could grant itself
//   any role there), never a membership in a role with those or in the predefined roles that reach
//   the server's files and programs. Roles that already exist are left as they are; a managed
//   platform's own roles (rds*, cloudsql*) are not made on another server. Each role made carries a
//   comment saying so, so that a retried restore finishes it rather than taking it for the server's.
// - after it, gives each object its recorded owner and makes its ACL the recorded one (applyAccess)
//   with ALTER ... OWNER TO, GRANT and REVOKE built here, from the target's own catalog names and
//   quoted role names: no SQL text from the dump or the manifest runs as the admin. An object whose
//   recorded owner is a superuser on the target stays with the role that loaded it: a superuser's
//   table would run the dump's index expressions as a superuser at its next ANALYZE.
// compareAccess then checks the restored database against the manifest, for every kind of restore.
import type { Client } from 'pg';
import type { AclEntry, BackupManifest, CheckResult, ObjectAccess, RoleRecord } from '../../workflows/types';
import { PROBE_ROLE } from '../providers/managed-fence';
import { RESTORE_ROLE } from './roles';
import { quoteIdent } from './sql';

/** ACL letters in the order an entry lists them, by the privilege name aclexplode gives. */
const LETTER: Record<string, string> = {
  SELECT: 'r',
  INSERT: 'a',
  UPDATE: 'w',
  DELETE: 'd',
  TRUNCATE: 'D',
  REFERENCES: 'x',
  TRIGGER: 't',
  MAINTAIN: 'm',
  EXECUTE: 'X',
  USAGE: 'U',
  CREATE: 'C',
  CONNECT: 'c',
  TEMPORARY: 'T',
  SET: 's',
  'ALTER SYSTEM': 'A',
};
const ORDER = 'rawdDxtmXUCcTsA';
const PRIVILEGE: Record<string, string> = Object.fromEntries(
  Object.entries(LETTER).map(([word, letter]) => [letter, word]),
);

/**
 * A managed platform's own roles (RDS's rds_superuser, rdsadmin; Cloud SQL's cloudsqlsuperuser, ...),
 * as the managed fence names them: they come with the platform, Lifeboat does not make them elsewhere.
 */
const PLATFORM_ROLE = /^(rds|cloudsql)/;

/** Predefined roles whose members read or write the server's files or run programs on it. */
const SERVER_ACCESS_ROLES: ReadonlySet<string> = new Set([
  'pg_execute_server_program',
  'pg_read_server_files',
  'pg_write_server_files',
]);

/**
 * Lifeboat's own roles: never recorded, created, granted or compared. Nor is a role dropped while
 * its grant was being read (pg_get_userbyid's "unknown (OID=n)"), such as the checks' login.
 */
function isLifeboatRole(name: string): boolean {
  return (
    name === RESTORE_ROLE ||
    name === PROBE_ROLE ||
    name.startsWith('lifeboat_check_') ||
    /^unknown \(OID=\d+\)$/.test(name)
  );
}

// Objects in user schemas (not extension members), each with its owner and its ACL as aclexplode
// rows; an ACL never set is written out as its default (acldefault), so "never granted" and "granted
// back to the default" read the same. Names are PostgreSQL's own quoting with only pg_catalog on the
// search path: the same on any two servers, and usable as SQL on the server that produced them.
const OBJECTS_SQL = `
  with objects as (
    select case c.relkind when 'v' then 'view' when 'm' then 'materialized view' when 'S' then 'sequence'
                          when 'f' then 'foreign table' else 'table' end as kind,
           format('%I.%I', n.nspname, c.relname) as name, c.relowner as owner,
           coalesce(c.relacl, acldefault((case c.relkind when 'S' then 's' else 'r' end)::"char", c.relowner)) as acl,
           'pg_class'::regclass as classid, c.oid, c.relnamespace as ns
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f') and c.relpersistence <> 't'
    union all
    select 'schema', quote_ident(n.nspname), n.nspowner, coalesce(n.nspacl, acldefault('n', n.nspowner)), 'pg_namespace'::regclass, n.oid, n.oid
      from pg_namespace n
    union all
    select case p.prokind when 'p' then 'procedure' when 'a' then 'aggregate' else 'function' end, p.oid::regprocedure::text,
           p.proowner, coalesce(p.proacl, acldefault('f', p.proowner)), 'pg_proc'::regclass, p.oid, p.pronamespace
      from pg_proc p
    union all
    select case t.typtype when 'd' then 'domain' else 'type' end, t.oid::regtype::text, t.typowner,
           coalesce(t.typacl, acldefault('T', t.typowner)), 'pg_type'::regclass, t.oid, t.typnamespace
      from pg_type t
     where t.typtype in ('c', 'd', 'e', 'r') and (t.typtype <> 'c' or exists (select 1 from pg_class c where c.oid = t.typrelid and c.relkind = 'c'))
    union all
    select 'large object', l.oid::text, l.lomowner, coalesce(l.lomacl, acldefault('L', l.lomowner)), 'pg_largeobject'::regclass, l.oid, 0
      from pg_largeobject_metadata l
    union all
    select 'database', '', d.datdba, coalesce(d.datacl, acldefault('d', d.datdba)), 'pg_database'::regclass, d.oid, 0
      from pg_database d where d.datname = current_database()
  )
  select o.kind, o.name, pg_get_userbyid(o.owner) as owner,
         (select quote_ident(s.nspname) from pg_namespace s where s.oid = o.ns and o.kind <> 'schema') as within,
         (select coalesce(json_agg(json_build_array(case when x.grantee = 0 then 'PUBLIC' else pg_get_userbyid(x.grantee) end,
                                                    pg_get_userbyid(x.grantor), x.privilege_type, x.is_grantable)), '[]')
            from aclexplode(o.acl) x) as acl
    from objects o
   where (o.ns = 0 or exists (select 1 from pg_namespace s where s.oid = o.ns and s.nspname not like 'pg\\_%' and s.nspname <> 'information_schema'))
     and not exists (select 1 from pg_depend d where d.classid = o.classid and d.objid = o.oid and d.deptype = 'e')`;

const COLUMNS_SQL = `
  select format('%I.%I', n.nspname, c.relname) as name, a.attname as column,
         (select json_agg(json_build_array(case when x.grantee = 0 then 'PUBLIC' else pg_get_userbyid(x.grantee) end,
                                           pg_get_userbyid(x.grantor), x.privilege_type, x.is_grantable))
            from aclexplode(a.attacl) x) as acl
    from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
   where a.attacl is not null and a.attnum > 0 and not a.attisdropped and c.relkind in ('r', 'p', 'v', 'm', 'f')
     and n.nspname not like 'pg\\_%' and n.nspname <> 'information_schema'`;

const DEFAULT_ACL_SQL = `
  select pg_get_userbyid(d.defaclrole) as role, n.nspname as schema, d.defaclobjtype as type,
         (select coalesce(json_agg(json_build_array(case when x.grantee = 0 then 'PUBLIC' else pg_get_userbyid(x.grantee) end,
                                                    pg_get_userbyid(x.grantor), x.privilege_type, x.is_grantable)), '[]')
            from aclexplode(d.defaclacl) x) as acl
    from pg_default_acl d left join pg_namespace n on n.oid = d.defaclnamespace`;

type ExplodedAcl = Array<[string, string, string, boolean]>;

const DEFAULT_OBJECTS: Record<string, NonNullable<ObjectAccess['objects']>> = {
  r: 'tables',
  S: 'sequences',
  f: 'functions',
  T: 'types',
  n: 'schemas',
};
/** acldefault's letter for each kind of default privileges: what holds where no entry says otherwise. */
const ACLDEFAULT_TYPE: Record<NonNullable<ObjectAccess['objects']>, string> = {
  tables: 'r',
  sequences: 's',
  functions: 'f',
  types: 'T',
  schemas: 'n',
};

/** aclexplode rows as AclEntry values, one per grantee and grantor. */
function entriesOf(rows: ExplodedAcl): AclEntry[] {
  const byHolder = new Map<string, AclEntry>();
  for (const [grantee, grantor, privilege, grantable] of rows) {
    const letter = LETTER[privilege] ?? `?${privilege}?`;
    const key = JSON.stringify([grantee, grantor]);
    const entry = byHolder.get(key) ?? { grantee, grantor, privileges: '' };
    entry.privileges += letter + (grantable ? '*' : '');
    byHolder.set(key, entry);
  }
  const order = (p: string) => ORDER.indexOf(p[0]!);
  return [...byHolder.values()]
    .map((e) => ({
      ...e,
      privileges: (e.privileges.match(/.\*?/g) ?? []).sort((a, b) => order(a) - order(b)).join(''),
    }))
    .sort((a, b) => a.grantee.localeCompare(b.grantee) || a.grantor.localeCompare(b.grantor));
}

function defaultPrivilegesName(role: string, schema: string | null, objects: string): string {
  return `for role ${quoteIdent(role)}${schema === null ? '' : ` in schema ${quoteIdent(schema)}`} on ${objects}`;
}

/** An object as read from a server: with the schema it is in (quoted), which a manifest does not keep. */
type ServerObject = ObjectAccess & { within?: string };

/** Reads every object's owner and ACL, with only pg_catalog on the search path (restored after, inside a transaction). */
async function readObjects(client: Client): Promise<ServerObject[]> {
  const saved = (await client.query<{ path: string }>(`select current_setting('search_path') as path`)).rows[0]!.path;
  await client.query(`select set_config('search_path', 'pg_catalog', false)`);
  try {
    const { rows } = await client.query<{
      kind: string;
      name: string;
      owner: string;
      within: string | null;
      acl: ExplodedAcl;
    }>(OBJECTS_SQL);
    const objects = rows.map((r): ServerObject => ({
      kind: r.kind,
      name: r.name,
      owner: r.owner,
      acl: entriesOf(r.acl),
      ...(r.within && { within: r.within }),
    }));
    const relations = new Map(objects.filter((o) => RELATION_KINDS.has(o.kind)).map((o) => [o.name, o]));
    for (const col of (await client.query<{ name: string; column: string; acl: ExplodedAcl }>(COLUMNS_SQL)).rows) {
      const relation = relations.get(col.name);
      if (!relation) continue;
      const entries = entriesOf(col.acl);
      if (entries.length > 0) (relation.columns ??= {})[col.column] = entries;
    }
    for (const d of (
      await client.query<{ role: string; schema: string | null; type: string; acl: ExplodedAcl }>(DEFAULT_ACL_SQL)
    ).rows) {
      const objectsKind = DEFAULT_OBJECTS[d.type];
      if (!objectsKind || isLifeboatRole(d.role)) continue;
      objects.push({
        kind: 'default privileges',
        name: defaultPrivilegesName(d.role, d.schema, objectsKind),
        owner: d.role,
        acl: entriesOf(d.acl),
        schema: d.schema,
        objects: objectsKind,
      });
    }
    return objects.sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
  } finally {
    // After an error the transaction (if any) is aborted, and its rollback undoes the setting anyway.
    await client.query(`select set_config('search_path', $1, false)`, [saved]).catch(() => undefined);
  }
}

const RELATION_KINDS: ReadonlySet<string> = new Set([
  'table',
  'view',
  'materialized view',
  'sequence',
  'foreign table',
]);

const ROLES_SQL = `
  with recursive used as (select oid from pg_roles where rolname = any($1)),
  below(oid) as (select oid from used union select m.member from pg_auth_members m join below b on m.roleid = b.oid),
  above(oid) as (select oid from below union select m.roleid from pg_auth_members m join above a on m.member = a.oid)
  select r.rolname as name, r.rolsuper as superuser, r.rolcanlogin as login, r.rolinherit as inherit, r.rolcreatedb as createdb,
         r.rolcreaterole as createrole, r.rolreplication as replication, r.rolbypassrls as bypassrls,
         r.rolconnlimit as "connectionLimit", to_json(r.rolvaliduntil) #>> '{}' as "validUntil",
         coalesce((select json_agg(json_build_object('role', g.rolname, 'admin', m.admin_option) order by g.rolname)
                     from pg_auth_members m join pg_roles g on g.oid = m.roleid where m.member = r.oid), '[]') as "memberOf"
    from pg_roles r
   where r.oid in (select oid from above) and r.rolname not like 'pg\\_%'
   order by r.rolname`;

/**
 * The roles and per-object access of the database `client` is connected to, for a manifest. Run it
 * in the backup's snapshot transaction where there is one. Password hashes are never read (pg_roles
 * shows none).
 */
export async function captureAccess(client: Client): Promise<{ roles: RoleRecord[]; access: ObjectAccess[] }> {
  // Lifeboat's own logins hold grants only while it works (the checks' login): not the database's.
  const ours = (acl: AclEntry[], owner: string) => acl.filter((e) => e.grantee === owner || !isLifeboatRole(e.grantee));
  const access = (await readObjects(client)).map(({ within: _, ...o }): ObjectAccess => ({
    ...o,
    acl: ours(o.acl, o.owner),
    ...(o.columns && {
      columns: Object.fromEntries(Object.entries(o.columns).map(([c, acl]) => [c, ours(acl, o.owner)])),
    }),
  }));
  const used = new Set<string>();
  for (const o of access) {
    used.add(o.owner);
    for (const e of [...o.acl, ...Object.values(o.columns ?? {}).flat()]) used.add(e.grantee).add(e.grantor);
  }
  used.delete('PUBLIC');
  const { rows } = await client.query<RoleRecord>(ROLES_SQL, [[...used]]);
  const roles = rows
    .filter((r) => !isLifeboatRole(r.name))
    .map((r) => ({ ...r, memberOf: r.memberOf.filter((m) => !isLifeboatRole(m.role)) }));
  return { roles, access };
}

/** Roles and access as nested arrays in a fixed order, for a digest that survives jsonb's reordering of object keys. */
export function accessDigestForm(manifest: Pick<BackupManifest, 'roles' | 'access'>): unknown {
  const acl = (entries: AclEntry[]) => entries.map((e) => [e.grantee, e.grantor, e.privileges]);
  return [
    (manifest.roles ?? []).map((r) => [
      r.name,
      r.superuser,
      r.login,
      r.inherit,
      r.createdb,
      r.createrole,
      r.replication,
      r.bypassrls,
      r.connectionLimit,
      r.validUntil,
      r.memberOf.map((m) => [m.role, m.admin]),
    ]),
    (manifest.access ?? []).map((o) => [
      o.kind,
      o.name,
      o.owner,
      acl(o.acl),
      o.schema ?? null,
      o.objects ?? null,
      Object.entries(o.columns ?? {})
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([column, entries]) => [column, acl(entries)]),
    ]),
  ];
}

interface TargetRole {
  name: string;
  superuser: boolean;
  createrole: boolean;
  /** Made by recreateRoles (its comment says so): a retry finishes it instead of leaving it as found. */
  ours?: boolean;
}

/** The comment recreateRoles puts on each role it makes. */
const MADE_BY_LIFEBOAT = 'made by Lifeboat from a backup';

interface Server {
  admin: string;
  adminIsSuperuser: boolean;
  versionNum: number;
  roles: Map<string, TargetRole>;
}

/** A managed platform's own role the server does not have: what the backup gave it is not restored. */
function absentPlatformRole(server: Server): (role: string) => boolean {
  return (role) => PLATFORM_ROLE.test(role) && !server.roles.has(role);
}

/** Objects whose recorded owner is a superuser here, or a platform's role it lacks, stay with the role that loaded them. */
function ownerNotGiven(owner: string, server: Server): boolean {
  return server.roles.get(owner)?.superuser === true || absentPlatformRole(server)(owner);
}

async function readServer(client: Client): Promise<Server> {
  const me = (
    await client.query<{ admin: string; sup: string; num: string }>(
      `select current_user as admin, current_setting('is_superuser') as sup, current_setting('server_version_num') as num`,
    )
  ).rows[0]!;
  const { rows } = await client.query<TargetRole>(
    `select rolname as name, rolsuper as superuser, rolcreaterole as createrole, shobj_description(oid, 'pg_authid') = $1 as ours from pg_roles`,
    [MADE_BY_LIFEBOAT],
  );
  return {
    admin: me.admin,
    adminIsSuperuser: me.sup === 'on',
    versionNum: Number(me.num),
    roles: new Map(rows.map((r) => [r.name, r])),
  };
}

/** Attributes Lifeboat never gives a role it recreates, and why (null: it tries, and reports a refusal). */
function withheldAttribute(attribute: string, server: Pick<Server, 'versionNum'>): string | null {
  if (attribute === 'SUPERUSER') return 'Lifeboat never makes a superuser from a backup';
  if (attribute === 'CREATEROLE' && server.versionNum < 160000)
    return 'before PostgreSQL 16 a role with CREATEROLE can grant itself any role but a superuser';
  return null;
}

/** Why a membership in `role` is not given to a restored role, or null when it may be. */
function withheldMembership(role: string, server: Server): string | null {
  if (isLifeboatRole(role)) return `${role} is Lifeboat's own`;
  if (PLATFORM_ROLE.test(role)) return `${role} is a managed platform's own role`;
  if (role === server.admin) return `${role} is the login Lifeboat restores with`;
  if (SERVER_ACCESS_ROLES.has(role)) return `${role} reaches the server's files or programs`;
  const target = server.roles.get(role);
  if (target?.superuser) return `${role} is a superuser on this server`;
  if (target?.createrole && server.versionNum < 160000)
    return `${role} has CREATEROLE, which before PostgreSQL 16 reaches any role`;
  return null;
}

const ATTRIBUTES: Array<[keyof RoleRecord, string]> = [
  ['superuser', 'SUPERUSER'],
  ['createdb', 'CREATEDB'],
  ['createrole', 'CREATEROLE'],
  ['replication', 'REPLICATION'],
  ['bypassrls', 'BYPASSRLS'],
];

export interface RecreatedRoles {
  /** What could not be done: each a failed check naming the role. */
  findings: CheckResult[];
  created: string[];
  /** Roles the server already had: left as they are. */
  existing: string[];
  /** Attributes and memberships not given, each naming the role, what and why. */
  withheld: string[];
}

/**
 * Creates, as the admin login `admin`, each role of `roles` the server lacks: its LOGIN, INHERIT,
 * CONNECTION LIMIT and VALID UNTIL, then CREATEDB, CREATEROLE, REPLICATION, BYPASSRLS one by one
 * (an attribute the server refuses the admin is reported by name, the role made without it), then
 * its memberships. No password: a recreated login cannot log in until one is set. Roles that exist
 * are left as they are, memberships included, but for those an earlier attempt made (their comment
 * says so), which are finished: a retried restore ends as a first one would.
 */
export async function recreateRoles(admin: Client, roles: RoleRecord[]): Promise<RecreatedRoles> {
  const server = await readServer(admin);
  const result: RecreatedRoles = { findings: [], created: [], existing: [], withheld: [] };
  const wanted = roles.filter((r) => !isLifeboatRole(r.name) && !r.name.startsWith('pg_'));
  const fresh: RoleRecord[] = [];
  for (const role of wanted) {
    if (PLATFORM_ROLE.test(role.name) && !server.roles.has(role.name)) {
      result.withheld.push(`${role.name}: not created (a managed platform's own role)`);
      continue;
    }
    const found = server.roles.get(role.name);
    if (found && !found.ours) {
      result.existing.push(role.name);
      continue;
    }
    const name = quoteIdent(role.name);
    const limit = Number.isInteger(role.connectionLimit) && role.connectionLimit >= -1 ? role.connectionLimit : -1;
    const until = role.validUntil ? ` valid until ${admin.escapeLiteral(role.validUntil)}` : '';
    try {
      // Made by an earlier attempt of this restore (it says so): finished now, as it was to be.
      const how = `${role.login ? 'login' : 'nologin'} ${role.inherit ? 'inherit' : 'noinherit'} connection limit ${limit}${until}`;
      await admin.query(found ? `alter role ${name} ${how}` : `create role ${name} ${how}`);
      await admin.query(`comment on role ${name} is ${admin.escapeLiteral(MADE_BY_LIFEBOAT)}`);
    } catch (err) {
      result.findings.push({ name: `role ${role.name}`, ok: false, detail: `not created: ${(err as Error).message}` });
      continue;
    }
    result.created.push(role.name);
    fresh.push(role);
    server.roles.set(role.name, { name: role.name, superuser: false, createrole: false, ours: true });
    // An admin that is no superuser may give objects only to roles it is a member of.
    if (!server.adminIsSuperuser) await admin.query(`grant ${name} to current_user`).catch(() => undefined);
    for (const [field, attribute] of ATTRIBUTES) {
      if (role[field] !== true) continue;
      const why = withheldAttribute(attribute, server);
      if (why) {
        result.withheld.push(`${role.name}: ${attribute} (${why})`);
        continue;
      }
      await admin.query(`alter role ${name} ${attribute.toLowerCase()}`).catch((err: Error) => {
        result.withheld.push(`${role.name}: ${attribute} (the server refused it: ${err.message})`);
      });
    }
  }
  for (const role of fresh) {
    for (const m of role.memberOf) {
      const why = withheldMembership(m.role, server);
      if (why) {
        result.withheld.push(`${role.name}: membership in ${m.role} (${why})`);
        continue;
      }
      await admin
        .query(`grant ${quoteIdent(m.role)} to ${quoteIdent(role.name)}${m.admin ? ' with admin option' : ''}`)
        .catch((err: Error) => {
          result.findings.push({
            name: `role ${role.name}`,
            ok: false,
            detail: `not made a member of ${m.role}: ${err.message}`,
          });
        });
    }
  }
  return result;
}

/** `ALTER <this> name OWNER TO` and `GRANT ... ON <this> name`, per kind. */
const ALTER_KEYWORD: Record<string, string> = {
  table: 'table',
  view: 'view',
  'materialized view': 'materialized view',
  sequence: 'sequence',
  'foreign table': 'foreign table',
  schema: 'schema',
  function: 'routine',
  procedure: 'routine',
  aggregate: 'routine',
  type: 'type',
  domain: 'domain',
  'large object': 'large object',
  database: 'database',
};
const GRANT_KEYWORD: Record<string, string> = {
  ...ALTER_KEYWORD,
  view: 'table',
  'materialized view': 'table',
  'foreign table': 'table',
};

/** Privileges by grantee and letter, with the owner's entries under one name whoever owns it. */
const OWNER = '\u0000owner';
function holdings(acl: AclEntry[], owner: string): Map<string, Map<string, boolean>> {
  const out = new Map<string, Map<string, boolean>>();
  for (const e of acl) {
    if (isLifeboatRole(e.grantee) && e.grantee !== owner) continue;
    const who = e.grantee === owner ? OWNER : e.grantee;
    const held = out.get(who) ?? new Map<string, boolean>();
    for (const p of e.privileges.match(/.\*?/g) ?? []) held.set(p[0]!, (held.get(p[0]!) ?? false) || p.endsWith('*'));
    out.set(who, held);
  }
  return out;
}

interface AclChange {
  grantee: string;
  letter: string;
  /** grant: give it (with grant option when `option`); revoke: take it (only the grant option when `option`). */
  action: 'grant' | 'revoke';
  option: boolean;
}

/**
 * What it takes to turn `have` into `want`. Grants to a managed platform's own role that this server
 * does not have (`absent`) are left out: there is nobody to give them to.
 */
function aclChanges(
  want: AclEntry[],
  wantOwner: string,
  have: AclEntry[],
  haveOwner: string,
  absent?: (role: string) => boolean,
): AclChange[] {
  const w = holdings(want, wantOwner);
  const h = holdings(have, haveOwner);
  const changes: AclChange[] = [];
  for (const [grantee, letters] of w) {
    for (const [letter, option] of letters) {
      const held = h.get(grantee)?.get(letter);
      if (held === undefined || (option && !held)) changes.push({ grantee, letter, action: 'grant', option });
      else if (!option && held) changes.push({ grantee, letter, action: 'revoke', option: true });
    }
  }
  for (const [grantee, letters] of h) {
    for (const letter of letters.keys())
      if (!w.get(grantee)?.has(letter)) changes.push({ grantee, letter, action: 'revoke', option: false });
  }
  return absent ? changes.filter((c) => !absent(c.grantee)) : changes;
}

/** aclChanges of every column either side grants privileges on. */
function columnAclChanges(
  want: ObjectAccess,
  found: ObjectAccess,
  absent?: (role: string) => boolean,
): Array<{ column: string; changes: AclChange[] }> {
  const columns = new Set([...Object.keys(want.columns ?? {}), ...Object.keys(found.columns ?? {})]);
  return [...columns].map((column) => ({
    column,
    changes: aclChanges(want.columns?.[column] ?? [], want.owner, found.columns?.[column] ?? [], found.owner, absent),
  }));
}

function granteeSql(grantee: string, owner: string): string {
  const name = grantee === OWNER ? owner : grantee;
  return name === 'PUBLIC' ? 'public' : quoteIdent(name);
}

/** GRANT/REVOKE statements for `changes`, one per grantee, action and option; `on` is e.g. `on table public.t`. */
function aclStatements(changes: AclChange[], owner: string, on: string, column?: string): string[] {
  const groups = new Map<string, AclChange[]>();
  for (const c of changes) {
    const key = `${c.action}\u0000${c.option}\u0000${c.grantee}`;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  return [...groups.values()].map((group) => {
    const { action, option, grantee } = group[0]!;
    const privileges = group
      .map((c) => (PRIVILEGE[c.letter] ?? '?').toLowerCase() + (column ? ` (${quoteIdent(column)})` : ''))
      .join(', ');
    const who = granteeSql(grantee, owner);
    return action === 'grant'
      ? `grant ${privileges} ${on} to ${who}${option ? ' with grant option' : ''}`
      : `revoke ${option ? 'grant option for ' : ''}${privileges} ${on} from ${who}`;
  });
}

/** The default privileges a role has in a schema (or everywhere) when pg_default_acl has no entry for it. */
async function builtInDefaults(client: Client, entry: ObjectAccess): Promise<AclEntry[]> {
  if (entry.schema !== null) return [];
  const { rows } = await client.query<{ acl: ExplodedAcl }>(
    `select (select coalesce(json_agg(json_build_array(case when x.grantee = 0 then 'PUBLIC' else pg_get_userbyid(x.grantee) end,
                                                       pg_get_userbyid(x.grantor), x.privilege_type, x.is_grantable)), '[]')
               from aclexplode(acldefault($1::"char", r.oid)) x) as acl
       from pg_roles r where r.rolname = $2`,
    [ACLDEFAULT_TYPE[entry.objects ?? 'tables'], entry.owner],
  );
  return entriesOf(rows[0]?.acl ?? []);
}

const APPLY_ORDER = [
  'database',
  'schema',
  'type',
  'domain',
  'table',
  'foreign table',
  'sequence',
  'view',
  'materialized view',
  'function',
  'aggregate',
  'procedure',
  'large object',
  'default privileges',
];

/**
 * Gives every object of the restored database (that `admin`, the admin login, is connected to) the
 * owner and privileges `manifest` recorded, and makes the default privileges the recorded ones.
 * Objects the manifest does not know are left alone; an object owned by a superuser in the backup
 * (on this server) stays with the role that loaded it. Returns a failed check for each statement
 * the server refused; the verify that follows names what is then missing. Idempotent.
 */
export async function applyAccess(admin: Client, manifest: Pick<BackupManifest, 'access'>): Promise<CheckResult[]> {
  if (!manifest.access) return [];
  const server = await readServer(admin);
  const absent = absentPlatformRole(server);
  const findings: CheckResult[] = [];
  const present = new Map((await readObjects(admin)).map((o) => [`${o.kind}\u0000${o.name}`, o]));
  const database = quoteIdent((await admin.query<{ db: string }>('select current_database() as db')).rows[0]!.db);
  const run = async (object: ObjectAccess, sql: string): Promise<boolean> =>
    admin.query(sql).then(
      () => true,
      (err: Error) => {
        findings.push({
          name: `access ${label(object)}`,
          ok: false,
          detail: `Lifeboat could not restore it: ${sql.replace(/\s+/g, ' ')}: ${err.message}`,
        });
        return false;
      },
    );
  const wanted = [...manifest.access].sort((a, b) => APPLY_ORDER.indexOf(a.kind) - APPLY_ORDER.indexOf(b.kind));
  for (const want of wanted) {
    const found = present.get(`${want.kind}\u0000${want.name}`);
    if (want.kind === 'default privileges') {
      if (!server.roles.has(want.owner)) continue; // its role could not be made: a finding already
      const have = found?.acl ?? (await builtInDefaults(admin, want));
      const on = `on ${want.objects ?? 'tables'}`;
      const prefix = `alter default privileges for role ${quoteIdent(want.owner)}${want.schema == null ? '' : ` in schema ${quoteIdent(want.schema)}`} `;
      for (const sql of aclStatements(aclChanges(want.acl, want.owner, have, want.owner, absent), want.owner, on))
        await run(want, prefix + sql);
      continue;
    }
    const keyword = ALTER_KEYWORD[want.kind];
    if (!found || !keyword) continue; // missing: the verify names it
    // The name as this server spells it: PostgreSQL's own quoting, never text from the manifest.
    const target = want.kind === 'database' ? database : found.name;
    let owner = found.owner;
    if (want.owner !== found.owner && server.roles.has(want.owner) && !ownerNotGiven(want.owner, server)) {
      const alter = `alter ${keyword} ${target} owner to ${quoteIdent(want.owner)}`;
      // An admin that is no superuser may give an object only to a role that may create in its schema
      // (public, since PostgreSQL 15, lets only its owner): for that moment it may.
      const lent = !server.adminIsSuperuser && found.within ? await lendCreate(admin, found.within, want.owner) : null;
      if (await run(want, alter)) owner = want.owner;
      if (lent) await run(want, lent);
    }
    const on = `on ${GRANT_KEYWORD[want.kind]} ${target}`;
    for (const sql of aclStatements(aclChanges(want.acl, want.owner, found.acl, found.owner, absent), owner, on))
      await run(want, sql);
    for (const { column, changes } of columnAclChanges(want, found, absent))
      for (const sql of aclStatements(changes, owner, on, column)) await run(want, sql);
  }
  return findings;
}

/**
 * Grants CREATE on `schema` to `role` when it lacks it, and returns the REVOKE that takes it back
 * (null when there was nothing to lend, or the admin may not lend it: the ALTER then says why).
 */
async function lendCreate(admin: Client, schema: string, role: string): Promise<string | null> {
  const { rows } = await admin.query<{ may: boolean }>(`select has_schema_privilege($1, $2, 'CREATE') as may`, [
    role,
    schema,
  ]);
  if (rows[0]?.may !== false) return null;
  const grant = `grant create on schema ${schema} to ${quoteIdent(role)}`;
  return admin.query(grant).then(
    () => `revoke create on schema ${schema} from ${quoteIdent(role)}`,
    () => null,
  );
}

function label(o: Pick<ObjectAccess, 'kind' | 'name'>): string {
  if (o.kind === 'database') return 'the database';
  if (o.kind === 'default privileges') return `default privileges ${o.name}`;
  return `${o.kind} ${o.name}`;
}

/** `app_reader lost SELECT, UPDATE`-style phrases for what differs between two ACLs. */
function describeChanges(changes: AclChange[], owner: string): string[] {
  const byWho = new Map<string, { lost: string[]; lostOption: string[]; gained: string[]; gainedOption: string[] }>();
  for (const c of changes) {
    const who = c.grantee === OWNER ? `the owner ${owner}` : c.grantee;
    const d = byWho.get(who) ?? { lost: [], lostOption: [], gained: [], gainedOption: [] };
    const word = PRIVILEGE[c.letter] ?? c.letter;
    // A change that restoring would make: a grant means the restored side lacks it.
    if (c.action === 'grant' && c.option) d.lostOption.push(word);
    else if (c.action === 'grant') d.lost.push(word);
    else if (c.option) d.gainedOption.push(word);
    else d.gained.push(word);
    byWho.set(who, d);
  }
  const out: string[] = [];
  for (const [who, d] of byWho) {
    if (d.lost.length) out.push(`${who} lost ${d.lost.join(', ')}`);
    if (d.lostOption.length) out.push(`${who} lost the grant option for ${d.lostOption.join(', ')}`);
    if (d.gained.length) out.push(`${who} has ${d.gained.join(', ')}, which the backup did not give`);
    if (d.gainedOption.length)
      out.push(`${who} has the grant option for ${d.gainedOption.join(', ')}, which the backup did not give`);
  }
  return out;
}

/**
 * The restored database (`client`, the admin login) against the manifest's roles and per-object
 * access: a failed check per object whose owner or privileges differ (naming object, role and
 * privilege), per role missing or no longer a member of a role it should be; a passing check with a
 * note per role whose attributes differ (withheld by Lifeboat, refused by the platform, or a role the
 * server already had). One passing summary when all matches. A manifest without access data: nothing.
 */
export async function compareAccess(
  client: Client,
  manifest: Pick<BackupManifest, 'roles' | 'access'>,
): Promise<CheckResult[]> {
  if (!manifest.access) return [];
  const server = await readServer(client);
  const absent = absentPlatformRole(server);
  const present = new Map((await readObjects(client)).map((o) => [`${o.kind}\u0000${o.name}`, o]));
  const results: CheckResult[] = [];
  let keptBySuperuserRule = 0;
  for (const want of manifest.access) {
    const found = present.get(`${want.kind}\u0000${want.name}`);
    const name = `access ${label(want)}`;
    const subject =
      want.kind === 'database'
        ? 'the database'
        : want.kind === 'default privileges'
          ? `default privileges ${want.name}`
          : want.name;
    if (!found) {
      if (want.kind === 'default privileges' && absent(want.owner)) continue; // its role's own note says so
      if (want.kind === 'default privileges') {
        const changes = aclChanges(want.acl, want.owner, await builtInDefaults(client, want), want.owner, absent);
        if (changes.length)
          results.push({ name, ok: false, detail: `${subject}: ${describeChanges(changes, want.owner).join('; ')}` });
      } else results.push({ name, ok: false, detail: `${subject}: missing from the restored database` });
      continue;
    }
    const problems: string[] = [];
    if (found.owner !== want.owner) {
      if (ownerNotGiven(want.owner, server) && (found.owner === RESTORE_ROLE || found.owner === server.admin))
        keptBySuperuserRule++;
      else problems.push(`owned by ${found.owner}; the backup's owner is ${want.owner}`);
    }
    problems.push(...describeChanges(aclChanges(want.acl, want.owner, found.acl, found.owner, absent), want.owner));
    for (const { column, changes } of columnAclChanges(want, found, absent))
      problems.push(...describeChanges(changes, want.owner).map((p) => `column ${quoteIdent(column)}: ${p}`));
    if (problems.length) results.push({ name, ok: false, detail: `${subject}: ${problems.join('; ')}` });
  }
  const roleNotes = await compareRoles(client, manifest.roles ?? [], server);
  results.push(...roleNotes);
  if (results.every((r) => r.ok)) {
    const kept = keptBySuperuserRule
      ? `; ${keptBySuperuserRule} owned by a superuser (or a managed platform's own role) are owned by the role that restored them (Lifeboat gives no object to a superuser)`
      : '';
    results.unshift({
      name: 'owners and privileges',
      ok: true,
      detail: `${manifest.access.length} objects as in the backup, ${manifest.roles?.length ?? 0} roles present${kept}`,
    });
  }
  return results;
}

async function compareRoles(client: Client, roles: RoleRecord[], server: Server): Promise<CheckResult[]> {
  const names = roles.map((r) => r.name).filter((n) => !isLifeboatRole(n));
  if (names.length === 0) return [];
  const { rows } = await client.query<RoleRecord>(
    `select r.rolname as name, r.rolsuper as superuser, r.rolcanlogin as login, r.rolinherit as inherit, r.rolcreatedb as createdb,
            r.rolcreaterole as createrole, r.rolreplication as replication, r.rolbypassrls as bypassrls,
            r.rolconnlimit as "connectionLimit", to_json(r.rolvaliduntil) #>> '{}' as "validUntil",
            coalesce((select json_agg(json_build_object('role', g.rolname, 'admin', m.admin_option))
                        from pg_auth_members m join pg_roles g on g.oid = m.roleid where m.member = r.oid), '[]') as "memberOf"
       from pg_roles r where r.rolname = any($1)`,
    [names],
  );
  const found = new Map(rows.map((r) => [r.name, r]));
  const results: CheckResult[] = [];
  for (const want of roles) {
    if (isLifeboatRole(want.name)) continue;
    const have = found.get(want.name);
    if (!have && PLATFORM_ROLE.test(want.name)) {
      results.push({
        name: `role ${want.name}`,
        ok: true,
        detail: `not on this server: a managed platform's own role, which Lifeboat does not make; what the backup gave it is not restored`,
      });
      continue;
    }
    if (!have) {
      results.push({ name: `role ${want.name}`, ok: false, detail: `missing from the restored server` });
      continue;
    }
    const lost = want.memberOf.filter((m) => !have.memberOf.some((h) => h.role === m.role));
    // A superuser here has every privilege a membership could give.
    const failing = have.superuser ? [] : lost.filter((m) => !withheldMembership(m.role, server));
    if (failing.length) {
      results.push({
        name: `role ${want.name}`,
        ok: false,
        detail: `no longer a member of ${failing.map((m) => m.role).join(', ')}`,
      });
    }
    const differences: string[] = [];
    for (const [field, attribute] of ATTRIBUTES) {
      if (want[field] && !have[field])
        differences.push(
          `without ${attribute}${withheldAttribute(attribute, server) ? ` (${withheldAttribute(attribute, server)})` : ''}`,
        );
      if (!want[field] && have[field]) differences.push(`with ${attribute}`);
    }
    if (want.login !== have.login) differences.push(have.login ? 'with LOGIN' : 'without LOGIN');
    if (want.inherit !== have.inherit) differences.push(have.inherit ? 'with INHERIT' : 'without INHERIT');
    if (want.connectionLimit !== have.connectionLimit)
      differences.push(`connection limit ${have.connectionLimit} (the backup: ${want.connectionLimit})`);
    for (const m of lost.filter((l) => withheldMembership(l.role, server)))
      differences.push(`not a member of ${m.role} (${withheldMembership(m.role, server)})`);
    if (differences.length) {
      results.push({
        name: `role ${want.name}`,
        ok: true,
        detail: `differs from the backup, as Lifeboat leaves it (a role the server had is left as it was): ${differences.join('; ')}`,
      });
    }
  }
  return results;
}
