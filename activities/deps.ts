// What every activity factory is built from: one `ActivityDeps`, passed in by the composition root
// (worker/main.ts) or by a test, and `wire`, which turns it into what activity bodies use (the
// provider of a region, the portable store, the instrumented wrapper). Every factory in activities/
// has the same signature, `(deps: ActivityDeps) => { ...activities }`.
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { ErrorType, type Attempted, type ProviderKind, type RegionSpec } from '../workflows/types';
import type { CanaryLedger } from './canary-ledger';
import { verdict } from './errors';
import { instrument } from './instrument';
import type { NotifyConfig } from './notify';
import type { PortableBackups } from './portable/portable-backups';
import type { ActivityIo, DatabaseProvider } from './providers/provider';
import type { TopologyStore } from './topology';

/** Where readiness figures go besides the report: the worker's Prometheus endpoint (worker/metrics.ts). */
export interface ReadinessMetrics {
  observeBackupAge(database: string, region: string, seconds: number): void;
  observeStandbyLag(set: string, seconds: number | null, bytes: number | null): void;
  observeReadiness(database: string, check: string, ok: boolean): void;
}

export interface ActivityDeps {
  providers: Partial<Record<ProviderKind, DatabaseProvider>>;
  logger: Logger;
  /** The acknowledged-canary log (failover RPO, failback's nothing-lost check). */
  ledger: CanaryLedger;
  /** For the activities that act on other runs (a failover cancels drills of its database). */
  temporal?: () => Promise<Client>;
  /** Portable backups in the regions' object stores: what crosses clouds. */
  portable?: PortableBackups;
  /** Where cross-cloud runbooks record which side serves a database. */
  topologies?: TopologyStore;
  /** The webhook notifications go to (none: they are skipped). */
  notify?: NotifyConfig;
  /** The worker's metrics endpoint, where readiness figures are published (none: not published). */
  metrics?: ReadinessMetrics;
}

/** Wraps an activity body: named logger, heartbeat, cancellation, the attempt in its result (instrument.ts). */
export type Activity = <I, O>(
  name: string,
  body: (input: I, io: ActivityIo) => Promise<O>,
) => (input: I) => Promise<Attempted<O>>;

/** The optional deps, each refused with a non-retryable verdict naming what this worker lacks. */
export function wire(deps: ActivityDeps) {
  const activity: Activity = (name, body) => instrument(deps.logger, name, body);
  return {
    activity,
    provider(region: RegionSpec): DatabaseProvider {
      const found = deps.providers[region.provider];
      if (!found) {
        throw verdict(
          ErrorType.InvalidInput,
          `region ${region.name} uses provider ${region.provider}, which this worker was not configured with`,
        );
      }
      return found;
    },
    portable(): PortableBackups {
      if (!deps.portable) throw verdict(ErrorType.InvalidInput, 'this worker was not configured for portable backups');
      return deps.portable;
    },
    topologies(): TopologyStore {
      if (!deps.topologies)
        throw verdict(ErrorType.InvalidInput, 'this worker keeps no topology records (LIFEBOAT_HOME)');
      return deps.topologies;
    },
    /** `purpose` completes the refusal: "this worker has no Temporal client to <purpose>". */
    temporal(purpose: string): Promise<Client> {
      if (!deps.temporal) throw verdict(ErrorType.InvalidInput, `this worker has no Temporal client to ${purpose}`);
      return deps.temporal();
    },
  };
}
