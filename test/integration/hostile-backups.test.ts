// Hostile backups: a real backup of a small database, copied and damaged in each way a store can be
// damaged or tampered with, then put through the restore path the runbooks use (the activities
// createActivities builds: verify the copy, then restore it into a scratch instance). Each must fail
// with a verdict (a stable type, non-retryable) whose message names the backup, and leave nothing
// restored. Both kinds of backup: the local provider's files, and portable backups in a store.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ApplicationFailure } from '@temporalio/common';
import { listTables, quoteIdent, withClient } from '../../activities/pg/sql';
import { ErrorType, type BackupManifest, type BackupRef } from '../../workflows/types';
import { restoreBench } from '../support/unit-restore-bench';
import { failure } from '../support/unit-failure';

const DB = 'hostile';

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** What a case does to its copy: the dump's bytes, the manifest's text, or the reference a runbook passes. */
interface Damage {
  dump?: (file: string) => void;
  /** Edits the manifest in place, or returns the text to store instead of it. */
  manifest?: (manifest: BackupManifest, dir: string) => string | void;
  ref?: (ref: BackupRef) => BackupRef;
}

/** A manifest with `fields` set to other values. */
function manifestWith(fields: Partial<BackupManifest>): Damage {
  return {
    manifest: (m) => {
      Object.assign(m, fields);
    },
  };
}

interface HostileCase {
  name: string;
  damage: Damage;
  /** Where the runbook's path stops: the verify step, or the restore after a verify that passed. */
  failsAt: 'verify' | 'restore';
  type: string;
  /** What the message must say, beside the backup's id. */
  says: RegExp;
}

// pg_dump's custom format starts "PGDMP", then the archive version: major, minor, revision.
const HEADER_MINOR = 6;

const CASES: HostileCase[] = [
  {
    name: 'a manifest that does not match the dump (one byte changed)',
    damage: {
      dump: (file) => {
        const bytes = readFileSync(file);
        const at = Math.floor(bytes.length / 2);
        bytes[at] = bytes[at]! ^ 0xff;
        writeFileSync(file, bytes);
      },
    },
    failsAt: 'verify',
    type: ErrorType.BackupChecksumMismatch,
    says: /does not match its manifest: sha256 [0-9a-f]{64}/,
  },
  {
    name: 'a truncated dump file',
    damage: { dump: (file) => truncateSync(file, Math.floor(readFileSync(file).length / 3)) },
    failsAt: 'verify',
    type: ErrorType.BackupChecksumMismatch,
    says: /does not match its manifest: .*\(\d+ bytes\), expected .*\(\d+ bytes\)/,
  },
  {
    name: 'a manifest saying the dump came from a newer server (serverVersionNum 990000)',
    damage: manifestWith({ serverVersion: '99.0', serverVersionNum: 990000 }),
    failsAt: 'restore',
    type: ErrorType.ServerVersionTooOld,
    says: /was taken from PostgreSQL 99\.0; .* pg_restore cannot load a dump into an older server/,
  },
  {
    name: 'a dump whose custom-format header is newer than pg_restore understands (1.99), manifest updated to match',
    damage: {
      dump: (file) => {
        const bytes = readFileSync(file);
        expect(bytes.subarray(0, 5).toString()).toBe('PGDMP');
        bytes[HEADER_MINOR] = 99;
        writeFileSync(file, bytes);
      },
      manifest: (m, dir) => {
        const bytes = readFileSync(join(dir, 'dump.pgdump'));
        m.sha256 = sha256(bytes);
        m.sizeBytes = bytes.length;
      },
    },
    failsAt: 'restore',
    type: ErrorType.ServerVersionTooOld,
    says: /unsupported version \(1\.99\) in file header/,
  },
  {
    name: 'a manifest that is not JSON',
    damage: { manifest: () => '{ "formatVersion": 1, "backupId": ' },
    failsAt: 'verify',
    type: ErrorType.BackupManifestInvalid,
    says: /is not valid JSON/,
  },
  {
    name: 'a manifest whose backupId is "../../etc"',
    damage: manifestWith({ backupId: '../../etc' }),
    failsAt: 'verify',
    type: ErrorType.BackupManifestInvalid,
    says: /does not describe (portable )?backup/,
  },
  {
    name: 'a backup reference whose backupId is "../../etc"',
    damage: {
      ref: (ref) => ({
        ...ref,
        backupId: '../../etc',
        location: ref.location.replace(/[^/]+\/dump\.pgdump$/, '../../etc/dump.pgdump'),
      }),
    },
    failsAt: 'verify',
    type: ErrorType.InvalidInput,
    says: /backup id "\.\.\/\.\.\/etc" is not a plain name/,
  },
];

// Portable backups name their database in the key too: a manifest naming another one is refused.
const PORTABLE_ONLY: HostileCase[] = [
  {
    name: 'a manifest whose database is "../../etc"',
    damage: manifestWith({ database: '../../etc' }),
    failsAt: 'verify',
    type: ErrorType.BackupManifestInvalid,
    says: /does not describe portable backup .* of hostile/,
  },
];

describe('hostile backups fail the restore with a verdict naming the backup, and restore nothing', () => {
  const bench = restoreBench({ db: DB, test: 'hostile-backups', activityType: 'hostile' });
  const { p, activities, inActivity, portable, drRegion } = bench;
  const scratch = bench.scratch('hostile');
  let localCopy: BackupRef;
  let portableCopy: BackupRef;

  /** The runbooks' path: verify the copy (drill and cross-cloud both do), then restore it. Returns the step that failed. */
  async function restoreAsRunbooksDo(
    ref: BackupRef,
  ): Promise<{ failedAt: 'verify' | 'restore' | null; error?: ApplicationFailure }> {
    try {
      await inActivity(() => activities.verifyBackup({ ref, region: scratch.region }));
    } catch (error) {
      return { failedAt: 'verify', error: error as ApplicationFailure };
    }
    try {
      await inActivity(() => activities.restoreBackup({ ref, scratch }));
    } catch (error) {
      return { failedAt: 'restore', error: error as ApplicationFailure };
    }
    return { failedAt: null };
  }

  async function restoredTables(): Promise<string[]> {
    const conn = await p.connectScratch(scratch);
    return withClient(conn, (client) => listTables(client)).catch((err: { code?: string }) => {
      if (err.code === '3D000') return []; // no database at all: nothing restored either
      throw err;
    });
  }

  async function emptyScratch(): Promise<void> {
    const conn = await p.connectScratch(scratch);
    await withClient({ ...conn, database: 'postgres' }, async (client) => {
      await client.query(`drop database if exists ${quoteIdent(DB)} with (force)`);
      await client.query(`create database ${quoteIdent(DB)}`);
    });
  }

  beforeAll(async () => {
    await bench.makeDatabase(`
      create table accounts (id int primary key, owner text not null, balance_cents bigint not null);
      insert into accounts select i, 'owner ' || i, i * 100 from generate_series(1, 200) i;
      create table notes (id serial primary key, account_id int references accounts, body jsonb);
      insert into notes (account_id, body) select i, jsonb_build_object('n', i) from generate_series(1, 50) i;`);
    ({ localCopy, portableCopy } = await bench.backUp());
    await inActivity(() => activities.createScratchInstance(scratch));
  }, 180_000);

  afterAll(async () => {
    await bench.tearDown();
  });

  beforeEach(async () => {
    await emptyScratch();
  });

  /** A damaged copy of the local DR copy, under its own id beside it. */
  function damagedLocalCopy(suffix: string, damage: Damage): BackupRef {
    const id = `${localCopy.backupId}-${suffix}`;
    return damagedCopy(
      localCopy,
      id,
      dirname(localCopy.location),
      join(dirname(dirname(localCopy.location)), id),
      damage,
    );
  }

  /** A damaged copy of the portable DR copy, under its own id in the same store. */
  function damagedPortableCopy(suffix: string, damage: Damage): BackupRef {
    const id = `${portableCopy.backupId}-${suffix}`;
    const store = (drRegion.store as { path: string }).path;
    return damagedCopy(portableCopy, id, join(store, DB, portableCopy.backupId), join(store, DB, id), damage);
  }

  function damagedCopy(original: BackupRef, id: string, from: string, to: string, damage: Damage): BackupRef {
    mkdirSync(to, { recursive: true });
    copyFileSync(join(from, 'dump.pgdump'), join(to, 'dump.pgdump'));
    const manifest = JSON.parse(readFileSync(join(from, 'manifest.json'), 'utf8')) as BackupManifest;
    manifest.backupId = id;
    damage.dump?.(join(to, 'dump.pgdump'));
    const raw = damage.manifest?.(manifest, to);
    writeFileSync(join(to, 'manifest.json'), typeof raw === 'string' ? raw : JSON.stringify(manifest, null, 2));
    const ref = { ...original, backupId: id, location: original.location.replace(original.backupId, id) };
    return damage.ref ? damage.ref(ref) : ref;
  }

  test('the intact copies restore and verify through the same path (so "nothing restored" below means something)', async () => {
    for (const ref of [localCopy, portableCopy]) {
      await emptyScratch();
      expect(await restoreAsRunbooksDo(ref)).toEqual({ failedAt: null });
      expect((await restoredTables()).sort()).toEqual(['"public"."accounts"', '"public"."notes"']);
      const verified = await inActivity(() =>
        activities.verifyRestore({
          ref,
          scratch,
          checks: [{ name: 'accounts', sql: 'select count(*) = 200 from accounts' }],
        }),
      );
      expect(verified.value.tables.every((t) => t.ok)).toBe(true);
      expect(verified.value.checks).toEqual([{ name: 'accounts', ok: true, detail: 'returned true' }]);
    }
  });

  // Plans refuse such a check (worker/plan.ts); a runbook input made some other way (an old schedule,
  // a hand-started workflow) meets this guard instead.
  test('a check that would end its read-only transaction fails, and changes nothing', async () => {
    await emptyScratch();
    expect(await restoreAsRunbooksDo(localCopy)).toEqual({ failedAt: null });
    const sneaky = { name: 'sneaky', sql: 'select true; commit; drop table notes' };
    const verified = await inActivity(() => activities.verifyRestore({ ref: localCopy, scratch, checks: [sneaky] }));
    expect(verified.value.checks).toEqual([
      { name: 'sneaky', ok: false, detail: expect.stringContaining('cannot insert multiple commands') },
    ]);
    expect(await restoredTables()).toContain('"public"."notes"');
  });

  describe.each([
    ['local provider', CASES, damagedLocalCopy],
    ['portable backup', [...CASES, ...PORTABLE_ONLY], damagedPortableCopy],
  ] as const)('%s', (_kind, cases, damaged) => {
    test.each(cases.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
      const ref = damaged(`bad${i}`, c.damage);
      const { failedAt, error } = await restoreAsRunbooksDo(ref);
      expect(failedAt).toBe(c.failsAt);
      expect({ type: error?.type, nonRetryable: error?.nonRetryable }).toEqual({ type: c.type, nonRetryable: true });
      expect(error?.message).toContain(ref.backupId);
      expect(error?.message).toMatch(c.says);
      expect(await restoredTables()).toEqual([]);

      // The restore on its own, as a retried or hand-started attempt would run it: refused before the target is touched.
      const alone = await failure(inActivity(() => activities.restoreBackup({ ref, scratch })));
      expect(alone.message).toContain(ref.backupId);
      expect(await restoredTables()).toEqual([]);

      // A copy whose manifest cannot be trusted is never offered as the newest backup to restore.
      if (c.type === ErrorType.BackupManifestInvalid) {
        const listed = ref.store ? await portable.list(drRegion, DB) : await p.listBackups(scratch.region, DB);
        expect(listed.map((r) => r.backupId)).not.toContain(ref.backupId);
      }
    });
  });
});
