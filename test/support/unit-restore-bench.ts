// The restore path's activities called directly on the test stack's local regions, as in a drill: a
// database made anew on local-a, backed up both ways (the local provider's backup and a portable
// backup in local-a's store), each copied to local-b, and the activities createActivities builds over
// them. hostile-backups, hostile-code and restore-access build on it.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import type { Client } from 'pg';
import { createActivities } from '../../activities';
import { CanaryLedger } from '../../activities/canary-ledger';
import { findPgBin } from '../../activities/pg/binaries';
import { withClient } from '../../activities/pg/sql';
import { PortableBackups } from '../../activities/portable/portable-backups';
import type { BackupRef, RegionSpec, ScratchInstance } from '../../workflows/types';
import { inActivity, silentIo } from './activity-context';
import { env, local } from './stack';

export interface RestoreBenchOptions {
  /** The source database on local-a, and the name its backups start with. */
  db: string;
  /** The test file's name: the workflow id its activities run under, and its folder and backups' label. */
  test: string;
  activityType: string;
}

/** Made at describe time (folders only); `makeDatabase` and `backUp` go in beforeAll, `tearDown` in afterAll. */
export function restoreBench({ db, test, activityType }: RestoreBenchOptions) {
  const p = local();
  const home = env().home;
  const root = mkdtempSync(join(home, `${test}-`));
  const stamp = Date.now().toString(36);
  const regionA: RegionSpec = { name: 'local-a', provider: 'local' };
  const primaryRegion: RegionSpec = { ...regionA, store: { kind: 'dir', path: join(root, 'store-a') } };
  const drRegion: RegionSpec = {
    name: 'local-b',
    provider: 'local',
    store: { kind: 'dir', path: join(root, 'store-b') },
  };
  const portable = new PortableBackups({ pgBin: findPgBin(env().pgBin), workDir: join(root, 'staging') });
  const activities = createActivities({
    providers: { local: p },
    logger: pino({ level: 'silent' }),
    ledger: new CanaryLedger(home),
    portable,
  });

  /** Runs an activity as the worker would: inside an activity context (attempt 1), through its wrapper. */
  function inActivityOf<T>(fn: () => Promise<T>): Promise<T> {
    return inActivity({ activityType, workflowId: test, runId: stamp }, fn);
  }

  const scratches: ScratchInstance[] = [];
  /** A scratch instance of `db` in the DR region, named `name` and the run's stamp; dropped by tearDown. */
  function scratch(name: string): ScratchInstance {
    const made: ScratchInstance = {
      name: `${name}-${stamp}`,
      region: { name: 'local-b', provider: 'local' },
      database: db,
    };
    scratches.push(made);
    return made;
  }

  /** Drops and creates `db` on local-a (`afterDrop` runs in between, in postgres), then runs `sql` in it. */
  async function makeDatabase(sql: string, afterDrop?: (admin: Client) => Promise<void>): Promise<void> {
    await withClient(await p.connect({ region: regionA, database: 'postgres' }), async (client) => {
      await client.query(`drop database if exists ${db} with (force)`);
      await afterDrop?.(client);
      await client.query(`create database ${db}`);
    });
    await withClient(await p.connect({ region: regionA, database: db }), (client) => client.query(sql));
  }

  /** As a drill makes them: a backup in the primary region, and a portable one in its store, each copied to the DR region. */
  async function backUp(): Promise<{ localCopy: BackupRef; portableCopy: BackupRef }> {
    const target = { region: regionA, database: db };
    const backup = await p.createBackup(target, `${db}-${stamp}`, `${test} test`, silentIo);
    const localCopy = await p.copyBackup(backup, drRegion, silentIo);
    const made = await portable.create(
      await p.connect(target),
      primaryRegion,
      'local',
      `${db}-${stamp}-portable`,
      `${test} test`,
      silentIo,
    );
    return { localCopy, portableCopy: await portable.copy(made, drRegion, silentIo) };
  }

  /** Drops the scratch instances, deletes the local provider's backups of `db` in both regions, drops `db` (`afterDrop` runs next), and the folder. */
  async function tearDown(afterDrop?: (admin: Client) => Promise<void>): Promise<void> {
    for (const made of scratches) await p.dropScratch(made).catch(() => undefined);
    for (const region of [drRegion, regionA])
      for (const ref of await p.listBackups(region, db)) await p.deleteBackup(ref);
    await withClient(await p.connect({ region: regionA, database: 'postgres' }), async (client) => {
      await client.query(`drop database if exists ${db} with (force)`);
      await afterDrop?.(client);
    });
    rmSync(root, { recursive: true, force: true });
  }

  return {
    p,
    home,
    root,
    stamp,
    regionA,
    primaryRegion,
    drRegion,
    portable,
    activities,
    inActivity: inActivityOf,
    scratch,
    makeDatabase,
    backUp,
    tearDown,
  };
}
