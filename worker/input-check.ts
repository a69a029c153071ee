// Workers re-check every run's input against the plan they loaded. Anyone who can start a workflow
// can hand a runbook any input (raw SQL as a "check", a `file:` credential reference, another
// database's name, a failover outside the per-database lock); the CLI builds inputs from the plan,
// but the worker is where the power is. Before any activity runs, the worker reads the run's input
// from its first history event (once per run), rebuilds what its own plan yields for that runbook
// and database with the run's own options (--yes, --from-latest-backup, the mode), and refuses
// the activity with the non-retryable LifeboatInputMismatch when they differ: nothing is done for
// that run. Nothing changes in the runbooks' command sequences, so every recorded history replays.
import type { Client } from '@temporalio/client';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import type { Logger } from 'pino';
import { verdict } from '../activities/errors';
import { ErrorType, topologyLockId } from '../workflows/types';
import {
  backupInput,
  crossCloudInput,
  drillInput,
  failbackInput,
  failoverInput,
  readinessInput,
  recoversByRestore,
  type LoadedPlan,
} from './plan';

/** The runbooks whose runs move a database's primary role: one at a time per database, under the lock ID. */
export const TOPOLOGY_RUNBOOKS: ReadonlySet<string> = new Set(['failover', 'failback', 'crossCloudFailover']);

type Fields = Record<string, unknown>;

/**
 * What the plan yields for this run: the input rebuilt from the plan with the run's own options.
 * Options are what a user may choose per run; everything else (database, regions, checks,
 * credentials references, objectives, approval timeout, plan digest) must be the plan's.
 */
const EXPECTED: Record<string, (plan: LoadedPlan, input: Fields) => unknown> = {
  drill: (plan, i) =>
    drillInput(plan, String(i.database), {
      fromLatestBackup: i.fromLatestBackup === true,
      triggeredBy: String(i.triggeredBy),
    }),
  backup: (plan, i) => backupInput(plan, String(i.database), { triggeredBy: String(i.triggeredBy) }),
  readiness: (plan, i) => readinessInput(plan, String(i.database), { triggeredBy: String(i.triggeredBy) }),
  failover: (plan, i) => {
    if (recoversByRestore(plan, String(i.database)))
      throw new Error(`${String(i.database)} recovers across clouds: its failover is the crossCloudFailover runbook`);
    return failoverInput(plan, String(i.database), {
      mode: oneOf(i.mode, ['planned', 'unplanned', 'zonal'], 'mode'),
      preApproved: preApproved(i),
      triggeredBy: String(i.triggeredBy),
    });
  },
  failback: (plan, i) =>
    failbackInput(plan, String(i.database), {
      preApproved: preApproved(i),
      triggeredBy: String(i.triggeredBy),
      discardDivergent: i.discardDivergent === true,
    }),
  crossCloudFailover: (plan, i) =>
    crossCloudInput(plan, String(i.database), {
      direction: oneOf(i.direction, ['failover', 'failback'], 'direction'),
      mode: oneOf(i.mode, ['planned', 'unplanned'], 'mode'),
      preApproved: preApproved(i),
      triggeredBy: String(i.triggeredBy),
    }),
};

function preApproved(input: Fields): boolean {
  const approval = input.approval as Fields | undefined;
  return approval?.preApproved === true;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], field: string): T {
  if (!allowed.includes(value as T)) throw new Error(`${field} ${shown(value)}: expected ${allowed.join(', ')}`);
  return value as T;
}

/**
 * Why a run's input is not what the plan yields (empty when it is). `run` is what Temporal says
 * about the run (its type and ID come from the server, not from the input).
 */
export function planMismatches(
  plan: LoadedPlan,
  run: { workflowType: string; workflowId: string },
  input: unknown,
): string[] {
  const build = Object.hasOwn(EXPECTED, run.workflowType) ? EXPECTED[run.workflowType] : undefined;
  if (!build)
    return [
      `workflow type ${shown(run.workflowType)} is not a runbook this worker checks (expected one of ${Object.keys(EXPECTED).join(', ')})`,
    ];
  if (!input || typeof input !== 'object' || Array.isArray(input)) return ['the input is not an object'];
  const fields = input as Fields;
  if (typeof fields.database !== 'string' || typeof fields.triggeredBy !== 'string')
    return ['database and triggeredBy must be strings'];
  const problems: string[] = [];
  if (TOPOLOGY_RUNBOOKS.has(run.workflowType) && run.workflowId !== topologyLockId(fields.database)) {
    problems.push(
      `workflow ID ${shown(run.workflowId)}: a ${run.workflowType} of ${shown(fields.database)} runs only as ${topologyLockId(fields.database)}, the per-database lock (one failover or failback at a time)`,
    );
  }
  let expected: unknown;
  try {
    expected = build(plan, fields);
  } catch (err) {
    return [...problems, (err as Error).message];
  }
  const run_ = normalize(input) as Fields;
  const plan_ = normalize(expected) as Fields;
  if (run_.planDigest !== plan_.planDigest) {
    problems.push(
      `planDigest: the run was built from plan ${shown(String(run_.planDigest).slice(0, 12))}, this worker loaded ${String(plan_.planDigest).slice(0, 12)} (${plan.source}); start workers and the command line with the same plan`,
    );
  }
  const diff = differences(plan_, run_, '').filter((path) => path !== 'planDigest');
  const checks = diff.filter((path) => path === 'checks' || path.startsWith('checks['));
  if (checks.length) problems.push(`checks: ${checkDifference(plan_.checks, run_.checks)}`);
  const rest = diff.filter((path) => !checks.includes(path));
  if (rest.length)
    problems.push(
      `differs from the plan at ${rest.slice(0, 8).join(', ')}${rest.length > 8 ? ` and ${rest.length - 8} more` : ''}`,
    );
  return problems;
}

/** The checks the run has that the plan does not, by name (the SQL is not repeated into logs). */
function checkDifference(planned: unknown, given: unknown): string {
  const key = (c: unknown) => JSON.stringify(c);
  const plannedKeys = new Set(Array.isArray(planned) ? planned.map(key) : []);
  const extra = Array.isArray(given) ? given.filter((c) => !plannedKeys.has(key(c))) : [];
  const names = extra.map((c) => shown((c as Fields | null)?.name));
  const counts = `the run has ${Array.isArray(given) ? given.length : 'no list of'} checks, the plan ${Array.isArray(planned) ? planned.length : 0}`;
  return names.length
    ? `${names.slice(0, 5).join(', ')}${names.length > 5 ? ` and ${names.length - 5} more` : ''} ${names.length === 1 ? 'is' : 'are'} not the plan's (${counts})`
    : `not the plan's list (${counts})`;
}

/** Field paths where two JSON values differ. */
function differences(expected: unknown, actual: unknown, path: string): string[] {
  const isObject = (v: unknown): v is Fields => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObject(expected) && isObject(actual)) {
    const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
    return keys.flatMap((key) =>
      differences(expected[key], actual[key], path ? `${path}.${pathKey(key)}` : pathKey(key)),
    );
  }
  if (Array.isArray(expected) && Array.isArray(actual)) {
    const longest = Math.max(expected.length, actual.length);
    return Array.from({ length: longest }, (_, i) => differences(expected[i], actual[i], `${path}[${i}]`)).flat();
  }
  return JSON.stringify(expected) === JSON.stringify(actual) ? [] : [path || '(the input)'];
}

function pathKey(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : shown(key);
}

/** Undefined fields dropped, as JSON (the form the input travelled in). */
function normalize(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value) ?? 'null');
}

/** A value from a hand-made input, safe for a log line or a terminal: quoted, short, no control characters. */
function shown(value: unknown): string {
  const text =
    JSON.stringify(
      typeof value === 'string' ? value.slice(0, 60) : value === undefined ? 'undefined' : String(value).slice(0, 60),
    ) ?? '""';
  return text.replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The input a run was started with: the first event of its history, decoded with the worker's converter. */
export async function readRunInput(client: Client, execution: { workflowId: string; runId: string }): Promise<unknown> {
  const response = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution,
    maximumPageSize: 1,
  });
  const started = response.history?.events?.[0]?.workflowExecutionStartedEventAttributes;
  if (!started)
    throw new Error(`the history of ${execution.workflowId} (${execution.runId}) does not begin with its start event`);
  return decodeFromPayloadsAtIndex(client.options.loadedDataConverter, 0, started.input?.payloads);
}

export interface RunInputCheckOptions {
  plan: LoadedPlan;
  client: () => Promise<Client>;
  logger: Logger;
  /** Runs whose verdict is remembered (a verdict is per run and never changes). */
  cacheSize?: number;
}

/** The activity interceptor: every activity of a run whose input is not the plan's is refused before it starts. */
export function runInputCheck(options: RunInputCheckOptions): ActivityInterceptorsFactory {
  const { plan, logger } = options;
  const verdicts = new Map<string, Promise<string[]>>();
  const cacheSize = options.cacheSize ?? 1000;
  const verdictFor = (workflowType: string, execution: { workflowId: string; runId: string }): Promise<string[]> => {
    let found = verdicts.get(execution.runId);
    if (!found) {
      found = (async () =>
        planMismatches(
          plan,
          { workflowType, workflowId: execution.workflowId },
          await readRunInput(await options.client(), execution),
        ))();
      verdicts.set(execution.runId, found);
      // A failed read (Temporal briefly unreachable) is no verdict: the activity's retry reads again.
      found.catch(() => verdicts.delete(execution.runId));
      if (verdicts.size > cacheSize) verdicts.delete(verdicts.keys().next().value!);
    }
    return found;
  };
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        const { workflowExecution, workflowType, activityType } = ctx.info;
        if (!workflowExecution || !workflowType) {
          throw verdict(
            ErrorType.InputMismatch,
            `activity ${activityType} was not scheduled by a runbook; this worker runs activities for its runbooks only`,
          );
        }
        const problems = await verdictFor(workflowType, workflowExecution);
        if (problems.length) {
          const message =
            `${workflowType} ${workflowExecution.workflowId} was not built from the plan this worker loaded (${plan.source}, sha256 ${plan.digest.slice(0, 12)}): ` +
            `${problems.join('; ')}. Refused: nothing is run for it. Start runbooks with the lifeboat command line, with the workers' plan`;
          logger.warn(
            {
              workflowId: workflowExecution.workflowId,
              runId: workflowExecution.runId,
              workflowType,
              activity: activityType,
              problems,
            },
            "run refused: its input is not the plan's",
          );
          throw verdict(ErrorType.InputMismatch, message);
        }
        return next(input);
      },
    },
  });
}
