// The report every runbook returns as its workflow result, and the audit marks it leaves on the run:
// typed search attributes and the details line the Temporal UI shows.
import {
  ApplicationFailure,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
  type WorkflowInfo,
} from '@temporalio/workflow';
import {
  DatabaseAttr,
  OutcomeAttr,
  ProviderAttr,
  RpoSecondsAttr,
  RtoSecondsAttr,
  RunbookAttr,
  TriggeredByAttr,
} from './search-attributes';
import { now, type StepLog } from './steps';
import {
  ErrorType,
  type BackupInput,
  type DrillInput,
  type FailbackInput,
  type FailoverInput,
  type ReadinessInput,
  type RunbookReport,
} from './types';

export interface ReportSubject {
  database: string;
  provider: RunbookReport['provider'];
  triggeredBy: string;
  objectives?: RunbookReport['objectives'];
}

/** What a runbook input says about the run, whatever the runbook. */
export function subjectOf(
  input: DrillInput | BackupInput | FailoverInput | FailbackInput | ReadinessInput,
): ReportSubject {
  const provider = 'primary' in input ? input.primary.region.provider : input.replicaSet.home.provider;
  return {
    database: input.database,
    provider,
    triggeredBy: input.triggeredBy,
    objectives: 'objectives' in input ? input.objectives : undefined,
  };
}

export function startReport(
  runbook: RunbookReport['runbook'],
  subject: ReportSubject,
  info: WorkflowInfo,
): RunbookReport {
  upsertSearchAttributes([
    { key: DatabaseAttr, value: subject.database },
    { key: RunbookAttr, value: runbook },
    { key: ProviderAttr, value: subject.provider },
    { key: TriggeredByAttr, value: subject.triggeredBy },
  ]);
  setCurrentDetails(`**${runbook}** of \`${subject.database}\`: running`);
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    runbook,
    database: subject.database,
    provider: subject.provider,
    outcome: 'passed',
    startedAt: now(),
    finishedAt: now(),
    objectives: subject.objectives ?? { rpoSeconds: 0, rtoSeconds: 0 },
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
  const build = workflowInfo().currentDeploymentVersion?.buildId;
  if (build) report.runbookVersion = build;
  upsertSearchAttributes([
    { key: OutcomeAttr, value: report.outcome },
    ...(report.rtoSeconds !== null ? [{ key: RtoSecondsAttr, value: report.rtoSeconds }] : []),
    ...(report.rpoSeconds !== null ? [{ key: RpoSecondsAttr, value: report.rpoSeconds }] : []),
  ]);
  const measured =
    report.runbook !== 'backup' && report.runbook !== 'readiness'
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
  validateObject(input);
  const problems: string[] = [];
  if (!input.database) problems.push('database is required');
  if (!input.primary?.region?.name || !input.primary.database)
    problems.push('primary.region.name and primary.database are required');
  if (!input.dr?.name) problems.push('dr.name is required');
  if (input.dr?.name && input.dr.name === input.primary?.region?.name)
    problems.push(`dr region ${input.dr.name} must differ from the primary's region`);
  if (problems.length) throw invalid(`invalid runbook input: ${problems.join('; ')}`);
}

export function validateFailoverInput(input: FailoverInput | FailbackInput): void {
  validateObject(input);
  const problems: string[] = [];
  if (!input.database) problems.push('database is required');
  if (!input.replicaSet?.set || !input.replicaSet.home?.name || !input.replicaSet.dr?.name)
    problems.push('replicaSet.set, .home and .dr are required');
  if ('mode' in input && !['planned', 'unplanned', 'zonal'].includes(input.mode))
    problems.push(`mode ${JSON.stringify(input.mode)} must be planned, unplanned or zonal`);
  if (!(input.approval?.timeoutSeconds > 0)) problems.push('approval.timeoutSeconds must be greater than zero');
  if (problems.length) throw invalid(`invalid runbook input: ${problems.join('; ')}`);
}

function validateObject(input: unknown): void {
  if (!input || typeof input !== 'object') throw invalid('runbook input must be an object');
}

export function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: ErrorType.InvalidInput, message, nonRetryable: true });
}
