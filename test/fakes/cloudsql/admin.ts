// The Cloud SQL control plane the fake keeps in memory: instances, long-running operations and
// backup runs, in Cloud SQL's own vocabulary. Each mutating call returns an Operation at once and does
// the real work (initdb, pg_dump, pg_restore) in the background; the operation turns DONE only when
// that work is over and at least `opDelayMs` after it was inserted, so callers must really poll.
// Operations on one instance run one after another (a later one stays PENDING), as Cloud SQL
// serializes them; one that touches a primary and its replica (create replica, promote, switchover,
// delete replica) waits for both.
//
// Replication is real: a read replica is a streaming standby of its primary's cluster, promoteReplica
// promotes it, switchover fences the primary, waits for the replica to replay its last write, promotes
// the replica and rewinds the former primary into its standby, and an HA failover restarts the server
// and moves the instance to its other zone. There is one server per instance (no hidden HA standby),
// no cascading replicas, and a switchover only of a primary with one replica.
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalCluster } from '../../../activities/pg/cluster';
import { InstanceServer, type DumpedInstance } from './postgres';
import {
  activationPolicyName,
  availabilityTypeName,
  badRequest,
  conflict,
  databaseVersionName,
  notFound,
  rfc3339,
  ApiError,
} from './wire';

/** The operation types the fake issues, and so the ones `failNext` accepts. */
export const OPERATION_TYPES = [
  'CREATE',
  'DELETE',
  'BACKUP_VOLUME',
  'DELETE_BACKUP',
  'RESTORE_VOLUME',
  'PROMOTE_REPLICA',
  'SWITCHOVER',
  'FAILOVER',
  'UPDATE',
] as const;
export type OperationType = (typeof OPERATION_TYPES)[number];

interface Operation {
  name: string;
  project: string;
  type: OperationType;
  targetId: string;
  status: 'PENDING' | 'RUNNING' | 'DONE';
  insertTime: Date;
  startTime?: Date;
  endTime?: Date;
  error?: string;
  backupId?: string;
}

interface Instance {
  project: string;
  name: string;
  region: string;
  databaseVersion: string;
  settings: Record<string, unknown>;
  state: 'PENDING_CREATE' | 'RUNNABLE' | 'PENDING_DELETE';
  createTime: Date;
  root: string;
  server?: InstanceServer;
  /** Set while the instance is a read replica: its primary's name, in the same project. */
  masterName?: string;
  /** Cloud SQL's optimistic-concurrency counter for settings; an HA failover bumps it here. */
  settingsVersion: number;
  /** Which of the region's two zones (`-a`, `-b`) serves the instance; an HA failover moves it. */
  zone: 0 | 1;
  /** The instance's last queued operation: the next one starts after it. Never rejects. */
  queue: Promise<void>;
}

interface BackupRun {
  id: string;
  project: string;
  instance: string;
  status: 'ENQUEUED' | 'RUNNING' | 'SUCCESSFUL' | 'FAILED';
  description: string;
  enqueuedTime: Date;
  startTime?: Date;
  endTime?: Date;
  error?: string;
  dir: string;
  dump?: DumpedInstance;
}

export interface AdminOptions {
  dir: string;
  pgBin: string;
  opDelayMs: number;
  /** The local server's major version: the default databaseVersion. */
  localMajor: number;
}

const BASE = 'https://sqladmin.googleapis.com/v1';
const INSTANCE_NAME = /^[a-z][a-z0-9-]{0,96}[a-z0-9]$|^[a-z]$/;
const ZONES = ['a', 'b'] as const;
/** How long a switchover waits for the replica to replay the fenced primary's last write, unless the call says (dbTimeout). */
const DEFAULT_SWITCHOVER_TIMEOUT_MS = 60_000;

function operationType(method: string, type: string): OperationType {
  if (!(OPERATION_TYPES as readonly string[]).includes(type)) {
    throw new Error(
      `${method}('${type}'): the fake issues no such operation; expected one of ${OPERATION_TYPES.join(', ')}`,
    );
  }
  return type as OperationType;
}

export class FakeSqlAdmin {
  private readonly instances = new Map<string, Instance>();
  private readonly operationsByName = new Map<string, Operation>();
  private readonly backups = new Map<string, BackupRun>();
  /** Cloud SQL keeps a deleted instance's name from reuse for up to a week. */
  private readonly deletedNames = new Set<string>();
  private readonly failures = new Map<OperationType, string[]>();
  private readonly holds = new Map<OperationType, Array<Promise<void>>>();
  private readonly inFlight = new Set<Promise<void>>();
  private lastBackupId = 0;
  private clusters = 0;

  constructor(private readonly options: AdminOptions) {}

  failNext(type: string, message: string): void {
    const queue = this.failures.get(operationType('failNext', type)) ?? [];
    queue.push(message);
    this.failures.set(type as OperationType, queue);
  }

  /** The next operation of this type does its work but stays RUNNING until the returned function is called. */
  holdNext(type: string): () => void {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const queue = this.holds.get(operationType('holdNext', type)) ?? [];
    queue.push(held);
    this.holds.set(type as OperationType, queue);
    return release;
  }

  portOf(project: string, name: string): number {
    const server = this.instances.get(key(project, name))?.server;
    if (!server)
      throw new Error(
        `the Cloud SQL fake has no running instance ${project}/${name}; instances: ${[...this.instances.keys()].join(', ') || 'none'}`,
      );
    return server.port;
  }

  operations(): object[] {
    return [...this.operationsByName.values()].map(operationJson);
  }

  // ---- instances ----

  getInstance(project: string, name: string): object {
    return this.instanceJson(this.requireInstance(project, name));
  }

  listInstances(project: string): object {
    const items = [...this.instances.values()].filter((i) => i.project === project).map((i) => this.instanceJson(i));
    return { kind: 'sql#instancesList', items };
  }

  insertInstance(project: string, body: Record<string, unknown>): object {
    const name = body.name;
    if (typeof name !== 'string' || !INSTANCE_NAME.test(name)) {
      throw badRequest(
        'invalid',
        `instance name ${JSON.stringify(name)} is invalid; expected lowercase letters, digits and hyphens, starting with a letter`,
      );
    }
    if (this.instances.has(key(project, name)))
      throw conflict('instanceAlreadyExists', 'The Cloud SQL instance already exists.');
    if (this.deletedNames.has(key(project, name))) {
      throw conflict(
        'instanceAlreadyExists',
        "The Cloud SQL instance already exists. When you delete an instance, you can't reuse the name of the deleted instance until one week from the date of deletion.",
      );
    }
    const master =
      typeof body.masterInstanceName === 'string' && body.masterInstanceName !== ''
        ? this.requireMaster(project, body.masterInstanceName)
        : undefined;
    const defaultVersion = master?.databaseVersion ?? `POSTGRES_${this.options.localMajor}`;
    const databaseVersion =
      body.databaseVersion === undefined ? defaultVersion : databaseVersionName(body.databaseVersion);
    if (!databaseVersion?.startsWith('POSTGRES_')) {
      throw badRequest(
        'invalid',
        `databaseVersion ${JSON.stringify(body.databaseVersion)} (${databaseVersion}) is not served: the fake's instances are local PostgreSQL ${this.options.localMajor}`,
      );
    }
    if (master && databaseVersion !== master.databaseVersion) {
      throw badRequest(
        'invalid',
        `a read replica runs its primary's version: databaseVersion is ${databaseVersion}, primary ${master.name} is ${master.databaseVersion}`,
      );
    }
    const settings = isObject(body.settings) ? body.settings : {};
    const rootPassword =
      typeof body.rootPassword === 'string' && body.rootPassword !== '' ? body.rootPassword : undefined;
    const instance: Instance = {
      project,
      name,
      // A replica's region may differ from its primary's (a cross-region read replica).
      region: typeof body.region === 'string' && body.region ? body.region : (master?.region ?? 'us-central1'),
      databaseVersion,
      settings,
      state: 'PENDING_CREATE',
      createTime: new Date(),
      // A short, numbered directory: the server's Unix socket path must stay under 107 bytes.
      root: join(this.options.dir, 'i', String(++this.clusters)),
      ...(master && { masterName: master.name }),
      settingsVersion: 1,
      zone: 0,
      queue: Promise.resolve(),
    };
    this.instances.set(key(project, name), instance);
    if (master) return this.createReplica(instance, master);
    return this.launch(this.newOperation(project, 'CREATE', name), instance, {
      work: async (injected) => {
        if (injected) throw new Error(injected);
        try {
          instance.server = await InstanceServer.create(
            instance.root,
            this.options.pgBin,
            `${project}:${name}`,
            rootPassword,
          );
        } catch (err) {
          await new LocalCluster(instance.root, this.options.pgBin).destroy().catch(() => undefined);
          throw err;
        }
      },
      commit: (error) => {
        // A failed create leaves nothing behind, so a retry with the same name starts afresh.
        if (error) this.instances.delete(key(project, name));
        else if (instance.state === 'PENDING_CREATE') instance.state = 'RUNNABLE';
      },
    });
  }

  deleteInstance(project: string, name: string): object {
    const instance = this.requireMutable(project, name);
    if (isObject(instance.settings) && instance.settings.deletionProtectionEnabled === true) {
      throw new ApiError(
        400,
        'FAILED_PRECONDITION',
        'deletionProtectionEnabled',
        'The instance is protected from deletion. Disable deletion protection and try again.',
      );
    }
    const replicas = this.replicasOf(instance);
    if (replicas.length > 0) {
      throw new ApiError(
        400,
        'FAILED_PRECONDITION',
        'instanceHasReplicas',
        `The instance ${name} has read replicas (${replicas.map((r) => r.name).join(', ')}). Delete or promote them before deleting the primary.`,
      );
    }
    const master =
      instance.masterName === undefined ? undefined : this.instances.get(key(project, instance.masterName));
    const previousState = instance.state;
    instance.state = 'PENDING_DELETE';
    return this.launch(this.newOperation(project, 'DELETE', name), master ? [instance, master] : instance, {
      work: async (injected) => {
        if (injected) throw new Error(injected);
        await instance.server?.destroy();
        // The primary would keep WAL for a standby that is gone. Best effort: the replica is gone anyway.
        if (master?.server) await master.server.dropReplicationSlot(applicationNameOf(instance)).catch(() => undefined);
      },
      commit: (error) => {
        if (error) {
          instance.state = previousState === 'PENDING_CREATE' && instance.server ? 'RUNNABLE' : previousState;
          return;
        }
        this.instances.delete(key(project, name));
        this.deletedNames.add(key(project, name));
        // On Cloud SQL an instance's backup runs go with it.
        for (const run of this.backupsOf(project, name)) {
          this.backups.delete(run.id);
          rmSync(run.dir, { recursive: true, force: true });
        }
      },
    });
  }

  /**
   * instances.patch, for what Lifeboat changes: settings.activationPolicy (NEVER stops the instance's
   * server, ALWAYS starts it again; NEVER is refused for a read replica, as on Cloud SQL) and
   * settings.userLabels (replaced as a whole). Any other setting is refused, so a new use fails loudly.
   */
  patchInstance(project: string, name: string, body: Record<string, unknown>): object {
    const instance = this.requireMutable(project, name);
    const patch = isObject(body.settings) ? body.settings : {};
    // The client serializes empty maps and lists of fields the call did not set: those set nothing.
    const unknown = Object.keys(patch).filter(
      (k) => !['activationPolicy', 'userLabels'].includes(k) && !isEmpty(patch[k]),
    );
    const other = Object.keys(body).filter((k) => k !== 'settings' && !isEmpty(body[k]));
    if (unknown.length || other.length) {
      throw badRequest(
        'notFaked',
        `the fake patches settings.activationPolicy and settings.userLabels only; the request also sets ${[...unknown, ...other].join(', ')}`,
      );
    }
    const policy = patch.activationPolicy === undefined ? undefined : activationPolicyName(patch.activationPolicy);
    if (patch.activationPolicy !== undefined && policy !== 'ALWAYS' && policy !== 'NEVER') {
      throw badRequest(
        'invalid',
        `settings.activationPolicy ${JSON.stringify(patch.activationPolicy)} is not served; the fake takes ALWAYS or NEVER`,
      );
    }
    if (policy === 'NEVER' && instance.masterName !== undefined) {
      throw badRequest(
        'invalidOperation',
        `${name} is a read replica: the activation policy NEVER is not supported for read replicas`,
      );
    }
    return this.launch(this.newOperation(project, 'UPDATE', name), instance, {
      work: async (injected) => {
        if (injected) throw new Error(injected);
        if (policy === 'NEVER') await requireServer(instance).stop();
        if (policy === 'ALWAYS') await requireServer(instance).start();
      },
      commit: (error) => {
        if (error) return;
        instance.settings = {
          ...instance.settings,
          ...(policy && { activationPolicy: policy }),
          ...(isObject(patch.userLabels) && { userLabels: patch.userLabels }),
        };
        instance.settingsVersion += 1;
      },
    });
  }

  // ---- backup runs ----

  insertBackupRun(project: string, name: string, body: Record<string, unknown>): object {
    const instance = this.requireMutable(project, name);
    if (instance.masterName !== undefined) {
      throw badRequest(
        'invalidOperation',
        `${name} is a read replica: Cloud SQL backs up the primary (${instance.masterName}), not its replicas`,
      );
    }
    const id = String((this.lastBackupId = Math.max(Date.now(), this.lastBackupId + 1)));
    const run: BackupRun = {
      id,
      project,
      instance: name,
      status: 'ENQUEUED',
      description: typeof body.description === 'string' ? body.description : '',
      enqueuedTime: new Date(),
      dir: join(this.options.dir, 'backups', `${encodeURIComponent(project)}~${name}`, id),
    };
    this.backups.set(id, run);
    const operation = this.newOperation(project, 'BACKUP_VOLUME', name);
    operation.backupId = id;
    return this.launch(operation, instance, {
      work: async (injected) => {
        run.status = 'RUNNING';
        run.startTime = new Date();
        if (injected) throw new Error(injected);
        if (!instance.server) throw new Error(`instance ${name} has no running server to back up`);
        run.dump = await instance.server.dump(run.dir);
      },
      commit: (error) => {
        run.endTime = new Date();
        run.status = error ? 'FAILED' : 'SUCCESSFUL';
        run.error = error;
        if (error) rmSync(run.dir, { recursive: true, force: true });
      },
    });
  }

  listBackupRuns(project: string, name: string, maxResults: number | undefined, pageToken: string | undefined): object {
    this.requireInstance(project, name);
    const all = this.backupsOf(project, name).sort((a, b) => Number(b.id) - Number(a.id));
    const start = pageToken ? Number(pageToken) : 0;
    if (!Number.isInteger(start) || start < 0)
      throw badRequest('invalid', `pageToken ${JSON.stringify(pageToken)} is not one this fake handed out`);
    const end = maxResults && maxResults > 0 ? start + maxResults : all.length;
    return {
      kind: 'sql#backupRunsList',
      items: all.slice(start, end).map(backupRunJson),
      ...(end < all.length && { nextPageToken: String(end) }),
    };
  }

  getBackupRun(project: string, name: string, id: string): object {
    this.requireInstance(project, name);
    return backupRunJson(this.requireBackup(project, name, id));
  }

  /** Retention: deleting a backup run is an operation (BACKUP_VOLUME's counterpart) that removes the dump. */
  deleteBackupRun(project: string, name: string, id: string): object {
    const instance = this.requireMutable(project, name);
    const run = this.requireBackup(project, name, id);
    return this.launch(this.newOperation(project, 'DELETE_BACKUP', name), instance, {
      work: async (injected) => {
        if (injected) throw new Error(injected);
      },
      commit: (error) => {
        if (error) return;
        this.backups.delete(run.id);
        rmSync(run.dir, { recursive: true, force: true });
      },
    });
  }

  // ---- restore ----

  restoreBackup(project: string, target: string, body: Record<string, unknown>): object {
    const context = body.restoreBackupContext;
    if (!isObject(context) || context.backupRunId === undefined || context.backupRunId === '') {
      throw badRequest(
        'invalid',
        'restoreBackupContext.backupRunId is required (the fake does not serve restores from `backup` or `backupdrBackup`)',
      );
    }
    const sourceProject = typeof context.project === 'string' && context.project ? context.project : project;
    const sourceInstance = typeof context.instanceId === 'string' && context.instanceId ? context.instanceId : target;
    const run = this.requireBackup(sourceProject, sourceInstance, String(context.backupRunId));
    if (run.status !== 'SUCCESSFUL' || !run.dump) {
      throw badRequest(
        'invalid',
        `backup run ${run.id} of ${sourceInstance} is ${run.status}; only a SUCCESSFUL backup run can be restored`,
      );
    }
    const dump = run.dump;
    const instance = this.requireMutable(project, target);
    if (instance.masterName !== undefined)
      throw badRequest('invalidOperation', `${target} is a read replica: a backup cannot be restored into a replica`);
    const replicas = this.replicasOf(instance);
    if (replicas.length > 0) {
      throw badRequest(
        'invalidOperation',
        `${target} has read replicas (${replicas.map((r) => r.name).join(', ')}): delete them before restoring a backup into it`,
      );
    }
    return this.launch(this.newOperation(project, 'RESTORE_VOLUME', target), instance, {
      work: async (injected) => {
        if (!instance.server) throw new Error(`instance ${target} has no running server to restore into`);
        await instance.server.restore(dump, injected);
      },
      commit: () => undefined,
    });
  }

  // ---- replication and HA ----

  /**
   * Makes a read replica a standalone primary. With `failover` (a DR replica failover) the former
   * primary is then rebuilt as a replica of it (pg_rewind drops whatever it wrote that had not
   * streamed yet); without, the former primary stays a primary of its own.
   */
  promoteReplica(project: string, name: string, failover: boolean): object {
    const { replica, master } = this.requireReplica(project, name);
    if (failover) this.requireOnlyReplica(replica, master, 'fails over to a replica');
    const progress = { promoted: false, rebuilt: false };
    return this.launch(this.newOperation(project, 'PROMOTE_REPLICA', name), [replica, master], {
      work: async (injected) => {
        if (injected) throw new Error(injected);
        const [server, masterServer] = [requireServer(replica), requireServer(master)];
        await server.promote();
        progress.promoted = true;
        await masterServer.dropReplicationSlot(applicationNameOf(replica)).catch(() => undefined);
        if (failover) {
          await masterServer.follow(server, serverName(master), applicationNameOf(master));
          progress.rebuilt = true;
        }
      },
      commit: () => {
        if (!progress.promoted) return;
        delete replica.masterName;
        if (progress.rebuilt) master.masterName = replica.name;
      },
    });
  }

  /**
   * A planned role swap with no data loss: the primary is fenced (read-only, sessions ended), the
   * replica replays up to the primary's last write (within `dbTimeout`), is promoted, and the former
   * primary is rewound into a streaming replica of it. A failure before the promotion lifts the fence
   * and leaves the roles as they were.
   */
  switchover(project: string, name: string, dbTimeout: string | undefined): object {
    const { replica, master } = this.requireReplica(project, name);
    this.requireOnlyReplica(replica, master, 'switches over');
    const timeoutMs =
      dbTimeout === undefined || dbTimeout === '' ? DEFAULT_SWITCHOVER_TIMEOUT_MS : durationMs(dbTimeout);
    const progress = { promoted: false, rebuilt: false };
    return this.launch(this.newOperation(project, 'SWITCHOVER', name), [replica, master], {
      work: async (injected) => {
        const [server, masterServer] = [requireServer(replica), requireServer(master)];
        try {
          const finalLsn = await masterServer.fence();
          await server.waitForReplay(finalLsn, AbortSignal.timeout(timeoutMs)).catch((err: unknown) => {
            throw new Error(
              `${name} did not replay ${master.name}'s last write (${finalLsn}) within ${timeoutMs} ms: ${(err as Error).message}`,
            );
          });
          if (injected) throw new Error(injected);
          await server.promote();
        } catch (err) {
          // Nothing was promoted: the primary takes writes again, the replica still follows it.
          await masterServer.unfence().catch(() => undefined);
          throw err;
        }
        progress.promoted = true;
        await masterServer.dropReplicationSlot(applicationNameOf(replica)).catch(() => undefined);
        await masterServer.follow(server, serverName(master), applicationNameOf(master)).catch((err: unknown) => {
          throw new Error(
            `${name} is the primary now, but ${master.name} (fenced, read-only) could not be made its replica: ${(err as Error).message}`,
          );
        });
        progress.rebuilt = true;
      },
      commit: () => {
        if (!progress.promoted) return;
        delete replica.masterName;
        if (progress.rebuilt) master.masterName = replica.name;
      },
    });
  }

  /**
   * A regional HA failover: the instance's server goes down and comes back in the other zone. The
   * caller passes the settingsVersion it last read (Cloud SQL's optimistic check); it goes up by one.
   */
  failover(project: string, name: string, body: Record<string, unknown>): object {
    const instance = this.requireMutable(project, name);
    const context = isObject(body.failoverContext) ? body.failoverContext : {};
    const given = context.settingsVersion;
    if (given === undefined || String(given) !== String(instance.settingsVersion)) {
      throw badRequest(
        'invalid',
        `failoverContext.settingsVersion is ${JSON.stringify(given)}; the current settingsVersion of ${name} is ${instance.settingsVersion}: read the instance again and retry`,
      );
    }
    if (availabilityTypeName(instance.settings.availabilityType) !== 'REGIONAL') {
      throw badRequest(
        'invalidOperation',
        `${name} is not configured for high availability (settings.availabilityType is not REGIONAL): it has no standby zone to fail over to`,
      );
    }
    return this.launch(this.newOperation(project, 'FAILOVER', name), instance, {
      work: async (injected) => {
        if (injected) throw new Error(injected);
        await requireServer(instance).restart();
      },
      commit: (error) => {
        if (error) return;
        instance.settingsVersion += 1;
        instance.zone = instance.zone === 0 ? 1 : 0;
      },
    });
  }

  // ---- operations ----

  /** operations.list of one instance, newest first (no paging: the fake's lists are short). */
  listOperations(project: string, instance: string | undefined): object {
    if (!instance) throw badRequest('required', 'the fake lists the operations of one instance: pass `instance`');
    const items = [...this.operationsByName.values()]
      .filter((o) => o.project === project && o.targetId === instance)
      .sort((a, b) => b.insertTime.getTime() - a.insertTime.getTime())
      .map(operationJson);
    return { kind: 'sql#operationsList', items };
  }

  getOperation(project: string, name: string): object {
    const operation = this.operationsByName.get(name);
    if (!operation || operation.project !== project)
      throw notFound('operationDoesNotExist', `The Cloud SQL operation ${name} does not exist in project ${project}.`);
    return operationJson(operation);
  }

  /** Waits for every operation in flight, then removes every cluster the fake started (replicas first). */
  async close(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
    const all = [...this.instances.values()].sort(
      (a, b) => Number(a.masterName === undefined) - Number(b.masterName === undefined),
    );
    for (const instance of all) await instance.server?.destroy();
    this.instances.clear();
  }

  /** The replica is a new cluster streaming from the master's; both wait for each other's earlier operations. */
  private createReplica(instance: Instance, master: Instance): object {
    const { project, name } = instance;
    return this.launch(this.newOperation(project, 'CREATE', name), [instance, master], {
      work: async (injected) => {
        if (injected) throw new Error(injected);
        instance.server = await InstanceServer.createReplica(
          instance.root,
          this.options.pgBin,
          serverName(instance),
          requireServer(master),
          applicationNameOf(instance),
        );
      },
      commit: (error) => {
        if (error) this.instances.delete(key(project, name));
        else if (instance.state === 'PENDING_CREATE') instance.state = 'RUNNABLE';
      },
    });
  }

  private newOperation(project: string, type: OperationType, targetId: string): Operation {
    const operation: Operation = {
      name: randomUUID(),
      project,
      type,
      targetId,
      status: 'PENDING',
      insertTime: new Date(),
    };
    this.operationsByName.set(operation.name, operation);
    return operation;
  }

  /**
   * Queues `work` behind the instance's earlier operations. `work` gets the failNext message, if
   * one is pending for this type, and decides how far to get before failing with it. `commit` makes
   * the outcome visible at the same moment the operation turns DONE.
   */
  private launch(
    operation: Operation,
    on: Instance | Instance[],
    steps: { work: (injected: string | undefined) => Promise<void>; commit: (error: string | undefined) => void },
  ): object {
    const injected = this.failures.get(operation.type)?.shift();
    const held = this.holds.get(operation.type)?.shift();
    const instances = Array.isArray(on) ? on : [on];
    const previous = Promise.all(instances.map((i) => i.queue));
    const done = (async () => {
      await previous;
      operation.status = 'RUNNING';
      operation.startTime = new Date();
      const minimum = sleep(Math.max(0, operation.insertTime.getTime() + this.options.opDelayMs - Date.now()));
      let error: string | undefined;
      try {
        await steps.work(injected);
      } catch (err) {
        error = (err as Error).message || String(err);
      }
      await minimum;
      await held;
      try {
        steps.commit(error);
      } catch (err) {
        error ??= `the fake could not record the outcome: ${(err as Error).message}`;
      }
      operation.error = error;
      operation.endTime = new Date();
      operation.status = 'DONE';
    })();
    for (const instance of instances) instance.queue = done;
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
    return operationJson(operation);
  }

  private requireInstance(project: string, name: string): Instance {
    const instance = this.instances.get(key(project, name));
    if (!instance) throw notFound('instanceDoesNotExist', `The Cloud SQL instance ${project}:${name} does not exist.`);
    return instance;
  }

  /** An instance that takes new operations: not one being deleted. */
  private requireMutable(project: string, name: string): Instance {
    const instance = this.requireInstance(project, name);
    if (instance.state === 'PENDING_DELETE') {
      throw new ApiError(
        409,
        'FAILED_PRECONDITION',
        'invalidState',
        `The instance or operation is not in an appropriate state to handle the request: ${name} is PENDING_DELETE.`,
      );
    }
    return instance;
  }

  /** A read replica and its primary, for promoteReplica and switchover: 400 for an instance that is no replica. */
  private requireReplica(project: string, name: string): { replica: Instance; master: Instance } {
    const replica = this.requireMutable(project, name);
    if (replica.masterName === undefined) {
      throw badRequest(
        'invalidOperation',
        `The instance ${project}:${name} is not a read replica (instanceType CLOUD_SQL_INSTANCE).`,
      );
    }
    return { replica, master: this.requireMutable(project, replica.masterName) };
  }

  /** The former primary will follow the promoted replica: its other replicas would be cascading ones, which the fake does not serve. */
  private requireOnlyReplica(replica: Instance, master: Instance, what: string): void {
    const siblings = this.replicasOf(master).filter((r) => r !== replica);
    if (siblings.length > 0) {
      throw badRequest(
        'invalidOperation',
        `${master.name} has other replicas (${siblings.map((r) => r.name).join(', ')}): the fake ${what} only from a primary with a single replica`,
      );
    }
  }

  /** The primary named by a new replica's masterInstanceName: same project, itself no replica. */
  private requireMaster(project: string, masterInstanceName: string): Instance {
    // Cloud SQL also takes "project:instance"; the fake serves same-project replicas only.
    const [masterProject, masterName] = masterInstanceName.includes(':')
      ? masterInstanceName.split(':', 2)
      : [project, masterInstanceName];
    if (masterProject !== project) {
      throw badRequest(
        'invalid',
        `masterInstanceName ${masterInstanceName} is in another project; the fake serves replicas of a primary in the same project (${project}) only`,
      );
    }
    const master = this.requireMutable(project, masterName!);
    if (master.masterName !== undefined) {
      throw badRequest(
        'invalid',
        `${master.name} is itself a read replica (of ${master.masterName}); the fake does not serve cascading replicas`,
      );
    }
    return master;
  }

  private replicasOf(instance: Instance): Instance[] {
    return [...this.instances.values()].filter((i) => i.project === instance.project && i.masterName === instance.name);
  }

  private requireBackup(project: string, name: string, id: string): BackupRun {
    const run = this.backups.get(id);
    if (!run || run.project !== project || run.instance !== name) {
      throw notFound('backupRunDoesNotExist', `The backup run ${id} of instance ${project}:${name} does not exist.`);
    }
    return run;
  }

  private backupsOf(project: string, name: string): BackupRun[] {
    return [...this.backups.values()].filter((b) => b.project === project && b.instance === name);
  }

  private instanceJson(i: Instance): object {
    const settings = i.settings;
    const regional = availabilityTypeName(settings.availabilityType) === 'REGIONAL';
    return {
      kind: 'sql#instance',
      name: i.name,
      project: i.project,
      state: i.state,
      databaseVersion: i.databaseVersion,
      region: i.region,
      gceZone: `${i.region}-${ZONES[i.zone]}`,
      // An HA instance's standby zone: where the next failover moves it.
      ...(regional && { secondaryGceZone: `${i.region}-${ZONES[1 - i.zone]}` }),
      backendType: 'SECOND_GEN',
      instanceType: i.masterName === undefined ? 'CLOUD_SQL_INSTANCE' : 'READ_REPLICA_INSTANCE',
      connectionName: `${i.project}:${i.region}:${i.name}`,
      selfLink: `${BASE}/projects/${i.project}/instances/${i.name}`,
      createTime: rfc3339(i.createTime),
      // Request enums were numbers; numbers decode in a response too, so the rest is echoed as sent.
      settings: {
        ...settings,
        kind: 'sql#settings',
        tier: typeof settings.tier === 'string' ? settings.tier : 'db-custom-1-3840',
        userLabels: isObject(settings.userLabels) ? settings.userLabels : {},
        availabilityType: availabilityTypeName(settings.availabilityType) ?? 'ZONAL',
        activationPolicy: settings.activationPolicy ?? 'ALWAYS',
        ipConfiguration: isObject(settings.ipConfiguration) ? settings.ipConfiguration : { ipv4Enabled: false },
        settingsVersion: String(i.settingsVersion),
      },
      // The fake has no networking: every instance is a local server on 127.0.0.1 (see portOf).
      ipAddresses: i.server ? [{ type: 'PRIVATE', ipAddress: '127.0.0.1' }] : [],
      masterInstanceName: i.masterName ?? '',
      ...(i.masterName !== undefined && {
        replicaConfiguration: { kind: 'sql#replicaConfiguration', failoverTarget: false },
      }),
      replicaNames: this.replicasOf(i).map((r) => r.name),
    };
  }
}

function operationJson(o: Operation): object {
  return {
    kind: 'sql#operation',
    name: o.name,
    status: o.status,
    operationType: o.type,
    targetId: o.targetId,
    targetProject: o.project,
    targetLink: `${BASE}/projects/${o.project}/instances/${o.targetId}`,
    selfLink: `${BASE}/projects/${o.project}/operations/${o.name}`,
    user: 'lifeboat-test@fake.invalid',
    insertTime: rfc3339(o.insertTime),
    ...(o.startTime && { startTime: rfc3339(o.startTime) }),
    ...(o.endTime && { endTime: rfc3339(o.endTime) }),
    ...(o.error !== undefined && {
      error: {
        kind: 'sql#operationErrors',
        errors: [{ kind: 'sql#operationError', code: 'INTERNAL_ERROR', message: o.error }],
      },
    }),
    ...(o.backupId && { backupContext: { kind: 'sql#backupContext', backupId: o.backupId } }),
  };
}

function backupRunJson(b: BackupRun): object {
  return {
    kind: 'sql#backupRun',
    id: b.id,
    status: b.status,
    type: 'ON_DEMAND',
    backupKind: 'SNAPSHOT',
    instance: b.instance,
    description: b.description,
    location: 'us',
    enqueuedTime: rfc3339(b.enqueuedTime),
    ...(b.startTime && { startTime: rfc3339(b.startTime) }),
    ...(b.endTime && { endTime: rfc3339(b.endTime) }),
    ...(b.error !== undefined && { error: { kind: 'sql#operationError', code: 'INTERNAL_ERROR', message: b.error } }),
    selfLink: `${BASE}/projects/${b.project}/instances/${b.instance}/backupRuns/${b.id}`,
  };
}

function key(project: string, name: string): string {
  return `${project}/${name}`;
}

/** The name the instance's cluster records for itself (LocalCluster state). */
function serverName(i: Instance): string {
  return `${i.project}:${i.name}`;
}

/**
 * What the instance calls itself when it streams from a primary, and so (slotName) its slot there.
 * From the name alone: a former primary that later follows uses the same one.
 */
function applicationNameOf(i: Instance): string {
  return `cloudsql_${i.name.replace(/-/g, '_')}`.slice(0, 63);
}

function requireServer(i: Instance): InstanceServer {
  if (!i.server) throw new Error(`instance ${i.name} has no running server`);
  return i.server;
}

/** A google.protobuf.Duration in its JSON/query form ("30s", "1.5s"), in milliseconds. */
function durationMs(value: string): number {
  const match = /^(\d+(?:\.\d+)?)s$/.exec(value);
  if (!match)
    throw badRequest('invalid', `dbTimeout ${JSON.stringify(value)} is not a duration; expected seconds such as "30s"`);
  return Math.round(Number(match[1]) * 1000);
}

function isEmpty(value: unknown): boolean {
  return (
    value === null ||
    value === '' ||
    (Array.isArray(value) && value.length === 0) ||
    (isObject(value) && Object.keys(value).length === 0)
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
