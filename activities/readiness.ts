// Readiness activities: read-only looks at what a recovery would need, run on a schedule between
// drills (workflows/readiness.ts). Each measures one thing and, where the worker exports metrics,
// publishes it (the newest backup's age, the standby's lag), so a dashboard shows the same figures.
import { ErrorType, type CheckResult, type NodeRef, type RegionSpec, type ReplicaSetSpec } from '../workflows/types';
import { OutcomeAttr } from '../workflows/search-attributes';
import { drillRunsQuery, listRuns, stringAttribute } from './visibility';
import { wire, type ActivityDeps } from './deps';
import { isVerdict } from './errors';
import { sweepScratch, type SweepOutcome } from './scratch-sweep';

export interface NewestBackup {
  backupId: string;
  createdAt: string;
  ageSeconds: number;
}

export interface StandbyHealth {
  standby: NodeRef | null;
  reachable: boolean;
  streaming: boolean | null;
  lagSeconds: number | null;
  lagBytes: number | null;
  detail: string;
}

export interface DrillSighting {
  workflowId: string;
  closedAt: string;
  outcome: string;
}

export function createReadinessActivities(deps: ActivityDeps) {
  const { activity, provider, portable, temporal } = wire(deps);
  return {
    /**
     * The newest Lifeboat backup of a database in one region, or null. Listing is also the proof that
     * this region's worker runs and reaches the platform (or the store): a failure here is drift.
     */
    newestBackup: activity(
      'newestBackup',
      async ({
        region,
        database,
        portable: inStore,
        measureFor,
      }: {
        region: RegionSpec;
        database: string;
        portable?: boolean;
        measureFor?: string;
      }): Promise<NewestBackup | null> => {
        const [newest] = inStore
          ? await portable().list(region, database)
          : await provider(region).listBackups(region, database);
        if (!newest) {
          // No backup at all is the oldest backup there is: an alert on the age fires for it too.
          if (measureFor) deps.metrics?.observeBackupAge(measureFor, region.name, Number.POSITIVE_INFINITY);
          return null;
        }
        const ageSeconds = Math.max(0, (Date.now() - Date.parse(newest.createdAt)) / 1000);
        if (measureFor) deps.metrics?.observeBackupAge(measureFor, region.name, ageSeconds);
        return { backupId: newest.backupId, createdAt: newest.createdAt, ageSeconds };
      },
    ),

    /** The set's standby as the topology record names it: there, reachable, streaming, how far behind. */
    standbyHealth: activity('standbyHealth', async ({ set }: { set: ReplicaSetSpec }): Promise<StandbyHealth> => {
      const p = provider(set.home);
      const topology = await p.topology(set).catch((err: Error) => {
        // No standby recorded is a finding, not a failed check.
        if (isVerdict(err) && (err as { type?: string }).type === ErrorType.NoStandby) return null;
        throw err;
      });
      const gone = (detail: string): StandbyHealth => ({
        standby: null,
        reachable: false,
        streaming: null,
        lagSeconds: null,
        lagBytes: null,
        detail,
      });
      if (!topology?.standby || !topology.primary)
        return gone(`the topology record of ${set.set} names no ${topology?.primary ? 'standby' : 'primary'}`);
      const status = await p.nodeStatus(topology.standby).catch((err: Error) => {
        if (isVerdict(err)) throw err;
        return null;
      });
      if (!status?.reachable) {
        deps.metrics?.observeStandbyLag(set.set, null, null);
        return {
          standby: topology.standby,
          reachable: false,
          streaming: null,
          lagSeconds: null,
          lagBytes: null,
          detail: status?.detail ?? 'unreachable',
        };
      }
      const lag = await p.replicationLag(topology.primary, topology.standby).catch(() => null);
      deps.metrics?.observeStandbyLag(set.set, lag?.lagSeconds ?? null, lag?.lagBytes ?? null);
      return {
        standby: topology.standby,
        reachable: true,
        streaming: lag?.streaming ?? status.streaming,
        lagSeconds: lag?.lagSeconds ?? null,
        lagBytes: lag?.lagBytes ?? null,
        detail: status.detail,
      };
    }),

    /** The newest finished drill of a database, and the newest that passed, from Temporal's visibility. */
    lastDrills: activity('lastDrills', async ({ database, since }: { database: string; since: string }) => {
      const client = await temporal('look up drills with');
      const query = drillRunsQuery(database, 'Finished', since);
      let newest: DrillSighting | null = null;
      let newestPassed: DrillSighting | null = null;
      for await (const run of listRuns(client, query)) {
        if (!run.closeTime) continue;
        const seen: DrillSighting = {
          workflowId: run.workflowId,
          closedAt: run.closeTime.toISOString(),
          outcome: stringAttribute(run, OutcomeAttr) ?? 'unknown',
        };
        if (!newest || seen.closedAt > newest.closedAt) newest = seen;
        if (seen.outcome === 'passed' && (!newestPassed || seen.closedAt > newestPassed.closedAt)) newestPassed = seen;
      }
      return { newest, newestPassed };
    }),

    /**
     * Deletes the scratch instances in these regions whose drill is no longer running (a drill
     * terminated from the Temporal UI runs no teardown). Idempotent: a second sweep finds nothing.
     */
    sweepScratch: activity(
      'sweepScratch',
      async ({ regions }: { regions: RegionSpec[] }, io): Promise<SweepOutcome> => {
        return sweepScratch({
          regions,
          provider,
          client: await temporal('ask which drills are running'),
          logger: io.logger,
          heartbeat: io.heartbeat,
        });
      },
    ),

    /** The verdicts, for the metrics endpoint (`lifeboat_readiness_ok`). */
    recordReadiness: activity(
      'recordReadiness',
      async ({ database, checks }: { database: string; checks: CheckResult[] }) => {
        for (const check of checks) deps.metrics?.observeReadiness(database, check.name, check.ok);
        return { recorded: deps.metrics ? checks.length : 0 };
      },
    ),
  };
}
