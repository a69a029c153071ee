// Roles, owners and privileges through a restore: a database whose application roles own its objects
// and hold grants (a reader with SELECT, a login that reads through membership in it, default
// privileges, a column privilege, EXECUTE revoked from PUBLIC, a large object, a policy naming a
// role), backed up and restored the ways the runbooks do: the local provider's restore and a
// portable backup's into a drill's scratch instance, and a portable recovery by an admin that is no
// superuser (as on Cloud SQL, where the admin is a member of cloudsqlsuperuser). The roles come back
// before the data, the owners and grants after it, verify compares them with the manifest, and a
// grant taken away afterwards fails verify naming object, role and privilege. Restores still load as
// lifeboat_restore, which never becomes a member of anything.
import type { Client } from 'pg';
import { applyAccess, compareAccess, recreateRoles } from '../../activities/pg/access';
import { prepareRestoreRole } from '../../activities/pg/roles';
import { withClient, type PgConnection } from '../../activities/pg/sql';
import type { BackupRef, CheckResult, RoleRecord, ScratchInstance } from '../../workflows/types';
import { silentIo } from '../support/activity-context';
import { restoreBench } from '../support/unit-restore-bench';

const DB = 'restore_access';

const ROLES = ['app_owner', 'app_reader', 'app_user', 'app_admin', 'app_super', 'cloudsqlsuperuser'];

/** The application's roles and objects; run by the admin (a superuser) on region A. */
const SOURCE_SQL = `
  create role app_owner nologin;
  create role app_reader nologin;
  create role app_user login connection limit 3;
  grant app_reader to app_user;
  create role app_admin nologin createdb createrole bypassrls replication;
  create role app_super nologin superuser;
  grant app_super to app_admin;
  grant pg_read_all_stats to app_admin;
  grant pg_execute_server_program to app_admin;
  -- A managed platform's own role, as a Cloud SQL source has it: not made on another server.
  create role cloudsqlsuperuser nologin createdb;
  grant cloudsqlsuperuser to app_owner;

  create schema shop authorization app_owner;
  grant usage on schema shop to app_reader;
  grant usage on schema shop to app_user;
  set role app_owner;
  create table shop.customers (id int primary key, name text, card text);
  insert into shop.customers select i, 'name ' || i, 'card ' || i from generate_series(1, 20) i;
  grant select (id, name) on shop.customers to app_user;
  alter default privileges for role app_owner in schema shop grant select on tables to app_reader;
  alter default privileges for role app_owner revoke execute on functions from public;
  create table shop.later (id int);
  create sequence shop.tickets;
  grant usage on sequence shop.tickets to app_user;
  create view shop.names as select id, name from shop.customers;
  create type shop.mood as enum ('calm', 'busy');
  create function shop.customer_count() returns bigint language sql as 'select count(*) from shop.customers';
  grant execute on function shop.customer_count() to app_reader;
  reset role;
  create table public.orders (id int primary key, customer int, total numeric);
  insert into public.orders select i, i % 20 + 1, i * 1.5 from generate_series(1, 100) i;
  alter table public.orders owner to app_owner;
  grant select on public.orders to app_reader;
  grant select, insert, update on public.orders to app_admin with grant option;
  alter table public.orders enable row level security;
  create policy readers on public.orders for select to app_reader using (true);
  create table public.platform_owned (id int);
  alter table public.platform_owned owner to cloudsqlsuperuser;
  grant select on public.orders to cloudsqlsuperuser;
  create table public.plain (id int);
  insert into public.plain values (1), (2);
  select lo_from_bytea(424242, 'hello');
  alter large object 424242 owner to app_owner;
  grant select on large object 424242 to app_reader;`;

/** What the application needs of the restored database: each true. */
const PRIVILEGE_CHECKS = `
  select has_table_privilege('app_reader', 'public.orders', 'SELECT') as reader_orders,
         has_table_privilege('app_user', 'public.orders', 'SELECT') as user_orders_through_membership,
         not has_table_privilege('app_user', 'public.orders', 'INSERT') as user_cannot_insert,
         has_table_privilege('app_admin', 'public.orders', 'UPDATE WITH GRANT OPTION') as admin_grant_option,
         has_table_privilege('app_reader', 'shop.later', 'SELECT') as default_privileges,
         has_column_privilege('app_user', 'shop.customers', 'name', 'SELECT') as column_name,
         not has_column_privilege('app_user', 'shop.customers', 'card', 'SELECT') as column_card_hidden,
         has_function_privilege('app_reader', 'shop.customer_count()', 'EXECUTE') as reader_executes,
         has_function_privilege('app_owner', 'shop.customer_count()', 'EXECUTE') as owner_executes,
         not exists (select 1 from aclexplode((select proacl from pg_proc where proname = 'customer_count')) where grantee = 0) as public_cannot_execute,
         has_sequence_privilege('app_user', 'shop.tickets', 'USAGE') as sequence_usage,
         (select pg_get_userbyid(relowner) from pg_class where oid = 'public.orders'::regclass) = 'app_owner' as orders_owner,
         (select pg_get_userbyid(relowner) from pg_class where oid = 'shop.names'::regclass) = 'app_owner' as view_owner,
         (select pg_get_userbyid(nspowner) from pg_namespace where nspname = 'shop') = 'app_owner' as schema_owner,
         (select pg_get_userbyid(typowner) from pg_type where oid = 'shop.mood'::regtype) = 'app_owner' as type_owner,
         (select pg_get_userbyid(lomowner) from pg_largeobject_metadata where oid = 424242) = 'app_owner' as large_object_owner,
         exists (select 1 from pg_policy where polname = 'readers' and polroles = array['app_reader'::regrole::oid]) as policy_role,
         pg_has_role('app_user', 'app_reader', 'MEMBER') as membership`;

async function privileges(conn: PgConnection): Promise<Record<string, boolean>> {
  return withClient(conn, async (client) => (await client.query<Record<string, boolean>>(PRIVILEGE_CHECKS)).rows[0]!);
}

const allTrue = (row: Record<string, boolean>) => Object.fromEntries(Object.keys(row).map((k) => [k, true]));

async function dropRoles(client: Client): Promise<void> {
  for (const role of ROLES) {
    const exists = await client.query('select 1 from pg_roles where rolname = $1', [role]);
    if (!exists.rowCount) continue;
    await client.query(`drop owned by ${role} cascade`);
    await client.query(`drop role ${role}`);
  }
}

/** A role as a manifest records it: a plain nologin role, but for `over`. */
const role = (name: string, over: Partial<RoleRecord> = {}): RoleRecord => ({
  name,
  superuser: false,
  login: false,
  inherit: true,
  createdb: false,
  createrole: false,
  replication: false,
  bypassrls: false,
  connectionLimit: -1,
  validUntil: null,
  memberOf: [],
  ...over,
});

/** lifeboat_restore: no attribute, no membership, after every restore. */
async function restoreRoleIsPlain(conn: PgConnection): Promise<void> {
  await withClient(conn, async (client) => {
    const { rows } = await client.query(
      `select rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,
              (select count(*)::int from pg_auth_members m where m.member = r.oid) as memberships
         from pg_roles r where rolname = 'lifeboat_restore'`,
    );
    expect(rows).toEqual([
      {
        rolsuper: false,
        rolcreaterole: false,
        rolcreatedb: false,
        rolreplication: false,
        rolbypassrls: false,
        memberships: 0,
      },
    ]);
  });
}

describe('roles, owners and privileges come back with a restore, and verify compares them', () => {
  const bench = restoreBench({ db: DB, test: 'restore-access', activityType: 'access' });
  const { p, activities, inActivity, portable, regionA, stamp } = bench;
  const scratches: ScratchInstance[] = [];
  let localCopy: BackupRef;
  let portableCopy: BackupRef;

  const newScratch = async (name: string): Promise<ScratchInstance> => {
    const scratch = bench.scratch(`access-${name}`);
    scratches.push(scratch);
    await inActivity(() => activities.createScratchInstance(scratch));
    return scratch;
  };

  beforeAll(async () => {
    await bench.makeDatabase(SOURCE_SQL, dropRoles);
    // What the restored side must show holds on the source: the checks below mean something.
    const source = await privileges(await p.connect({ region: regionA, database: DB }));
    expect(source).toEqual(allTrue(source));
    ({ localCopy, portableCopy } = await bench.backUp());
  }, 240_000);

  afterAll(async () => {
    await bench.tearDown(dropRoles);
  });

  test('the manifest records roles (no password) and per-object owners and ACLs', async () => {
    const manifest = await p.manifest(localCopy);
    expect(manifest.roles?.map((r) => r.name)).toEqual(expect.arrayContaining(ROLES));
    expect(JSON.stringify(manifest.roles)).not.toMatch(/SCRAM|md5[0-9a-f]{32}|password/i);
    expect(manifest.roles?.find((r) => r.name === 'app_user')).toMatchObject({
      login: true,
      connectionLimit: 3,
      memberOf: [{ role: 'app_reader', admin: false }],
    });
    expect(manifest.access).toEqual(
      expect.arrayContaining([
        {
          kind: 'table',
          name: 'public.orders',
          owner: 'app_owner',
          acl: [
            { grantee: 'app_admin', grantor: 'app_owner', privileges: 'r*a*w*' },
            { grantee: 'app_owner', grantor: 'app_owner', privileges: 'rawdDxt' },
            { grantee: 'app_reader', grantor: 'app_owner', privileges: 'r' },
            { grantee: 'cloudsqlsuperuser', grantor: 'app_owner', privileges: 'r' },
          ],
        },
        expect.objectContaining({
          kind: 'table',
          name: 'shop.customers',
          columns: {
            id: [{ grantee: 'app_user', grantor: 'app_owner', privileges: 'r' }],
            name: [{ grantee: 'app_user', grantor: 'app_owner', privileges: 'r' }],
          },
        }),
        expect.objectContaining({ kind: 'function', name: 'shop.customer_count()', owner: 'app_owner' }),
        expect.objectContaining({
          kind: 'default privileges',
          name: 'for role "app_owner" in schema "shop" on tables',
          schema: 'shop',
          objects: 'tables',
        }),
        expect.objectContaining({ kind: 'large object', name: '424242', owner: 'app_owner' }),
      ]),
    );
  });

  test.each([
    ['the local provider', 'local', () => localCopy],
    ['a portable backup', 'portable', () => portableCopy],
  ])(
    'a drill restore from %s brings the roles, owners and grants back; verify compares them and names a grant taken away',
    async (_kind, name, ref) => {
      const scratch = await newScratch(name);
      const { value } = await inActivity(() => activities.restoreBackup({ ref: ref(), scratch }));
      expect(value.findings).toEqual([]);
      const conn = await p.connectScratch(scratch);
      const got = await privileges(conn);
      expect(got).toEqual(allTrue(got));
      await restoreRoleIsPlain(conn);

      // Attributes: what may be given is, SUPERUSER never, CREATEROLE not before PostgreSQL 16; no
      // membership in a superuser or in a role that runs programs.
      await withClient(conn, async (client) => {
        const { rows } = await client.query(`
        select rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication, rolcanlogin, rolconnlimit,
               array(select g.rolname::text from pg_auth_members m join pg_roles g on g.oid = m.roleid where m.member = r.oid order by 1) as member_of
          from pg_roles r where rolname in ('app_admin', 'app_super', 'app_user') order by 1`);
        const num = Number(
          (await client.query<{ n: string }>(`select current_setting('server_version_num') as n`)).rows[0]!.n,
        );
        expect(rows).toEqual([
          {
            rolname: 'app_admin',
            rolsuper: false,
            rolcreaterole: num >= 160000,
            rolcreatedb: true,
            rolbypassrls: true,
            rolreplication: true,
            rolcanlogin: false,
            rolconnlimit: -1,
            member_of: ['app_super', 'pg_read_all_stats'],
          },
          {
            rolname: 'app_super',
            rolsuper: false,
            rolcreaterole: false,
            rolcreatedb: false,
            rolbypassrls: false,
            rolreplication: false,
            rolcanlogin: false,
            rolconnlimit: -1,
            member_of: [],
          },
          {
            rolname: 'app_user',
            rolsuper: false,
            rolcreaterole: false,
            rolcreatedb: false,
            rolbypassrls: false,
            rolreplication: false,
            rolcanlogin: true,
            rolconnlimit: 3,
            member_of: ['app_reader'],
          },
        ]);
      });

      const verified = await inActivity(() => activities.verifyRestore({ ref: ref(), scratch, checks: [] }));
      expect(verified.value.tables.every((t) => t.ok)).toBe(true);
      const access = verified.value.access ?? [];
      expect(access.filter((c) => !c.ok)).toEqual([]);
      expect(access).toEqual(
        expect.arrayContaining([
          {
            name: 'owners and privileges',
            ok: true,
            detail: expect.stringMatching(/^\d+ objects as in the backup, \d+ roles present/),
          },
          {
            name: 'role app_super',
            ok: true,
            detail: expect.stringContaining('without SUPERUSER (Lifeboat never makes a superuser from a backup)'),
          },
          {
            name: 'role cloudsqlsuperuser',
            ok: true,
            detail: expect.stringContaining("not on this server: a managed platform's own role"),
          },
          {
            name: 'role app_owner',
            ok: true,
            detail: expect.stringContaining(
              "not a member of cloudsqlsuperuser (cloudsqlsuperuser is a managed platform's own role)",
            ),
          },
          // app_super is no superuser here: membership in it gives nothing more than it has.
          {
            name: 'role app_admin',
            ok: true,
            detail: expect.stringContaining(
              "not a member of pg_execute_server_program (pg_execute_server_program reaches the server's files or programs)",
            ),
          },
        ]),
      );

      // Taken away on the restored side: verify names the object, the role and the privilege.
      await withClient(conn, async (client) => {
        await client.query('revoke select on public.orders from app_reader');
        await client.query('alter table shop.later owner to app_admin');
        await client.query('revoke select (name) on shop.customers from app_user');
        await client.query('grant execute on function shop.customer_count() to public');
      });
      const broken = await inActivity(() => activities.verifyRestore({ ref: ref(), scratch, checks: [] }));
      const failed = (broken.value.access ?? []).filter((c) => !c.ok);
      expect(failed).toEqual(
        expect.arrayContaining([
          { name: 'access table public.orders', ok: false, detail: 'public.orders: app_reader lost SELECT' },
          {
            name: 'access table shop.later',
            ok: false,
            detail: "shop.later: owned by app_admin; the backup's owner is app_owner",
          },
          {
            name: 'access table shop.customers',
            ok: false,
            detail: 'shop.customers: column "name": app_user lost SELECT',
          },
          {
            name: 'access function shop.customer_count()',
            ok: false,
            detail: 'shop.customer_count(): PUBLIC has EXECUTE, which the backup did not give',
          },
        ]),
      );
      expect(failed).toHaveLength(4);
    },
  );

  test('a recovery restore by an admin that is no superuser (as on Cloud SQL) makes the roles it may, names each attribute refused, and gives owners and grants', async () => {
    const scratch = await newScratch('recovery');
    const superConn = await p.connectScratch(scratch);
    // cloudsqlsuperuser's powers: CREATEROLE, CREATEDB, LOGIN, no superuser.
    const password = `pw-${stamp}`;
    await withClient({ ...superConn, database: 'postgres' }, (client) =>
      client.query(`create role cloudsql_admin login createrole createdb password '${password}'`),
    );
    const admin: PgConnection = {
      host: superConn.host,
      port: superConn.port,
      user: 'cloudsql_admin',
      password,
      database: `${DB}_recovered`,
    };
    const { findings } = await portable.restoreInto(
      portableCopy,
      admin,
      { kind: 'recovery', marker: `restore-access ${stamp}`, asideName: `${DB}_aside` },
      silentIo,
    );
    expect(findings).toEqual([]);
    const got = await privileges({ ...superConn, database: admin.database });
    expect(got).toEqual(allTrue(got));
    await withClient({ ...superConn, database: admin.database }, async (client) => {
      const { rows } = await client.query(
        `select rolname, rolbypassrls, rolreplication, rolcreatedb from pg_roles where rolname = 'app_admin'`,
      );
      expect(rows).toEqual([{ rolname: 'app_admin', rolbypassrls: false, rolreplication: false, rolcreatedb: true }]);
    });
    // The verify the cross-cloud runbook runs: the refused attributes named, nothing failed.
    const manifest = await portable.manifest(portableCopy);
    const access: CheckResult[] = await withClient(admin, (client) => compareAccess(client, manifest));
    expect(access.filter((c) => !c.ok)).toEqual([]);
    expect(access.find((c) => c.name === 'role app_admin')?.detail).toMatch(
      /without REPLICATION.*without BYPASSRLS|without BYPASSRLS.*without REPLICATION/,
    );
  }, 180_000);

  test("a tampered manifest cannot reach beyond GRANT and ALTER OWNER: names are quoted, Lifeboat's roles and powerful memberships are never given", async () => {
    const scratch = await newScratch('tampered');
    const conn = await p.connectScratch(scratch);
    const evil = `evil"; alter role ${'lifeboat_restore'} superuser; --`;
    const roles: RoleRecord[] = [
      role(evil, {
        superuser: true,
        memberOf: [
          { role: 'lifeboat_restore', admin: true },
          { role: 'postgres', admin: false },
          { role: 'pg_write_server_files', admin: false },
        ],
      }),
      role('lifeboat_restore', { superuser: true, memberOf: [{ role: 'pg_execute_server_program', admin: false }] }),
      role('lifeboat_check_abc', { superuser: true }),
    ];
    const made = await withClient(conn, async (client) => {
      await prepareRestoreRole(client, conn); // as a restore makes it: the role a tampered manifest would aim at
      return recreateRoles(client, roles);
    });
    expect(made.findings).toEqual([]);
    expect(made.created).toEqual([evil]);
    expect(made.withheld).toEqual([
      `${evil}: SUPERUSER (Lifeboat never makes a superuser from a backup)`,
      `${evil}: membership in lifeboat_restore (lifeboat_restore is Lifeboat's own)`,
      `${evil}: membership in postgres (postgres is the login Lifeboat restores with)`,
      `${evil}: membership in pg_write_server_files (pg_write_server_files reaches the server's files or programs)`,
    ]);
    // An object name is looked up, never run: one that is SQL matches nothing and changes nothing.
    const findings = await withClient(conn, (client) =>
      applyAccess(client, {
        access: [
          {
            kind: 'table',
            name: 'public.x; alter role lifeboat_restore superuser',
            owner: evil,
            acl: [{ grantee: evil, grantor: evil, privileges: 'r' }],
          },
        ],
      }),
    );
    expect(findings).toEqual([]);
    await restoreRoleIsPlain(conn);
    await withClient(conn, async (client) => {
      const { rows } = await client.query(
        `select rolsuper, (select count(*)::int from pg_auth_members m where m.member = r.oid) as memberships from pg_roles r where rolname = $1`,
        [evil],
      );
      expect(rows).toEqual([{ rolsuper: false, memberships: 0 }]);
      expect((await client.query(`select 1 from pg_roles where rolname like 'lifeboat_check_abc'`)).rowCount).toBe(0);
    });
  });

  test('a retried restore finishes the roles an earlier attempt made; a role it did not make is left as it is', async () => {
    const conn = await p.connectScratch(scratches.find((x) => x.name.startsWith('access-tampered-'))!);
    await withClient(conn, async (client) => {
      await client.query('create role found_here nologin');
      // The first attempt made the role and died before its attributes and memberships.
      expect((await recreateRoles(client, [role('half_made')])).created).toEqual(['half_made']);
      const full = [
        role('half_made', { createdb: true, memberOf: [{ role: 'pg_read_all_stats', admin: false }] }),
        role('found_here', { createdb: true }),
      ];
      const second = await recreateRoles(client, full);
      expect(second).toMatchObject({ created: ['half_made'], existing: ['found_here'], findings: [] });
      const { rows } = await client.query(`
        select rolname, rolcreatedb, array(select g.rolname::text from pg_auth_members m join pg_roles g on g.oid = m.roleid where m.member = r.oid) as member_of
          from pg_roles r where rolname in ('half_made', 'found_here') order by 1`);
      expect(rows).toEqual([
        { rolname: 'found_here', rolcreatedb: false, member_of: [] },
        { rolname: 'half_made', rolcreatedb: true, member_of: ['pg_read_all_stats'] },
      ]);
    });
  });

  test('a manifest written before access was recorded verifies as before: no access check', async () => {
    const manifest = await p.manifest(localCopy);
    const scratch = scratches[0]!;
    const conn = await p.connectScratch(scratch);
    expect(
      await withClient(conn, (client) => compareAccess(client, { ...manifest, roles: undefined, access: undefined })),
    ).toEqual([]);
  });
});
