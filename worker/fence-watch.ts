// Fence on sight. A node the topology record lists as fenced must refuse writes; one that answers as
// writable (its region was dark during an unplanned failover, so nothing could fence it then, or
// someone restarted it by hand) is fenced again by the first worker of its region that reaches it:
// when the worker starts and every `intervalMs` after. Each violation is logged, notified
// (`fence.violation`) and counted; `lifeboat status` shows the node's state as probed.
import type { Logger } from 'pino';
import type { DatabaseProvider } from '../activities/providers/provider';
import { nodeLabel, sameNode } from '../activities/topology';
import type { NodeRef, ReplicaSetSpec } from '../workflows/types';

export interface FenceViolation {
  set: string;
  node: string;
  /** What the probe saw, what the fence did, and whether it held. */
  seen: string;
  /** When it was seen (ISO 8601). */
  at: string;
  fence: { confirmed: boolean; how: string } | null;
  error?: string;
}

export interface FenceWatchOptions {
  sets: ReplicaSetSpec[];
  /** The regions this worker serves: only their nodes are its to fence. */
  regions: string[];
  providerFor: (set: ReplicaSetSpec) => DatabaseProvider;
  logger: Logger;
  onViolation: (violation: FenceViolation) => Promise<void>;
  intervalMs?: number;
}

/** One pass over every set: returns the violations found (and fenced). */
export async function enforceFences(options: Omit<FenceWatchOptions, 'intervalMs'>): Promise<FenceViolation[]> {
  const found: FenceViolation[] = [];
  for (const set of options.sets) {
    const provider = options.providerFor(set);
    const topology = await provider.topology(set).catch(() => null);
    if (!topology) continue;
    for (const node of topology.fenced.filter((n) => options.regions.includes(n.region))) {
      const status = await provider.nodeStatus(node).catch(() => null);
      if (!status?.writable) continue;
      // Read the record again: a runbook that just lifted this fence (an abandoned switchover's undo)
      // changed it first, and its node is not ours to stop.
      const now = await provider.topology(set).catch(() => null);
      if (!now || now.epoch !== topology.epoch || !now.fenced.some((n) => sameNode(n, node))) continue;
      const violation = await fenceAgain(provider, set, node, status.detail);
      found.push(violation);
      options.logger.error(
        { violation },
        `fence violation: ${violation.node} is listed as fenced but accepted read-write transactions; fenced again`,
      );
      await options
        .onViolation(violation)
        .catch((err: Error) => options.logger.error({ err: err.message }, 'could not notify the fence violation'));
    }
  }
  return found;
}

async function fenceAgain(
  provider: DatabaseProvider,
  set: ReplicaSetSpec,
  node: NodeRef,
  seen: string,
): Promise<FenceViolation> {
  const base = { set: set.set, node: nodeLabel(node), seen, at: new Date().toISOString() };
  try {
    const fence = await provider.fence(node, 'unplanned');
    return { ...base, fence: { confirmed: fence.confirmed, how: fence.how } };
  } catch (err) {
    return { ...base, fence: null, error: (err as Error).message };
  }
}

/** Runs enforceFences now and every `intervalMs` (default 10 s) until stopped. */
export function watchFences(options: FenceWatchOptions): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<unknown> = Promise.resolve();
  const tick = () => {
    pass = enforceFences(options)
      .catch((err: Error) => options.logger.warn({ err: err.message }, 'fence watch pass failed'))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, options.intervalMs ?? 10_000);
      });
  };
  if (options.sets.some((s) => options.regions.includes(s.home.name) || options.regions.includes(s.dr.name))) tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await pass;
    },
  };
}
