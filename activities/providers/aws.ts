// The AWS provider: Amazon RDS for PostgreSQL through @aws-sdk/client-rds.
//
// - A backup is a manual DB snapshot. Its manifest (per-table row counts and checksums, the newest
//   canary) is written into the database itself, in lifeboat.backup_manifest, in a transaction that
//   commits before CreateDBSnapshot is called: every snapshot, copy and restore carries its own
//   manifest, and the snapshot's tags carry the manifest's digest to prove it is the right one.
// - A copy is CopyDBSnapshot into the DR region by source ARN, re-encrypted with that region's key.
// - A drill restores into a scratch instance (RestoreDBInstanceFromDBSnapshot): private, in the
//   plan's subnet group and security groups, tagged lifeboat:scratch, deleted without a final snapshot.
// - Failover promotes the cross-region read replica (PromoteReadReplica); see the replication methods.
//
// Every call that creates or changes something is made once (SDK retries off): throttling and 5xx go
// back to the activity's Temporal retry policy, where they are visible in history; refusals become
// non-retryable verdicts (awsFailure). Reads (Describe*, List*) are tried up to five times within the
// call when they fail in passing (readWithRetries), so they do not use up a step's attempts.
// Credentials come from the standard AWS chain and AWS_ENDPOINT_URL is honoured, both by the SDK.
import {
  AddTagsToResourceCommand,
  CreateDBInstanceCommand,
  CreateDBInstanceReadReplicaCommand,
  DeleteDBClusterCommand,
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  DescribeDBSubnetGroupsCommand,
  PromoteReadReplicaCommand,
  RDSClient,
  RemoveTagsFromResourceCommand,
  RestoreDBClusterFromSnapshotCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  StartDBInstanceCommand,
  StopDBInstanceCommand,
  type DBInstance,
  type Tag,
} from '@aws-sdk/client-rds';
import {
  ErrorType,
  type BackupManifest,
  type BackupRef,
  type Canary,
  type CredentialsRef,
  type DatabaseTarget,
  type NodeRef,
  type RegionSpec,
  type ReplicaSetSpec,
  type ScratchInstance,
  type TopologyView,
} from '../../workflows/types';
import { isVerdict, verdict } from '../errors';
import { poll, readWithRetries, StopWaiting } from './polling';
import { withClient, type PgConnection } from '../pg/sql';
import { lagOver, statusOver } from '../pg/replication';
import { managedNode, managedNodeNames, NOT_RUNNING, ProviderBase } from './provider-base';
import { resolveCredentials, type SecretSource } from '../secrets';
import type { ActivityIo, DatabaseProvider, FenceResult, NodeStatus, ReplicationLag } from './provider';
import { awsFailure, isPassingAwsError } from './aws-errors';
import { captureManifest, readRestoredManifest } from './in-database-manifest';
import { EndpointCache } from './endpoint-cache';
import { replacementName } from './replacement-name';
import { fenceOverSql, liftSqlFence, managedNodeStatus } from './managed-fence';
import {
  copySnapshot,
  createSnapshot,
  deleteSnapshot,
  describeSnapshot,
  kindOfArn,
  listManualSnapshots,
  type SnapshotKind,
  type SnapshotView,
} from './aws-snapshots';
import { rdsDataPlane, type AwsDataPlane } from './aws-data-plane';
import {
  AURORA_REPLAY_MARKER,
  auroraLag,
  auroraStatus,
  describeCluster,
  describeGlobalCluster,
  memberArn,
  moveGlobalWriter,
  writerArn,
} from './aws-aurora';

export interface AwsProviderConfig {
  /** LIFEBOAT_HOME: the topology records (traffic pointers) of replication sets live under it. */
  home: string;
  /** Where `env:` credential references are looked up (the worker's environment). */
  secrets: SecretSource;
  /** PEM bundle the RDS server certificates chain to (LIFEBOAT_RDS_CA_FILE); TLS is always verified. */
  caFile?: string;
  /** How often long waits poll RDS. */
  pollMs?: number;
  /** An RDS endpoint to use instead of the SDK's own resolution (which honours AWS_ENDPOINT_URL). */
  endpoint?: string;
  /** Where the servers' data is (default: RDS's own, rdsDataPlane(caFile)); see aws-data-plane.ts. */
  dataPlane?: AwsDataPlane;
}

/** Tag keys: everything Lifeboat made carries them, and it only ever deletes what does. */
export const TAG = {
  backupId: 'lifeboat:backup-id',
  database: 'lifeboat:database',
  createdBy: 'lifeboat:created-by',
  manifestSha256: 'lifeboat:manifest-sha256',
  canary: 'lifeboat:canary',
  serverVersionNum: 'lifeboat:server-version-num',
  scratch: 'lifeboat:scratch',
  restoredFrom: 'lifeboat:restored-from',
  replicaOf: 'lifeboat:replica-of',
  /** On a read replica: Lifeboat asked RDS to promote it (written before PromoteReadReplica is sent). */
  promoteRequested: 'lifeboat:promote-requested',
  /** On a former primary: Lifeboat's fence stopped it (written before StopDBInstance); unfence starts it. */
  fenceStopped: 'lifeboat:fence-stopped',
} as const;

export class AwsProvider extends ProviderBase implements DatabaseProvider {
  readonly kind = 'aws' as const;

  private readonly clients = new Map<string, RDSClient>();

  private readonly endpoints = new EndpointCache();

  private readonly dataPlane: AwsDataPlane;

  constructor(private readonly config: AwsProviderConfig) {
    super(config.home);
    this.dataPlane = config.dataPlane ?? rdsDataPlane(config.caFile);
  }

  /** One client per AWS region; retries belong to Temporal, so the SDK makes each call once. */
  rds(awsRegion: string): RDSClient {
    let client = this.clients.get(awsRegion);
    if (!client) {
      client = new RDSClient({
        region: awsRegion,
        maxAttempts: 1,
        // A hung request must fail, not last the activity's whole timeout while the heartbeat beats on.
        requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000, throwOnRequestTimeout: true },
        ...(this.config.endpoint && { endpoint: this.config.endpoint }),
      });
      // Reads only, recognised by the command's name: nothing that creates or changes is sent twice here.
      client.middlewareStack.add(
        (next, context) => (args) =>
          /^(Describe|List)/.test(context.commandName ?? '')
            ? readWithRetries(isPassingAwsError, () => next(args))
            : next(args),
        {
          step: 'initialize',
          name: 'lifeboatReadRetries',
        },
      );
      this.clients.set(awsRegion, client);
    }
    return client;
  }

  async connect(target: DatabaseTarget): Promise<PgConnection> {
    if (target.cluster)
      return this.connectServer(
        awsRegionOf(target.region),
        target.cluster,
        'cluster',
        target.database,
        target.credentials,
      );
    const instance = requireSetting(
      target.instance,
      `database ${target.database} in ${target.region.name}`,
      'an RDS instance identifier',
    );
    return this.connectInstance(awsRegionOf(target.region), instance, target.database, target.credentials);
  }

  async createBackup(target: DatabaseTarget, backupId: string, createdBy: string, io: ActivityIo): Promise<BackupRef> {
    const awsRegion = awsRegionOf(target.region);
    const rds = this.rds(awsRegion);
    const snapshotId = snapshotIdFor(backupId);
    // Aurora backs up the cluster (a cluster snapshot); RDS the instance.
    const kind: SnapshotKind = target.cluster ? 'cluster' : 'instance';
    const existing = await describeSnapshot(rds, kind, snapshotId);
    if (existing) {
      io.logger.info({ snapshotId }, 'snapshot exists from an earlier attempt; adopting it');
      ownedOrRefuse(existing.tags, snapshotId, backupId);
      // The earlier attempt's call landed but its answer was lost: a data plane that mirrors may still owe the data.
      await this.dataPlane.snapshotCreated(awsRegion, target.cluster ?? target.instance ?? '', snapshotId);
      return this.refFor(target.region, await this.waitForSnapshot(awsRegion, kind, snapshotId, io));
    }
    const source =
      target.cluster ??
      requireSetting(
        target.instance,
        `database ${target.database} in ${target.region.name}`,
        'an RDS instance identifier',
      );
    io.heartbeat({ phase: 'manifest' });
    const manifest = await withClient(await this.connect(target), (client) =>
      captureManifest(
        client,
        {
          backupId,
          createdBy,
          database: target.database,
          sourceRegion: target.region.name,
          provider: 'aws',
          dumpFormat: 'rds-snapshot',
        },
        io,
      ),
    );
    const tags: Tag[] = [
      { Key: TAG.backupId, Value: backupId },
      { Key: TAG.database, Value: target.database },
      { Key: TAG.createdBy, Value: createdBy.slice(0, 256) },
      { Key: TAG.manifestSha256, Value: manifest.sha256 },
      { Key: TAG.serverVersionNum, Value: String(manifest.serverVersionNum) },
      ...(manifest.newestCanary
        ? [{ Key: TAG.canary, Value: `${manifest.newestCanary.id}@${manifest.newestCanary.writtenAt}` }]
        : []),
    ];
    await createSnapshot(rds, kind, source, snapshotId, tags);
    await this.dataPlane.snapshotCreated(awsRegion, source, snapshotId);
    return this.refFor(target.region, await this.waitForSnapshot(awsRegion, kind, snapshotId, io));
  }

  /** What the snapshot's tags record; the per-table statistics travel inside the snapshot (restoredManifest). */
  async manifest(ref: BackupRef): Promise<BackupManifest> {
    const snapshot = await describeSnapshot(
      this.rds(awsRegionOfArn(ref.location)),
      kindOfArn(ref.location),
      snapshotIdFor(ref.backupId),
    );
    if (!snapshot)
      throw verdict(
        ErrorType.BackupNotFound,
        `no snapshot ${snapshotIdFor(ref.backupId)} for backup ${ref.backupId} in ${ref.region}`,
      );
    return manifestFromTags(snapshot, ref);
  }

  async restoredManifest(ref: BackupRef, scratch: ScratchInstance): Promise<BackupManifest> {
    const expected = await this.manifest(ref);
    return readRestoredManifest(await this.connectScratch(scratch), ref.backupId, expected.sha256);
  }

  /**
   * RDS keeps no checksum of a snapshot's bytes: verifying one means it is available, Lifeboat's,
   * encrypted with the region's key where the plan names one, and carries its manifest digest.
   * The data itself is verified table by table after the restore.
   */
  async verifyBackup(ref: BackupRef, io: ActivityIo): Promise<BackupManifest> {
    const snapshot = await this.waitForSnapshot(
      awsRegionOfArn(ref.location),
      kindOfArn(ref.location),
      snapshotIdFor(ref.backupId),
      io,
    );
    const manifest = manifestFromTags(snapshot, ref);
    if (manifest.sha256 !== ref.sha256) {
      throw verdict(
        ErrorType.BackupChecksumMismatch,
        `snapshot ${snapshot.id} carries manifest digest ${manifest.sha256}; the backup recorded ${ref.sha256}`,
        {
          expected: ref.sha256,
          actual: manifest.sha256,
        },
      );
    }
    return manifest;
  }

  async copyBackup(ref: BackupRef, to: RegionSpec, io: ActivityIo): Promise<BackupRef> {
    const awsRegion = awsRegionOf(to);
    const fromRegion = awsRegionOfArn(ref.location);
    const kind = kindOfArn(ref.location);
    const snapshotId = snapshotIdFor(ref.backupId);
    if (fromRegion === awsRegion)
      throw verdict(
        ErrorType.InvalidInput,
        `backup ${ref.backupId} is already in ${awsRegion}; a copy goes to another AWS region`,
      );
    const kmsKeyId = typeof to.settings?.kmsKeyId === 'string' ? to.settings.kmsKeyId : undefined;
    const existing = await describeSnapshot(this.rds(awsRegion), kind, snapshotId);
    if (existing) {
      ownedOrRefuse(existing.tags, snapshotId, ref.backupId);
      io.logger.info({ snapshotId, to: to.name }, 'copy exists from an earlier attempt; adopting it');
      await this.dataPlane.snapshotCopied(ref.location, awsRegion, snapshotId);
    } else {
      const source = await describeSnapshot(this.rds(fromRegion), kind, snapshotId);
      if (!source) throw verdict(ErrorType.BackupNotFound, `no snapshot ${snapshotId} to copy in ${fromRegion}`);
      const tags = source.tags.filter((t) => t.Key?.startsWith('lifeboat:'));
      await copySnapshot(this.rds(awsRegion), kind, ref.location, snapshotId, kmsKeyId, tags);
      await this.dataPlane.snapshotCopied(ref.location, awsRegion, snapshotId);
    }
    const copy = await this.waitForSnapshot(awsRegion, kind, snapshotId, io);
    if (kmsKeyId?.startsWith('arn:') && copy.kmsKeyId !== kmsKeyId) {
      throw verdict(
        ErrorType.ProviderRejected,
        `copy ${snapshotId} in ${awsRegion} is encrypted with ${copy.kmsKeyId ?? 'no key'}; the plan asks for ${kmsKeyId}`,
      );
    }
    return this.refFor(to, copy);
  }

  async listBackups(region: RegionSpec, database?: string): Promise<BackupRef[]> {
    const snapshots = await listManualSnapshots(this.rds(awsRegionOf(region)), awsRegionOf(region));
    return (
      snapshots
        // Only usable snapshots: a failed or still-copying one must not count toward `keep` (retention
        // would delete the last good backup) nor be picked as the newest to restore.
        .filter((s) => tagOf(s.tags, TAG.backupId) && tagOf(s.tags, TAG.createdBy) && s.status === 'available')
        .filter((s) => !database || tagOf(s.tags, TAG.database) === database)
        .map((s) => this.refFor(region, s))
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.backupId.localeCompare(a.backupId))
    );
  }

  async deleteBackup(ref: BackupRef): Promise<void> {
    const rds = this.rds(awsRegionOfArn(ref.location));
    const kind = kindOfArn(ref.location);
    const snapshotId = snapshotIdFor(ref.backupId);
    const snapshot = await describeSnapshot(rds, kind, snapshotId);
    if (!snapshot) return;
    ownedOrRefuse(snapshot.tags, snapshotId, ref.backupId);
    await deleteSnapshot(rds, kind, snapshotId);
  }

  /**
   * RDS restores create the instance, so there is nothing to start ahead of the restore. What can be
   * checked early is the network the restore will use: a missing subnet group fails the drill now.
   */
  async createScratch(
    region: RegionSpec,
    name: string,
    database: string,
    _io?: ActivityIo,
    login?: CredentialsRef,
  ): Promise<ScratchInstance> {
    if (login) {
      // An empty instance for pg_restore would be CreateDBInstance with a master password: not built yet.
      throw verdict(
        ErrorType.InvalidInput,
        `portable backups cannot be restored into AWS region ${region.name} yet (RDS scratch instances are made from snapshots); restore them into a local or gcp region`,
      );
    }
    const awsRegion = awsRegionOf(region);
    const subnetGroup = scratchSetting(region, 'scratchSubnetGroup');
    await this.rds(awsRegion)
      .send(new DescribeDBSubnetGroupsCommand({ DBSubnetGroupName: subnetGroup }))
      .catch((err: unknown) => {
        throw awsFailure(err, `scratch subnet group ${subnetGroup} in ${awsRegion}`);
      });
    return { name, region, database };
  }

  /** A scratch restored from a cluster snapshot is an Aurora cluster; otherwise an instance. */
  async connectScratch(scratch: ScratchInstance): Promise<PgConnection> {
    const awsRegion = awsRegionOf(scratch.region);
    const id = scratchIdFor(scratch.name);
    const kind = (await describeCluster(this.rds(awsRegion), id)) ? 'cluster' : 'instance';
    return this.connectServer(awsRegion, id, kind, scratch.database, scratch.credentials);
  }

  async restore(ref: BackupRef, scratch: ScratchInstance, io: ActivityIo): Promise<void> {
    const awsRegion = awsRegionOf(scratch.region);
    const scratchId = scratchIdFor(scratch.name);
    const snapshotId = snapshotIdFor(ref.backupId);
    const kind = kindOfArn(ref.location);
    const network = {
      DBSubnetGroupName: scratchSetting(scratch.region, 'scratchSubnetGroup'),
      VpcSecurityGroupIds: scratchSetting(scratch.region, 'scratchSecurityGroups').split(','),
    };
    const tags: Tag[] = [
      { Key: TAG.scratch, Value: 'true' },
      { Key: TAG.database, Value: scratch.database },
      { Key: TAG.restoredFrom, Value: snapshotId },
    ];
    const instanceId = kind === 'cluster' ? `${scratchId}-1` : scratchId;
    if (kind === 'cluster') {
      const snapshot = await describeSnapshot(this.rds(awsRegion), 'cluster', snapshotId);
      if (!snapshot) throw verdict(ErrorType.BackupNotFound, `no cluster snapshot ${snapshotId} in ${awsRegion}`);
      const existing = await describeCluster(this.rds(awsRegion), scratchId);
      if (existing) this.adoptOrRefuse(existing.TagList, `cluster ${scratchId} in ${awsRegion}`, snapshotId, io);
      else {
        await this.send(
          awsRegion,
          `RestoreDBClusterFromSnapshot ${snapshotId} into ${scratchId}`,
          'DBClusterAlreadyExists',
          (rds) =>
            rds.send(
              new RestoreDBClusterFromSnapshotCommand({
                DBClusterIdentifier: scratchId,
                SnapshotIdentifier: snapshotId,
                Engine: snapshot.engine ?? 'aurora-postgresql',
                DeletionProtection: false,
                Tags: tags,
                ...network,
              }),
            ),
        );
      }
      await this.waitForCluster(awsRegion, scratchId, io);
    }
    const existing = await this.describeInstance(awsRegion, instanceId);
    if (existing) this.adoptOrRefuse(existing.TagList, `instance ${instanceId} in ${awsRegion}`, snapshotId, io);
    else {
      const common = {
        DBInstanceIdentifier: instanceId,
        DBInstanceClass: scratchSetting(scratch.region, 'scratchInstanceClass'),
        PubliclyAccessible: false,
        Tags: tags,
      };
      await this.send(
        awsRegion,
        `${kind === 'cluster' ? 'CreateDBInstance' : 'RestoreDBInstanceFromDBSnapshot'} ${instanceId}`,
        'DBInstanceAlreadyExists',
        (rds) =>
          kind === 'cluster'
            ? rds.send(
                new CreateDBInstanceCommand({ ...common, DBClusterIdentifier: scratchId, Engine: 'aurora-postgresql' }),
              )
            : rds.send(
                new RestoreDBInstanceFromDBSnapshotCommand({
                  ...common,
                  DBSnapshotIdentifier: snapshotId,
                  MultiAZ: false,
                  DeletionProtection: false,
                  ...network,
                }),
              ),
      );
    }
    const ready = await this.waitForInstance(awsRegion, instanceId, io);
    if (ready.PubliclyAccessible) {
      throw verdict(
        ErrorType.ProviderRejected,
        `scratch instance ${instanceId} came up publicly accessible; a drill restores production data and must stay private`,
      );
    }
    await this.dataPlane.instanceRestored(awsRegion, snapshotId, scratchId);
  }

  async dropScratch(scratch: ScratchInstance): Promise<boolean> {
    const awsRegion = awsRegionOf(scratch.region);
    const scratchId = scratchIdFor(scratch.name);
    const cluster = await describeCluster(this.rds(awsRegion), scratchId);
    if (cluster && tagOf(cluster.TagList, TAG.scratch) !== 'true') {
      throw verdict(
        ErrorType.ProviderRejected,
        `cluster ${scratchId} in ${awsRegion} has no ${TAG.scratch} tag: Lifeboat did not make it and will not delete it`,
      );
    }
    const instanceIds = cluster ? (cluster.DBClusterMembers ?? []).map((m) => m.DBInstanceIdentifier!) : [scratchId];
    let existed = Boolean(cluster);
    for (const instanceId of instanceIds) existed = (await this.dropScratchInstance(awsRegion, instanceId)) || existed;
    if (cluster) {
      // Aurora deletes a cluster only once its instances are gone; until then this is retried.
      await this.send(awsRegion, `DeleteDBCluster ${scratchId}`, 'DBClusterNotFound', (rds) =>
        rds.send(new DeleteDBClusterCommand({ DBClusterIdentifier: scratchId, SkipFinalSnapshot: true })),
      );
    }
    await this.dataPlane.instanceDeleted(awsRegion, scratchId);
    return existed;
  }

  async listScratch(region: RegionSpec): Promise<string[]> {
    const instances = await this.describeInstances(awsRegionOf(region));
    const names = instances
      .filter((i) => tagOf(i.TagList, TAG.scratch) === 'true' && i.DBInstanceStatus !== 'deleting')
      .map((i) => (i.DBClusterIdentifier ?? i.DBInstanceIdentifier!).replace(/^lifeboat-/, ''));
    return [...new Set(names)];
  }

  /** An existing scratch resource is this drill's only if Lifeboat tagged it as restored from this snapshot. */
  private adoptOrRefuse(tags: Tag[] | undefined, what: string, snapshotId: string, io: ActivityIo): void {
    const from = tagOf(tags, TAG.restoredFrom);
    if (tagOf(tags, TAG.scratch) !== 'true' || from !== snapshotId) {
      throw verdict(
        ErrorType.ProviderRejected,
        `${what} exists and is not this drill's restore of ${snapshotId} (restored from ${from ?? 'unknown'}); refusing to touch it`,
      );
    }
    io.logger.info({ what }, 'scratch resource exists from an earlier attempt; adopting it');
  }

  private async dropScratchInstance(awsRegion: string, instanceId: string): Promise<boolean> {
    const existing = await this.describeInstance(awsRegion, instanceId);
    if (!existing) return false;
    if (tagOf(existing.TagList, TAG.scratch) !== 'true') {
      throw verdict(
        ErrorType.ProviderRejected,
        `instance ${instanceId} in ${awsRegion} has no ${TAG.scratch} tag: Lifeboat did not make it and will not delete it`,
      );
    }
    if (existing.DBInstanceStatus !== 'deleting') {
      const final = existing.DBClusterIdentifier ? {} : { SkipFinalSnapshot: true, DeleteAutomatedBackups: true };
      await this.send(awsRegion, `DeleteDBInstance ${instanceId}`, 'DBInstanceNotFound', (rds) =>
        rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: instanceId, ...final })),
      );
    }
    return true;
  }

  /** One call; `tolerated` names the error that means an earlier attempt already did it. */
  private async send(
    awsRegion: string,
    call: string,
    tolerated: string,
    request: (rds: RDSClient) => Promise<unknown>,
  ): Promise<void> {
    try {
      await request(this.rds(awsRegion));
    } catch (err) {
      if (!isAwsError(err, tolerated)) throw awsFailure(err, `${call} in ${awsRegion}`);
    }
  }

  // Replication. A set is the home primary instance and its cross-region read replica, learned from
  // RDS on first use. The topology record under LIFEBOAT_HOME is the traffic pointer, as for the
  // local provider. RDS cannot turn an instance back into a replica, so re-protecting after a switch
  // creates a NEW read replica; the former primary is left fenced (read-only), never deleted.

  async topology(set: ReplicaSetSpec): Promise<TopologyView> {
    const record = this.topologies.read(set.set);
    if (record) return record;
    const nodes = managedNodeNames(set, 'RDS instances');
    if (set.globalCluster) return this.auroraTopology(set, nodes, set.globalCluster);
    const [homeRegion, drRegion] = [awsRegionOf(set.home), awsRegionOf(set.dr)];
    const primary = await this.describeInstance(homeRegion, nodes.home);
    if (!primary) throw verdict(ErrorType.DatabaseNotFound, `no RDS instance ${nodes.home} in ${homeRegion}`);
    const replica = await this.describeInstance(drRegion, nodes.dr);
    if (!replica) {
      throw verdict(
        ErrorType.NoStandby,
        `no read replica ${nodes.dr} in ${drRegion}; create one with CreateDBInstanceReadReplica from ${primary.DBInstanceArn}`,
      );
    }
    const source = replica.ReadReplicaSourceDBInstanceIdentifier;
    if (source !== primary.DBInstanceArn && source !== nodes.home) {
      throw verdict(
        ErrorType.NoStandby,
        `${nodes.dr} in ${drRegion} is not a read replica of ${nodes.home} (its source: ${source ?? 'none'})`,
      );
    }
    return this.firstTopology(
      set,
      managedNode(set, set.home, nodes.home, homeRegion),
      managedNode(set, set.dr, nodes.dr, drRegion),
      'RDS',
    );
  }

  /**
   * Writable is tested: Lifeboat's session begins a read-write transaction (rolled back) and, under
   * Lifeboat's fence, some other role can still log in (managedStatus). `promoteRequested`: the
   * instance carries lifeboat:promote-requested, or is no read replica (RDS detaches a promoted one).
   */
  async nodeStatus(node: NodeRef): Promise<NodeStatus> {
    if (node.globalCluster) return this.auroraNodeStatus(node, node.globalCluster);
    const instance = await this.describeInstance(locationOf(node), node.name);
    if (!instance) return { ...NOT_RUNNING, detail: `no RDS instance ${node.name} in ${locationOf(node)}` };
    const promoteRequested =
      Boolean(tagOf(instance.TagList, TAG.promoteRequested)) || !instance.ReadReplicaSourceDBInstanceIdentifier;
    const stoppedByFence = Boolean(tagOf(instance.TagList, TAG.fenceStopped));
    if (instance.DBInstanceStatus !== 'available') {
      const stopped = instance.DBInstanceStatus === 'stopped';
      return {
        ...NOT_RUNNING,
        running: !stopped,
        fenced: stoppedByFence,
        promoteRequested,
        detail: `RDS status ${instance.DBInstanceStatus}${stoppedByFence ? " (StopDBInstance by Lifeboat's fence)" : ''}`,
      };
    }
    return { ...(await managedNodeStatus(await this.connectNode(node, 'postgres'))), promoteRequested };
  }

  async replicationLag(primary: NodeRef, standby: NodeRef): Promise<ReplicationLag> {
    const writer = await this.connectNode(primary, 'postgres');
    const aurora = standby.globalCluster ? await withClient(writer, (c) => auroraLag(c, locationOf(standby))) : null;
    return aurora ?? lagOver(writer, await this.connectNode(standby, 'postgres'), null);
  }

  async connectNode(node: NodeRef, database: string): Promise<PgConnection> {
    return this.connectServer(
      locationOf(node),
      node.name,
      node.globalCluster ? 'cluster' : 'instance',
      database,
      node.credentials,
    );
  }

  /**
   * Planned: the SQL fence (managed-fence.ts: LOGIN revoked from every other role, sessions ended,
   * read-only defaults, verified by a refused login); the instance stays up so the replica can replay
   * to the final WAL position. Unplanned: the same where it is reachable, then StopDBInstance where RDS
   * allows it: not while the instance has a read replica or is one, so before the promote RDS refuses
   * it, and a fence after the promote (the replica detached) stops it. Confirmed only by the verified
   * SQL fence or by DescribeDBInstances showing `stopped`.
   */
  async fence(node: NodeRef, mode: 'planned' | 'unplanned'): Promise<FenceResult> {
    // Aurora has no WAL positions to wait for: SwitchoverGlobalCluster waits for the secondary itself.
    const sql = await fenceOverSql(() => this.connectNode(node, 'postgres'), mode, {
      walPosition: node.globalCluster ? AURORA_REPLAY_MARKER : null,
    });
    if (mode === 'planned' || node.globalCluster)
      return { confirmed: sql.confirmed, how: sql.how, finalLsn: sql.finalLsn };
    const stop = await this.stopForFence(node).catch((err: Error) => ({
      stopped: false,
      how: `StopDBInstance not done: ${err.message}`,
    }));
    return { confirmed: sql.confirmed || stop.stopped, how: `${sql.how}; ${stop.how}`, finalLsn: null };
  }

  /** Undoes exactly what fence did: starts the instance if the fence stopped it, re-grants the recorded logins. */
  async unfence(node: NodeRef): Promise<void> {
    if (!node.globalCluster) await this.startAfterFence(node);
    await withClient(await this.connectNode(node, 'postgres'), liftSqlFence);
  }

  async waitForReplay(standby: NodeRef, lsn: string, io: ActivityIo): Promise<string> {
    if (lsn === AURORA_REPLAY_MARKER) return lsn;
    return this.waitForReplayOver(
      () => this.connectNode(standby, 'postgres'),
      `${standby.name} in ${locationOf(standby)}`,
      lsn,
      io,
    );
  }

  /**
   * PromoteReadReplica, then waits until the instance is available and PostgreSQL is out of recovery.
   * The replica replayed the fence's ALTER DATABASE too: it is lifted on the new primary.
   */
  async promote(
    node: NodeRef,
    io?: ActivityIo,
    mode: 'planned' | 'unplanned' = 'planned',
  ): Promise<{ lsn: string; alreadyPrimary: boolean }> {
    if (node.globalCluster) return this.auroraPromote(node, node.globalCluster, mode, io);
    const awsRegion = locationOf(node);
    const before = await this.describeInstance(awsRegion, node.name);
    if (!before) throw verdict(ErrorType.DatabaseNotFound, `no RDS instance ${node.name} in ${awsRegion} to promote`);
    const first = await statusOver(await this.connectNode(node, 'postgres'), false);
    const alreadyPrimary = first.reachable && first.inRecovery === false;
    if (!alreadyPrimary) {
      // Recorded on the instance before the request goes out: PromoteReadReplica is asynchronous and
      // its answer can be lost, so from here on "may have been promoted" is what nodeStatus says.
      await this.tag(awsRegion, before, TAG.promoteRequested, new Date().toISOString());
      try {
        await this.rds(awsRegion).send(new PromoteReadReplicaCommand({ DBInstanceIdentifier: node.name }));
      } catch (err) {
        // A promotion already under way (an earlier attempt's) is waited for, not started again.
        if (!isAwsError(err, 'InvalidDBInstanceState')) {
          const failure = awsFailure(err, `PromoteReadReplica ${node.name} in ${awsRegion}`);
          // Only a refusal (a verdict) proves RDS did not take it; a lost answer or a 5xx might have.
          if (isVerdict(failure)) await this.untag(awsRegion, before, TAG.promoteRequested).catch(() => undefined);
          throw failure;
        }
      }
      await this.dataPlane.instancePromoted(awsRegion, node.name);
    }
    await this.poll(io, 'promote', async () => {
      const instance = await this.describeInstance(awsRegion, node.name);
      const status =
        instance?.DBInstanceStatus === 'available'
          ? await statusOver(await this.connectNode(node, 'postgres'), false)
          : null;
      if (status?.reachable && status.inRecovery === false) return true;
      io?.heartbeat({ phase: 'promote', status: instance?.DBInstanceStatus, detail: status?.detail });
      return undefined;
    });
    return withClient(await this.connectNode(node, 'postgres'), async (c) => {
      // The replica replayed the old primary's fence (its revoked logins and their record): lifted here.
      await liftSqlFence(c);
      return {
        lsn: (await c.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn,
        alreadyPrimary,
      };
    });
  }

  /**
   * StopDBInstance for an unplanned fence, where RDS allows it, recorded by a tag first so unfence
   * starts only what the fence stopped. Stopped means DescribeDBInstances says `stopped`.
   */
  private async stopForFence(node: NodeRef): Promise<{ stopped: boolean; how: string }> {
    const awsRegion = locationOf(node);
    const instance = await this.describeInstance(awsRegion, node.name);
    if (!instance) return { stopped: false, how: `not stopped: no RDS instance ${node.name} in ${awsRegion}` };
    const replicas = instance.ReadReplicaDBInstanceIdentifiers ?? [];
    if (instance.ReadReplicaSourceDBInstanceIdentifier)
      return { stopped: false, how: 'not stopped: it is a read replica, which RDS does not stop' };
    if (replicas.length && instance.DBInstanceStatus !== 'stopped') {
      return {
        stopped: false,
        how: `not stopped: RDS does not stop an instance with read replicas (${replicas.join(', ')}); a fence after the promote, once the replica has left it, stops it`,
      };
    }
    if (instance.DBInstanceStatus === 'available') {
      await this.tag(awsRegion, instance, TAG.fenceStopped, new Date().toISOString());
      try {
        await this.rds(awsRegion).send(new StopDBInstanceCommand({ DBInstanceIdentifier: node.name }));
      } catch (err) {
        const failure = awsFailure(err, `StopDBInstance ${node.name} in ${awsRegion}`);
        if (isVerdict(failure) || isAwsError(err, 'InvalidDBInstanceState', 'InvalidDBClusterStateFault'))
          await this.untag(awsRegion, instance, TAG.fenceStopped).catch(() => undefined);
        return { stopped: false, how: `StopDBInstance refused: ${failure.message}` };
      }
    }
    const after = await this.describeInstance(awsRegion, node.name);
    if (after?.DBInstanceStatus === 'stopped') {
      return {
        stopped: true,
        how: 'instance stopped: StopDBInstance, DescribeDBInstances shows it stopped (RDS starts it again by itself after 7 days; the LOGIN fence stays in its catalog)',
      };
    }
    return {
      stopped: false,
      how: `StopDBInstance sent; DescribeDBInstances shows ${after?.DBInstanceStatus ?? 'nothing'}, not yet stopped (not counted as confirmed)`,
    };
  }

  /** Starts an instance that Lifeboat's fence stopped (tagged) and waits until it is available. */
  private async startAfterFence(node: NodeRef): Promise<void> {
    const awsRegion = locationOf(node);
    const instance = await this.describeInstance(awsRegion, node.name);
    if (!instance || !tagOf(instance.TagList, TAG.fenceStopped)) return;
    if (instance.DBInstanceStatus === 'stopping')
      throw new Error(`${node.name} in ${awsRegion} is still stopping; it is started once stopped`);
    if (instance.DBInstanceStatus === 'stopped') {
      await this.send(awsRegion, `StartDBInstance ${node.name}`, 'InvalidDBInstanceState', (rds) =>
        rds.send(new StartDBInstanceCommand({ DBInstanceIdentifier: node.name })),
      );
    }
    await this.waitForInstance(awsRegion, node.name, quietIo());
    await this.untag(awsRegion, instance, TAG.fenceStopped);
  }

  private async tag(awsRegion: string, instance: DBInstance, key: string, value: string): Promise<void> {
    await this.rds(awsRegion)
      .send(new AddTagsToResourceCommand({ ResourceName: instance.DBInstanceArn, Tags: [{ Key: key, Value: value }] }))
      .catch((err: unknown) => {
        throw awsFailure(err, `AddTagsToResource ${key} on ${instance.DBInstanceIdentifier} in ${awsRegion}`);
      });
  }

  private async untag(awsRegion: string, instance: DBInstance, key: string): Promise<void> {
    await this.rds(awsRegion)
      .send(new RemoveTagsFromResourceCommand({ ResourceName: instance.DBInstanceArn, TagKeys: [key] }))
      .catch((err: unknown) => {
        throw awsFailure(err, `RemoveTagsFromResource ${key} on ${instance.DBInstanceIdentifier} in ${awsRegion}`);
      });
  }

  /**
   * A new cross-region read replica of `primary` in `node`'s region, named after `node` and its
   * source, so a retry finds it; re-encrypted with the region's key. `node` itself is left as it is.
   */
  async rebuildAsStandby(
    node: NodeRef,
    primary: NodeRef,
    io: ActivityIo,
    set?: ReplicaSetSpec,
  ): Promise<{ method: string; node: NodeRef }> {
    if (node.globalCluster) return this.auroraRejoin(node, node.globalCluster, io);
    const awsRegion = locationOf(node);
    const region = [set?.home, set?.dr].find((r) => r?.name === node.region);
    const source = await this.describeInstance(locationOf(primary), primary.name);
    if (!source?.DBInstanceArn)
      throw verdict(
        ErrorType.DatabaseNotFound,
        `no RDS instance ${primary.name} in ${locationOf(primary)} to replicate from`,
      );
    const replicaId = replicaIdFor(node.name, primary.name);
    const replica: NodeRef = { ...node, name: replicaId };
    const existing = await this.describeInstance(awsRegion, replicaId);
    if (existing) {
      const from = existing.ReadReplicaSourceDBInstanceIdentifier;
      if (from !== source.DBInstanceArn && from !== primary.name) {
        throw verdict(
          ErrorType.TopologyConflict,
          `${replicaId} in ${awsRegion} exists but is not a read replica of ${primary.name} (its source: ${from ?? 'none'})`,
        );
      }
      io.logger.info({ replicaId }, 'read replica exists from an earlier attempt; adopting it');
    } else {
      const kmsKeyId = region?.settings?.kmsKeyId;
      try {
        await this.rds(awsRegion).send(
          new CreateDBInstanceReadReplicaCommand({
            DBInstanceIdentifier: replicaId,
            SourceDBInstanceIdentifier: source.DBInstanceArn,
            ...(typeof kmsKeyId === 'string' && { KmsKeyId: kmsKeyId }),
            PubliclyAccessible: false,
            Tags: [{ Key: TAG.replicaOf, Value: primary.name }],
          }),
        );
      } catch (err) {
        if (!isAwsError(err, 'DBInstanceAlreadyExists'))
          throw awsFailure(err, `CreateDBInstanceReadReplica ${replicaId} in ${awsRegion} from ${primary.name}`);
      }
    }
    await this.waitForInstance(awsRegion, replicaId, io);
    await this.dataPlane.replicaCreated(awsRegion, replicaId, locationOf(primary), primary.name);
    return { method: existing ? 'already' : 'new read replica', node: replica };
  }

  // Aurora global databases (see aws-aurora.ts) -------------------------------------------------------

  private async auroraTopology(
    set: ReplicaSetSpec,
    nodes: { home: string; dr: string },
    globalCluster: string,
  ): Promise<TopologyView> {
    const global = await describeGlobalCluster(this.rds(awsRegionOf(set.home)), globalCluster);
    const writer = writerArn(global);
    // Mid-switch there is no telling who the primary is: a retry reads it once Aurora has settled.
    if (!writer || global.Status !== 'available')
      throw new Error(
        `Aurora global database ${globalCluster} is ${global.Status} with ${writer ?? 'no'} writer; waiting for it to settle`,
      );
    for (const [name, region] of [
      [nodes.home, set.home],
      [nodes.dr, set.dr],
    ] as const) {
      if (!memberArn(global, name, awsRegionOf(region)))
        throw verdict(
          ErrorType.NoStandby,
          `Aurora cluster ${name} (${region.name}) is not a member of global database ${globalCluster}`,
        );
    }
    const node = (region: RegionSpec, name: string) =>
      managedNode(set, region, name, awsRegionOf(region), globalCluster);
    const [home, dr] = [node(set.home, nodes.home), node(set.dr, nodes.dr)];
    const drIsWriter = writer !== null && writer === memberArn(global, nodes.dr, awsRegionOf(set.dr));
    return drIsWriter ? this.firstTopology(set, dr, home, 'RDS') : this.firstTopology(set, home, dr, 'RDS');
  }

  private async auroraNodeStatus(node: NodeRef, globalCluster: string): Promise<NodeStatus> {
    const cluster = await describeCluster(this.rds(locationOf(node)), node.name);
    if (!cluster) return { ...NOT_RUNNING, detail: `no Aurora cluster ${node.name} in ${locationOf(node)}` };
    if (cluster.Status !== 'available')
      return { ...NOT_RUNNING, running: cluster.Status !== 'stopped', detail: `Aurora status ${cluster.Status}` };
    const global = await describeGlobalCluster(this.rds(locationOf(node)), globalCluster);
    const writer = writerArn(global);
    const isWriter = writer !== null && writer === memberArn(global, node.name, locationOf(node));
    // Aurora moves the writer itself: a switch under way, or this member writing, is a promotion.
    const promoteRequested = isWriter || ['switching-over', 'failing-over'].includes(global.Status ?? '');
    try {
      return {
        ...(await withClient({ ...(await this.connectNode(node, 'postgres')), connectTimeoutMs: 3000 }, (c) =>
          auroraStatus(c, { writer: isWriter }),
        )),
        promoteRequested,
      };
    } catch (err) {
      return {
        ...NOT_RUNNING,
        running: true,
        promoteRequested,
        detail: `running but unreachable: ${(err as Error).message}`,
      };
    }
  }

  /** Moves the global writer to `node` and waits until Aurora reports it as the writer, available. */
  private async auroraPromote(
    node: NodeRef,
    globalCluster: string,
    mode: 'planned' | 'unplanned',
    io?: ActivityIo,
  ): Promise<{ lsn: string; alreadyPrimary: boolean }> {
    const rds = this.rds(locationOf(node));
    const global = await describeGlobalCluster(rds, globalCluster);
    const target = memberArn(global, node.name, locationOf(node));
    if (!target)
      throw verdict(
        ErrorType.NoStandby,
        `Aurora cluster ${node.name} is not a member of global database ${globalCluster}`,
      );
    const alreadyPrimary = writerArn(global) === target;
    if (!alreadyPrimary) {
      const how = await moveGlobalWriter(rds, globalCluster, target, mode);
      io?.logger.info({ globalCluster, target, how }, 'asked Aurora to move the global writer');
      await this.dataPlane.instancePromoted(locationOf(node), node.name);
    }
    let idle = 0;
    await this.poll(io, 'global writer', async () => {
      const now = await describeGlobalCluster(rds, globalCluster);
      const writer = writerArn(now);
      if (writer === target && now.Status === 'available') return true;
      // Idle with the writer elsewhere, poll after poll: Aurora refused the move (busy for another
      // reason) or rolled it back. Waiting on would hold traffic until the timeout; failing the
      // attempt lets the retry policy ask again, visibly in history.
      idle = now.Status === 'available' && writer !== null ? idle + 1 : 0;
      if (idle >= 3) {
        throw new StopWaiting(
          `Aurora global database ${globalCluster} is available with ${writer} as its writer, not ${target}: the ${mode === 'planned' ? 'switchover' : 'failover'} was refused or rolled back`,
        );
      }
      io?.heartbeat({ phase: 'global writer', status: now.Status, writer });
      return undefined;
    });
    // The new writer replayed the old one's fence (revoked logins, read-only defaults): lift it here.
    await withClient(await this.connectNode(node, 'postgres'), liftSqlFence);
    return { lsn: AURORA_REPLAY_MARKER, alreadyPrimary };
  }

  /** A former Aurora writer rejoins the global database as a secondary by itself: wait for that. */
  private async auroraRejoin(
    node: NodeRef,
    globalCluster: string,
    io: ActivityIo,
  ): Promise<{ method: string; node: NodeRef }> {
    const rds = this.rds(locationOf(node));
    return this.poll(io, 'rejoin', async () => {
      const global = await describeGlobalCluster(rds, globalCluster);
      const member = memberArn(global, node.name, locationOf(node));
      if (member && writerArn(global) !== member && global.Status === 'available')
        return { method: 'rejoined the Aurora global database as a secondary', node };
      io.heartbeat({ phase: 'rejoin', member: Boolean(member), status: global.Status });
      return undefined;
    });
  }

  // ------------------------------------------------------------------------------------------------

  private connectInstance(
    awsRegion: string,
    instanceId: string,
    database: string,
    credentials: CredentialsRef | undefined,
  ): Promise<PgConnection> {
    return this.connectServer(awsRegion, instanceId, 'instance', database, credentials);
  }

  /**
   * The server is looked up in RDS first (then cached), whatever the data plane: the control plane
   * is always RDS.
   */
  private connectServer(
    awsRegion: string,
    id: string,
    kind: 'instance' | 'cluster',
    database: string,
    credentials: CredentialsRef | undefined,
  ): Promise<PgConnection> {
    const key = JSON.stringify([awsRegion, id, kind, database, credentials ?? null]);
    return this.endpoints.get(key, async () => {
      const { user, password } = resolveCredentials(credentials, this.config.secrets, `${kind} ${id}`);
      let address: string | undefined;
      let port: number | undefined;
      let status: string | undefined;
      if (kind === 'instance') {
        const instance = await this.describeInstance(awsRegion, id);
        if (!instance) throw verdict(ErrorType.DatabaseNotFound, `no RDS instance ${id} in ${awsRegion}`);
        ({ Address: address, Port: port } = instance.Endpoint ?? {});
        status = instance.DBInstanceStatus;
      } else {
        const cluster = await describeCluster(this.rds(awsRegion), id);
        if (!cluster) throw verdict(ErrorType.DatabaseNotFound, `no Aurora cluster ${id} in ${awsRegion}`);
        // A global secondary has no writer: its reader endpoint is the way in.
        address = cluster.DBClusterMembers?.some((m) => m.IsClusterWriter)
          ? cluster.Endpoint
          : (cluster.ReaderEndpoint ?? cluster.Endpoint);
        port = cluster.Port;
        status = cluster.Status;
      }
      return this.dataPlane.connect(awsRegion, id, database, { kind, address, port, status, user, password });
    });
  }

  private async describeInstance(awsRegion: string, instanceId: string): Promise<DBInstance | null> {
    try {
      const out = await this.rds(awsRegion).send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instanceId }));
      return out.DBInstances?.[0] ?? null;
    } catch (err) {
      if (isAwsError(err, 'DBInstanceNotFound')) return null;
      throw awsFailure(err, `DescribeDBInstances ${instanceId} in ${awsRegion}`);
    }
  }

  private async describeInstances(awsRegion: string): Promise<DBInstance[]> {
    const all: DBInstance[] = [];
    let marker: string | undefined;
    do {
      const page = await this.rds(awsRegion)
        .send(new DescribeDBInstancesCommand({ Marker: marker }))
        .catch((err: unknown) => {
          throw awsFailure(err, `DescribeDBInstances in ${awsRegion}`);
        });
      all.push(...(page.DBInstances ?? []));
      marker = page.Marker;
    } while (marker);
    return all;
  }

  /** Polls until the snapshot is available, heartbeating its progress; a failed snapshot is final. */
  private async waitForSnapshot(
    awsRegion: string,
    kind: SnapshotKind,
    snapshotId: string,
    io: ActivityIo,
  ): Promise<SnapshotView> {
    return this.poll(io, 'snapshot', async () => {
      const snapshot = await describeSnapshot(this.rds(awsRegion), kind, snapshotId);
      if (!snapshot)
        throw verdict(
          ErrorType.BackupNotFound,
          `snapshot ${snapshotId} in ${awsRegion} disappeared while Lifeboat waited for it`,
        );
      if (snapshot.status === 'available') return snapshot;
      if (snapshot.status === 'failed' || snapshot.status === 'deleting') {
        throw verdict(ErrorType.ProviderRejected, `snapshot ${snapshotId} in ${awsRegion} is ${snapshot.status}`);
      }
      io.heartbeat({ phase: 'snapshot', snapshotId, status: snapshot.status, percent: snapshot.percent });
      return undefined;
    });
  }

  private async waitForCluster(awsRegion: string, clusterId: string, io: ActivityIo): Promise<void> {
    await this.poll(io, 'cluster', async () => {
      const cluster = await describeCluster(this.rds(awsRegion), clusterId);
      if (!cluster) throw new Error(`cluster ${clusterId} in ${awsRegion} is not there yet`);
      if (cluster.Status === 'available') return true;
      if (
        ['failed', 'inaccessible-encryption-credentials', 'incompatible-restore', 'deleting'].includes(
          cluster.Status ?? '',
        )
      ) {
        throw verdict(ErrorType.ProviderRejected, `cluster ${clusterId} in ${awsRegion} is ${cluster.Status}`);
      }
      io.heartbeat({ phase: 'cluster', clusterId, status: cluster.Status });
      return undefined;
    });
  }

  private async waitForInstance(awsRegion: string, instanceId: string, io: ActivityIo): Promise<DBInstance> {
    return this.poll(io, 'instance', async () => {
      const instance = await this.describeInstance(awsRegion, instanceId);
      if (!instance) throw new Error(`instance ${instanceId} in ${awsRegion} is not there yet`);
      if (instance.DBInstanceStatus === 'available') return instance;
      if (TERMINAL_INSTANCE_STATES.includes(instance.DBInstanceStatus ?? '')) {
        throw verdict(
          ErrorType.ProviderRejected,
          `instance ${instanceId} in ${awsRegion} is ${instance.DBInstanceStatus}`,
        );
      }
      io.heartbeat({ phase: 'instance', instanceId, status: instance.DBInstanceStatus });
      return undefined;
    });
  }

  private poll<T>(io: ActivityIo | undefined, phase: string, check: () => Promise<T | undefined>): Promise<T> {
    return poll(io, this.config.pollMs ?? 15_000, phase, check);
  }

  private refFor(region: RegionSpec, snapshot: SnapshotView): BackupRef {
    return {
      backupId: tagOf(snapshot.tags, TAG.backupId) ?? snapshot.id,
      database: tagOf(snapshot.tags, TAG.database) ?? '',
      region: region.name,
      provider: 'aws',
      createdAt: (snapshot.createdAt ?? new Date(0)).toISOString(),
      sizeBytes: snapshot.sizeGiB * 2 ** 30,
      sha256: tagOf(snapshot.tags, TAG.manifestSha256) ?? '',
      location: snapshot.arn,
    };
  }
}

function manifestFromTags(snapshot: SnapshotView, ref: BackupRef): BackupManifest {
  const tags = snapshot.tags;
  const backupId = tagOf(tags, TAG.backupId);
  const sha256 = tagOf(tags, TAG.manifestSha256);
  if (!backupId || !sha256) {
    throw verdict(
      ErrorType.BackupManifestInvalid,
      `snapshot ${snapshot.id} lacks Lifeboat's tags (${TAG.backupId}, ${TAG.manifestSha256})`,
    );
  }
  return {
    formatVersion: 1,
    backupId,
    database: tagOf(tags, TAG.database) ?? ref.database,
    provider: 'aws',
    sourceRegion: ref.region,
    createdAt: (snapshot.createdAt ?? new Date(0)).toISOString(),
    createdBy: tagOf(tags, TAG.createdBy) ?? '',
    dumpFormat: 'rds-snapshot',
    serverVersion: snapshot.engineVersion ?? 'unknown',
    serverVersionNum: Number(tagOf(tags, TAG.serverVersionNum) ?? 0),
    sizeBytes: snapshot.sizeGiB * 2 ** 30,
    sha256,
    tables: [],
    newestCanary: parseCanaryTag(tagOf(tags, TAG.canary)),
  };
}

function parseCanaryTag(value: string | undefined): Canary | null {
  const m = value ? /^(\d+)@(.+)$/.exec(value) : null;
  return m ? { id: Number(m[1]), writtenAt: m[2]! } : null;
}

/** RDS identifiers: lowercase letters, digits and single hyphens; derived from the backup id, so retries find them. */
export function snapshotIdFor(backupId: string): string {
  return rdsIdentifier(`lifeboat-${backupId}`);
}

export function scratchIdFor(name: string): string {
  return rdsIdentifier(`lifeboat-${name}`);
}

function rdsIdentifier(raw: string): string {
  const id = raw
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/-+/g, '-')
    .replace(/-$/, '');
  if (id.length > 63) throw verdict(ErrorType.InvalidInput, `${raw} makes an RDS identifier longer than 63 characters`);
  return id;
}

export function tagOf(tags: Tag[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.Key === key)?.Value;
}

function ownedOrRefuse(tags: Tag[] | undefined, snapshotId: string, backupId: string): void {
  if (tagOf(tags, TAG.backupId) !== backupId) {
    throw verdict(
      ErrorType.ProviderRejected,
      `snapshot ${snapshotId} exists but is not Lifeboat's backup ${backupId} (tag ${TAG.backupId} is ${tagOf(tags, TAG.backupId) ?? 'missing'}); refusing to use or touch it`,
    );
  }
}

export function awsRegionOf(region: RegionSpec): string {
  const awsRegion = region.settings?.awsRegion;
  if (typeof awsRegion !== 'string' || !awsRegion)
    throw verdict(ErrorType.InvalidInput, `region ${region.name} has no awsRegion setting`);
  return awsRegion;
}

function awsRegionOfArn(arn: string): string {
  const region = arn.split(':')[3];
  if (!arn.startsWith('arn:') || !region)
    throw verdict(ErrorType.InvalidInput, `${JSON.stringify(arn)} is not an RDS snapshot ARN`);
  return region;
}

function scratchSetting(
  region: RegionSpec,
  key: 'scratchSubnetGroup' | 'scratchInstanceClass' | 'scratchSecurityGroups',
): string {
  const value = region.settings?.[key];
  if (typeof value !== 'string' || !value)
    throw verdict(ErrorType.InvalidInput, `region ${region.name} has no ${key} setting (the plan's scratch section)`);
  return value;
}

function requireSetting(value: string | undefined, what: string, expected: string): string {
  if (!value) throw verdict(ErrorType.InvalidInput, `${what} has no ${expected} in the plan`);
  return value;
}

export function isAwsError(err: unknown, ...names: string[]): boolean {
  const name = (err as { name?: string } | null)?.name ?? '';
  return names.some((n) => name === n || name === `${n}Fault`);
}

function locationOf(node: NodeRef): string {
  if (!node.location)
    throw verdict(
      ErrorType.InvalidInput,
      `node ${node.region}/${node.name} has no AWS region (location); its topology record predates the AWS provider`,
    );
  return node.location;
}

/** The new replica's identifier: stable across retries, never the replaced node's own (replacementName). */
export function replicaIdFor(node: string, source: string): string {
  return replacementName(node, source, 54, rdsIdentifier);
}

/** For waits outside an activity's own heartbeat (unfence has none): progress is not reported. */
function quietIo(): ActivityIo {
  return {
    heartbeat: () => undefined,
    signal: new AbortController().signal,
    logger: { info: () => undefined, warn: () => undefined } as never,
  };
}

/** Instance states a wait must not sit out: nothing will make them `available`. */
const TERMINAL_INSTANCE_STATES = [
  'failed',
  'incompatible-restore',
  'incompatible-parameters',
  'incompatible-network',
  'incompatible-option-group',
  'restore-error',
  'inaccessible-encryption-credentials',
  'inaccessible-encryption-credentials-recoverable',
  'storage-full',
  'deleting',
];
