// A runbook whose outcome is `failed` ends as a Failed workflow, so that the Temporal UI's status
// column and its "Failures" filter show it: a non-retryable application failure of type
// LifeboatRunbookFailed whose details hold the report. Cancelled runs stay cancelled.
//
// This module has no imports: the runbooks (the fleet reads its drills' reports from their failures)
// and every client (the CLI, evidence reports, metrics, readiness) share it.
import type { RunbookReport } from './types';

export const RUNBOOK_FAILED = 'LifeboatRunbookFailed';

/** The report a failed runbook carried, looked for along a failure's causes; undefined when there is none. */
export function reportOfFailure(err: unknown): RunbookReport | undefined {
  let failure: unknown = err;
  for (let depth = 0; failure && typeof failure === 'object' && depth < 8; depth++) {
    const f = failure as { type?: unknown; details?: unknown; cause?: unknown };
    if (f.type === RUNBOOK_FAILED && Array.isArray(f.details)) {
      const report = f.details[0] as Partial<RunbookReport> | undefined;
      if (report && typeof report === 'object' && typeof report.runbook === 'string') return report as RunbookReport;
    }
    failure = f.cause;
  }
  return undefined;
}

/**
 * A finished runbook's report, whether it passed (the workflow's result) or failed (the failure's
 * details). Any other failure (bad input, terminated, timed out) and a cancellation are thrown as they are.
 */
export async function runbookReport<R extends RunbookReport = RunbookReport>(handle: {
  result(): Promise<unknown>;
}): Promise<R> {
  try {
    return (await handle.result()) as R;
  } catch (err) {
    const report = reportOfFailure(err);
    if (report) return report as R;
    throw err;
  }
}
