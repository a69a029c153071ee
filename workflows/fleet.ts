// The Fleet Drill runbook: a drill of every database in a plan, each a child Drill workflow (its own
// history, report and UI link), at most `concurrency` at a time so a fleet does not swamp the
// primaries or the DR region. One failing drill never stops the others; the fleet passes only when
// every drill passed.
import { ParentClosePolicy, defineQuery, executeChild, setHandler, workflowInfo } from '@temporalio/workflow';
import { finishReport, invalid, startReport } from './report';
import { describeFailure, StepLog, type Progress } from './steps';
import type { DrillInput, RunbookReport } from './types';

export const fleetDrillProgressQuery = defineQuery<Progress>('fleetDrillProgress');

export interface FleetDrillInput {
  drills: DrillInput[];
  /** How many drills run at once (1-50). */
  concurrency: number;
  triggeredBy: string;
}

export interface FleetDrillResult extends RunbookReport {
  drills: Array<{ database: string; workflowId: string; outcome: 'passed' | 'failed'; rtoSeconds: number | null; rpoSeconds: number | null; reason?: string }>;
}

export async function fleetDrill(input: FleetDrillInput): Promise<FleetDrillResult> {
  if (!Array.isArray(input?.drills) || input.drills.length === 0) throw invalid('a fleet drill needs at least one drill');
  if (!Number.isInteger(input.concurrency) || input.concurrency < 1 || input.concurrency > 50) throw invalid(`concurrency ${JSON.stringify(input.concurrency)} must be a whole number from 1 to 50`);
  const info = workflowInfo();
  const steps = new StepLog();
  setHandler(fleetDrillProgressQuery, () => steps.progress());
  const report = startReport('drill', { database: '(fleet)', provider: input.drills[0]!.primary.region.provider, triggeredBy: input.triggeredBy }, info) as FleetDrillResult;
  report.drills = [];

  const queue = [...input.drills];
  const running = new Set<Promise<void>>();
  const runOne = async (drill: DrillInput): Promise<void> => {
    const workflowId = `${info.workflowId}/${drill.database}`;
    try {
      const child = await steps.run(`drill ${drill.database}`, `child workflow ${workflowId}`, async () => ({
        value: await executeChild('drill', {
          workflowId,
          args: [drill],
          // A cancelled fleet cancels its drills, which tear down their scratch instances.
          parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
          staticSummary: `Drill of ${drill.database} (fleet ${info.workflowId})`,
        }),
        attempt: 1,
      }));
      report.drills.push({ database: drill.database, workflowId, outcome: child.outcome, rtoSeconds: child.rtoSeconds, rpoSeconds: child.rpoSeconds, ...(child.reason && { reason: child.reason }) });
    } catch (err) {
      report.drills.push({ database: drill.database, workflowId, outcome: 'failed', rtoSeconds: null, rpoSeconds: null, reason: describeFailure(err) });
    }
  };
  while (queue.length > 0 || running.size > 0) {
    while (queue.length > 0 && running.size < input.concurrency) {
      const p: Promise<void> = runOne(queue.shift()!).finally(() => running.delete(p));
      running.add(p);
    }
    await Promise.race(running);
  }

  report.drills.sort((a, b) => a.database.localeCompare(b.database));
  report.checks = report.drills.map((d) => ({
    name: `drill ${d.database}`,
    ok: d.outcome === 'passed',
    detail: d.outcome === 'passed' ? `passed, RTO ${d.rtoSeconds?.toFixed(1) ?? '?'}s, RPO ${d.rpoSeconds?.toFixed(1) ?? '?'}s` : (d.reason ?? 'failed'),
  }));
  const failed = report.drills.filter((d) => d.outcome !== 'passed');
  if (failed.length > 0) {
    report.outcome = 'failed';
    report.reason = `${failed.length} of ${report.drills.length} drills failed: ${failed.map((d) => d.database).join(', ')}`;
  }
  finishReport(report, steps);
  return report;
}
