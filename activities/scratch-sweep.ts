// The scratch-instance sweep: deletes Lifeboat's scratch instances whose drill is no longer running.
// A drill always tears its scratch instance down, also on failure and cancel, but a run terminated
// from the Temporal UI (or one whose teardown gave up) runs no code at all, and its instance stays
// (and bills). A scratch instance is named for its drill's run (`drill-<last 8 hex of the run ID>`,
// workflows/drill.ts), so the sweep asks Temporal's visibility which drills are running and which
// have closed. It deletes only an instance whose drill it found CLOSED: a running drill's instance
// is never touched, and an instance it cannot tie to a drill of this namespace (another
// deployment's, sharing the account; or older than the look-back) is reported and left alone.
// Closed is final, so a visibility store that lags cannot make a running drill look closed.
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { RegionSpec } from '../workflows/types';
import { listRuns, visibilityString, type RunSighting } from './visibility';
import type { DatabaseProvider } from './providers/provider';

const SCRATCH_NAME = /^drill-([0-9a-f]{8})$/;

export interface SweptInstance {
  region: string;
  name: string;
  /** The drill the instance belongs to, where one was found. */
  drill?: { workflowId: string; runId: string; status: string };
}

export interface SweepOutcome {
  deleted: SweptInstance[];
  /** Left alone, each with why. */
  kept: Array<SweptInstance & { reason: string }>;
  /** A region that could not be listed (`name` is `*`), or an instance whose delete failed. */
  failed: Array<{ region: string; name: string; error: string }>;
}

export interface SweepOptions {
  regions: RegionSpec[];
  provider: (region: RegionSpec) => DatabaseProvider;
  client: Client;
  logger?: Logger;
  /** Between deletes (a cloud delete takes a while): the activity's heartbeat. */
  heartbeat?: (details?: Record<string, unknown>) => void;
  /** How far back closed drills are looked up (default 30 days). */
  lookBackDays?: number;
}

/** The same eight characters the drill names its scratch instance with (workflows/shared-steps.ts runTag). */
export function scratchTagOf(runId: string): string {
  return runId.replace(/-/g, '').slice(-8);
}

export async function sweepScratch(options: SweepOptions): Promise<SweepOutcome> {
  const outcome: SweepOutcome = { deleted: [], kept: [], failed: [] };
  // Listed before visibility is asked: a drill whose instance is listed here started before the question.
  const found: Array<{ region: RegionSpec; name: string }> = [];
  const seen = new Set<string>();
  for (const region of options.regions) {
    try {
      for (const name of await options.provider(region).listScratch(region)) {
        // Two plan regions on the same cloud region list the same instances: each is swept once.
        const key = `${region.provider}/${name}`;
        if (!seen.has(key)) found.push({ region, name });
        seen.add(key);
      }
    } catch (err) {
      outcome.failed.push({
        region: region.name,
        name: '*',
        error: `could not list scratch instances: ${(err as Error).message}`,
      });
    }
  }
  if (found.length === 0) return outcome;

  const running = await drillsByTag(options.client, `WorkflowType = 'drill' AND ExecutionStatus = 'Running'`);
  const since = new Date(Date.now() - (options.lookBackDays ?? 30) * 86_400_000).toISOString();
  const closed = await drillsByTag(
    options.client,
    `WorkflowType = 'drill' AND ExecutionStatus != 'Running' AND CloseTime > ${visibilityString(since)}`,
  );

  for (const { region, name } of found) {
    const tag = SCRATCH_NAME.exec(name)?.[1];
    if (!tag) {
      outcome.kept.push({
        region: region.name,
        name,
        reason: 'not named as a drill scratch instance (drill-<run tag>)',
      });
      continue;
    }
    const live = running.get(tag);
    if (live) {
      outcome.kept.push({ region: region.name, name, drill: drillOf(live), reason: 'its drill is running' });
      continue;
    }
    const owner = closed.get(tag);
    if (!owner) {
      outcome.kept.push({
        region: region.name,
        name,
        reason: `no drill of this Temporal namespace that closed since ${since.slice(0, 10)} made it (another deployment's, or older): check and delete it by hand`,
      });
      continue;
    }
    options.heartbeat?.({ deleting: name, region: region.name });
    try {
      const existed = await options.provider(region).dropScratch({ name, region, database: '' });
      if (existed) outcome.deleted.push({ region: region.name, name, drill: drillOf(owner) });
      options.logger?.warn(
        { region: region.name, scratch: name, drill: owner.workflowId, status: owner.status },
        'swept a scratch instance whose drill is no longer running',
      );
    } catch (err) {
      outcome.failed.push({ region: region.name, name, error: (err as Error).message });
    }
  }
  return outcome;
}

async function drillsByTag(client: Client, query: string): Promise<Map<string, RunSighting>> {
  const byTag = new Map<string, RunSighting>();
  for await (const run of listRuns(client, query)) byTag.set(scratchTagOf(run.runId), run);
  return byTag;
}

function drillOf(run: RunSighting): SweptInstance['drill'] {
  return {
    workflowId: run.workflowId,
    runId: run.runId,
    status: run.status.replace(/^WORKFLOW_EXECUTION_STATUS_/, ''),
  };
}
