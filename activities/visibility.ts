// Listing runs from Temporal's visibility for what Lifeboat needs of them: IDs, times, status and its
// search attributes. Not through `client.workflow.list`: that also decodes every run's memo with this
// process's codec, so one run sealed with a key this process lacks (another team's, a key retired
// after rotation) would fail every listing in the namespace. Search attributes are never encoded.
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import type { SearchAttributeKey, SearchAttributeType } from '@temporalio/common/lib/search-attributes';
import { DatabaseAttr, OutcomeAttr, RunbookAttr } from '../workflows/search-attributes';

/**
 * A value as a string literal of a visibility query (a list filter), quotes included. The server
 * reads the filter with a MySQL-dialect tokenizer, where inside quotes a backslash escapes the next
 * character: a backslash is doubled and a quote escaped, and nothing else is special. Every value
 * put into a query goes through here. (The dev server's SQLite store re-escapes a parsed backslash
 * before comparing, so there a value holding one matches nothing; plan names hold none.)
 */
export function visibilityString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The drills of one database in a given status (closed since `closedSince`, when given). */
export function drillRunsQuery(database: string, status: 'Running' | 'Finished', closedSince?: string): string {
  const since = closedSince === undefined ? '' : ` AND CloseTime >= ${visibilityString(closedSince)}`;
  return `${DatabaseAttr.name} = ${visibilityString(database)} AND ${RunbookAttr.name} = 'drill' AND ${status === 'Running' ? `ExecutionStatus = 'Running'` : FINISHED_WITH_REPORT}${since}`;
}

/**
 * Runs that ended with a report: completed (passed, or failed before failed runbooks became Failed
 * workflows), or Failed with an outcome recorded (workflows/runbook-failure.ts). A run that failed
 * before it had a report (bad input) has no outcome.
 */
export const FINISHED_WITH_REPORT = `(ExecutionStatus = 'Completed' OR (ExecutionStatus = 'Failed' AND ${OutcomeAttr.name} = 'failed'))`;

export interface RunSighting {
  workflowId: string;
  runId: string;
  workflowType: string;
  startTime: Date | null;
  closeTime: Date | null;
  /** e.g. WORKFLOW_EXECUTION_STATUS_COMPLETED */
  status: string;
  attributes: Record<string, unknown>;
}

/** One search attribute of a sighting, typed by its key; a list value gives its first element. */
export function attributeOf<T extends SearchAttributeType>(run: RunSighting, key: SearchAttributeKey<T>): unknown {
  const value = run.attributes[key.name];
  return Array.isArray(value) ? value[0] : value;
}

export function stringAttribute(run: RunSighting, key: SearchAttributeKey<'KEYWORD'>): string | undefined {
  const value = attributeOf(run, key);
  return typeof value === 'string' ? value : undefined;
}

export function numberAttribute(run: RunSighting, key: SearchAttributeKey<'DOUBLE'>): number | undefined {
  const value = attributeOf(run, key);
  return typeof value === 'number' ? value : undefined;
}

/** Every run the query matches, page by page, at most `limit`. */
export async function* listRuns(
  client: Client,
  query: string,
  options: { pageSize?: number; limit?: number } = {},
): AsyncGenerator<RunSighting> {
  let nextPageToken: Uint8Array | undefined;
  let seen = 0;
  do {
    const page = await client.workflowService.listWorkflowExecutions({
      namespace: client.options.namespace,
      query,
      pageSize: options.pageSize ?? 200,
      ...(nextPageToken && { nextPageToken }),
    });
    for (const info of page.executions ?? []) {
      if (options.limit !== undefined && seen >= options.limit) return;
      seen++;
      yield sightingOf(info);
    }
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
}

function sightingOf(info: temporal.api.workflow.v1.IWorkflowExecutionInfo): RunSighting {
  const attributes: Record<string, unknown> = {};
  for (const [name, payload] of Object.entries(info.searchAttributes?.indexedFields ?? {})) {
    try {
      attributes[name] = payload.data?.length ? JSON.parse(Buffer.from(payload.data).toString('utf8')) : undefined;
    } catch {
      // Not JSON: not one of ours, and not worth failing a listing for.
    }
  }
  return {
    workflowId: info.execution?.workflowId ?? '',
    runId: info.execution?.runId ?? '',
    workflowType: info.type?.name ?? '',
    startTime: timeOf(info.startTime),
    closeTime: timeOf(info.closeTime),
    status: statusName(info.status),
    attributes,
  };
}

function timeOf(t: { seconds?: unknown; nanos?: number | null } | null | undefined): Date | null {
  if (!t || t.seconds === undefined || t.seconds === null) return null;
  return new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6));
}

const STATUS = [
  'UNSPECIFIED',
  'RUNNING',
  'COMPLETED',
  'FAILED',
  'CANCELED',
  'TERMINATED',
  'CONTINUED_AS_NEW',
  'TIMED_OUT',
];

function statusName(status: number | null | undefined): string {
  return `WORKFLOW_EXECUTION_STATUS_${STATUS[status ?? 0] ?? 'UNSPECIFIED'}`;
}
