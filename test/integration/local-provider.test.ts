// The local provider on its own, against the test stack's real PostgreSQL regions: idempotency of
// every step a retry may repeat, and the verdicts on bad backups.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pino from 'pino';
import type { ActivityIo } from '../../activities/providers/provider';
import { withClient, writeCanary } from '../../activities/pg/sql';
import type { BackupManifest, DatabaseTarget } from '../../workflows/types';
import { env, local } from '../support/stack';
import { scratchHousekeeping } from '../support/scratch-housekeeping';
import { failure } from '../support/unit-failure';

const regionA = { name: 'local-a', provider: 'local' as const };
const regionB = { name: 'local-b', provider: 'local' as const };
const target: DatabaseTarget = { region: regionA, database: 'orders' };
const io = (): ActivityIo => ({
  heartbeat: () => undefined,
  signal: new AbortController().signal,
  logger: pino({ level: 'silent' }),
});
const unique = (what: string) => `${what}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;

describe('local provider', () => {
  const p = local();
  const backupId = unique('unit');

  afterAll(async () => {
    for (const region of [regionA, regionB]) {
      for (const ref of await p.listBackups(region, 'orders'))
        if (ref.backupId.startsWith('unit-')) await p.deleteBackup(ref);
    }
  });

  test('a backup carries a manifest: sha256, size, server version, newest canary, every table with rows and checksum', async () => {
    const canary = await withClient(await p.connect(target), (c) => writeCanary(c, unique('canary')));
    const ref = await p.createBackup(target, backupId, 'test', io());
    const manifest = await p.manifest(ref);
    expect(manifest.newestCanary?.id).toBe(canary.id);
    expect(manifest).toMatchObject({
      backupId,
      database: 'orders',
      sourceRegion: 'local-a',
      createdBy: 'test',
      dumpFormat: 'pg_dump-custom',
    });
    expect(manifest.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.sizeBytes).toBe(statSync(ref.location).size);
    expect(manifest.serverVersionNum).toBeGreaterThanOrEqual(150000);
    const orders = manifest.tables.find((t) => t.table === 'public.orders');
    const live = await withClient(await p.connect(target), (c) =>
      c.query<{ n: string }>('select count(*) as n from orders'),
    );
    expect(orders?.rows).toBe(Number(live.rows[0]!.n));
    expect(orders).toMatchObject({
      algorithm: 'columns-v2',
      textColumns: [],
      checksum: expect.stringMatching(/^-?\d+$/),
    });
  });

  test("a table whose column types have no exact hash is checksummed by md5 of its rows' text instead", async () => {
    const db = 'unit_json';
    await withClient(await p.connect({ region: regionA, database: 'postgres' }), async (c) => {
      await c.query(`drop database if exists ${db}`);
      await c.query(`create database ${db}`);
    });
    await withClient(await p.connect({ region: regionA, database: db }), (c) =>
      c.query(
        `create table docs (id int primary key, body json, at point); insert into docs select i, json_build_object('i', i), point(i, i) from generate_series(1, 50) i`,
      ),
    );
    const ref = await p.createBackup({ region: regionA, database: db }, unique('unit'), 'test', io());
    const docs = (await p.manifest(ref)).tables.find((t) => t.table === 'public.docs');
    expect(docs).toMatchObject({ rows: 50, algorithm: 'columns-v2', textColumns: ['body', 'at'] });
    await p.deleteBackup(ref);
  });

  test('the same backup id again adopts the finished backup instead of dumping twice', async () => {
    const first = await p.manifest({
      ...(await p.listBackups(regionA, 'orders')).find((b) => b.backupId === backupId)!,
    });
    const again = await p.createBackup(target, backupId, 'test', io());
    expect(again.sha256).toBe(first.sha256);
    expect((await p.manifest(again)).createdAt).toBe(first.createdAt);
  });

  test('a half-written backup (no manifest yet) is not listed, and is replaced by the retry', async () => {
    const id = unique('unit');
    const dir = join(dirname(dirname((await p.listBackups(regionA, 'orders'))[0]!.location)), id);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'dump.pgdump.partial'), 'half a dump');
    expect((await p.listBackups(regionA, 'orders')).some((b) => b.backupId === id)).toBe(false);
    const ref = await p.createBackup(target, id, 'test', io());
    expect(ref.sizeBytes).toBeGreaterThan(1000);
  });

  test('a copy into another region is verified, and a second copy adopts the first', async () => {
    const [ref] = (await p.listBackups(regionA, 'orders')).filter((b) => b.backupId === backupId);
    const copy = await p.copyBackup(ref!, regionB, io());
    expect(copy).toMatchObject({ region: 'local-b', sha256: ref!.sha256 });
    const mtime = statSync(copy.location).mtimeMs;
    const again = await p.copyBackup(ref!, regionB, io());
    expect(again.location).toBe(copy.location);
    expect(statSync(again.location).mtimeMs).toBe(mtime);
    await expect(p.verifyBackup(copy, io())).resolves.toMatchObject({ sha256: ref!.sha256 });
  });

  test('verify rejects changed bytes as LifeboatBackupChecksumMismatch (non-retryable)', async () => {
    const [copy] = (await p.listBackups(regionB, 'orders')).filter((b) => b.backupId === backupId);
    const original = readFileSync(copy!.location);
    writeFileSync(
      copy!.location,
      Buffer.concat([original.subarray(0, original.length - 1), Buffer.from([original[original.length - 1]! ^ 1])]),
    );
    try {
      const err = await failure(p.verifyBackup(copy!, io()));
      expect(err.type).toBe('LifeboatBackupChecksumMismatch');
      expect(err.nonRetryable).toBe(true);
      expect(err.message).toContain(copy!.sha256);
    } finally {
      writeFileSync(copy!.location, original);
    }
  });

  test('a copy of changed bytes fails as LifeboatBackupChecksumMismatch and leaves nothing in the other region (so it may run beside the verify)', async () => {
    const [ref] = (await p.listBackups(regionA, 'orders')).filter((b) => b.backupId === backupId);
    expect(ref!.copyChecksSource).toBe(true);
    const regionC = { name: 'local-c', provider: 'local' as const }; // no copy there yet
    const original = readFileSync(ref!.location);
    writeFileSync(
      ref!.location,
      Buffer.concat([original.subarray(0, 100), Buffer.from([original[100]! ^ 1]), original.subarray(101)]),
    );
    try {
      const err = await failure(p.copyBackup(ref!, regionC, io()));
      expect(err.type).toBe('LifeboatBackupChecksumMismatch');
      expect(err.nonRetryable).toBe(true);
      expect(await p.listBackups(regionC, 'orders')).toEqual([]);
      expect(readdirSync(join(env().home, 'regions', 'local-c', 'backups', ref!.backupId))).toEqual([]); // no partial file either
    } finally {
      writeFileSync(ref!.location, original);
      rmSync(join(env().home, 'regions', 'local-c'), { recursive: true, force: true });
    }
  });

  test('a restore hashes the bytes it loads: changed bytes fail it as LifeboatBackupChecksumMismatch (a missing dump as LifeboatBackupNotFound), not as a pg_restore error, even with no verify before it', async () => {
    const [copy] = (await p.listBackups(regionB, 'orders')).filter((b) => b.backupId === backupId);
    const original = readFileSync(copy!.location);
    const at = Math.floor(original.length / 2);
    writeFileSync(
      copy!.location,
      Buffer.concat([original.subarray(0, at), Buffer.from([original[at]! ^ 0xff]), original.subarray(at + 1)]),
    );
    const scratch = await p.createScratch(regionB, unique('unit').toLowerCase(), 'orders', io());
    try {
      const err = await failure(p.restore(copy!, scratch, io()));
      expect(err.type).toBe('LifeboatBackupChecksumMismatch');
      expect(err.nonRetryable).toBe(true);
      expect(err.message).toContain(copy!.sha256);
      // A dump gone since its verify: the verify's verdict too, not a pg_restore error.
      renameSync(copy!.location, `${copy!.location}.away`);
      const gone = await failure(p.restore(copy!, scratch, io()));
      renameSync(`${copy!.location}.away`, copy!.location);
      expect(gone.type).toBe('LifeboatBackupNotFound');
      // The same scratch instance takes the intact bytes on the next attempt: what the failed one
      // loaded is started over, and the restore passes only with its hash.
      writeFileSync(copy!.location, original);
      await p.restore(copy!, scratch, io());
      const conn = await p.connectScratch(scratch);
      const rows = await withClient(
        conn,
        async (client) => (await client.query<{ n: string }>('select count(*) as n from orders')).rows[0]!.n,
      );
      expect(Number(rows)).toBeGreaterThan(0);
    } finally {
      writeFileSync(copy!.location, original);
      expect(await p.dropScratch(scratch)).toBe(true);
    }
  });

  test('an unreadable manifest is LifeboatBackupManifestInvalid', async () => {
    const [copy] = (await p.listBackups(regionB, 'orders')).filter((b) => b.backupId === backupId);
    const file = join(dirname(copy!.location), 'manifest.json');
    const original = readFileSync(file, 'utf8');
    writeFileSync(file, JSON.stringify({ ...(JSON.parse(original) as BackupManifest), sha256: 'not-a-hash' }));
    try {
      const err = await failure(p.manifest(copy!));
      expect(err.type).toBe('LifeboatBackupManifestInvalid');
    } finally {
      writeFileSync(file, original);
    }
  });

  test('a dump from a newer server is refused before restoring: LifeboatServerVersionTooOld', async () => {
    const [copy] = (await p.listBackups(regionB, 'orders')).filter((b) => b.backupId === backupId);
    const file = join(dirname(copy!.location), 'manifest.json');
    const original = readFileSync(file, 'utf8');
    writeFileSync(
      file,
      JSON.stringify({ ...(JSON.parse(original) as BackupManifest), serverVersion: '99.0', serverVersionNum: 990000 }),
    );
    const scratch = await p.createScratch(regionB, unique('unit').toLowerCase(), 'orders', io());
    try {
      const err = await failure(p.restore(copy!, scratch, io()));
      expect(err.type).toBe('LifeboatServerVersionTooOld');
      expect(err.message).toContain('PostgreSQL 99.0');
    } finally {
      writeFileSync(file, original);
      expect(await p.dropScratch(scratch)).toBe(true);
    }
    expect(await p.dropScratch(scratch)).toBe(false);
  });

  test('scratch instances are copied from a stopped template holding the empty restore database; each gets a password of its own; a half-made one is made again', async () => {
    const [a, b] = [unique('unit').toLowerCase(), unique('unit').toLowerCase()];
    const first = await p.createScratch(regionB, a, 'orders', io());
    const second = await p.createScratch(regionB, b, 'orders', io());
    try {
      const templates = readdirSync(join(env().home, 'templates')).filter((name) => name.startsWith('scratch-'));
      expect(templates).toHaveLength(1);
      expect(existsSync(join(env().home, 'templates', templates[0]!, 'data', 'postmaster.pid'))).toBe(false);
      const [connA, connB] = [await p.connectScratch(first), await p.connectScratch(second)];
      expect(connA.password).not.toBe(connB.password);
      // The template's password no longer opens either of them.
      const templatePassword = readFileSync(join(env().home, 'templates', templates[0]!, 'pgpass'), 'utf8')
        .trim()
        .split(':')
        .pop();
      expect([connA.password, connB.password]).not.toContain(templatePassword);
      const refused = await withClient(
        { ...connA, password: templatePassword!, passfile: undefined },
        async () => 'connected',
      ).catch((err: { code?: string }) => err.code);
      expect(refused).toBe('28P01');
      for (const conn of [connA, connB])
        expect(
          await withClient(
            conn,
            async (c) => (await c.query<{ db: string }>('select current_database() as db')).rows[0]!.db,
          ),
        ).toBe('orders');
      // An attempt that died half way (no READY mark) is thrown away and made again; a finished one is kept.
      rmSync(join(env().home, 'regions', 'local-b', 'scratch', a, 'READY'));
      await p.createScratch(regionB, a, 'orders', io());
      expect((await p.connectScratch(first)).password).not.toBe(connA.password);
      await p.createScratch(regionB, b, 'orders', io());
      expect((await p.connectScratch(second)).password).toBe(connB.password);
    } finally {
      for (const scratch of [first, second]) await p.dropScratch(scratch);
    }
  });

  test('a torn-down scratch instance is gone at once and deleted in the background, which then makes a spare copy; the next scratch instance takes it; stale spares and trash are removed', async () => {
    const spares = join(env().home, 'templates', 'spares', 'local-b');
    const trash = join(env().home, 'regions', 'local-b', 'scratch-trash');
    const first = await p.createScratch(regionB, unique('unit').toLowerCase(), 'orders', io());
    await p.dropScratch(first, io());
    expect(existsSync(join(env().home, 'regions', 'local-b', 'scratch', first.name))).toBe(false); // gone when the teardown returns
    expect(await p.listScratch(regionB)).not.toContain(first.name);
    await p.replenishSpare('local-b'); // the one the teardown started, if still running
    expect(readdirSync(trash)).toEqual([]); // its files deleted in the background, before the spare was made
    expect(scratchHousekeeping(env().home, 'local-b')).toEqual({ busy: false, spareReady: true });
    const [spare, ...others] = readdirSync(spares);
    expect(others).toEqual([]);
    expect(spare).toMatch(/^scratch-[0-9a-f]{12}$/);
    expect(existsSync(join(env().home, 'templates', spare!))).toBe(true); // the template it is a copy of
    expect(existsSync(join(spares, spare!, 'data', 'PG_VERSION'))).toBe(true);
    expect(existsSync(join(spares, spare!, 'data', 'postmaster.pid'))).toBe(false);

    const second = await p.createScratch(regionB, unique('unit').toLowerCase(), 'orders', io());
    try {
      expect(readdirSync(spares)).toEqual([]); // taken, not copied
      const conn = await p.connectScratch(second);
      const templatePassword = readFileSync(join(env().home, 'templates', spare!, 'pgpass'), 'utf8')
        .trim()
        .split(':')
        .pop();
      expect(conn.password).not.toBe(templatePassword);
      const databases = await withClient({ ...conn, database: 'postgres' }, async (c) =>
        (await c.query<{ datname: string }>('select datname from pg_database order by 1')).rows.map((r) => r.datname),
      );
      expect(databases).toEqual(['orders', 'postgres', 'template0', 'template1']); // the template's restore database, renamed
      const tables = await withClient(
        conn,
        async (c) =>
          (
            await c.query(
              "select count(*)::int as n from pg_class where relkind = 'r' and relnamespace = 'public'::regnamespace",
            )
          ).rows[0].n,
      );
      expect(tables).toBe(0);
    } finally {
      await p.dropScratch(second, io());
    }

    // A half-made spare of a process that died, and a spare of other server tools, are removed; so
    // is a torn-down instance a dead worker left in the trash, while a live worker's is left to it.
    await p.replenishSpare('local-b');
    mkdirSync(join(spares, '.building-999999999-dead'), { recursive: true });
    mkdirSync(join(spares, 'scratch-000000000000'), { recursive: true });
    mkdirSync(join(trash, '999999999-dead', 'data'), { recursive: true });
    mkdirSync(join(trash, '1-live'), { recursive: true }); // pid 1 is always alive
    expect(scratchHousekeeping(env().home, 'local-b').busy).toBe(true); // trash waiting to be deleted
    rmSync(join(spares, spare!), { recursive: true });
    await p.replenishSpare('local-b');
    expect(readdirSync(spares)).toEqual([spare]);
    expect(readdirSync(trash)).toEqual(['1-live']);
    rmSync(join(trash, '1-live'), { recursive: true });
  });

  test('a scratch instance torn down while the trash is being emptied is deleted too: the pass that listed the trash before it is followed by one more', async () => {
    const trash = join(env().home, 'regions', 'local-b', 'scratch-trash');
    const scratch = await p.createScratch(regionB, unique('unit').toLowerCase(), 'orders', io());
    const running = p.replenishSpare('local-b'); // lists the trash now, before the teardown below
    await p.dropScratch(scratch, io());
    await p.replenishSpare('local-b');
    await running;
    expect(readdirSync(trash)).toEqual([]);
  });

  test('names that could escape the store are refused as LifeboatInvalidInput', async () => {
    const err = await failure(p.createBackup(target, '../../etc', 'test', io()));
    expect(err.type).toBe('LifeboatInvalidInput');
    const err2 = await failure(p.createScratch(regionB, '../x', 'orders', io()));
    expect(err2.type).toBe('LifeboatInvalidInput');
  });

  test('a region with no cluster is LifeboatRegionNotReady, naming the fix', async () => {
    const err = await failure(p.connect({ region: { name: 'nowhere', provider: 'local' }, database: 'orders' }));
    expect(err.type).toBe('LifeboatRegionNotReady');
    expect(err.message).toContain('lifeboat dev up');
  });
});
