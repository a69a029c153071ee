// Cross-cloud failover and failback activities (the runbook is workflows/cross-cloud.ts). No
// replication crosses clouds, so these act on one database, over SQL, on any provider: fence it,
// restore a portable backup into the other side's instance, check it, and record where it now lives.
import {
  ErrorType,
  type BackupRef,
  type DatabaseTarget,
  type NodeRef,
  type RestoreVerification,
  type SqlCheck,
  type TopologyView,
} from '../workflows/types';
import { isVerdict, verdict } from './errors';
import { quoteIdent, serverVersion, withClient } from './pg/sql';
import { wire, type ActivityDeps } from './deps';
import { connectOrExplain, verifyAgainstManifest } from './restore-checks';
import { TopologyConflictError } from './topology';

/** The record of where a cross-cloud database is served: a topology record of its own. */
export function recordNameOf(database: string): string {
  return `xc-${database}`;
}

export function createCrossCloudActivities(deps: ActivityDeps) {
  const { activity, provider, portable, topologies: store } = wire(deps);
  return {
    /** The server behind a target answers (its database may not exist yet: a recovery creates it). */
    preflightServer: activity('preflightServer', async ({ target }: { target: DatabaseTarget }) => {
      const conn = await connectOrExplain(provider(target.region), { ...target, database: 'postgres' });
      return withClient(conn, async (client) => {
        const version = await serverVersion(client);
        const exists = await client.query('select 1 from pg_database where datname = $1', [target.database]);
        return {
          serverVersion: version.version,
          serverVersionNum: version.num,
          databaseExists: (exists.rowCount ?? 0) > 0,
        };
      });
    }),

    /**
     * Makes one database read-only by default and ends its sessions; confirmed from a new session.
     * Unplanned: an unreachable server is recorded as not fenced, never waited on.
     */
    fenceDatabase: activity(
      'fenceDatabase',
      async ({ target, mode }: { target: DatabaseTarget; mode: 'planned' | 'unplanned' }) => {
        try {
          const conn = {
            ...(await provider(target.region).connect(target)),
            connectTimeoutMs: mode === 'planned' ? 10_000 : 5_000,
          };
          await withClient(conn, async (c) => {
            await c.query('set default_transaction_read_only = off');
            await c.query(`alter database ${quoteIdent(target.database)} set default_transaction_read_only = on`);
            await c.query(
              `select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()`,
            );
          });
          const readOnly = await withClient(
            conn,
            async (c) =>
              (await c.query<{ ro: string }>(`select current_setting('default_transaction_read_only') as ro`)).rows[0]!
                .ro === 'on',
          );
          // Soft, as on RDS: a session can still SET default_transaction_read_only = off (README).
          return {
            confirmed: readOnly,
            how: `${target.database} read-only by default (ALTER DATABASE, a soft fence), its sessions ended`,
          };
        } catch (err) {
          if (mode === 'planned' || isVerdict(err)) throw err;
          return {
            confirmed: false,
            how: `not confirmed: ${target.region.name} unreachable (${(err as Error).message}); keep it from taking writes before it returns`,
          };
        }
      },
    ),

    unfenceDatabase: activity('unfenceDatabase', async ({ target }: { target: DatabaseTarget }) => {
      await withClient(await provider(target.region).connect(target), async (c) => {
        await c.query('set default_transaction_read_only = off');
        await c.query(`alter database ${quoteIdent(target.database)} reset default_transaction_read_only`);
      });
      return { existed: true };
    }),

    /**
     * A portable backup restored into the target's instance. The target database, if it exists, is
     * renamed aside (kept), unless this run made it (`marker`), when it is redone.
     */
    restoreForRecovery: activity(
      'restoreForRecovery',
      async (
        {
          ref,
          target,
          marker,
          asideName,
        }: { ref: BackupRef; target: DatabaseTarget; marker: string; asideName: string },
        io,
      ) => {
        const conn = await provider(target.region).connect(target);
        return portable().restoreInto(ref, conn, { kind: 'recovery', marker, asideName }, io);
      },
    ),

    /** The recovered database against the backup's manifest, table by table, and the plan's checks. */
    verifyRecovered: activity(
      'verifyRecovered',
      async (
        { ref, target, checks }: { ref: BackupRef; target: DatabaseTarget; checks: SqlCheck[] },
        io,
      ): Promise<RestoreVerification> =>
        verifyAgainstManifest(
          await connectOrExplain(provider(target.region), target),
          await portable().manifest(ref),
          checks,
          io,
        ),
    ),

    /** Where the database is served now, as the last cross-cloud runbook recorded it (null: never moved). */
    readRecoveryRecord: activity(
      'readRecoveryRecord',
      async ({ database }: { database: string }): Promise<TopologyView | null> => store().read(recordNameOf(database)),
    ),

    /** Moves the pointer clients resolve the database from; the same state again is a no-op. */
    recordRecovery: activity(
      'recordRecovery',
      async ({
        database,
        primary,
        fenced,
        expectedEpoch,
        by,
      }: {
        database: string;
        primary: NodeRef;
        fenced: NodeRef[];
        expectedEpoch: number;
        by: string;
      }): Promise<TopologyView> => {
        const name = recordNameOf(database);
        const current = store().read(name);
        if (
          current &&
          current.epoch === expectedEpoch + 1 &&
          current.updatedBy === by &&
          sameNode(current.primary, primary)
        )
          return current; // a retry
        try {
          return store().write({ set: name, primary, standby: null, fenced, updatedBy: by }, expectedEpoch);
        } catch (err) {
          if (err instanceof TopologyConflictError) throw verdict(ErrorType.TopologyConflict, err.message);
          throw err;
        }
      },
    ),
  };
}

function sameNode(a: NodeRef | null, b: NodeRef): boolean {
  return Boolean(a && a.region === b.region && a.name === b.name);
}
