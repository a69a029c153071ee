// Starting a runbook from the command line: start the workflow with its search attributes, show its
// progress on a terminal, print the report, and turn the outcome into the exit code.
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { LifeboatEnv } from '../worker/env';
import type { LoadedPlan } from '../worker/plan';
import { temporalTarget, uiLink } from '../worker/temporal';
import type { Progress } from '../workflows/steps';
import { DatabaseAttr, ProviderAttr, RunbookAttr, TriggeredByAttr } from '../workflows/search-attributes';
import { runbookReport } from '../workflows/runbook-failure';
import {
  ErrorType,
  RUNBOOK_TASK_QUEUE,
  topologyLockId,
  type CrossCloudInput,
  type RunbookReport,
} from '../workflows/types';
import { ProgressView, renderReport } from '../services/evidence/terminal';
import { expectArgs, type Args } from './args';
import { connectTemporal, loadPlan, whoAmI, type Command } from './context';

/**
 * A command that starts one runbook of one database on its primary's provider (backup, readiness):
 * `lifeboat <runbook> <db> [-f plan] [--json]`, its input made from the plan by `inputOf`.
 */
export function primaryRunbookCommand<I extends { database: string; primary: { region: { provider: string } } }>(spec: {
  runbook: RunbookReport['runbook'];
  inputOf: (plan: LoadedPlan, database: string, options: { triggeredBy: string }) => I;
  summary: (input: I) => string;
}): Command {
  return async ({ env, args, sub }) => {
    expectArgs(args, 2, `lifeboat ${spec.runbook} <db> [-f plan] [--json]`);
    const input = spec.inputOf(loadPlan(env, args.plan), sub!, { triggeredBy: whoAmI() });
    return runOnPrimary(env, args, spec.runbook, input, spec.summary(input));
  };
}

/** A database whose DR side is on another cloud moves by restore (workflows/cross-cloud.ts). */
export function startCrossCloud(env: LifeboatEnv, args: Args, input: CrossCloudInput): Promise<number> {
  const verb =
    input.direction === 'failover'
      ? `${input.mode === 'planned' ? 'Planned' : 'Unplanned'} cross-cloud failover`
      : 'Cross-cloud failback';
  return runRunbook(env, args, {
    runbook: input.direction,
    workflowType: 'crossCloudFailover',
    database: input.database,
    input,
    provider: input.to.region.provider,
    summary: `${verb} of ${input.database} from ${input.from.region.name} to ${input.to.region.name} (restore of a portable backup)`,
    workflowId: topologyLockId(input.database),
    awaitsApproval: !args.yes,
  });
}

/** A runbook of one database started on its primary's provider: drill, backup, readiness. */
export function runOnPrimary(
  env: LifeboatEnv,
  args: Args,
  runbook: RunbookReport['runbook'],
  input: { database: string; primary: { region: { provider: string } } },
  summary: string,
): Promise<number> {
  return runRunbook(env, args, {
    runbook,
    database: input.database,
    input,
    provider: input.primary.region.provider,
    summary,
  });
}

export interface RunbookStart {
  runbook: RunbookReport['runbook'];
  /** The workflow type, when it is not named after the runbook. */
  workflowType?: string;
  database: string;
  input: object;
  summary: string;
  provider: string;
  /** Default: a new ID per run. Failover and failback pass the per-database lock ID. */
  workflowId?: string;
  awaitsApproval?: boolean;
}

export async function runRunbook(env: LifeboatEnv, args: Args, start: RunbookStart): Promise<number> {
  const { runbook, database, input, summary, provider } = start;
  const target = temporalTarget();
  const client = await connectTemporal({ target });
  if (!client) return 1;
  const workflowId = start.workflowId ?? `lifeboat/${database}/${runbook}/${new Date().toISOString()}`;
  let handle: Awaited<ReturnType<Client['workflow']['start']>>;
  try {
    handle = await client.workflow.start(start.workflowType ?? runbook, {
      taskQueue: RUNBOOK_TASK_QUEUE,
      workflowId,
      args: [input],
      staticSummary: summary,
      typedSearchAttributes: [
        { key: DatabaseAttr, value: database },
        { key: RunbookAttr, value: runbook },
        { key: ProviderAttr, value: provider },
        { key: TriggeredByAttr, value: whoAmI() },
      ],
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      process.stderr.write(
        `lifeboat: a failover or failback of ${database} is already running (${workflowId}); only one may run per database. ` +
          `Follow it in the Temporal UI, approve it with \`lifeboat approve ${workflowId}\`, or wait for it to finish.\n`,
      );
      return 2;
    }
    throw err;
  }
  const link = uiLink(target, handle.workflowId, handle.firstExecutionRunId, env.uiUrl);
  if (!args.json) process.stderr.write(`started ${workflowId}${link ? `\n  ${link}` : ''}\n`);
  if (start.awaitsApproval)
    process.stderr.write(`waiting for approval: lifeboat approve ${workflowId}   (or start with --yes)\n`);
  if (!(await hasPollers(client, target.namespace))) {
    process.stderr.write(
      `warning: no worker is polling task queue "${RUNBOOK_TASK_QUEUE}"; the ${runbook} waits until one does (\`lifeboat dev up\` or \`lifeboat worker\`)\n`,
    );
  }
  const view = process.stdout.isTTY && !args.json ? watch(handle, start.workflowType ?? runbook, summary) : null;
  try {
    const report = await runbookReport(handle);
    await view?.stop();
    if (args.json) process.stdout.write(JSON.stringify({ ...report, uiUrl: link }, null, 2) + '\n');
    else process.stdout.write(renderReport(report, link) + '\n');
    return report.outcome === 'passed' ? 0 : 1;
  } catch (err) {
    await view?.stop();
    const cause = err instanceof WorkflowFailedError ? err.cause : err;
    const type = (cause as { type?: string } | undefined)?.type;
    const message = `${runbook} ${workflowId} failed: ${(cause as Error)?.message ?? String(cause)}`;
    if (args.json)
      process.stdout.write(
        JSON.stringify({ workflowId, runbook, database, outcome: 'failed', reason: message, uiUrl: link }, null, 2) +
          '\n',
      );
    process.stderr.write(message + '\n');
    return type === ErrorType.InvalidInput ? 2 : 1;
  }
}

async function hasPollers(client: Client, namespace: string): Promise<boolean> {
  try {
    const response = await client.workflowService.describeTaskQueue({
      namespace,
      taskQueue: { name: RUNBOOK_TASK_QUEUE },
      taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    });
    return (response.pollers?.length ?? 0) > 0;
  } catch {
    return true; // cannot tell: say nothing rather than something wrong
  }
}

function watch(handle: WorkflowHandle, workflowType: string, title: string) {
  const view = new ProgressView();
  const started = Date.now();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const progress = await handle.query<Progress>(`${workflowType}Progress`);
        if (!stopped) view.draw(title, progress, (Date.now() - started) / 1000);
      } catch {
        // Not started yet or just finished: the next tick or the report will tell.
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      view.clear();
    },
  };
}
