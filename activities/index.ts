// Every activity Lifeboat's runbooks call, built from injected dependencies. One side effect per
// activity, each idempotent: names of what they create come from the workflow, so a retry finds
// what the first attempt made. The runbooks import only the type of what this returns.
import {
  ErrorType,
  type BackupRef,
  type Canary,
  type CheckResult,
  type DatabaseTarget,
  type RegionSpec,
  type RestoreVerification,
  type ScratchInstance,
  type SqlCheck,
} from '../workflows/types';
import { verdict } from './errors';
import { connectOrExplain, verifyAgainstManifest } from './restore-checks';
import { listTables, serverVersion, withClient, writeCanary } from './pg/sql';
import { wire, type ActivityDeps } from './deps';
import { createReplicationActivities } from './replication';
import { createCrossCloudActivities } from './cross-cloud';
import { createReadinessActivities } from './readiness';
import { sendNotification, type Notification } from './notify';

export type { ActivityDeps } from './deps';

export function createActivities(deps: ActivityDeps) {
  const { activity, provider, portable } = wire(deps);
  return {
    ...createReplicationActivities(deps),
    ...createReadinessActivities(deps),
    ...createCrossCloudActivities(deps),

    /** The primary is reachable, the database exists; reports its version and size. */
    preflight: activity('preflight', async ({ target }: { target: DatabaseTarget }) => {
      const conn = await connectOrExplain(provider(target.region), target);
      return withClient(conn, async (client) => {
        const version = await serverVersion(client);
        const tables = await listTables(client);
        const size = await client.query<{ bytes: string }>('select pg_database_size(current_database()) as bytes');
        return {
          serverVersion: version.version,
          serverVersionNum: version.num,
          tables: tables.length,
          sizeBytes: Number(size.rows[0]?.bytes ?? 0),
        };
      });
    }),

    /** One timestamped canary row on the primary; the token makes a retry find the same row. */
    writeCanary: activity(
      'writeCanary',
      async ({ target, token }: { target: DatabaseTarget; token: string }): Promise<Canary> => {
        const conn = await connectOrExplain(provider(target.region), target);
        return withClient(conn, (client) => writeCanary(client, token));
      },
    ),

    /** The platform's own backup, or with `portable` a pg_dump into the region's object store. */
    createBackup: activity(
      'createBackup',
      async (
        {
          target,
          backupId,
          createdBy,
          portable: inStore,
        }: { target: DatabaseTarget; backupId: string; createdBy: string; portable?: boolean },
        io,
      ): Promise<BackupRef> => {
        const p = provider(target.region);
        if (!inStore) return p.createBackup(target, backupId, createdBy, io);
        return portable().create(await connectOrExplain(p, target), target.region, p.kind, backupId, createdBy, io);
      },
    ),

    /** Checksum and manifest of a stored backup or copy. */
    verifyBackup: activity('verifyBackup', async ({ ref, region }: { ref: BackupRef; region: RegionSpec }, io) => {
      const manifest = ref.store ? await portable().verify(ref, io) : await provider(region).verifyBackup(ref, io);
      return { sha256: manifest.sha256, tables: manifest.tables.length, newestCanary: manifest.newestCanary };
    }),

    /** Same platform: its own copy (a snapshot copy, a file copy). Portable: store to store, across clouds. */
    copyBackupToRegion: activity(
      'copyBackupToRegion',
      async ({ ref, from, to }: { ref: BackupRef; from: RegionSpec; to: RegionSpec }, io): Promise<BackupRef> => {
        if (ref.store) return portable().copy(ref, to, io);
        if (from.provider !== to.provider) {
          throw verdict(
            ErrorType.InvalidInput,
            `cannot copy a ${from.provider} backup into ${to.name} (${to.provider}); cross-provider copies need a portable backup`,
          );
        }
        return provider(to).copyBackup(ref, to, io);
      },
    ),

    findLatestBackup: activity(
      'findLatestBackup',
      async ({
        region,
        database,
        portable: inStore,
      }: {
        region: RegionSpec;
        database: string;
        portable?: boolean;
      }): Promise<BackupRef> => {
        const [newest] = inStore
          ? await portable().list(region, database)
          : await provider(region).listBackups(region, database);
        if (!newest) {
          const where = inStore ? `the store of region ${region.name}` : `region ${region.name}`;
          throw verdict(
            ErrorType.BackupNotFound,
            `no Lifeboat ${inStore ? 'portable ' : ''}backup of ${database} in ${where}; run \`lifeboat backup ${database}\` first`,
          );
        }
        return newest;
      },
    ),

    createScratchInstance: activity(
      'createScratchInstance',
      async (
        { region, name, database, credentials, portable: forPortable }: ScratchInstance,
        io,
      ): Promise<ScratchInstance> =>
        provider(region).createScratch(region, name, database, io, forPortable ? credentials : undefined),
    ),

    /** `findings`: the objects a logical restore could not restore (as a role without superuser), by name. */
    restoreBackup: activity(
      'restoreBackup',
      async (
        { ref, scratch }: { ref: BackupRef; scratch: ScratchInstance },
        io,
      ): Promise<{ restored: string; findings: CheckResult[] }> => {
        const p = provider(scratch.region);
        const findings = ref.store
          ? (await portable().restoreInto(ref, await p.connectScratch(scratch), { kind: 'scratch' }, io)).findings
          : ((await p.restore(ref, scratch, io)) ?? []);
        return { restored: ref.backupId, findings };
      },
    ),

    /** Every table against the manifest (rows and content), the plan's checks, and the newest canary. */
    verifyRestore: activity(
      'verifyRestore',
      async (
        { ref, scratch, checks }: { ref: BackupRef; scratch: ScratchInstance; checks: SqlCheck[] },
        io,
      ): Promise<RestoreVerification> => {
        const p = provider(scratch.region);
        const manifest = ref.store ? await portable().manifest(ref) : await p.restoredManifest(ref, scratch);
        return verifyAgainstManifest(await p.connectScratch(scratch), manifest, checks, io);
      },
    ),

    /** One notification to the configured webhook; sent: false when none is configured. */
    notify: activity('notify', async (note: Notification, io) => sendNotification(deps.notify ?? {}, note, io)),

    dropScratchInstance: activity('dropScratchInstance', async ({ scratch }: { scratch: ScratchInstance }, io) => ({
      existed: await provider(scratch.region).dropScratch(scratch, io),
    })),

    /** Deletes Lifeboat-made backups beyond the newest `keep`; never touches anything else. */
    pruneBackups: activity(
      'pruneBackups',
      async ({
        region,
        database,
        keep,
        portable: inStore,
      }: {
        region: RegionSpec;
        database: string;
        keep: number;
        portable?: boolean;
      }) => {
        const store = inStore ? portable() : null;
        const backups = store
          ? await store.list(region, database)
          : await provider(region).listBackups(region, database);
        const doomed = backups.slice(Math.max(keep, 1));
        for (const ref of doomed) await (store ? store.delete(ref) : provider(region).deleteBackup(ref));
        return { deleted: doomed.map((r) => r.backupId), kept: backups.length - doomed.length };
      },
    ),
  };
}

export type Activities = ReturnType<typeof createActivities>;
