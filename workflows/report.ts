// The report every runbook returns as its workflow result, and the audit marks it leaves on the run:
// typed search attributes and the details line the Temporal UI shows.
import { ApplicationFailure, setCurrentDetails, upsertSearchAttributes, type WorkflowInfo } from '@temporalio/workflow';
import { DatabaseAttr, OutcomeAttr, ProviderAttr, RpoSecondsAttr, RtoSecondsAttr, RunbookAttr, TriggeredByAttr } from './search-attributes';
import { now, type StepLog } from './steps';
import { ErrorType, type Attempted, type BackupInput, type DrillInput, type RunbookReport } from './types';

export interface Cleanup {
  name: string;
  run: () => Promise<Attempted<{ existed: boolean }>>;
}

export function startReport(runbook: RunbookReport['runbook'], input: DrillInput | BackupInput, info: WorkflowInfo): RunbookReport {
  upsertSearchAttributes([
    { key: DatabaseAttr, value: input.database },
    { key: RunbookAttr, value: runbook },
    { key: ProviderAttr, value: input.primary.region.provider },
    { key: TriggeredByAttr, value: input.triggeredBy },
  ]);
  setCurrentDetails(`**${runbook}** of \`${input.database}\`: running`);
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    runbook,
    database: input.database,
    provider: input.primary.region.provider,
    outcome: 'passed',
    startedAt: now(),
    finishedAt: now(),
    objectives: 'objectives' in input ? input.objectives : { rpoSeconds: 0, rtoSeconds: 0 },
    rtoSeconds: null,
    rpoSeconds: null,
    copies: [],
    steps: [],
    checks: [],
    cleanup: [],
  };
}

export function finishReport(report: RunbookReport, steps: StepLog): void {
  report.steps = steps.steps;
  report.finishedAt = now();
  upsertSearchAttributes([
    { key: OutcomeAttr, value: report.outcome },
    ...(report.rtoSeconds !== null ? [{ key: RtoSecondsAttr, value: report.rtoSeconds }] : []),
    ...(report.rpoSeconds !== null ? [{ key: RpoSecondsAttr, value: report.rpoSeconds }] : []),
  ]);
  const measured =
    report.runbook === 'drill'
      ? ` · RTO ${report.rtoSeconds === null ? 'not reached' : `${report.rtoSeconds.toFixed(1)}s`} · RPO ${report.rpoSeconds === null ? 'unknown' : `${report.rpoSeconds.toFixed(1)}s`}`
      : '';
  const passedChecks = report.checks.filter((c) => c.ok).length;
  setCurrentDetails(
    `**${report.runbook}** of \`${report.database}\`: **${report.outcome}**${measured}` +
      (report.checks.length ? ` · ${passedChecks}/${report.checks.length} checks passed` : '') +
      (report.reason ? `\n\n${report.reason}` : ''),
  );
}

/** Defensive: the CLI validates plans at the edge, but a workflow can be started by anyone. */
export function validateRunbookInput(input: DrillInput | BackupInput): void {
  const problems: string[] = [];
  if (!input || typeof input !== 'object') throw invalid('runbook input must be an object');
  if (!input.database) problems.push('database is required');
  if (!input.primary?.region?.name || !input.primary.database) problems.push('primary.region.name and primary.database are required');
  if (!input.dr?.name) problems.push('dr.name is required');
  if (input.dr?.name && input.dr.name === input.primary?.region?.name) problems.push(`dr region ${input.dr.name} must differ from the primary's region`);
  if (problems.length) throw invalid(`invalid runbook input: ${problems.join('; ')}`);
}

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: ErrorType.InvalidInput, message, nonRetryable: true });
}
