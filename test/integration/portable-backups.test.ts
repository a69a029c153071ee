// PortableBackups on its own, over directory stores: copies verified on the way, failures that fail
// the attempt (never the worker), verdicts where a retry cannot help, and a restore that checks the
// bytes before it touches the target. Backups here are made by hand (random bytes and their
// manifest), so each case controls exactly what is stored.
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import pino from 'pino';
import { DirStore } from '../../activities/portable/dir-store';
import { PortableBackups } from '../../activities/portable/portable-backups';
import { toolTooOld } from '../../activities/portable/logical-dump';
import { CommandFailed } from '../../activities/pg/process';
import type { ObjectStore } from '../../activities/portable/store';
import type { ActivityIo } from '../../activities/providers/provider';
import type { BackupManifest, BackupRef, RegionSpec, StoreSpec } from '../../workflows/types';
import { env } from '../support/stack';

const io: ActivityIo = {
  heartbeat: () => undefined,
  signal: new AbortController().signal,
  logger: pino({ level: 'silent' }),
};
const ID = 'shop-20261123T000000Z-abcdef12';

/** A store whose reads fail after `after` bytes, as a reset download would. */
class FailingReads implements ObjectStore {
  constructor(
    private readonly inner: ObjectStore,
    private readonly after: number,
  ) {}
  get url() {
    return this.inner.url;
  }
  put = (key: string, body: Readable, signal?: AbortSignal) => this.inner.put(key, body, signal);
  putText = (key: string, text: string) => this.inner.putText(key, text);
  getText = (key: string) => this.inner.getText(key);
  list = (prefix: string) => this.inner.list(prefix);
  delete = (keys: string[]) => this.inner.delete(keys);
  async get(key: string): Promise<Readable> {
    let seen = 0;
    const after = this.after;
    return (await this.inner.get(key)).pipe(
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          seen += chunk.length;
          if (seen > after) done(new Error('ECONNRESET: the download was reset'));
          else done(null, chunk);
        },
      }),
    );
  }
}

describe('portable backups over directory stores', () => {
  const root = mkdtempSync(join(env().home, 'portable-'));
  const spec = (name: string): StoreSpec => ({ kind: 'dir', path: join(root, name) });
  const region = (name: string): RegionSpec => ({ name, provider: 'local', store: spec(name) });
  let failAfter: number | null = null;
  const portable = new PortableBackups({
    pgBin: '/nonexistent',
    workDir: join(root, 'work'),
    open: (s) => {
      const store = new DirStore((s as { path: string }).path);
      return failAfter !== null && s.kind === 'dir' && s.path.endsWith('/src')
        ? new FailingReads(store, failAfter)
        : store;
    },
  });
  const bytes = randomBytes(3 << 20);
  const manifest: BackupManifest = {
    formatVersion: 1,
    backupId: ID,
    database: 'shop',
    provider: 'local',
    sourceRegion: 'src',
    createdAt: '2026-11-23T00:00:00.000Z',
    createdBy: 'test',
    dumpFormat: 'pg_dump-custom',
    serverVersion: '15.0',
    serverVersionNum: 150000,
    sizeBytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    tables: [],
    newestCanary: null,
  };
  const ref: BackupRef = {
    backupId: ID,
    database: 'shop',
    region: 'src',
    provider: 'local',
    createdAt: manifest.createdAt,
    sizeBytes: bytes.length,
    sha256: manifest.sha256,
    location: '',
    store: spec('src'),
  };

  beforeEach(() => {
    failAfter = null;
    const dir = join(root, 'src', 'shop', ID);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'dump.pgdump'), bytes);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  });

  test('a source that fails half way through a copy fails that attempt (retryable), leaves no copy at the destination, and the worker lives', async () => {
    failAfter = 1 << 20;
    const error = await portable.copy(ref, region('dst-a'), io).catch((err: Error & { nonRetryable?: boolean }) => err);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain('ECONNRESET');
    expect((error as { nonRetryable?: boolean }).nonRetryable).not.toBe(true);
    expect(await portable.list(region('dst-a'), 'shop')).toEqual([]);
    expect(await new DirStore(join(root, 'dst-a')).list('')).toEqual([]);
  });

  test('a copy is verified on the way and published with its manifest; asked again it is adopted', async () => {
    const copy = await portable.copy(ref, region('dst-b'), io);
    expect(copy).toMatchObject({ region: 'dst-b', sha256: manifest.sha256, store: spec('dst-b') });
    expect((await portable.verify(copy, io)).sha256).toBe(manifest.sha256);
    expect(await portable.copy(ref, region('dst-b'), io)).toEqual(copy);
    expect((await portable.list(region('dst-b'), 'shop')).map((r) => r.backupId)).toEqual([ID]);
  });

  test('a source changed since its manifest is a verdict (BackupChecksumMismatch), not four retries', async () => {
    const changed = Buffer.from(bytes);
    changed[1000] = changed[1000]! ^ 0xff;
    writeFileSync(join(root, 'src', 'shop', ID, 'dump.pgdump'), changed);
    await expect(portable.copy(ref, region('dst-c'), io)).rejects.toMatchObject({
      type: 'LifeboatBackupChecksumMismatch',
      nonRetryable: true,
    });
    expect(await portable.list(region('dst-c'), 'shop')).toEqual([]);
  });

  test('a restore checks the downloaded bytes before it touches the target: a damaged dump never reaches the server (and the attempt is retryable: it was verified at rest just before)', async () => {
    writeFileSync(
      join(root, 'src', 'shop', ID, 'dump.pgdump'),
      Buffer.concat([bytes.subarray(0, 1000), Buffer.from('truncated')]),
    );
    // No server listens on this port: reaching it would fail differently.
    const nowhere = { host: '127.0.0.1', port: 1, user: 'x', password: 'y', database: 'shop', passfile: '/dev/null' };
    const error = (await portable
      .restoreInto(ref, nowhere, { kind: 'scratch' }, io)
      .catch((err: unknown) => err)) as Error & { nonRetryable?: boolean };
    expect(error.message).toMatch(/as downloaded from .* does not match its manifest: .*nothing was restored/);
    expect(error.nonRetryable).not.toBe(true);
  });

  test("staged dumps of killed workers are swept; a live worker's are kept", () => {
    const work = join(root, 'work');
    mkdirSync(work, { recursive: true });
    const dead = spawnSync('true').pid; // exited: no process has this pid now
    writeFileSync(join(work, `${ID}.${dead}.1.pgdump`), 'plaintext rows of a killed restore');
    writeFileSync(join(work, `${ID}.${process.pid}.2.pgdump`), 'in use');
    expect(portable.sweepOrphans()).toEqual([`${ID}.${dead}.1.pgdump`]);
    expect(existsSync(join(work, `${ID}.${process.pid}.2.pgdump`))).toBe(true);
  });

  test('a backup without its manifest is incomplete: never listed', async () => {
    const dir = join(root, 'src', 'shop', 'shop-20261124T000000Z-00000000');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'dump.pgdump'), 'half');
    expect((await portable.list(region('src'), 'shop')).map((r) => r.backupId)).toEqual([ID]);
  });
});

describe('client tools older than the server', () => {
  test('pg_dump\'s "server version mismatch" and pg_restore\'s "unsupported version in file header" are verdicts naming the fix; other failures are left to retry', () => {
    const dump = toolTooOld(
      new CommandFailed(
        'pg_dump',
        1,
        'pg_dump: error: aborting because of server version mismatch\npg_dump: detail: server version: 17.2; pg_dump version: 15.10',
      ),
      '/usr/lib/postgresql/15/bin',
    );
    expect(dump).toMatchObject({
      type: 'LifeboatServerVersionTooOld',
      nonRetryable: true,
      message: expect.stringContaining('set LIFEBOAT_PG_BIN'),
    });
    expect(
      toolTooOld(
        new CommandFailed('pg_restore', 1, 'pg_restore: error: unsupported version (1.16) in file header'),
        '/x',
      ),
    ).toMatchObject({ type: 'LifeboatServerVersionTooOld' });
    expect(toolTooOld(new CommandFailed('pg_dump', 1, 'pg_dump: error: connection to server failed'), '/x')).toBeNull();
    expect(toolTooOld(new Error('server version mismatch'), '/x')).toBeNull();
  });
});
