// The Fleet Drill runbook: a drill of every database in a plan, each a child Drill workflow (its own
// history, report and UI link), at most `concurrency` at a time so a fleet does not swamp the
// primaries or the DR region. One failing drill never stops the others; the fleet passes only when
// every drill passed.
import { ParentClosePolicy, defineQuery, executeChild } from '@temporalio/workflow';
import { runbook } from './kit';
import { invalid } from './report';
import { reportOfFailure } from './runbook-failure';
import { describeFailure, type Progress } from './steps';
import type { DrillInput, RunbookReport } from './types';

export const fleetDrillProgressQuery = defineQuery<Progress>('fleetDrillProgress');

export interface FleetDrillInput {
  drills: DrillInput[];
  /** How many drills run at once (1-50). */
  concurrency: number;
  triggeredBy: string;
}

export interface FleetDrillResult extends RunbookReport {
  drills: Array<{
    database: string;
    workflowId: string;
    outcome: 'passed' | 'failed';
    rtoSeconds: number | null;
    rpoSeconds: number | null;
    reason?: string;
  }>;
}

export async function fleetDrill(input: FleetDrillInput): Promise<FleetDrillResult> {
  const subject = (i: FleetDrillInput) => ({
    database: '(fleet)',
    provider: i.drills[0]!.primary.region.provider,
    triggeredBy: i.triggeredBy,
  });
  return (await runbook(
    { kind: 'drill', input, validate: validateFleetInput, subject, progress: fleetDrillProgressQuery },
    async (run) => {
      const report = run.report as FleetDrillResult;
      const drills: FleetDrillResult['drills'] = (report.drills = []);
      const drillOne = async (drill: DrillInput): Promise<void> => {
        const workflowId = `${run.info.workflowId}/${drill.database}`;
        try {
          const child = await run.step(
            `drill ${drill.database}`,
            async () => ({
              value: await executeChild('drill', {
                workflowId,
                args: [drill],
                // A cancelled fleet cancels its drills, which tear down their scratch instances.
                parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
                staticSummary: `Drill of ${drill.database} (fleet ${run.info.workflowId})`,
              }),
              attempt: 1,
            }),
            `child workflow ${workflowId}`,
          );
          drills.push({
            database: drill.database,
            workflowId,
            outcome: child.outcome,
            rtoSeconds: child.rtoSeconds,
            rpoSeconds: child.rpoSeconds,
            ...(child.reason && { reason: child.reason }),
          });
        } catch (err) {
          // A drill that failed ends as a failed child workflow carrying its report.
          const failed = reportOfFailure(err);
          drills.push({
            database: drill.database,
            workflowId,
            outcome: 'failed',
            rtoSeconds: failed?.rtoSeconds ?? null,
            rpoSeconds: failed?.rpoSeconds ?? null,
            reason: failed?.reason ?? describeFailure(err),
          });
        }
      };
      await atMost(input.concurrency, input.drills, drillOne);

      drills.sort((a, b) => a.database.localeCompare(b.database));
      run.check(
        ...drills.map((d) => ({
          name: `drill ${d.database}`,
          ok: d.outcome === 'passed',
          detail:
            d.outcome === 'passed'
              ? `passed, RTO ${d.rtoSeconds?.toFixed(1) ?? '?'}s, RPO ${d.rpoSeconds?.toFixed(1) ?? '?'}s`
              : (d.reason ?? 'failed'),
        })),
      );
      const failed = drills.filter((d) => d.outcome !== 'passed');
      if (failed.length > 0)
        run.fail(`${failed.length} of ${drills.length} drills failed: ${failed.map((d) => d.database).join(', ')}`);
    },
  )) as FleetDrillResult;
}

/** Runs `each` over the items, at most `limit` at a time, in order of the list. */
async function atMost<T>(limit: number, items: T[], each: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const running = new Set<Promise<void>>();
  while (queue.length > 0 || running.size > 0) {
    while (queue.length > 0 && running.size < limit) {
      const p: Promise<void> = each(queue.shift()!).finally(() => running.delete(p));
      running.add(p);
    }
    await Promise.race(running);
  }
}

function validateFleetInput(input: FleetDrillInput): void {
  if (!Array.isArray(input?.drills) || input.drills.length === 0)
    throw invalid('a fleet drill needs at least one drill');
  if (!Number.isInteger(input.concurrency) || input.concurrency < 1 || input.concurrency > 50)
    throw invalid(`concurrency ${JSON.stringify(input.concurrency)} must be a whole number from 1 to 50`);
}
