// The Backup runbook (schedulable): a backup, its copy to the DR region, and retention pruning.
//
//   preflight | canary write -> backup -> verify | copy to DR -> verify copy -> prune both regions
//
// `a | b` run side by side (as in the drill, and behind the same patch id): the canary write fails on
// its own where the preflight would, and a local or portable copy hashes what it reads and keeps
// nothing that differs from the manifest (a platform snapshot copy waits for the verify). Pruning
// waits for the copy's verify: no older backup goes before the new one is proven in both regions.
import { defineQuery, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import { callIn } from './calls';
import { quickCall } from './options';
import { backupAndCopy, CHECKS_ALONGSIDE, preflightAndCanary, verifyCopy } from './shared-steps';
import { finishReport, startReport, subjectOf, validateRunbookInput } from './report';
import { StepLog, describeFailure, type Progress } from './steps';
import type { BackupInput, RunbookReport } from './types';

export const backupProgressQuery = defineQuery<Progress>('backupProgress');

export async function backup(input: BackupInput): Promise<RunbookReport> {
  validateRunbookInput(input);
  const info = workflowInfo();
  const steps = new StepLog();
  setHandler(backupProgressQuery, () => steps.progress());
  const report = startReport('backup', subjectOf(input), info);
  const { primary, dr, database } = input;

  try {
    const alongside = patched(CHECKS_ALONGSIDE);
    await preflightAndCanary(steps, primary, database, `${info.workflowId}/${info.runId}/canary`, alongside);
    const { backup: made, copy } = await backupAndCopy(steps, info, input, { verifyBesideCopy: alongside });
    report.backup = made;
    report.copies.push(copy);
    await verifyCopy(steps, dr, copy);
    report.checks.push({ name: 'backup and copy checksums', ok: true, detail: `sha256 ${made.sha256} in ${primary.region.name} and ${dr.name}` });
    for (const region of [primary.region, dr]) {
      const pruned = await steps.run(`prune ${region.name}`, `keeping the newest ${input.keep} backups in ${region.name}`, () =>
        // Backups are labelled with the PostgreSQL database they hold, which a plan may name differently.
        callIn(region, quickCall, 'pruneBackups', `Retention in ${region.name}: keep ${input.keep}`, {
          region,
          database: primary.database,
          keep: input.keep,
          ...(input.portable && { portable: true }),
        }),
      );
      report.checks.push({ name: `retention ${region.name}`, ok: true, detail: `kept ${pruned.kept}, deleted ${pruned.deleted.length}` });
    }
  } catch (err) {
    report.outcome = 'failed';
    report.reason = describeFailure(err);
  }
  finishReport(report, steps);
  return report;
}
