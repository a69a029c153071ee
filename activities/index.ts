// Every activity Lifeboat's runbooks call, built from injected dependencies. One side effect per
// activity, each idempotent: names of what they create come from the workflow, so a retry finds
// what the first attempt made. The runbooks import only the type of what this returns.
import type { Logger } from 'pino';
import {
  ErrorType,
  type BackupRef,
  type Canary,
  type CheckResult,
  type DatabaseTarget,
  type ProviderKind,
  type RegionSpec,
  type RestoreVerification,
  type ScratchInstance,
  type SqlCheck,
} from '../workflows/types';
import { verdict } from './errors';
import { allTableStats, listTables, newestCanary, runChecks, serverVersion, withClient, writeCanary } from './pg/sql';
import type { ActivityIo, DatabaseProvider } from './providers/provider';
import { instrument } from './instrument';
import { createReplicationActivities } from './replication';
import type { CanaryLedger } from './canary-ledger';
import type { Client } from '@temporalio/client';

export interface ActivityDeps {
  providers: Partial<Record<ProviderKind, DatabaseProvider>>;
  logger: Logger;
  /** The acknowledged-canary log (failover RPO, failback's nothing-lost check). */
  ledger: CanaryLedger;
  /** For the activities that act on other runs (a failover cancels drills of its database). */
  temporal?: () => Promise<Client>;
}

export function createActivities(deps: ActivityDeps) {
  const provider = (region: RegionSpec): DatabaseProvider => {
    const found = deps.providers[region.provider];
    if (!found) {
      throw verdict(ErrorType.InvalidInput, `region ${region.name} uses provider ${region.provider}, which this worker was not configured with`);
    }
    return found;
  };
  const activity = <I, O>(name: string, body: (input: I, io: ActivityIo) => Promise<O>) => instrument(deps.logger, name, body);

  return {
    ...createReplicationActivities(deps, provider, activity),

    /** The primary is reachable, the database exists; reports its version and size. */
    preflight: activity('preflight', async ({ target }: { target: DatabaseTarget }) => {
      const conn = await connectOrExplain(provider(target.region), target);
      return withClient(conn, async (client) => {
        const version = await serverVersion(client);
        const tables = await listTables(client);
        const size = await client.query<{ bytes: string }>('select pg_database_size(current_database()) as bytes');
        return { serverVersion: version.version, tables: tables.length, sizeBytes: Number(size.rows[0]?.bytes ?? 0) };
      });
    }),

    /** One timestamped canary row on the primary; the token makes a retry find the same row. */
    writeCanary: activity('writeCanary', async ({ target, token }: { target: DatabaseTarget; token: string }): Promise<Canary> => {
      const conn = await connectOrExplain(provider(target.region), target);
      return withClient(conn, (client) => writeCanary(client, token));
    }),

    createBackup: activity(
      'createBackup',
      async ({ target, backupId, createdBy }: { target: DatabaseTarget; backupId: string; createdBy: string }, io): Promise<BackupRef> =>
        provider(target.region).createBackup(target, backupId, createdBy, io),
    ),

    /** Checksum and manifest of a stored backup or copy. */
    verifyBackup: activity('verifyBackup', async ({ ref, region }: { ref: BackupRef; region: RegionSpec }, io) => {
      const manifest = await provider(region).verifyBackup(ref, io);
      return { sha256: manifest.sha256, tables: manifest.tables.length, newestCanary: manifest.newestCanary };
    }),

    copyBackupToRegion: activity(
      'copyBackupToRegion',
      async ({ ref, from, to }: { ref: BackupRef; from: RegionSpec; to: RegionSpec }, io): Promise<BackupRef> => {
        if (from.provider !== to.provider) {
          throw verdict(ErrorType.InvalidInput, `cannot copy a ${from.provider} backup into ${to.name} (${to.provider}); cross-provider copies need a portable backup`);
        }
        return provider(to).copyBackup(ref, to, io);
      },
    ),

    findLatestBackup: activity('findLatestBackup', async ({ region, database }: { region: RegionSpec; database: string }): Promise<BackupRef> => {
      const [newest] = await provider(region).listBackups(region, database);
      if (!newest) throw verdict(ErrorType.BackupNotFound, `no Lifeboat backup of ${database} in region ${region.name}; run \`lifeboat backup ${database}\` first`);
      return newest;
    }),

    createScratchInstance: activity(
      'createScratchInstance',
      async ({ region, name, database }: { region: RegionSpec; name: string; database: string }, io): Promise<ScratchInstance> =>
        provider(region).createScratch(region, name, database, io),
    ),

    restoreBackup: activity('restoreBackup', async ({ ref, scratch }: { ref: BackupRef; scratch: ScratchInstance }, io) => {
      await provider(scratch.region).restore(ref, scratch, io);
      return { restored: ref.backupId };
    }),

    /** Every table against the manifest (rows and content), the plan's checks, and the newest canary. */
    verifyRestore: activity(
      'verifyRestore',
      async ({ ref, scratch, checks }: { ref: BackupRef; scratch: ScratchInstance; checks: SqlCheck[] }, io): Promise<RestoreVerification> => {
        const p = provider(scratch.region);
        const manifest = await p.restoredManifest(ref, scratch);
        const conn = await p.connectScratch(scratch);
        return withClient(conn, (client) =>
          withClient(conn, async (second) => {
            const present = new Set(await listTables(client));
            const algorithms = new Map(manifest.tables.map((t) => [quoteQualified(t.table), t.algorithm ?? ('md5-text' as const)]));
            const quoted = [...algorithms.keys()].filter((q) => present.has(q));
            const stats = await allTableStats([client, second], quoted, {
              algorithms,
              onTable: (done) => io.heartbeat({ phase: 'table checksums', done }),
            });
            const found = new Map(stats.map((s) => [s.table, s]));
            // An RDS manifest is read moments before the snapshot is taken: say so where it could matter.
            const snapshotWindow = manifest.dumpFormat === 'rds-snapshot' ? ' (or the table was written between the manifest and the snapshot)' : '';
            const tables: CheckResult[] = manifest.tables.map((want) => {
              const got = found.get(want.table);
              if (!got) return { name: want.table, ok: false, detail: 'missing from the restored database' };
              if (got.rows !== want.rows) return { name: want.table, ok: false, detail: `${got.rows} rows; the backup had ${want.rows}${snapshotWindow}` };
              if (got.checksum !== want.checksum) return { name: want.table, ok: false, detail: `${got.rows} rows but content checksum differs from the backup's${snapshotWindow}` };
              return { name: want.table, ok: true, detail: `${got.rows} rows, checksum matches` };
            });
            if (tables.length === 0) tables.push({ name: '(tables)', ok: false, detail: 'the manifest lists no tables: nothing was verified' });
            const checkResults = await runChecks(client, checks);
            return { tables, checks: checkResults, newestCanary: await newestCanary(client) };
          }),
        );
      },
    ),

    dropScratchInstance: activity('dropScratchInstance', async ({ scratch }: { scratch: ScratchInstance }) => ({
      existed: await provider(scratch.region).dropScratch(scratch),
    })),

    /** Deletes Lifeboat-made backups beyond the newest `keep`; never touches anything else. */
    pruneBackups: activity('pruneBackups', async ({ region, database, keep }: { region: RegionSpec; database: string; keep: number }) => {
      const p = provider(region);
      const backups = await p.listBackups(region, database);
      const doomed = backups.slice(Math.max(keep, 1));
      for (const ref of doomed) await p.deleteBackup(ref);
      return { deleted: doomed.map((r) => r.backupId), kept: backups.length - doomed.length };
    }),
  };
}

export type Activities = ReturnType<typeof createActivities>;

function quoteQualified(name: string): string {
  const dot = name.indexOf('.');
  const quote = (part: string): string => `"${part.replace(/"/g, '""')}"`;
  return `${quote(name.slice(0, dot))}.${quote(name.slice(dot + 1))}`;
}

async function connectOrExplain(p: DatabaseProvider, target: DatabaseTarget) {
  const conn = await p.connect(target);
  try {
    await withClient(conn, async () => undefined);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === '3D000') {
      throw verdict(ErrorType.DatabaseNotFound, `database ${target.database} does not exist in region ${target.region.name}`);
    }
    throw new Error(`cannot reach ${target.database} in ${target.region.name} at ${conn.host}:${conn.port}: ${(err as Error).message}`);
  }
  return conn;
}
