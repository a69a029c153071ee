// The Google Cloud provider: Cloud SQL for PostgreSQL through @google-cloud/sql (Admin API v1, REST).
//
// - A backup is an on-demand backup run of the primary instance, described as Lifeboat's (backup id,
//   database, manifest digest, canary, creating workflow). As on RDS, the manifest itself lives in
//   the database (in-database-manifest.ts), written before the backup run is asked for.
// - Cloud SQL keeps backup runs in a multi-region location and restores them into any instance of
//   the project: the "copy to the DR region" is a check that the run is usable from there, not bytes.
// - A drill creates a private scratch instance in the DR region (alongside the backup), restores the
//   run into it (restoreBackup restores into an existing instance), verifies, and deletes it.
// - Every Admin API call that creates or changes something is one request (the REST client does not
//   retry); operations are polled to DONE with heartbeats; throttling, 5xx and failed operations are
//   left to Temporal's retry policy. Reads (get, list) are tried up to five times within the call when
//   they fail in passing (readWithRetries), so they do not use up a step's attempts.
// Credentials: Application Default Credentials unless a client is given (the tests' fake).
import { randomBytes } from 'node:crypto';
import { v1, type protos } from '@google-cloud/sql';
import { GoogleAuth } from 'google-auth-library';
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
import { verdict } from '../errors';
import { poll, readWithRetries } from './polling';
import { withClient, type PgConnection } from '../pg/sql';
import { lagOver } from '../pg/replication';
import { managedNode, managedNodeNames, NOT_RUNNING, ProviderBase } from './provider-base';
import { fenceOverSql, liftSqlFence, managedNodeStatus } from './managed-fence';
import { resolveCredentials, type SecretSource } from '../secrets';
import { gcpFailure, isConflict, isNotFound, isPassingGcpError } from './gcp-errors';
import { captureManifest, readRestoredManifest } from './in-database-manifest';
import { EndpointCache } from './endpoint-cache';
import { replacementName } from './replacement-name';
import type { ActivityIo, DatabaseProvider, FenceResult, NodeStatus, ReplicationLag } from './provider';

type Operation = protos.google.cloud.sql.v1.IOperation;
type DatabaseInstance = protos.google.cloud.sql.v1.IDatabaseInstance;
type BackupRun = protos.google.cloud.sql.v1.IBackupRun;

export interface GcpProviderConfig {
  /** LIFEBOAT_HOME: the topology records (traffic pointers) of replication sets live under it. */
  home: string;
  secrets: SecretSource;
  /** How often operations and states are polled. */
  pollMs?: number;
  /** The Admin API endpoint (LIFEBOAT_CLOUDSQL_API=host[:port], http for a local fake). */
  apiEndpoint?: string;
  port?: number;
  protocol?: 'http' | 'https';
  /** An auth client instead of Application Default Credentials (the tests' fake takes any token). */
  authClient?: unknown;
  /**
   * The port an instance's PostgreSQL listens on. Cloud SQL's is always 5432 (the default); the
   * Cloud SQL fake the tests use runs each instance as a local server on a port of its own.
   */
  instancePort?: (project: string, instance: string) => number;
}

/** How long one Admin API request may take (operations are polled, so no single request is long). */
const API_TIMEOUT_MS = 60_000;

/** Labels (instances) and description fields (backup runs) mark what Lifeboat made. */
const SCRATCH_LABEL = 'lifeboat-scratch';
/** On a former primary Lifeboat's fence stopped: the activation policy it had before (set in the same patch as NEVER). */
const FENCE_STOPPED_LABEL = 'lifeboat-fence-stopped';
/** Operations that make a replica a primary: while one is in flight, a promotion may be under way. */
const PROMOTING_OPERATIONS = ['PROMOTE_REPLICA', 'SWITCHOVER'];
const DESCRIPTION = /^lifeboat backup=(\S+) db=(\S+) manifest=([0-9a-f]{64}) canary=(\S+) by=(.*)$/;

export class GcpProvider extends ProviderBase implements DatabaseProvider {
  readonly kind = 'gcp' as const;

  private clients?: {
    instances: v1.SqlInstancesServiceClient;
    backupRuns: v1.SqlBackupRunsServiceClient;
    operations: v1.SqlOperationsServiceClient;
  };

  private readonly endpoints = new EndpointCache();

  constructor(private readonly config: GcpProviderConfig) {
    super(config.home);
  }

  /** Made on first use: a worker that never serves a gcp region never looks for Google credentials. */
  private api() {
    if (!this.clients) {
      const options = {
        fallback: true as const,
        ...(this.config.apiEndpoint && { apiEndpoint: this.config.apiEndpoint }),
        ...(this.config.port && { port: this.config.port }),
        ...(this.config.protocol && { protocol: this.config.protocol }),
        // Application Default Credentials, with a timeout on every request: over REST the client
        // ignores per-call timeouts, and a hung call would otherwise last the activity's whole timeout.
        ...(this.config.authClient !== undefined
          ? { authClient: this.config.authClient as never }
          : {
              auth: new GoogleAuth({
                scopes: ['https://www.googleapis.com/auth/sqlservice.admin'],
                clientOptions: { transporterOptions: { timeout: API_TIMEOUT_MS } },
              }),
            }),
      };
      this.clients = {
        instances: new v1.SqlInstancesServiceClient(options),
        backupRuns: new v1.SqlBackupRunsServiceClient(options),
        operations: new v1.SqlOperationsServiceClient(options),
      };
    }
    return this.clients;
  }

  async close(): Promise<void> {
    if (!this.clients) return;
    await Promise.all(Object.values(this.clients).map((c) => c.close()));
    this.clients = undefined;
  }

  async connect(target: DatabaseTarget): Promise<PgConnection> {
    const instance = requireInstance(target);
    return this.connectInstance(projectOf(target.region), instance, target.database, target.credentials);
  }

  async createBackup(target: DatabaseTarget, backupId: string, createdBy: string, io: ActivityIo): Promise<BackupRef> {
    const project = projectOf(target.region);
    const instance = requireInstance(target);
    const existing = (await this.backupRunsOf(project, instance)).find(
      (r) => parseDescription(r)?.backupId === backupId,
    );
    if (existing) {
      io.logger.info({ backupId, run: existing.id }, 'backup run exists from an earlier attempt; adopting it');
      return this.refFor(
        target.region,
        project,
        instance,
        await this.waitForBackupRun(project, instance, String(existing.id), io),
      );
    }
    io.heartbeat({ phase: 'manifest' });
    const manifest = await withClient(await this.connect(target), (client) =>
      captureManifest(
        client,
        {
          backupId,
          createdBy,
          database: target.database,
          sourceRegion: target.region.name,
          provider: 'gcp',
          dumpFormat: 'cloudsql-backup-run',
        },
        io,
      ),
    );
    const canary = manifest.newestCanary ? `${manifest.newestCanary.id}@${manifest.newestCanary.writtenAt}` : '-';
    const description = `lifeboat backup=${backupId} db=${target.database} manifest=${manifest.sha256} canary=${canary} by=${createdBy}`;
    const [operation] = await this.api()
      .backupRuns.insert({ project, instance, body: { description } })
      .catch((err: unknown) => {
        throw gcpFailure(err, `backupRuns.insert on ${instance}`, ErrorType.DatabaseNotFound);
      });
    const done = await this.waitForOperation(project, operation, io, `backup of ${instance}`);
    const runId = done.backupContext?.backupId
      ? String(done.backupContext.backupId)
      : (await this.backupRunsOf(project, instance)).find((r) => parseDescription(r)?.backupId === backupId)?.id;
    if (!runId) throw new Error(`backup of ${instance} finished but its backup run cannot be found yet`);
    return this.refFor(
      target.region,
      project,
      instance,
      await this.waitForBackupRun(project, instance, String(runId), io),
    );
  }

  async manifest(ref: BackupRef): Promise<BackupManifest> {
    const { project, instance, runId } = parseLocation(ref.location);
    const run = await this.backupRun(project, instance, runId);
    return manifestOf(run, ref);
  }

  async restoredManifest(ref: BackupRef, scratch: ScratchInstance): Promise<BackupManifest> {
    const expected = await this.manifest(ref);
    return readRestoredManifest(await this.connectScratch(scratch), ref.backupId, expected.sha256);
  }

  /** Cloud SQL keeps no checksum of a backup's bytes: a run is verified as SUCCESSFUL and Lifeboat's. */
  async verifyBackup(ref: BackupRef, io: ActivityIo): Promise<BackupManifest> {
    const { project, instance, runId } = parseLocation(ref.location);
    const manifest = manifestOf(await this.waitForBackupRun(project, instance, runId, io), ref);
    if (manifest.sha256 !== ref.sha256) {
      throw verdict(
        ErrorType.BackupChecksumMismatch,
        `backup run ${runId} of ${instance} carries manifest digest ${manifest.sha256}; the backup recorded ${ref.sha256}`,
      );
    }
    return manifest;
  }

  /**
   * Backup runs live in a multi-region location and restore into any instance of the project, so
   * nothing is copied: the DR region must be in the same project, and the run must be there.
   */
  async copyBackup(ref: BackupRef, to: RegionSpec, io: ActivityIo): Promise<BackupRef> {
    const { project } = parseLocation(ref.location);
    if (projectOf(to) !== project) {
      throw verdict(
        ErrorType.InvalidInput,
        `${to.name} is in project ${projectOf(to)} and backup ${ref.backupId} in ${project}; Cloud SQL restores backup runs within a project (a portable backup crosses projects)`,
      );
    }
    await this.verifyBackup(ref, io);
    return { ...ref, region: to.name };
  }

  async listBackups(region: RegionSpec, database?: string): Promise<BackupRef[]> {
    const project = projectOf(region);
    const refs: BackupRef[] = [];
    for (const instance of await this.instancesOf(project)) {
      if (instance.settings?.userLabels?.[SCRATCH_LABEL] === 'true' || !instance.name) continue;
      for (const run of await this.backupRunsOf(project, instance.name)) {
        const parsed = parseDescription(run);
        if (!parsed || run.status !== 'SUCCESSFUL' || (database && parsed.database !== database)) continue;
        refs.push(this.refFor(region, project, instance.name, run));
      }
    }
    return refs.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.backupId.localeCompare(a.backupId));
  }

  async deleteBackup(ref: BackupRef): Promise<void> {
    const { project, instance, runId } = parseLocation(ref.location);
    const run = await this.backupRun(project, instance, runId).catch((err: unknown) => {
      if ((err as { type?: string }).type === ErrorType.BackupNotFound) return null;
      throw err;
    });
    if (!run) return;
    if (parseDescription(run)?.backupId !== ref.backupId) {
      throw verdict(
        ErrorType.ProviderRejected,
        `backup run ${runId} of ${instance} is not Lifeboat's backup ${ref.backupId}; refusing to delete it`,
      );
    }
    await this.api()
      .backupRuns.delete({ project, instance, id: runId })
      .catch((err: unknown) => {
        if (!isNotFound(err)) throw gcpFailure(err, `backupRuns.delete ${runId} of ${instance}`);
      });
  }

  /** A private instance in the DR region, labelled as Lifeboat's scratch; made alongside the backup. */
  async createScratch(
    region: RegionSpec,
    name: string,
    database: string,
    io: ActivityIo,
    login?: CredentialsRef,
  ): Promise<ScratchInstance> {
    const project = projectOf(region);
    if (login && login.user !== 'postgres') {
      throw verdict(
        ErrorType.InvalidInput,
        `a Cloud SQL scratch instance's admin login is postgres; the plan's DR credentials name ${JSON.stringify(login.user)}`,
      );
    }
    const instance = scratchNameFor(name);
    const existing = await this.instance(project, instance);
    if (existing && existing.settings?.userLabels?.[SCRATCH_LABEL] !== 'true') {
      throw verdict(
        ErrorType.ProviderRejected,
        `instance ${instance} exists in ${project} without the ${SCRATCH_LABEL} label; refusing to use it`,
      );
    }
    if (!existing) {
      const network = setting(region, 'scratchNetwork', false);
      const body: DatabaseInstance = {
        name: instance,
        region: setting(region, 'gcpRegion'),
        databaseVersion: setting(region, 'scratchDatabaseVersion') as never,
        // A Cloud SQL restore brings the source's roles and passwords, so this one is never used;
        // a portable restore (pg_restore) brings none, and logs in with the plan's DR credentials.
        rootPassword: login
          ? resolveCredentials(login, this.config.secrets, `scratch instance ${instance}`).password
          : randomBytes(24).toString('base64url'),
        settings: {
          tier: setting(region, 'scratchTier'),
          userLabels: {
            [SCRATCH_LABEL]: 'true',
            'lifeboat-database': database.toLowerCase().replace(/[^a-z0-9_-]/g, '-'),
          },
          ipConfiguration: { ipv4Enabled: { value: false }, ...(network && { privateNetwork: network }) },
          backupConfiguration: { enabled: { value: false } },
          deletionProtectionEnabled: { value: false },
        },
      };
      try {
        const [operation] = await this.api().instances.insert({ project, body });
        await this.waitForOperation(project, operation, io, `creating ${instance}`);
      } catch (err) {
        if (!isConflict(err)) throw gcpFailure(err, `instances.insert ${instance} in ${project}`);
        // An earlier attempt's insert landed: wait for that instance below. No instance at all means
        // the name belonged to one deleted in the past week, which Cloud SQL does not reuse.
        if (!(await this.instance(project, instance))) {
          throw verdict(
            ErrorType.ProviderRejected,
            `instance name ${instance} is taken in ${project} (an instance of that name was deleted within the past week)`,
          );
        }
      }
    }
    await this.waitForRunnable(project, instance, io);
    return { name, region, database };
  }

  async connectScratch(scratch: ScratchInstance): Promise<PgConnection> {
    return this.connectInstance(
      projectOf(scratch.region),
      scratchNameFor(scratch.name),
      scratch.database,
      scratch.credentials,
    );
  }

  /** restoreBackup replaces everything in the target: a retry after a failed restore starts over. */
  async restore(ref: BackupRef, scratch: ScratchInstance, io: ActivityIo): Promise<void> {
    const { project: sourceProject, instance: source, runId } = parseLocation(ref.location);
    const project = projectOf(scratch.region);
    const target = scratchNameFor(scratch.name);
    const [operation] = await this.api()
      .instances.restoreBackup({
        project,
        instance: target,
        body: { restoreBackupContext: { backupRunId: runId, instanceId: source, project: sourceProject } },
      })
      .catch((err: unknown) => {
        throw gcpFailure(err, `instances.restoreBackup ${runId} of ${source} into ${target}`, ErrorType.BackupNotFound);
      });
    await this.waitForOperation(project, operation, io, `restoring ${ref.backupId} into ${target}`);
    await this.waitForRunnable(project, target, io);
  }

  async dropScratch(scratch: ScratchInstance, io?: ActivityIo): Promise<boolean> {
    const project = projectOf(scratch.region);
    const name = scratchNameFor(scratch.name);
    const existing = await this.instance(project, name);
    if (!existing) return false;
    if (existing.settings?.userLabels?.[SCRATCH_LABEL] !== 'true') {
      throw verdict(
        ErrorType.ProviderRejected,
        `instance ${name} in ${project} has no ${SCRATCH_LABEL} label: Lifeboat did not make it and will not delete it`,
      );
    }
    if (existing.state !== 'PENDING_DELETE') {
      const [operation] = await this.api()
        .instances.delete({ project, instance: name })
        .catch((err: unknown) => {
          if (!isNotFound(err)) throw gcpFailure(err, `instances.delete ${name} in ${project}`);
          return [null];
        });
      // A delete operation that fails leaves the instance running (and billed): that is an error for
      // the teardown's retries, not a "deleted" in the report.
      if (operation && io) await this.waitForOperation(project, operation, io, `deleting ${name}`);
    } else if (io) {
      // An earlier attempt's delete: wait until it is gone; back to RUNNABLE means it failed.
      await this.poll(io, 'delete', async () => {
        const now = await this.instance(project, name);
        if (!now) return true;
        if (now.state !== 'PENDING_DELETE')
          throw new Error(`the delete of ${name} in ${project} did not finish: the instance is ${now.state} again`);
        io.heartbeat({ phase: 'delete', name, state: now.state });
        return undefined;
      });
    }
    return true;
  }

  async listScratch(region: RegionSpec): Promise<string[]> {
    return (await this.instancesOf(projectOf(region)))
      .filter(
        (i) =>
          i.settings?.userLabels?.[SCRATCH_LABEL] === 'true' &&
          i.state !== 'PENDING_DELETE' &&
          i.region === setting(region, 'gcpRegion'),
      )
      .map((i) => String(i.name).replace(/^lifeboat-/, ''));
  }

  // Replication. A set is the primary instance and its cross-region read replica in the DR region,
  // learned from the Admin API on first use; the topology record under LIFEBOAT_HOME is the traffic
  // pointer. Planned: switchover (Cloud SQL makes the former primary a replica of the new one itself).
  // Unplanned: promoteReplica; re-protecting then means a NEW replica, the old primary is left fenced.

  async topology(set: ReplicaSetSpec): Promise<TopologyView> {
    const record = this.topologies.read(set.set);
    if (record) return record;
    const nodes = managedNodeNames(set, 'Cloud SQL instances');
    const project = projectOf(set.home);
    const replica = await this.instance(projectOf(set.dr), nodes.dr);
    if (!replica)
      throw verdict(
        ErrorType.NoStandby,
        `no read replica ${nodes.dr} in ${projectOf(set.dr)}; create a cross-region replica of ${nodes.home}`,
      );
    if (replica.masterInstanceName !== nodes.home && replica.masterInstanceName !== `${project}:${nodes.home}`) {
      throw verdict(
        ErrorType.NoStandby,
        `${nodes.dr} is not a read replica of ${nodes.home} (its primary: ${replica.masterInstanceName || 'none'})`,
      );
    }
    return this.firstTopology(
      set,
      managedNode(set, set.home, nodes.home, project),
      managedNode(set, set.dr, nodes.dr, projectOf(set.dr)),
      'Cloud SQL',
    );
  }

  /**
   * Writable is tested: Lifeboat's session begins a read-write transaction (rolled back) and, under
   * Lifeboat's fence, some other role can still log in (managedStatus). `promoteRequested`: the
   * instance is no replica, or a promoteReplica/switchover of it is still in flight (operations.list:
   * Cloud SQL records an operation when it accepts the request, so a lost answer cannot hide one).
   */
  async nodeStatus(node: NodeRef): Promise<NodeStatus> {
    const project = projectOf(node);
    const instance = await this.instance(project, node.name);
    if (!instance) return { ...NOT_RUNNING, detail: `no Cloud SQL instance ${node.name} in ${project}` };
    // Operations that cannot be listed (a missing permission) leave the question open: "may have been" it is.
    const promoteRequested =
      !instance.masterInstanceName ||
      (await this.promotionsInFlight(project, node.name).then(
        (ops) => ops.length > 0,
        () => true,
      ));
    const stoppedByFence = instance.settings?.userLabels?.[FENCE_STOPPED_LABEL] !== undefined;
    if (String(instance.settings?.activationPolicy) === 'NEVER') {
      return {
        ...NOT_RUNNING,
        fenced: stoppedByFence,
        promoteRequested,
        detail: `stopped (activation policy NEVER${stoppedByFence ? ", set by Lifeboat's fence" : ''})`,
      };
    }
    if (instance.state !== 'RUNNABLE')
      return {
        ...NOT_RUNNING,
        running: instance.state !== 'SUSPENDED',
        promoteRequested,
        detail: `Cloud SQL state ${instance.state}`,
      };
    return { ...(await managedNodeStatus(await this.connectNode(node, 'postgres'))), promoteRequested };
  }

  async replicationLag(primary: NodeRef, standby: NodeRef): Promise<ReplicationLag> {
    return lagOver(await this.connectNode(primary, 'postgres'), await this.connectNode(standby, 'postgres'), null);
  }

  async connectNode(node: NodeRef, database: string): Promise<PgConnection> {
    return this.connectInstance(projectOf(node), node.name, database, node.credentials);
  }

  /**
   * Planned: the SQL fence (managed-fence.ts: LOGIN revoked from every other role, sessions ended,
   * read-only defaults, verified by a refused login); the instance stays up for the switchover.
   * Unplanned: the same where it is reachable, then activation policy NEVER (instances.patch) where
   * Cloud SQL allows it and nothing streams from it: not for a replica, and not while it has replicas
   * (one may still be receiving its last WAL), so a fence after the promote stops it. Confirmed only by
   * the verified SQL fence or by instances.get showing activation policy NEVER after the patch is DONE.
   */
  async fence(node: NodeRef, mode: 'planned' | 'unplanned'): Promise<FenceResult> {
    const sql = await fenceOverSql(() => this.connectNode(node, 'postgres'), mode, { walPosition: null });
    if (mode === 'planned') return { confirmed: sql.confirmed, how: sql.how, finalLsn: sql.finalLsn };
    const stop = await this.stopForFence(node).catch((err: Error) => ({
      stopped: false,
      how: `activation policy NEVER not set: ${err.message}`,
    }));
    return { confirmed: sql.confirmed || stop.stopped, how: `${sql.how}; ${stop.how}`, finalLsn: null };
  }

  /** Undoes exactly what fence did: the activation policy it had back if the fence stopped it, the recorded logins re-granted. */
  async unfence(node: NodeRef): Promise<void> {
    const project = projectOf(node);
    const instance = await this.instance(project, node.name);
    const before = instance?.settings?.userLabels?.[FENCE_STOPPED_LABEL];
    if (instance && before !== undefined) {
      const labels = { ...(instance.settings?.userLabels ?? {}) };
      delete labels[FENCE_STOPPED_LABEL];
      await this.patchSettings(
        project,
        node.name,
        { activationPolicy: before.toUpperCase() as never, userLabels: labels },
        'lifting the fence (activation policy)',
      );
      await this.waitForRunnable(project, node.name, silentIo());
    }
    await withClient(await this.connectNode(node, 'postgres'), liftSqlFence);
  }

  private async stopForFence(node: NodeRef): Promise<{ stopped: boolean; how: string }> {
    const project = projectOf(node);
    const instance = await this.instance(project, node.name);
    if (!instance) return { stopped: false, how: `not stopped: no Cloud SQL instance ${node.name} in ${project}` };
    const policy = String(instance.settings?.activationPolicy ?? 'ALWAYS');
    if (policy !== 'NEVER') {
      if (instance.masterInstanceName)
        return {
          stopped: false,
          how: 'not stopped: it is a read replica (Cloud SQL does not take activation policy NEVER for one)',
        };
      const replicas = instance.replicaNames ?? [];
      if (replicas.length)
        return {
          stopped: false,
          how: `not stopped: it has replicas (${replicas.join(', ')}) that may still be receiving its WAL; a fence after the promote stops it`,
        };
      const labels = { ...(instance.settings?.userLabels ?? {}), [FENCE_STOPPED_LABEL]: policy.toLowerCase() };
      await this.patchSettings(
        project,
        node.name,
        { activationPolicy: 'NEVER' as never, userLabels: labels },
        'fencing (activation policy NEVER)',
      );
    }
    const after = await this.instance(project, node.name);
    if (String(after?.settings?.activationPolicy) === 'NEVER')
      return {
        stopped: true,
        how: 'instance stopped: activation policy NEVER (instances.patch DONE, instances.get shows NEVER)',
      };
    return {
      stopped: false,
      how: `instances.patch DONE but instances.get shows activation policy ${String(after?.settings?.activationPolicy)} (not counted as confirmed)`,
    };
  }

  /** One instances.patch of settings, waited for to DONE. */
  private async patchSettings(
    project: string,
    name: string,
    settings: protos.google.cloud.sql.v1.ISettings,
    what: string,
  ): Promise<void> {
    const [operation] = await this.api()
      .instances.patch({ project, instance: name, body: { settings } })
      .catch((err: unknown) => {
        throw gcpFailure(err, `instances.patch ${name} in ${project} (${what})`, ErrorType.DatabaseNotFound);
      });
    await this.waitForOperation(project, operation, silentIo(), `${what} of ${name}`);
  }

  /** promoteReplica and switchover operations of this instance that are not DONE. */
  private async promotionsInFlight(project: string, name: string): Promise<Operation[]> {
    const [page] = await readWithRetries(isPassingGcpError, () =>
      this.api().operations.list({ project, instance: name, maxResults: 100 }),
    ).catch((err: unknown) => {
      throw gcpFailure(err, `operations.list of ${name} in ${project}`);
    });
    return (page.items ?? []).filter(
      (o) => PROMOTING_OPERATIONS.includes(String(o.operationType)) && o.status !== 'DONE',
    );
  }

  async waitForReplay(standby: NodeRef, lsn: string, io: ActivityIo): Promise<string> {
    return this.waitForReplayOver(
      () => this.connectNode(standby, 'postgres'),
      `${standby.name} in ${projectOf(standby)}`,
      lsn,
      io,
    );
  }

  /** Planned: switchover (no data loss; the old primary becomes this one's replica). Unplanned: promoteReplica. */
  async promote(
    node: NodeRef,
    io?: ActivityIo,
    mode: 'planned' | 'unplanned' = 'planned',
  ): Promise<{ lsn: string; alreadyPrimary: boolean }> {
    const project = projectOf(node);
    const instance = await this.instance(project, node.name);
    if (!instance)
      throw verdict(ErrorType.DatabaseNotFound, `no Cloud SQL instance ${node.name} in ${project} to promote`);
    const alreadyPrimary = !instance.masterInstanceName;
    const poll = io ?? silentIo();
    if (!alreadyPrimary) {
      const call = mode === 'planned' ? 'instances.switchover' : 'instances.promoteReplica';
      const [operation] = await (
        mode === 'planned'
          ? this.api().instances.switchover({ project, instance: node.name })
          : this.api().instances.promoteReplica({ project, instance: node.name })
      ).catch((err: unknown) => {
        throw gcpFailure(err, `${call} ${node.name} in ${project}`, ErrorType.DatabaseNotFound);
      });
      await this.waitForOperation(
        project,
        operation,
        poll,
        `${mode === 'planned' ? 'switchover to' : 'promoting'} ${node.name}`,
      );
    }
    await this.waitForRunnable(project, node.name, poll);
    return withClient(await this.connectNode(node, 'postgres'), async (c) => {
      const { rows } = await c.query<{ rec: boolean }>('select pg_is_in_recovery() as rec');
      if (rows[0]?.rec) throw new Error(`${node.name} is still in recovery after its promotion finished`);
      // The replica replayed the old primary's fence (its revoked logins and their record): lifted here.
      await liftSqlFence(c);
      return {
        lsn: (await c.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn,
        alreadyPrimary,
      };
    });
  }

  /** instances.failover: the primary moves to its standby zone; Cloud SQL checks the settings version we saw. */
  async haFailover(node: NodeRef, io: ActivityIo): Promise<{ how: string }> {
    const project = projectOf(node);
    const before = await this.instance(project, node.name);
    if (!before) throw verdict(ErrorType.DatabaseNotFound, `no Cloud SQL instance ${node.name} in ${project}`);
    if (before.settings?.availabilityType !== 'REGIONAL') {
      throw verdict(
        ErrorType.InvalidInput,
        `${node.name} is not a high-availability (REGIONAL) instance: it has no standby zone to fail over to`,
      );
    }
    const settingsVersion = String(before.settings.settingsVersion?.value ?? '');
    const [operation] = await this.api()
      .instances.failover({ project, instance: node.name, body: { failoverContext: { settingsVersion } } })
      .catch((err: unknown) => {
        throw gcpFailure(err, `instances.failover ${node.name} in ${project}`, ErrorType.DatabaseNotFound);
      });
    await this.waitForOperation(project, operation, io, `zonal failover of ${node.name}`);
    await this.waitForRunnable(project, node.name, io);
    const after = await this.instance(project, node.name);
    return { how: `Cloud SQL HA failover: zone ${before.gceZone || '?'} -> ${after?.gceZone || '?'}` };
  }

  /**
   * After a switchover Cloud SQL has already made the former primary a replica: nothing to do. After
   * a promotion it cannot turn an instance back into a replica: a NEW cross-region replica of
   * `primary` is made in `node`'s region, named after both so a retry finds it.
   */
  async rebuildAsStandby(
    node: NodeRef,
    primary: NodeRef,
    io: ActivityIo,
    set?: ReplicaSetSpec,
  ): Promise<{ method: string; node: NodeRef }> {
    const project = projectOf(node);
    const current = await this.instance(project, node.name);
    if (current && masterOf(current) === primary.name) {
      await this.waitForRunnable(project, node.name, io);
      return { method: 'already a replica (Cloud SQL switchover re-protects the former primary)', node };
    }
    const replicaName = replicaNameFor(node.name, primary.name);
    const replica: NodeRef = { ...node, name: replicaName };
    const existing = await this.instance(project, replicaName);
    if (existing && masterOf(existing) !== primary.name) {
      throw verdict(
        ErrorType.TopologyConflict,
        `${replicaName} in ${project} exists but is not a replica of ${primary.name} (its primary: ${existing.masterInstanceName || 'none'})`,
      );
    }
    if (!existing) {
      const source = await this.instance(projectOf(primary), primary.name);
      if (!source) throw verdict(ErrorType.DatabaseNotFound, `no Cloud SQL instance ${primary.name} to replicate from`);
      const region = [set?.home, set?.dr].find((r) => r?.name === node.region);
      const body: DatabaseInstance = {
        name: replicaName,
        region: region ? setting(region, 'gcpRegion') : current?.region,
        databaseVersion: source.databaseVersion,
        masterInstanceName: primary.name,
        settings: { tier: source.settings?.tier, userLabels: { 'lifeboat-replica-of': primary.name.slice(0, 63) } },
      };
      try {
        const [operation] = await this.api().instances.insert({ project, body });
        await this.waitForOperation(project, operation, io, `creating replica ${replicaName}`);
      } catch (err) {
        if (!isConflict(err)) throw gcpFailure(err, `instances.insert replica ${replicaName} in ${project}`);
      }
    }
    await this.waitForRunnable(project, replicaName, io);
    return { method: existing ? 'already (an earlier attempt made the replica)' : 'new read replica', node: replica };
  }

  // ------------------------------------------------------------------------------------------------

  private connectInstance(
    project: string,
    name: string,
    database: string,
    credentials: CredentialsRef | undefined,
  ): Promise<PgConnection> {
    return this.endpoints.get(JSON.stringify([project, name, database, credentials ?? null]), () =>
      this.lookUpInstance(project, name, database, credentials),
    );
  }

  private async lookUpInstance(
    project: string,
    name: string,
    database: string,
    credentials: CredentialsRef | undefined,
  ): Promise<PgConnection> {
    const { user, password } = resolveCredentials(credentials, this.config.secrets, `Cloud SQL instance ${name}`);
    const instance = await this.instance(project, name);
    if (!instance) throw verdict(ErrorType.DatabaseNotFound, `no Cloud SQL instance ${name} in project ${project}`);
    const ips = instance.ipAddresses ?? [];
    const ip = (ips.find((a) => a.type === 'PRIVATE') ?? ips.find((a) => a.type === 'PRIMARY'))?.ipAddress;
    if (!ip) throw new Error(`Cloud SQL instance ${name} has no IP address yet (state ${instance.state})`);
    const port = this.config.instancePort?.(project, name) ?? 5432;
    // TLS pinned to the instance's own server CA; Cloud SQL's certificates do not name the IP address.
    const ca = instance.serverCaCert?.cert;
    return { host: ip, port, user, password, database, ...(ca && { ssl: { ca, skipHostnameCheck: true } }) };
  }

  private async instance(project: string, name: string): Promise<DatabaseInstance | null> {
    try {
      return (await readWithRetries(isPassingGcpError, () => this.api().instances.get({ project, instance: name })))[0];
    } catch (err) {
      if (isNotFound(err)) return null;
      throw gcpFailure(err, `instances.get ${name} in ${project}`);
    }
  }

  private async instancesOf(project: string): Promise<DatabaseInstance[]> {
    const all: DatabaseInstance[] = [];
    let pageToken: string | undefined;
    do {
      const [page] = await readWithRetries(isPassingGcpError, () =>
        this.api().instances.list({ project, ...(pageToken && { pageToken }) }),
      ).catch((err: unknown) => {
        throw gcpFailure(err, `instances.list in ${project}`);
      });
      all.push(...(page.items ?? []));
      pageToken = page.nextPageToken || undefined;
    } while (pageToken);
    return all;
  }

  private async backupRun(project: string, instance: string, runId: string): Promise<BackupRun> {
    try {
      return (
        await readWithRetries(isPassingGcpError, () => this.api().backupRuns.get({ project, instance, id: runId }))
      )[0];
    } catch (err) {
      throw gcpFailure(err, `backupRuns.get ${runId} of ${instance}`, ErrorType.BackupNotFound);
    }
  }

  private async backupRunsOf(project: string, instance: string): Promise<BackupRun[]> {
    const all: BackupRun[] = [];
    let pageToken: string | undefined;
    do {
      const [page] = await readWithRetries(isPassingGcpError, () =>
        this.api().backupRuns.list({ project, instance, maxResults: 500, ...(pageToken && { pageToken }) }),
      ).catch((err: unknown) => {
        throw gcpFailure(err, `backupRuns.list of ${instance}`, ErrorType.DatabaseNotFound);
      });
      all.push(...(page.items ?? []));
      pageToken = page.nextPageToken || undefined;
    } while (pageToken);
    return all;
  }

  /** Polls an operation to DONE, heartbeating; a failed operation is an error the retry policy retries. */
  private async waitForOperation(
    project: string,
    operation: Operation,
    io: ActivityIo,
    what: string,
  ): Promise<Operation> {
    const name = String(operation.name);
    const done =
      operation.status === 'DONE'
        ? operation
        : await this.poll(io, what, async () => {
            const [current] = await readWithRetries(isPassingGcpError, () =>
              this.api().operations.get({ project, operation: name }),
            ).catch((err: unknown) => {
              throw gcpFailure(err, `operations.get ${name}`);
            });
            if (current.status === 'DONE') return current;
            io.heartbeat({ phase: what, operation: name, status: current.status });
            return undefined;
          });
    const errors = done.error?.errors ?? [];
    if (errors.length)
      throw new Error(
        `${what}: operation ${name} (${done.operationType}) failed: ${errors.map((e) => `${e.code}: ${e.message}`).join('; ')}`,
      );
    return done;
  }

  private waitForBackupRun(project: string, instance: string, runId: string, io: ActivityIo): Promise<BackupRun> {
    return this.poll(io, 'backup run', async () => {
      const run = await this.backupRun(project, instance, runId);
      if (run.status === 'SUCCESSFUL') return run;
      if (['FAILED', 'SKIPPED', 'DELETION_PENDING', 'DELETED', 'DELETION_FAILED'].includes(String(run.status))) {
        throw verdict(
          ErrorType.ProviderRejected,
          `backup run ${runId} of ${instance} is ${run.status}${run.error?.message ? `: ${run.error.message}` : ''}`,
        );
      }
      io.heartbeat({ phase: 'backup run', runId, status: run.status });
      return undefined;
    });
  }

  private async waitForRunnable(project: string, name: string, io: ActivityIo): Promise<void> {
    await this.poll(io, 'instance', async () => {
      const instance = await this.instance(project, name);
      if (!instance) throw new Error(`instance ${name} in ${project} is not there yet`);
      if (instance.state === 'RUNNABLE') return true;
      if (instance.state === 'FAILED' || instance.state === 'SUSPENDED')
        throw verdict(ErrorType.ProviderRejected, `instance ${name} in ${project} is ${instance.state}`);
      io.heartbeat({ phase: 'instance', name, state: instance.state });
      return undefined;
    });
  }

  private poll<T>(io: ActivityIo, phase: string, check: () => Promise<T | undefined>): Promise<T> {
    return poll(io, this.config.pollMs ?? 5_000, phase, check);
  }

  private refFor(region: RegionSpec, project: string, instance: string, run: BackupRun): BackupRef {
    const parsed = parseDescription(run);
    return {
      backupId: parsed?.backupId ?? String(run.id),
      database: parsed?.database ?? '',
      region: region.name,
      provider: 'gcp',
      createdAt: timestampOf(run.endTime ?? run.enqueuedTime),
      sizeBytes: 0,
      sha256: parsed?.manifest ?? '',
      location: `cloudsql:${project}/${instance}/${run.id}`,
    };
  }
}

function parseDescription(
  run: BackupRun,
): { backupId: string; database: string; manifest: string; canary: Canary | null; createdBy: string } | null {
  const m = DESCRIPTION.exec(run.description ?? '');
  if (!m) return null;
  const canary = /^(\d+)@(.+)$/.exec(m[4]!);
  return {
    backupId: m[1]!,
    database: m[2]!,
    manifest: m[3]!,
    canary: canary ? { id: Number(canary[1]), writtenAt: canary[2]! } : null,
    createdBy: m[5]!,
  };
}

function manifestOf(run: BackupRun, ref: BackupRef): BackupManifest {
  const parsed = parseDescription(run);
  if (!parsed)
    throw verdict(
      ErrorType.BackupManifestInvalid,
      `backup run ${run.id} is not described as Lifeboat's (${JSON.stringify(run.description ?? '')})`,
    );
  return {
    formatVersion: 1,
    backupId: parsed.backupId,
    database: parsed.database,
    provider: 'gcp',
    sourceRegion: ref.region,
    createdAt: timestampOf(run.endTime ?? run.enqueuedTime),
    createdBy: parsed.createdBy,
    dumpFormat: 'cloudsql-backup-run',
    serverVersion: 'unknown',
    serverVersionNum: 0,
    sizeBytes: 0,
    sha256: parsed.manifest,
    tables: [],
    newestCanary: parsed.canary,
  };
}

/** The REST client hands timestamps back as { seconds, nanos }. */
function timestampOf(t: protos.google.protobuf.ITimestamp | null | undefined): string {
  if (!t?.seconds) return new Date(0).toISOString();
  return new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6)).toISOString();
}

function parseLocation(location: string): { project: string; instance: string; runId: string } {
  const m = /^cloudsql:([^/]+)\/([^/]+)\/(\d+)$/.exec(location);
  if (!m)
    throw verdict(
      ErrorType.InvalidInput,
      `${JSON.stringify(location)} is not a Cloud SQL backup run location (cloudsql:<project>/<instance>/<run id>)`,
    );
  return { project: m[1]!, instance: m[2]!, runId: m[3]! };
}

export function scratchNameFor(name: string): string {
  return `lifeboat-${name}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
}

function requireInstance(target: DatabaseTarget): string {
  if (!target.instance)
    throw verdict(
      ErrorType.InvalidInput,
      `database ${target.database} in ${target.region.name} has no Cloud SQL instance name in the plan`,
    );
  return target.instance;
}

/** The project of a region, or of a node (whose location is its project). */
function projectOf(of: RegionSpec | NodeRef): string {
  if ('provider' in of) return setting(of, 'project');
  if (!of.location)
    throw verdict(ErrorType.InvalidInput, `node ${of.region}/${of.name} has no Cloud SQL project (location)`);
  return of.location;
}

/** The primary a replica follows, without the `project:` prefix the API may put on it. */
function masterOf(instance: DatabaseInstance): string {
  return String(instance.masterInstanceName ?? '').replace(/^[^:]+:/, '');
}

/** The new replica's name: stable across retries, never the replaced node's own (replacementName). */
export function replicaNameFor(node: string, source: string): string {
  return replacementName(node, source, 80);
}

function silentIo(): ActivityIo {
  return {
    heartbeat: () => undefined,
    signal: new AbortController().signal,
    logger: { info: () => undefined, warn: () => undefined } as never,
  };
}

function setting(region: RegionSpec, key: string, required: false): string | undefined;
function setting(region: RegionSpec, key: string, required?: true): string;
function setting(region: RegionSpec, key: string, required = true): string | undefined {
  const value = region.settings?.[key];
  if (typeof value === 'string' && value) return value;
  if (required) throw verdict(ErrorType.InvalidInput, `region ${region.name} has no ${key} setting`);
  return undefined;
}
