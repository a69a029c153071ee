// Reads finished runbooks back from Temporal: one run's report (its workflow result), or the last N
// completed drills of a database, found through the visibility API by their search attributes.
import { WorkflowFailedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { uiLink, type TemporalTarget } from '../../worker/temporal';
import { drillRunsQuery, listRuns } from '../../activities/visibility';
import { DatabaseAttr, RunbookAttr } from '../../workflows/search-attributes';
import type { RunbookReport } from '../../workflows/types';
import { reportOfFailure, runbookReport } from '../../workflows/runbook-failure';

/** A database's name in a plan: worker/plan.ts validates plan keys with this same pattern. */
export const DATABASE_NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** Something the person asked for that has no report: said in one line, exit code 2. */
export class NoReport extends Error {}

export interface FetchedRun {
  report: RunbookReport;
  link: string | null;
}

export interface Where {
  client: Client;
  target: TemporalTarget;
  uiBase?: string;
}

/** The report of a workflow's latest run, or NoReport saying why there is none. */
export async function fetchRun(where: Where, workflowId: string): Promise<FetchedRun> {
  const handle = where.client.workflow.getHandle(workflowId);
  let description: Awaited<ReturnType<typeof handle.describe>>;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError)
      throw new NoReport(`no workflow with ID ${workflowId} in namespace ${where.target.namespace}`);
    throw err;
  }
  const runbook = description.typedSearchAttributes.get(RunbookAttr);
  const database = description.typedSearchAttributes.get(DatabaseAttr);
  if (!runbook)
    throw new NoReport(
      `${workflowId} is a ${description.type} workflow, not a Lifeboat runbook (it has no LifeboatRunbook search attribute)`,
    );
  const what = `${workflowId} (${runbook} of ${database ?? 'unknown database'})`;
  const status = description.status.name;
  if (status === 'RUNNING') {
    const page = link(where, workflowId, description.runId);
    throw new NoReport(
      `${what} is still running, started ${description.startTime.toISOString()}: an evidence report covers a finished run. ` +
        `Follow it in the Temporal UI${page ? ` (${page})` : ''} and run this again when it ends`,
    );
  }
  // The report: a completed run's result, or (a runbook that failed: a Failed workflow) the failure's details.
  const ended = await handle.result().then(
    (value: unknown) => ({ value, failure: undefined }),
    (failure: unknown) => ({ value: reportOfFailure(failure), failure }),
  );
  if (ended.failure !== undefined && ended.value === undefined) {
    // Cancelled, terminated, timed out, or failed before it had a report: nothing to show.
    const err = ended.failure;
    const why = `: ${(err instanceof WorkflowFailedError ? err.cause?.message : undefined) ?? (err as Error).message}`;
    throw new NoReport(`${what} ended ${status.toLowerCase().replace(/_/g, ' ')} without a report${why}`);
  }
  const report = asRunbookReport(ended.value);
  if (!report) throw new NoReport(`${what} completed, but its result is not a Lifeboat runbook report`);
  return { report, link: link(where, workflowId, description.runId) };
}

/** The visibility query for a database's completed drills. The name is validated first: it is user input. */
export function drillHistoryQuery(database: string): string {
  if (!DATABASE_NAME.test(database)) {
    throw new NoReport(
      `database ${JSON.stringify(database)} is not a plan database name; expected lowercase letters, digits and dashes, starting with a letter (at most 63)`,
    );
  }
  return drillRunsQuery(database, 'Finished');
}

export interface DrillHistory {
  runs: FetchedRun[];
  /** Completed drills whose result was not a readable report (said on stderr, not charted). */
  unreadable: string[];
}

/** The newest `last` completed drills of a database, oldest first. */
export async function fetchDrillHistory(where: Where, database: string, last: number): Promise<DrillHistory> {
  const query = drillHistoryQuery(database);
  // Visibility lists closed runs newest-closed first, not by start: read some more than asked for,
  // order them by start, and keep the newest `last`. Only the kept ones have their results read.
  const listed: Array<{ workflowId: string; runId: string; startTime: Date }> = [];
  const enough = Math.max(last * 2, last + 20);
  for await (const info of listRuns(where.client, query, { limit: enough })) {
    if (info.startTime) listed.push({ workflowId: info.workflowId, runId: info.runId, startTime: info.startTime });
  }
  const newest = listed.sort((a, b) => b.startTime.getTime() - a.startTime.getTime()).slice(0, last);
  const results = await inBatches(newest, 8, async (run) => {
    const report = asRunbookReport(
      await runbookReport(where.client.workflow.getHandle(run.workflowId, run.runId, { followRuns: false })),
    );
    return report ? { report, link: link(where, run.workflowId, run.runId) } : run.workflowId;
  });
  const runs = results.filter((r): r is FetchedRun => typeof r !== 'string');
  runs.sort((a, b) => Date.parse(a.report.startedAt) - Date.parse(b.report.startedAt));
  return { runs, unreadable: results.filter((r): r is string => typeof r === 'string') };
}

/** A workflow result that has the shape of a RunbookReport, with lists older reports lacked filled in. */
export function asRunbookReport(value: unknown): RunbookReport | null {
  if (!value || typeof value !== 'object') return null;
  const r = value as Partial<RunbookReport>;
  const ok =
    typeof r.workflowId === 'string' &&
    typeof r.runbook === 'string' &&
    typeof r.database === 'string' &&
    (r.outcome === 'passed' || r.outcome === 'failed') &&
    typeof r.startedAt === 'string' &&
    Array.isArray(r.steps) &&
    typeof r.objectives === 'object' &&
    r.objectives !== null;
  if (!ok) return null;
  return { ...(r as RunbookReport), checks: r.checks ?? [], cleanup: r.cleanup ?? [], copies: r.copies ?? [] };
}

function link({ target, uiBase }: Where, workflowId: string, runId: string): string | null {
  return uiLink(target, workflowId, runId, uiBase);
}

async function inBatches<T, R>(items: T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}
