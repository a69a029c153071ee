// Content digests against real PostgreSQL: equal data on two servers gives equal digests whatever
// OIDs its enums and types got (hash_record_extended hashed those by OID, failing every drill of a
// table with an enum); one changed value, large object or sequence position is found; rows that
// row-level security hides from the reader are counted or the reader is told why it cannot; the
// algorithms of older manifests still give the values they gave. Each test has a control showing
// what the code before v2 did with the same data.
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import type { Client } from 'pg';
import pino from 'pino';
import { findPgBin } from '../../activities/pg/binaries';
import { allTableStats, isUnreadable, tableStats, type ChecksumAlgorithm } from '../../activities/pg/digest';
import { libpqEnv, listTables, withClient, type PgConnection } from '../../activities/pg/sql';
import { dumpWithManifest } from '../../activities/portable/logical-dump';
import { captureManifest } from '../../activities/providers/in-database-manifest';
import type { ActivityIo } from '../../activities/providers/provider';
import { verifyAgainstManifest } from '../../activities/restore-checks';
import type { BackupManifest, TableStats } from '../../workflows/types';
import { local } from '../support/stack';

const io: ActivityIo = {
  heartbeat: () => undefined,
  signal: new AbortController().signal,
  logger: pino({ level: 'silent' }),
};
const server = (region: string) => ({ region, name: 'server' });
const admin = (region: string, database = 'postgres') => local().connectNode(server(region), database);

/** Types and tables whose values hash_record_extended hashes by OID, plus plain ones. */
const TYPES = `
  create type public.mood as enum ('sad', 'ok', 'happy');
  create domain public.mood_d as public.mood;
  create type public.pair as (m public.mood, n int);
  create type public.mood_range as range (subtype = public.mood);`;
const TABLES = `
  create table public.feelings (id int primary key, m public.mood, ms public.mood[], d public.mood_d, p public.pair, r public.mood_range,
                                rel regclass, typ regtype, fn regproc, note text);
  insert into public.feelings
  select i, (array['sad','ok','happy'])[1 + i % 3]::public.mood, array['ok', 'happy']::public.mood[], 'happy', row('ok', i)::public.pair,
         public.mood_range('sad', 'happy'), 'public.feelings'::regclass, 'public.mood'::regtype, 'pg_catalog.now'::regproc, 'n' || i
    from generate_series(1, 50) as i;
  create type public.money_pair as (cents bigint, currency char(3));
  create table public.plain (id bigserial primary key, v text, at timestamptz, price numeric(10, 2), raw bytea, during tstzrange, amount public.money_pair);
  insert into public.plain (v, at, price, raw, during, amount)
  select 'v' || i, timestamptz '2025-01-01 00:00+00' + i * interval '1 hour', i / 3.0, decode(md5(i::text), 'hex'),
         tstzrange(timestamptz '2025-01-01 00:00+00', timestamptz '2025-01-01 00:00+00' + i * interval '1 day'), row(i * 100, 'EUR')::public.money_pair
    from generate_series(1, 200) as i;
  create table public.loose (id int, n numeric, f float8, iv interval, j jsonb, money money);
  insert into public.loose values (1, 1.50, -0.5, '1 day', '{"a": 1.0}', 12.34), (2, null, 1e-7, '36 hours', '[]', 0);
  create schema "odd.schema";
  create table "odd.schema"."Mixed ""quoted"".name" (id int, "t" text);
  insert into "odd.schema"."Mixed ""quoted"".name" values (1, 'a column named t'), (2, null);
  create unlogged table public.scratchpad (id int, v text);
  insert into public.scratchpad select i, 'u' || i from generate_series(1, 7) as i;
  -- Row-level security forced on its owner, with a policy that hides half the rows from it.
  create table public.secrets (id int, owner_only boolean);
  insert into public.secrets select i, i % 2 = 0 from generate_series(1, 10) as i;
  alter table public.secrets owner to digest_owner;
  alter table public.secrets enable row level security;
  alter table public.secrets force row level security;
  create policy hide_odd on public.secrets using (owner_only);
  create sequence public.tickets start 100;
  select setval('public.tickets', 150);
  select lo_from_bytea(424242, convert_to(repeat('large object content ', 1000), 'UTF8'));
  select lo_from_bytea(424243, '');`;

async function recreate(region: string, database: string): Promise<PgConnection> {
  await withClient(await admin(region), async (c) => {
    await c.query(`drop database if exists ${database} with (force)`);
    await c.query(`create database ${database}`);
    await c.query(
      `do $$ begin if not exists (select from pg_roles where rolname = 'digest_owner') then create role digest_owner; end if; end $$`,
    );
  });
  return admin(region, database);
}

/** Each table's stats as a manifest would take them, in one transaction. */
async function statsOf(conn: PgConnection): Promise<Map<string, TableStats>> {
  return withClient(conn, async (c) => {
    await c.query('begin isolation level repeatable read read only');
    const tables = await listTables(c);
    const stats = await allTableStats([c], tables);
    await c.query('commit');
    return new Map(stats.map((s) => [s.table, s as TableStats]));
  });
}

/** A table's stats as the code before v2 took them: hash_record_extended, md5-text where a type has no hash. */
async function oldStats(conn: PgConnection, table: string): Promise<TableStats> {
  return withClient(conn, async (c) => {
    try {
      return (await tableStats(c, table, 'hash_record_extended')) as TableStats;
    } catch {
      return (await tableStats(c, table, 'md5-text')) as TableStats;
    }
  });
}

async function sql(conn: PgConnection, text: string): Promise<void> {
  await withClient(conn, (c) => c.query(text));
}

describe('content digests', () => {
  let a: PgConnection; // digest_a on local-a
  let b: PgConnection; // digest_b on local-b: the same data, its types made in another order

  beforeAll(async () => {
    a = await recreate('local-a', 'digest_a');
    b = await recreate('local-b', 'digest_b');
    await sql(a, TYPES + TABLES);
    // Other types first on b, and the enum's labels added one by one: every OID differs from a's.
    await sql(
      b,
      `create type public.padding as enum ('x'); create type public.more_padding as (x int); create type public.mood as enum ('sad')`,
    );
    await sql(b, `alter type public.mood add value 'ok'`);
    await sql(b, `alter type public.mood add value 'happy'`);
    await sql(
      b,
      `create domain public.mood_d as public.mood; create type public.pair as (m public.mood, n int);
                  create type public.mood_range as range (subtype = public.mood);` + TABLES,
    );
  });

  test('equal data on two servers with different type OIDs gives equal v2 digests; hash_record_extended gave different ones', async () => {
    const oids = async (conn: PgConnection) =>
      withClient(
        conn,
        async (c) => (await c.query(`select 'public.mood'::regtype::oid::int as o`)).rows[0].o as number,
      );
    expect(await oids(a)).not.toBe(await oids(b));
    const [onA, onB] = [await statsOf(a), await statsOf(b)];
    expect(onA.get('public.feelings')).toMatchObject({
      algorithm: 'columns-v2',
      rows: 50,
      textColumns: ['m', 'ms', 'd', 'p', 'r', 'rel', 'typ', 'fn'],
    });
    expect(onA.get('public.plain')).toMatchObject({ algorithm: 'columns-v2', rows: 200, textColumns: [] });
    expect(onA.get('public.loose')).toMatchObject({ textColumns: ['n', 'f', 'iv', 'j', 'money'] }); // numeric without scale, float, interval, jsonb, money
    expect(onA.get('public.secrets')).toMatchObject({ rows: 10 }); // superuser reads past RLS
    for (const [table, stats] of onA) expect([table, onB.get(table)]).toEqual([table, stats]);
    // The control: the old algorithm, on the same data, differs on the table with the enum.
    for (const [table, equal] of [
      ['"public"."feelings"', false],
      ['"public"."plain"', true],
    ] as const) {
      const [oldA, oldB] = [await oldStats(a, table), await oldStats(b, table)];
      expect([table, oldA.checksum === oldB.checksum]).toEqual([table, equal]);
    }
  });

  test('a value equal under its type but written differently (numeric 1.50 and 1.500) changes the digest', async () => {
    await sql(a, `create table public.scale (n numeric); insert into public.scale values (1.50)`);
    try {
      const read = async () => [
        (await statsOf(a)).get('public.scale')!.checksum,
        (await oldStats(a, '"public"."scale"')).checksum,
      ];
      const [v2Before, oldBefore] = await read();
      await sql(a, `update public.scale set n = 1.500`);
      const [v2After, oldAfter] = await read();
      expect(v2After).not.toBe(v2Before);
      // The control: hash_record_extended cannot tell 1.50 from 1.500.
      expect(oldAfter).toBe(oldBefore);
    } finally {
      await sql(a, 'drop table public.scale');
    }
  });

  test('the session settings of either side do not change a v2 digest, and the pinned ones do not leak', async () => {
    const plain = await statsOf(a);
    const odd = await withClient(a, async (c) => {
      await c.query(`set DateStyle = 'SQL, DMY'; set IntervalStyle = 'iso_8601'; set extra_float_digits = -3; set bytea_output = 'escape';
                     set TimeZone = 'Asia/Kolkata'; set search_path = public; set lc_monetary = 'C.UTF-8'; begin`);
      const stats = await allTableStats([c], await listTables(c));
      const kept = (
        await c.query(
          `select current_setting('DateStyle') as d, current_setting('search_path') as s, current_setting('row_security') as r`,
        )
      ).rows[0];
      await c.query('commit');
      return { stats, kept };
    });
    expect(odd.kept).toEqual({ d: 'SQL, DMY', s: 'public', r: 'on' });
    for (const s of odd.stats) expect(s).toEqual(plain.get((s as TableStats).table));
  });

  test('a table whose rows row-level security hides from its reader is counted in full, or not at all with the reason', async () => {
    const asOwner = async (algorithm: ChecksumAlgorithm) =>
      withClient(a, async (c: Client) => {
        await c.query('begin; set local role digest_owner');
        try {
          return await tableStats(c, '"public"."secrets"', algorithm, {
            columns: ['id', 'owner_only'],
            textColumns: [],
          });
        } finally {
          await c.query('rollback');
        }
      });
    const v2 = await asOwner('columns-v2');
    expect(isUnreadable(v2) && v2.unreadable).toMatch(/row-level security hides rows of it from .*BYPASSRLS/);
    // The control: the old read, as the owner, counted 5 of the 10 rows without a word.
    expect(await asOwner('hash_record_extended')).toMatchObject({ rows: 5 });
    // As superuser (both sides of a drill run as the admin login) every row counts.
    expect((await statsOf(a)).get('public.secrets')).toMatchObject({ rows: 10 });
  });

  test('a manifest whose login cannot read every row of a table fails the backup, naming the table and BYPASSRLS', async () => {
    const db = await recreate('local-a', 'digest_rls');
    await sql(
      db,
      `create table public.secrets (id int, owner_only boolean); insert into public.secrets select i, i % 2 = 0 from generate_series(1, 10) as i;
                   alter table public.secrets owner to digest_owner; alter table public.secrets enable row level security;
                   alter table public.secrets force row level security; create policy hide_odd on public.secrets using (owner_only);
                   create schema lifeboat authorization digest_owner; grant create on database digest_rls to digest_owner`,
    );
    const meta = {
      backupId: 'digest-rls',
      createdBy: 'test',
      database: 'digest_rls',
      sourceRegion: 'local-a',
      provider: 'aws' as const,
      dumpFormat: 'rds-snapshot' as const,
    };
    const taken = withClient(db, async (c) => {
      await c.query('set role digest_owner'); // as an RDS admin login is: not a superuser, no BYPASSRLS
      return captureManifest(c, meta, io);
    });
    await expect(taken).rejects.toMatchObject({
      type: 'LifeboatAccessDenied',
      message: expect.stringMatching(/public\.secrets: row-level security hides rows of it from .*BYPASSRLS/),
    });
  });

  test("older manifests' algorithms give the values they gave before v2", async () => {
    await sql(
      a,
      `create table public.fixed (id int, label text, ok boolean); insert into public.fixed values (1, 'one', true), (2, null, null)`,
    );
    try {
      const stats = await withClient(a, async (c) => {
        await c.query('begin');
        const out = [
          await tableStats(c, '"public"."fixed"', 'hash_record_extended'),
          await tableStats(c, '"public"."fixed"', 'md5-text'),
        ];
        await c.query('commit');
        return out;
      });
      // Computed with the code before v2 (the SQL of activities/pg/sql.ts at 81bbb02) on this data.
      expect(stats).toEqual([
        { table: 'public.fixed', rows: 2, checksum: EXPECTED_OLD.hash, algorithm: 'hash_record_extended' },
        { table: 'public.fixed', rows: 2, checksum: EXPECTED_OLD.md5, algorithm: 'md5-text' },
      ]);
    } finally {
      await sql(a, 'drop table public.fixed');
    }
  });

  describe('through pg_dump and pg_restore, verified against the manifest', () => {
    let manifest: BackupManifest;
    let restored: PgConnection;
    const dir = mkdtempSync(join(tmpdir(), 'lifeboat-digest-'));
    const verify = (m: BackupManifest) => verifyAgainstManifest(restored, m, [], io);

    beforeAll(async () => {
      const file = join(dir, 'dump');
      const sink = createWriteStream(file);
      manifest = await dumpWithManifest(
        a,
        findPgBin(process.env.LIFEBOAT_PG_BIN),
        sink,
        {
          backupId: 'digest-test',
          database: 'digest_a',
          provider: 'local',
          sourceRegion: 'local-a',
          createdBy: 'test',
        },
        io,
      );
      await finished(sink);
      restored = await recreate('local-b', 'digest_restored');
      // Padding types first, so the restored enum gets OIDs of its own.
      await sql(restored, `create type public.padding as enum ('x', 'y'); create type public.padding2 as enum ('z')`);
      const run = spawnSync(
        join(findPgBin(process.env.LIFEBOAT_PG_BIN), 'pg_restore'),
        ['--dbname', 'digest_restored', '--exit-on-error', file],
        { env: libpqEnv(restored), encoding: 'utf8' },
      );
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    test('every table, the sequence and the large objects match, the unlogged table included', async () => {
      expect(manifest.tables.find((t) => t.table === 'public.scratchpad')).toMatchObject({ rows: 7, unlogged: true });
      expect(manifest.sequences).toContainEqual({
        sequence: 'public.tickets',
        lastValue: '150',
        isCalled: true,
        increment: '1',
      });
      expect(manifest.largeObjects).toMatchObject({ count: 2, bytes: 21000 });
      const result = await verify(manifest);
      expect(result.tables.filter((t) => !t.ok || t.notCompared)).toEqual([]);
      expect(result.tables.map((t) => t.name)).toEqual(
        expect.arrayContaining([
          'public.feelings',
          'public.secrets',
          'public.scratchpad',
          'odd.schema.Mixed "quoted".name',
        ]),
      );
      expect(result.objects!.filter((c) => !c.ok || c.notCompared)).toEqual([]);
      expect(result.objects!.map((c) => c.name)).toEqual(
        expect.arrayContaining(['sequence public.tickets', 'large objects']),
      );
    });

    test('as a physical restore, the unlogged table is reported as not compared, with the reason', async () => {
      const result = await verify({ ...manifest, dumpFormat: 'rds-snapshot' });
      expect(result.tables.find((t) => t.name === 'public.scratchpad')).toMatchObject({
        ok: true,
        notCompared: true,
        detail: expect.stringMatching(/unlogged/),
      });
    });

    test('one changed value fails its table', async () => {
      await sql(restored, `update public.feelings set m = 'sad' where id = 2`);
      try {
        const result = await verify(manifest);
        expect(result.tables.filter((t) => !t.ok)).toEqual([
          { name: 'public.feelings', ok: false, detail: "50 rows but content checksum differs from the backup's" },
        ]);
      } finally {
        await sql(restored, `update public.feelings set m = 'happy' where id = 2`);
      }
    });

    test('a changed large object fails; a manifest without large objects (before v2) did not notice', async () => {
      const original = await withClient(
        restored,
        async (c) => (await c.query(`select lo_get(424242, 5000, 1) as b`)).rows[0].b as Buffer,
      );
      await sql(restored, `select lo_put(424242, 5000, 'X')`);
      try {
        const result = await verify(manifest);
        expect(result.objects!.find((c) => c.name === 'large objects')).toMatchObject({
          ok: false,
          detail: expect.stringMatching(/content checksum differs/),
        });
        expect((await verify({ ...manifest, largeObjects: undefined })).objects!.every((c) => c.ok)).toBe(true);
      } finally {
        await withClient(restored, (c) => c.query(`select lo_put(424242, 5000, $1)`, [original]));
      }
      expect((await verify(manifest)).objects!.find((c) => c.name === 'large objects')).toMatchObject({ ok: true });
    });

    test('a sequence behind the backup fails, one ahead passes saying it moved on; a manifest without sequences did not notice', async () => {
      await sql(restored, `select setval('public.tickets', 120)`);
      let result = await verify(manifest);
      expect(result.objects!.find((c) => c.name === 'sequence public.tickets')).toMatchObject({
        ok: false,
        detail: expect.stringMatching(/behind the backup's last value 150/),
      });
      expect((await verify({ ...manifest, sequences: undefined })).objects!.every((c) => c.ok)).toBe(true);
      await sql(restored, `select setval('public.tickets', 160)`);
      result = await verify(manifest);
      expect(result.objects!.find((c) => c.name === 'sequence public.tickets')).toMatchObject({
        ok: true,
        detail: expect.stringMatching(/ahead of the manifest's last value 150/),
      });
      await sql(restored, `select setval('public.tickets', 150)`);
    });

    test("the verification leaves no setting behind on the restored database's sessions", async () => {
      // verifyAgainstManifest's own sessions end with it; a second run on fresh ones still matches.
      expect((await verify(manifest)).tables.every((t) => t.ok && !t.notCompared)).toBe(true);
    });
  });
});

const EXPECTED_OLD = { hash: '-984182224995530043', md5: '1586034813936592511' };
