// `lifeboat schedule apply | list | pause | unpause | trigger`: Temporal Schedules that run each
// database's drills and backups as the plan says. `apply` makes the server match the plan: it creates
// what is missing, updates what changed, deletes Lifeboat schedules the plan no longer has, and leaves
// anything else on the server alone. Running it twice changes nothing the second time.
import { createHash } from 'node:crypto';
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import { backupInput, drillInput, readinessInput, type LoadedPlan } from '../worker/plan';
import { DatabaseAttr, ProviderAttr, RunbookAttr, TriggeredByAttr } from '../workflows/search-attributes';
import { RUNBOOK_TASK_QUEUE } from '../workflows/types';

/** Every schedule Lifeboat owns carries this memo; apply only ever deletes those. */
const MANAGED = 'lifeboatManaged';
const DIGEST = 'lifeboatScheduleDigest';

export type ScheduledRunbook = 'drill' | 'backup' | 'readiness';

export function scheduleIdOf(database: string, runbook: ScheduledRunbook): string {
  return `lifeboat/${database}/${runbook}`;
}

export interface DesiredSchedule {
  scheduleId: string;
  database: string;
  runbook: ScheduledRunbook;
  /** What the plan asks, in words, for list and apply output. */
  cadence: string;
  options: ScheduleOptions;
  digest: string;
}

/** The schedules a plan asks for, each with a digest of everything it would start. */
export function desiredSchedules(plan: LoadedPlan): DesiredSchedule[] {
  const out: DesiredSchedule[] = [];
  for (const [database, db] of Object.entries(plan.plan.databases)) {
    for (const runbook of ['drill', 'backup', 'readiness'] as const) {
      const cadence = db.schedule?.[runbook];
      if (!cadence) continue;
      const scheduleId = scheduleIdOf(database, runbook);
      const triggeredBy = `schedule:${scheduleId}`;
      const input =
        runbook === 'drill'
          ? drillInput(plan, database, { fromLatestBackup: false, triggeredBy })
          : runbook === 'backup'
            ? backupInput(plan, database, { triggeredBy })
            : readinessInput(plan, database, { triggeredBy });
      const spec = {
        ...(cadence.every !== undefined
          ? { intervals: [{ every: cadence.every * 1000 }] }
          : { cronExpressions: [cadence.cron!] }),
        ...(cadence.jitter !== undefined && { jitter: cadence.jitter * 1000 }),
      };
      const policies = {
        overlap: ScheduleOverlapPolicy.SKIP,
        catchupWindow: (db.schedule?.catchupWindow ?? 3600) * 1000,
      };
      const digest = createHash('sha256').update(JSON.stringify({ spec, policies, input })).digest('hex');
      out.push({
        scheduleId,
        database,
        runbook,
        cadence: `${cadence.every !== undefined ? `every ${cadence.every}s` : `cron "${cadence.cron}"`}${cadence.jitter ? `, jitter ${cadence.jitter}s` : ''}`,
        digest,
        options: {
          scheduleId,
          spec,
          policies,
          action: {
            type: 'startWorkflow',
            workflowType: runbook,
            taskQueue: RUNBOOK_TASK_QUEUE,
            // The server appends the scheduled time: each run's ID is unique and says what it was.
            workflowId: `lifeboat/${database}/${runbook}/scheduled`,
            args: [input],
            staticSummary: `Scheduled ${runbook} of ${database}`,
            typedSearchAttributes: [
              { key: DatabaseAttr, value: database },
              { key: RunbookAttr, value: runbook },
              { key: ProviderAttr, value: input.primary.region.provider },
              { key: TriggeredByAttr, value: triggeredBy },
            ],
          },
          memo: { [MANAGED]: true, [DIGEST]: digest },
        },
      });
    }
  }
  return out;
}

export interface ApplyResult {
  created: string[];
  updated: string[];
  unchanged: string[];
  deleted: string[];
}

export async function applySchedules(client: Client, plan: LoadedPlan): Promise<ApplyResult> {
  const desired = desiredSchedules(plan);
  const result: ApplyResult = { created: [], updated: [], unchanged: [], deleted: [] };
  const existing = await managedSchedules(client);
  for (const want of desired) {
    const have = existing.get(want.scheduleId);
    if (!have) {
      await client.schedule.create(want.options);
      result.created.push(want.scheduleId);
    } else if (have.digest !== want.digest) {
      // Replaced whole (spec, policies, the input with its new plan digest). An update cannot change
      // the memo that carries the digest, so the schedule is made anew, keeping its paused state.
      await recreateWithMemo(client, want);
      result.updated.push(want.scheduleId);
    } else result.unchanged.push(want.scheduleId);
  }
  const wanted = new Set(desired.map((d) => d.scheduleId));
  for (const id of existing.keys()) {
    if (wanted.has(id)) continue;
    await client.schedule.getHandle(id).delete();
    result.deleted.push(id);
  }
  return result;
}

async function recreateWithMemo(client: Client, want: DesiredSchedule): Promise<void> {
  const handle = client.schedule.getHandle(want.scheduleId);
  const { paused, note } = (await handle.describe()).state;
  await handle.delete();
  // A pause and its reason (who, why) outlive the change of plan.
  await client.schedule.create({ ...want.options, state: { paused, ...(note && { note }) } });
}

/** Lifeboat's schedules on the server (by their memo), with the digest each was made from. */
export async function managedSchedules(client: Client): Promise<Map<string, { digest: string | null }>> {
  const found = new Map<string, { digest: string | null }>();
  for await (const summary of client.schedule.list()) {
    if (!summary.scheduleId.startsWith('lifeboat/')) continue;
    const memo = summary.memo ?? {};
    if (memo[MANAGED] !== true) continue;
    found.set(summary.scheduleId, { digest: typeof memo[DIGEST] === 'string' ? (memo[DIGEST] as string) : null });
  }
  return found;
}

export interface ScheduleRow {
  scheduleId: string;
  paused: boolean;
  note: string | null;
  nextRuns: string[];
  recentRuns: Array<{ workflowId: string; scheduledAt: string }>;
}

export async function listSchedules(client: Client): Promise<ScheduleRow[]> {
  const rows: ScheduleRow[] = [];
  for (const id of [...(await managedSchedules(client)).keys()].sort()) {
    const d = await client.schedule.getHandle(id).describe();
    rows.push({
      scheduleId: id,
      paused: d.state.paused,
      note: d.state.note ?? null,
      nextRuns: d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
      recentRuns: d.info.recentActions
        .slice(-3)
        .map((a) => ({ workflowId: a.action.workflow.workflowId, scheduledAt: a.scheduledAt.toISOString() })),
    });
  }
  return rows;
}

/** pause | unpause | trigger of one schedule by its ID; a missing one is a usage error for the CLI. */
export async function actOnSchedule(
  client: Client,
  action: 'pause' | 'unpause' | 'trigger',
  scheduleId: string,
  note: string,
): Promise<void> {
  const handle = client.schedule.getHandle(scheduleId);
  try {
    if (action === 'pause') await handle.pause(note);
    else if (action === 'unpause') await handle.unpause(note);
    else await handle.trigger(ScheduleOverlapPolicy.ALLOW_ALL);
  } catch (err) {
    if (err instanceof ScheduleNotFoundError)
      throw new ScheduleMissing(`no schedule ${scheduleId}; \`lifeboat schedule list\` shows Lifeboat's schedules`);
    throw err;
  }
}

export class ScheduleMissing extends Error {}
