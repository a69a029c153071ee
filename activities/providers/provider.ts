// The one interface every platform implements. Runbooks never see it: they call activities, and
// activities pick the provider for the region at hand. Provider files speak their platform's words
// inside (a dump file, a DBSnapshot, a backupRun) and these words outside.
import type { Logger } from 'pino';
import type {
  BackupManifest,
  BackupRef,
  CheckResult,
  CredentialsRef,
  DatabaseTarget,
  NodeRef,
  ProviderKind,
  RegionSpec,
  ReplicaSetSpec,
  ScratchInstance,
  TopologyView,
} from '../../workflows/types';
import type { NodeStatus, ReplicationLag } from '../pg/replication';
import type { PgConnection } from '../pg/sql';

export type { NodeStatus, ReplicationLag };

export interface FenceResult {
  /** True only when the provider verified the fence (a refused login, an instance described as stopped), never from an accepted call. */
  confirmed: boolean;
  /** The mechanisms, named precisely, and how each was verified or why not. */
  how: string;
  /** Planned: the WAL position after the last write the primary took; the standby must reach it. */
  finalLsn: string | null;
  /**
   * The fenced node can follow the new primary as it is once that is promoted (a clean demote:
   * its WAL ends where the standby's replay did), so the switchover ends with it as the standby.
   */
  canFollow?: boolean;
}

/**
 * A rebuild never discards writes the node took after the fork unasked: without `discardDivergent`
 * it fails with LifeboatDivergentWrites, naming them; with it, a copy of the node is kept first.
 */
export interface RebuildOptions {
  /** Who decided that the node's divergent writes may be discarded (recorded in the report). */
  discardDivergent?: { by: string };
}

export interface RebuildResult {
  method: string;
  node: NodeRef;
  /** Set when the node had taken writes after the fork and they were discarded, a copy kept. */
  discarded?: { detail: string; preservedAt: string; by: string };
}

/** What a long provider call gets from its activity: a way to report progress and to be stopped. */
export interface ActivityIo {
  /** Report progress; also how the call learns of cancellation. Cheap: throttled by the caller. */
  heartbeat(details?: Record<string, unknown>): void;
  signal: AbortSignal;
  logger: Logger;
}

export interface DatabaseProvider {
  readonly kind: ProviderKind;

  /** Credentials to reach a live database in one of this provider's regions. */
  connect(target: DatabaseTarget): Promise<PgConnection>;

  /** A consistent backup with its manifest. Same backupId again returns the existing backup. */
  createBackup(target: DatabaseTarget, backupId: string, createdBy: string, io: ActivityIo): Promise<BackupRef>;

  /** Reads the manifest of a backup or copy (throws BackupNotFound / BackupManifestInvalid). */
  manifest(ref: BackupRef): Promise<BackupManifest>;

  /** The manifest a database restored from `ref` into `scratch` is checked against, table by table. */
  restoredManifest(ref: BackupRef, scratch: ScratchInstance): Promise<BackupManifest>;

  /** Re-reads the stored bytes and checks them against the manifest (throws BackupChecksumMismatch). */
  verifyBackup(ref: BackupRef, io: ActivityIo): Promise<BackupManifest>;

  /** Copies a backup into another region, verified; an existing verified copy is adopted. */
  copyBackup(ref: BackupRef, to: RegionSpec, io: ActivityIo): Promise<BackupRef>;

  /** Lifeboat-made backups in a region, newest first. */
  listBackups(region: RegionSpec, database?: string): Promise<BackupRef[]>;

  deleteBackup(ref: BackupRef): Promise<void>;

  /**
   * An isolated, empty instance for a drill to restore into. Same name again returns the same instance.
   * `login`: the admin login to make it with, for a portable restore (pg_restore brings no roles).
   */
  createScratch(
    region: RegionSpec,
    name: string,
    database: string,
    io: ActivityIo,
    login?: CredentialsRef,
  ): Promise<ScratchInstance>;

  connectScratch(scratch: ScratchInstance): Promise<PgConnection>;

  /**
   * Restores a backup into a scratch instance, replacing whatever a failed attempt left there. A
   * logical restore (local) returns the objects it could not restore, each a failed check naming it.
   */
  restore(ref: BackupRef, scratch: ScratchInstance, io: ActivityIo): Promise<CheckResult[] | void>;

  /**
   * Deletes a scratch instance; false when there was nothing to delete. Returns once the platform
   * says it is gone (a delete that fails and leaves it running is an error to retry, not "deleted").
   */
  dropScratch(scratch: ScratchInstance, io?: ActivityIo): Promise<boolean>;

  /** Names of the scratch instances that exist in a region, to find leaks. */
  listScratch(region: RegionSpec): Promise<string[]>;

  // Replication: failover and failback.

  /** The replication set's topology record (throws NoStandby when the set has none). */
  topology(set: ReplicaSetSpec): Promise<TopologyView>;

  /** Writes the next topology (the traffic pointer follows it); idempotent for the same target state. */
  repoint(
    set: ReplicaSetSpec,
    next: Pick<TopologyView, 'primary' | 'standby' | 'fenced'>,
    expectedEpoch: number,
    by: string,
  ): Promise<TopologyView>;

  nodeStatus(node: NodeRef): Promise<NodeStatus>;

  replicationLag(primary: NodeRef, standby: NodeRef): Promise<ReplicationLag>;

  connectNode(node: NodeRef, database: string): Promise<PgConnection>;

  /** Stops a primary taking writes: planned keeps it up read-only; unplanned stops it if it can. */
  fence(node: NodeRef, mode: 'planned' | 'unplanned'): Promise<FenceResult>;

  /** Lifts a planned fence (a switchover abandoned before the standby was promoted). */
  unfence(node: NodeRef): Promise<void>;

  waitForReplay(standby: NodeRef, lsn: string, io: ActivityIo): Promise<string>;

  /** `mode` matters where the platform moves the writer itself (Aurora: switchover vs failover with data loss). */
  promote(
    node: NodeRef,
    io?: ActivityIo,
    mode?: 'planned' | 'unplanned',
  ): Promise<{ lsn: string; alreadyPrimary: boolean }>;

  /**
   * Regional HA: moves the primary to its standby in another zone of the same region, keeping its
   * name and address. Only platforms that have it implement it (Cloud SQL's REGIONAL instances).
   */
  haFailover?(node: NodeRef, io: ActivityIo): Promise<{ how: string }>;

  /**
   * Re-protects: a streaming standby of `primary` in `node`'s region. Local rebuilds `node` itself
   * (pg_rewind, else a fresh base backup); RDS cannot, and makes a new read replica beside it. The
   * node returned is the standby now.
   */
  rebuildAsStandby(
    node: NodeRef,
    primary: NodeRef,
    io: ActivityIo,
    set?: ReplicaSetSpec,
    options?: RebuildOptions,
  ): Promise<RebuildResult>;
}
