// The local provider: each region is a PostgreSQL cluster that Lifeboat runs under LIFEBOAT_HOME,
// with a backup store (a directory) beside it. Backups are pg_dump custom-format files taken under
// one exported snapshot, with the manifest's table statistics read in that same snapshot.
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  ErrorType,
  type BackupManifest,
  type CheckResult,
  type BackupRef,
  type DatabaseTarget,
  type NodeRef,
  type RegionSpec,
  type ReplicaSetSpec,
  type ScratchInstance,
  type TopologyView,
} from '../../workflows/types';
import { verdict } from '../errors';
import { LocalCluster } from '../pg/cluster';
import { freePort } from '../pg/ports';
import { processAlive } from '../pg/tool-env';
import { run, serverOsUser } from '../pg/process';
import {
  fsyncFile,
  privateDir,
  PRIVATE_DIR,
  PRIVATE_FILE,
  publishFile,
  tempPathFor,
  writeFileAtomic,
} from '../private-files';
import { quoteIdent, withClient, type PgConnection } from '../pg/sql';
import { loadAsRestoreRole, readToc } from '../pg/load-dump';
import { prepareRestoreRole } from '../pg/roles';
import { assertServerCanLoad, dumpWithManifest, hashing, toolTooOld } from '../portable/logical-dump';
import type { ActivityIo, DatabaseProvider, FenceResult, RebuildOptions, RebuildResult } from './provider';
import { nodeLabel } from '../topology';
import { ProviderBase } from './provider-base';
import { describeDivergence } from '../pg/divergence';
import {
  fence,
  makeStandby,
  nodeStatus,
  promote,
  replicationLag,
  unfence,
  type NodeStatus,
  type ReplicationLag,
  type StandbyMethod,
} from '../pg/replication';

export interface LocalProviderConfig {
  /** LIFEBOAT_HOME: regions, backups and scratch instances live under it. */
  home: string;
  pgBin: string;
}

const DUMP_FILE = 'dump.pgdump';
/** The empty database each scratch template holds, renamed to the restored database's name. */
const RESTORE_DATABASE = 'lifeboat_restore';
/** Part of a template's key: a template made another way (before it held RESTORE_DATABASE) is not used. */
const TEMPLATE_FORMAT = 'with-restore-database';
const MANIFEST_FILE = 'manifest.json';

/**
 * Where a region's background scratch work happens (see replenishSpare): torn-down instances wait in
 * `trash` to be deleted, and its spare scratch instance is made in `spares` (`.building-<pid>-*`
 * while being made).
 */
export function scratchWorkDirs(home: string, region: string): { trash: string; spares: string } {
  return { trash: join(home, 'regions', region, 'scratch-trash'), spares: join(home, 'templates', 'spares', region) };
}

export class LocalProvider extends ProviderBase implements DatabaseProvider {
  readonly kind = 'local' as const;

  constructor(private readonly config: LocalProviderConfig) {
    super(config.home);
  }

  regionCluster(region: string): LocalCluster {
    return new LocalCluster(join(this.regionDir(region), 'cluster'), this.config.pgBin);
  }

  /**
   * A node of a replication set: `server` is a region's own cluster; any other name is a cluster
   * kept beside it in that region (e.g. `standby-of-local-a`, a streaming replica of local-a's server).
   */
  nodeCluster(node: NodeRef): LocalCluster {
    if (node.name === 'server') return this.regionCluster(node.region);
    if (!/^[a-z0-9][a-z0-9-]*$/.test(node.name) || ['backups', 'scratch', 'cluster'].includes(node.name)) {
      throw verdict(ErrorType.InvalidInput, `node name ${JSON.stringify(node.name)} is not a plain lowercase name`);
    }
    return new LocalCluster(join(this.regionDir(node.region), node.name), this.config.pgBin);
  }

  /**
   * The database on its replication set's current primary: after a failover that is the promoted
   * standby, not the region's own server. Mid-switch there is no primary, and that is an error a
   * retry outlives.
   */
  async connect(target: DatabaseTarget): Promise<PgConnection> {
    const topology = this.topologies.read(target.region.name);
    if (topology) {
      if (!topology.primary)
        throw new Error(`a switchover of ${topology.set} is in progress: no primary to connect to yet`);
      return this.nodeCluster(topology.primary).connection(target.database);
    }
    const cluster = this.regionCluster(target.region.name);
    if (!cluster.isInitialized()) {
      throw verdict(
        ErrorType.RegionNotReady,
        `region ${target.region.name} has no local PostgreSQL cluster under ${cluster.root}; run \`lifeboat dev up\` (or check LIFEBOAT_HOME)`,
      );
    }
    return cluster.connection(target.database);
  }

  async createBackup(target: DatabaseTarget, backupId: string, createdBy: string, io: ActivityIo): Promise<BackupRef> {
    const dir = this.backupDir(target.region.name, backupId);
    if (existsSync(join(dir, MANIFEST_FILE))) {
      io.logger.info({ backupId }, 'backup already complete from an earlier attempt; adopting it');
      return this.refFor(target.region.name, await this.readManifest(dir, backupId));
    }
    rmSync(dir, { recursive: true, force: true });
    this.privateBackupDir(target.region.name, backupId);
    const conn = await this.connect(target);
    const partial = tempPathFor(join(dir, DUMP_FILE));
    const manifest = await dumpWithManifest(
      conn,
      this.config.pgBin,
      createWriteStream(partial, { mode: PRIVATE_FILE, flags: 'wx' }),
      { backupId, database: target.database, provider: 'local', sourceRegion: target.region.name, createdBy },
      io,
    );
    fsyncFile(partial);
    publishFile(partial, join(dir, DUMP_FILE));
    // The manifest is written last: its presence is what marks a backup complete.
    writeFileAtomic(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    return this.refFor(target.region.name, manifest);
  }

  async manifest(ref: BackupRef): Promise<BackupManifest> {
    return this.readManifest(this.backupDir(ref.region, ref.backupId), ref.backupId);
  }

  /** The manifest sits beside the dump: the restored database is checked against it as stored. */
  async restoredManifest(ref: BackupRef): Promise<BackupManifest> {
    return this.manifest(ref);
  }

  async verifyBackup(ref: BackupRef, io: ActivityIo): Promise<BackupManifest> {
    const manifest = await this.manifest(ref);
    const file = join(this.backupDir(ref.region, ref.backupId), DUMP_FILE);
    if (!existsSync(file)) {
      throw verdict(
        ErrorType.BackupNotFound,
        `backup ${ref.backupId} in ${ref.region} has a manifest but no dump file at ${file}`,
      );
    }
    const { sha256, sizeBytes } = await hashFile(file, io);
    if (sizeBytes !== manifest.sizeBytes || sha256 !== manifest.sha256) {
      throw verdict(
        ErrorType.BackupChecksumMismatch,
        `backup ${ref.backupId} in ${ref.region} does not match its manifest: sha256 ${sha256} (${sizeBytes} bytes), ` +
          `expected ${manifest.sha256} (${manifest.sizeBytes} bytes)`,
        { expected: manifest.sha256, actual: sha256 },
      );
    }
    return manifest;
  }

  async copyBackup(ref: BackupRef, to: RegionSpec, io: ActivityIo): Promise<BackupRef> {
    const manifest = await this.manifest(ref);
    const destDir = this.backupDir(to.name, ref.backupId);
    if (existsSync(join(destDir, MANIFEST_FILE))) {
      const existing = await this.readManifest(destDir, ref.backupId);
      if (existing.sha256 === manifest.sha256) {
        io.logger.info(
          { backupId: ref.backupId, to: to.name },
          'copy already in place from an earlier attempt; adopting it',
        );
        return this.refFor(to.name, existing);
      }
    }
    rmSync(destDir, { recursive: true, force: true });
    this.privateBackupDir(to.name, ref.backupId);
    const partial = tempPathFor(join(destDir, DUMP_FILE));
    const hash = createHash('sha256');
    let bytes = 0;
    await pipeline(
      createReadStream(join(this.backupDir(ref.region, ref.backupId), DUMP_FILE), { highWaterMark: 1 << 20 }),
      hashing(hash, (n) => {
        bytes += n;
        io.heartbeat({ phase: 'copy', bytes });
      }),
      createWriteStream(partial, { mode: PRIVATE_FILE, flags: 'wx' }),
      { signal: io.signal },
    );
    fsyncFile(partial);
    const sha256 = hash.digest('hex');
    if (sha256 !== manifest.sha256) {
      rmSync(partial, { force: true });
      // A source that no longer matches its manifest is a verdict (verify throws it); otherwise the
      // bytes changed on the way, and another attempt may well succeed.
      await this.verifyBackup(ref, io);
      throw new Error(
        `copy of ${ref.backupId} to ${to.name} came out with sha256 ${sha256}; expected ${manifest.sha256}`,
      );
    }
    publishFile(partial, join(destDir, DUMP_FILE));
    writeFileAtomic(join(destDir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    return this.refFor(to.name, manifest);
  }

  async listBackups(region: RegionSpec, database?: string): Promise<BackupRef[]> {
    const root = join(this.regionDir(region.name), 'backups');
    if (!existsSync(root)) return [];
    const refs: BackupRef[] = [];
    for (const id of readdirSync(root)) {
      const dir = join(root, id);
      if (!existsSync(join(dir, MANIFEST_FILE))) continue; // incomplete: not a backup yet
      try {
        const manifest = await this.readManifest(dir, id);
        if (!database || manifest.database === database) refs.push(this.refFor(region.name, manifest));
      } catch {
        continue; // an unreadable manifest is not a backup we can restore; verify reports it
      }
    }
    return refs.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.backupId.localeCompare(a.backupId));
  }

  async deleteBackup(ref: BackupRef): Promise<void> {
    rmSync(this.backupDir(ref.region, ref.backupId), { recursive: true, force: true });
  }

  async createScratch(region: RegionSpec, name: string, database: string, io: ActivityIo): Promise<ScratchInstance> {
    const cluster = this.scratchCluster(region.name, name);
    const ready = join(cluster.root, 'READY');
    if (!existsSync(ready)) {
      // Nothing is restored into a scratch instance before this activity has finished: one an earlier
      // attempt left half made is thrown away and made again.
      await cluster.destroy();
      const template = await this.scratchTemplate(io);
      const wanted = { name, port: await freePort(), disposable: true };
      io.heartbeat({ phase: 'starting', port: wanted.port });
      // A spare copy made after an earlier drill, when there is one; else a copy made now.
      if (!cluster.adopt(this.spare(region.name, template), wanted))
        await cluster.initFromCopy(template, wanted, io.signal);
      await cluster.start(io.signal);
      await cluster.ownPassword();
      writeFileAtomic(ready, '');
    } else if (!(await cluster.isRunning())) {
      await cluster.start(io.signal);
    }
    // The empty target database: the template's, renamed (instant), made here off the restore's critical path.
    await withClient(cluster.connection('postgres'), async (client) => {
      const { rows } = await client.query<{ datname: string }>(
        'select datname from pg_database where datname = any($1)',
        [[database, RESTORE_DATABASE]],
      );
      const present = new Set(rows.map((r) => r.datname));
      if (present.has(database)) return;
      if (present.has(RESTORE_DATABASE))
        await client.query(`alter database ${RESTORE_DATABASE} rename to ${quoteIdent(database)}`);
      else await client.query(`create database ${quoteIdent(database)}`);
    });
    return { name, region, database };
  }

  /**
   * A cluster that scratch instances are copied from, one per set of server tools, made on first use:
   * initdb, then started once to create the empty database a restore goes into, and stopped cleanly.
   * It is made in a directory of its own and renamed into place, so that two drills making it at
   * once cannot leave a half-made one.
   */
  private async scratchTemplate(io: Pick<ActivityIo, 'heartbeat' | 'signal'>): Promise<LocalCluster> {
    const tools = await run(join(this.config.pgBin, 'initdb'), ['--version']);
    const key = createHash('sha256')
      .update(`${TEMPLATE_FORMAT}\n${this.config.pgBin}\n${tools}`)
      .digest('hex')
      .slice(0, 12);
    const root = join(this.config.home, 'templates', `scratch-${key}`);
    const template = new LocalCluster(root, this.config.pgBin);
    if (template.isInitialized()) return template;
    io.heartbeat({ phase: 'initdb (scratch template)' });
    const building = new LocalCluster(
      `${root}.building-${process.pid}-${randomBytes(4).toString('hex')}`,
      this.config.pgBin,
    );
    try {
      await building.init({ name: 'scratch-template', port: await freePort(), disposable: true }, io.signal);
      await building.start(io.signal);
      await withClient(building.connection('postgres'), (client) =>
        client.query(`create database ${RESTORE_DATABASE}`),
      );
      await building.stop('fast');
      renameSync(building.root, root);
    } catch (err) {
      await building.destroy().catch(() => undefined);
      // Another drill made it meanwhile: use theirs.
      if (!template.isInitialized()) throw err;
    }
    return template;
  }

  /** Where a region's spare scratch instance waits: a stopped copy of this template, made ahead of time. */
  private spare(region: string, template: LocalCluster): LocalCluster {
    return new LocalCluster(join(this.spareDir(region), basename(template.root)), this.config.pgBin);
  }

  private spareDir(region: string): string {
    return scratchWorkDirs(this.config.home, region).spares;
  }

  /**
   * Empties the region's trash, then makes its spare scratch instance if it has none, in the
   * background and at the lowest CPU priority: called once a drill has torn its scratch instance
   * down, so that the next drill starts its scratch instance without copying anything while its
   * backup runs. Half-made spares of processes that died, and spares of other server tools, are
   * removed first. Never fails: without a spare the next drill copies the template itself.
   */
  replenishSpare(region: string, logger?: ActivityIo['logger']): Promise<void> {
    const pending = this.replenishing.get(region);
    if (pending) {
      // A teardown while a pass runs: that pass listed the trash before this instance was put there.
      // One more pass after it (shared by every caller meanwhile) empties it.
      let again = this.replenishAgain.get(region);
      if (!again) {
        again = pending.then(() => {
          this.replenishAgain.delete(region);
          return this.replenishSpare(region, logger);
        });
        this.replenishAgain.set(region, again);
      }
      return again;
    }
    const making = (async () => {
      await this.emptyTrash(region);
      const template = await this.scratchTemplate({ heartbeat: () => undefined, signal: new AbortController().signal });
      const spare = this.spare(region, template);
      const dir = this.spareDir(region);
      mkdirSync(dir, { recursive: true });
      for (const entry of readdirSync(dir)) {
        const building = /^\.building-(\d+)-/.exec(entry);
        const stale = building ? !processAlive(Number(building[1])) : entry !== basename(spare.root);
        if (stale) rmSync(join(dir, entry), { recursive: true, force: true });
      }
      if (spare.isInitialized()) return;
      const building = new LocalCluster(
        join(dir, `.building-${process.pid}-${randomBytes(4).toString('hex')}`),
        this.config.pgBin,
      );
      try {
        await building.initFromCopy(template, { name: 'spare', port: 0, disposable: true }, undefined, {
          background: true,
        });
        renameSync(building.root, spare.root);
      } finally {
        rmSync(building.root, { recursive: true, force: true });
      }
    })()
      .catch((err: unknown) =>
        logger?.warn(
          { region, err: (err as Error).message },
          'could not empty the scratch trash or make a spare scratch instance; the next drill copies the template instead',
        ),
      )
      .finally(() => this.replenishing.delete(region));
    this.replenishing.set(region, making);
    return making;
  }

  private readonly replenishing = new Map<string, Promise<void>>();
  private readonly replenishAgain = new Map<string, Promise<void>>();

  async connectScratch(scratch: ScratchInstance): Promise<PgConnection> {
    const cluster = this.scratchCluster(scratch.region.name, scratch.name);
    if (!cluster.isInitialized()) {
      throw verdict(
        ErrorType.RegionNotReady,
        `scratch instance ${scratch.name} does not exist in ${scratch.region.name}`,
      );
    }
    if (!(await cluster.isRunning())) await cluster.start();
    return cluster.connection(scratch.database);
  }

  /**
   * Loads the dump as `lifeboat_restore`, the scratch database's owner, never as the admin: see
   * activities/pg/load-dump.ts. Returns the objects that could not be restored, each a failed check
   * naming it (the drill reports them); throws when the load itself failed.
   */
  async restore(ref: BackupRef, scratch: ScratchInstance, io: ActivityIo): Promise<CheckResult[]> {
    const manifest = await this.manifest(ref);
    const file = join(this.backupDir(ref.region, ref.backupId), DUMP_FILE);
    // The bytes are hashed against the manifest while pg_restore loads them, as portable restores
    // check theirs: a dump damaged (or gone) since its verify step fails the restore with the verify's
    // verdict, never as a raw pg_restore error retried, and never as a pass. What it loaded into the
    // scratch instance meanwhile is thrown away with it (or started over by the next attempt, below).
    const load = new AbortController();
    const checked = this.verifyBackup(ref, io).catch((err: unknown) => {
      load.abort(err);
      throw err;
    });
    checked.catch(() => undefined); // awaited below; until then a rejection is not unhandled
    let findings: CheckResult[];
    try {
      // The table of contents (the file's header) is read beside the checks below.
      const toc = readToc(this.config.pgBin, file, load.signal).catch((err: unknown) => {
        throw toolTooOld(err, this.config.pgBin, `backup ${ref.backupId}`) ?? err;
      });
      toc.catch(() => undefined); // awaited below
      const conn = await this.connectScratch(scratch);
      const where = `the scratch instance in ${scratch.region.name}`;
      let versionChecked = false;
      let restorer: PgConnection | undefined;
      // A failed earlier attempt may have left a half-restored database, or a pg_restore still running
      // (orphaned by a killed worker): start clean. An empty, idle one, as createScratch leaves it, is
      // used, and given to the restore role in the same session.
      const dirty = await withClient(conn, async (client) => {
        await assertServerCanLoad(client, manifest, where);
        versionChecked = true;
        const { rows } = await client.query<{ dirty: boolean }>(`
          select exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                          where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%')
              or exists (select 1 from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()) as dirty`);
        const dirty = rows[0]?.dirty ?? true;
        if (!dirty) restorer = await prepareRestoreRole(client, conn);
        return dirty;
      }).catch((err: { code?: string }) => {
        if (err.code === '3D000') return true; // no database at all: create it below
        throw err;
      });
      if (dirty) {
        await withClient({ ...conn, database: 'postgres' }, async (client) => {
          if (!versionChecked) await assertServerCanLoad(client, manifest, where); // there was no database to ask
          await client.query(`drop database if exists ${quoteIdent(scratch.database)} with (force)`);
          await client.query(`create database ${quoteIdent(scratch.database)}`);
        });
      }
      if (load.signal.aborted) throw load.signal.reason;
      findings = await loadAsRestoreRole({
        pgBin: this.config.pgBin,
        file,
        admin: conn,
        toc: await toc,
        ...(restorer && { restorer }),
        access: manifest,
        onRoles: (roles) =>
          io.logger.info(
            { created: roles.created, existing: roles.existing, withheld: roles.withheld },
            'roles of the backup',
          ),
        signal: AbortSignal.any([io.signal, load.signal]),
        heartbeat: () => io.heartbeat({ phase: 'pg_restore' }),
      }).catch((err: unknown) => {
        // A dump from a newer pg_dump than this pg_restore: a verdict, not four identical failures.
        throw toolTooOld(err, this.config.pgBin, `backup ${ref.backupId}`) ?? err;
      });
    } catch (err) {
      // A damaged dump makes pg_restore fail too, or stops it: the checksum verdict is the cause.
      await checked;
      throw err;
    }
    await checked;
    return findings;
  }

  /**
   * Stops the instance and moves its directory to the region's trash: the instance is gone when this
   * returns. Deleting its files (a restored database's worth, 0.1-0.2 s per 100 MiB here) is left to
   * the background job that then makes the next spare, so the drill's report does not wait for it.
   */
  async dropScratch(scratch: ScratchInstance, io?: ActivityIo): Promise<boolean> {
    const existed =
      (await this.scratchCluster(scratch.region.name, scratch.name).discard(this.trashDir(scratch.region.name))) !==
      null;
    // Not awaited: the trash is emptied and the next drill's spare made once this one is done with the machine.
    void this.replenishSpare(scratch.region.name, io?.logger);
    return existed;
  }

  private trashDir(region: string): string {
    this.regionDir(region); // the name checked
    return scratchWorkDirs(this.config.home, region).trash;
  }

  /**
   * Deletes the torn-down scratch instances in the region's trash at the lowest CPU priority: this
   * process's, and those of processes that died before they got to theirs. Another live worker's are
   * left to it.
   */
  private async emptyTrash(region: string): Promise<void> {
    const dir = this.trashDir(region);
    if (!existsSync(dir)) return;
    const doomed = readdirSync(dir)
      .filter((entry) => {
        const owner = /^(\d+)-/.exec(entry)?.[1];
        return !owner || Number(owner) === process.pid || !processAlive(Number(owner));
      })
      .map((entry) => join(dir, entry));
    if (doomed.length > 0) await run('nice', ['-n', '19', 'rm', '-rf', '--', ...doomed]);
  }

  async listScratch(region: RegionSpec): Promise<string[]> {
    const root = join(this.regionDir(region.name), 'scratch');
    return existsSync(root) ? readdirSync(root) : [];
  }

  // Replication: a set's standby is a cluster named standby-of-<set> in the DR region, following
  // the set's primary through a physical slot; the topology record says who is primary now.

  standbyNodeFor(set: ReplicaSetSpec): NodeRef {
    return { region: set.dr.name, name: `standby-of-${set.set}` };
  }

  /** Creates the set's standby and its first topology record if they are not there (dev stack, tests). */
  async ensureReplicaSet(set: ReplicaSetSpec, standbyPort: number, by: string): Promise<TopologyView> {
    const existing = this.topologies.read(set.set);
    if (existing) return existing;
    const home: NodeRef = { region: set.home.name, name: 'server' };
    const standby = this.standbyNodeFor(set);
    await makeStandby(this.nodeCluster(standby), this.nodeCluster(home), {
      name: standby.name,
      port: standbyPort,
      applicationName: applicationNameFor(standby),
      pgBin: this.config.pgBin,
    });
    return this.topologies.write({ set: set.set, primary: home, standby, fenced: [], updatedBy: by }, 0);
  }

  async topology(set: ReplicaSetSpec): Promise<TopologyView> {
    const record = this.topologies.read(set.set);
    if (!record) {
      throw verdict(
        ErrorType.NoStandby,
        `replication set ${set.set} has no standby (no topology record under ${this.config.home}/topology): ` +
          `set dr.standby: true for it in the plan and run \`lifeboat dev up\``,
      );
    }
    return record;
  }

  async nodeStatus(node: NodeRef): Promise<NodeStatus> {
    return nodeStatus(this.nodeCluster(node));
  }

  async replicationLag(primary: NodeRef, standby: NodeRef): Promise<ReplicationLag> {
    return replicationLag(this.nodeCluster(primary), this.nodeCluster(standby), applicationNameFor(standby));
  }

  async connectNode(node: NodeRef, database: string): Promise<PgConnection> {
    return this.nodeCluster(node).connection(database);
  }

  async fence(node: NodeRef, mode: 'planned' | 'unplanned'): Promise<FenceResult> {
    return fence(this.nodeCluster(node), mode);
  }

  async unfence(node: NodeRef): Promise<void> {
    return unfence(this.nodeCluster(node));
  }

  async waitForReplay(standby: NodeRef, lsn: string, io: ActivityIo): Promise<string> {
    const cluster = this.nodeCluster(standby);
    return this.waitForReplayOver(() => cluster.connection('postgres'), cluster.root, lsn, io);
  }

  async promote(node: NodeRef): Promise<{ lsn: string; alreadyPrimary: boolean }> {
    return promote(this.nodeCluster(node));
  }

  async rebuildAsStandby(
    node: NodeRef,
    primary: NodeRef,
    io: ActivityIo,
    _set?: ReplicaSetSpec,
    options: RebuildOptions = {},
  ): Promise<RebuildResult & { method: StandbyMethod }> {
    const cluster = this.nodeCluster(node);
    const port = cluster.isInitialized() ? cluster.state().port : await freePort();
    let discarded: RebuildResult['discarded'];
    const method = await makeStandby(cluster, this.nodeCluster(primary), {
      name: node.name,
      port,
      applicationName: applicationNameFor(node),
      pgBin: this.config.pgBin,
      signal: io.signal,
      log: (line) => io.logger.warn(line),
      onDivergence: async (divergence) => {
        const detail = describeDivergence(nodeLabel(node), divergence);
        if (!options.discardDivergent) {
          throw verdict(
            ErrorType.DivergentWrites,
            `${detail}. Rebuilding it would discard them, so nothing was changed: the node is stopped and stays fenced. ` +
              'Look at them first (start a copy of its data directory with standby.signal), then run the failback again with --discard-divergent to keep a copy of the node and go on',
          );
        }
        const preservedAt = await this.preserve(node, cluster, io);
        io.logger.warn(
          { node: nodeLabel(node), preservedAt, by: options.discardDivergent.by },
          `discarding divergent writes: ${detail}`,
        );
        discarded = { detail, preservedAt, by: options.discardDivergent.by };
      },
    });
    return { method, node, ...(discarded && { discarded }) };
  }

  /**
   * A copy of a stopped node's whole directory (data, state, passfile) under preserved/ in the
   * LIFEBOAT_HOME, before anything of it is discarded. A retry after a copy was made keeps that one.
   */
  private async preserve(node: NodeRef, cluster: LocalCluster, io: ActivityIo): Promise<string> {
    // 0700 and the server's OS user's, as a data directory's parent must be for the copy to be started.
    const dir = join(this.config.home, 'preserved');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const user = serverOsUser();
    if (user) chownSync(dir, user.uid, user.gid);
    const controlLsn = (await cluster.controlData()).checkpointLsn.replace('/', '-');
    const target = join(dir, `${node.region}-${node.name}-${controlLsn}`);
    if (existsSync(join(target, 'COMPLETE'))) return target;
    rmSync(target, { recursive: true, force: true });
    io.heartbeat({ phase: 'preserving a copy', target });
    await run('cp', ['-a', cluster.root, `${target}.partial`], { signal: io.signal });
    // The copy must never start as anything but a read-only server in recovery.
    const copy = new LocalCluster(`${target}.partial`, this.config.pgBin);
    copy.holdInRecovery();
    rmSync(join(copy.dataDir, 'postmaster.pid'), { force: true });
    renameSync(`${target}.partial`, target);
    writeFileSync(
      join(target, 'COMPLETE'),
      `copy of ${nodeLabel(node)} kept before its divergent writes were discarded\n`,
    );
    return target;
  }

  private regionDir(region: string): string {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(region))
      throw verdict(ErrorType.InvalidInput, `region name ${JSON.stringify(region)} is not a plain lowercase name`);
    return join(this.config.home, 'regions', region);
  }

  /**
   * A backup's directory, made private: the backup 0700 in the region's backups directory 0700, in a
   * region directory the servers' OS user can pass through and nobody else can enter. When Lifeboat
   * runs as root the region directory is root:<postgres group> 0710 (the postgres user reaches the
   * clusters under it by name; it can neither list it nor enter backups/); as any other user, the
   * servers run as that same user and it is 0700. Dumps and manifests are 0600, owned by the worker's
   * user, which also runs pg_restore on them.
   */
  private privateBackupDir(region: string, backupId: string): string {
    const regionDir = this.regionDir(region);
    mkdirSync(regionDir, { recursive: true });
    const servers = serverOsUser();
    if (servers) {
      chownSync(regionDir, 0, servers.gid);
      chmodSync(regionDir, 0o710);
    } else {
      chmodSync(regionDir, PRIVATE_DIR);
    }
    privateDir(join(regionDir, 'backups'));
    return privateDir(this.backupDir(region, backupId));
  }

  private backupDir(region: string, backupId: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(backupId))
      throw verdict(ErrorType.InvalidInput, `backup id ${JSON.stringify(backupId)} is not a plain name`);
    return join(this.regionDir(region), 'backups', backupId);
  }

  private scratchCluster(region: string, name: string): LocalCluster {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(name))
      throw verdict(ErrorType.InvalidInput, `scratch name ${JSON.stringify(name)} is not a plain lowercase name`);
    return new LocalCluster(join(this.regionDir(region), 'scratch', name), this.config.pgBin);
  }

  private async readManifest(dir: string, backupId: string): Promise<BackupManifest> {
    const file = join(dir, MANIFEST_FILE);
    if (!existsSync(file)) throw verdict(ErrorType.BackupNotFound, `no backup ${backupId} at ${dir}`);
    let manifest: BackupManifest;
    try {
      manifest = JSON.parse(readFileSync(file, 'utf8')) as BackupManifest;
    } catch (err) {
      throw verdict(ErrorType.BackupManifestInvalid, `manifest ${file} is not valid JSON: ${(err as Error).message}`);
    }
    if (
      manifest.formatVersion !== 1 ||
      manifest.backupId !== backupId ||
      !/^[0-9a-f]{64}$/.test(manifest.sha256) ||
      !Array.isArray(manifest.tables)
    ) {
      throw verdict(
        ErrorType.BackupManifestInvalid,
        `manifest ${file} does not describe backup ${backupId} (format 1, sha256, tables expected)`,
      );
    }
    return manifest;
  }

  private refFor(region: string, manifest: BackupManifest): BackupRef {
    return {
      backupId: manifest.backupId,
      database: manifest.database,
      region,
      provider: 'local',
      createdAt: manifest.createdAt,
      sizeBytes: manifest.sizeBytes,
      sha256: manifest.sha256,
      location: join(this.backupDir(region, manifest.backupId), DUMP_FILE),
      copyChecksSource: true,
    };
  }
}

async function hashFile(file: string, io: ActivityIo): Promise<{ sha256: string; sizeBytes: number }> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  for await (const chunk of createReadStream(file, {
    highWaterMark: 1 << 20,
    signal: io.signal,
  }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    sizeBytes += chunk.length;
    io.heartbeat({ phase: 'sha256', bytes: sizeBytes });
  }
  return { sha256: hash.digest('hex'), sizeBytes };
}

/** The name a standby identifies itself with to its primary (and its replication slot's name). */
export function applicationNameFor(node: NodeRef): string {
  return `${node.region}_${node.name}`.replace(/[^a-z0-9_]/g, '_');
}
