// The Backup runbook (schedulable): a backup, its copy to the DR region, and retention pruning.
//
//   preflight -> canary write -> backup -> verify -> copy to DR -> verify copy -> prune both regions
import { defineQuery, setHandler, workflowInfo } from '@temporalio/workflow';
import { callIn } from './calls';
import { backupIdFor } from './drill';
import { longTransfer, quickCall } from './options';
import { finishReport, startReport, validateRunbookInput } from './report';
import { StepLog, describeFailure, type Progress } from './steps';
import type { BackupInput, RunbookReport } from './types';

export const backupProgressQuery = defineQuery<Progress>('backupProgress');

export async function backup(input: BackupInput): Promise<RunbookReport> {
  validateRunbookInput(input);
  const info = workflowInfo();
  const steps = new StepLog();
  setHandler(backupProgressQuery, () => steps.progress());
  const report = startReport('backup', input, info);
  const { primary, dr, database } = input;

  try {
    await steps.run('preflight', `checking ${database} in ${primary.region.name}`, () =>
      callIn(primary.region, quickCall, 'preflight', `Preflight ${database} in ${primary.region.name}`, { target: primary }),
    );
    await steps.run('canary write', 'writing a canary row on the primary', () =>
      callIn(primary.region, quickCall, 'writeCanary', `Canary write on ${database}`, { target: primary, token: `${info.workflowId}/canary` }),
    );
    const made = await steps.run('backup', `pg_dump of ${database} in ${primary.region.name}`, () =>
      callIn(primary.region, longTransfer, 'createBackup', `Back up ${database} in ${primary.region.name}`, {
        target: primary,
        backupId: backupIdFor(database, info.runStartTime, info.runId),
        createdBy: info.workflowId,
      }),
    );
    report.backup = made;
    await steps.run('verify backup', `checksumming ${made.backupId}`, () =>
      callIn(primary.region, longTransfer, 'verifyBackup', `Verify backup ${made.backupId}`, { ref: made, region: primary.region }),
    );
    const copy = await steps.run(`copy to ${dr.name}`, `copying ${made.backupId} to ${dr.name}`, () =>
      callIn(dr, longTransfer, 'copyBackupToRegion', `Copy ${made.backupId} to ${dr.name}`, { ref: made, from: primary.region, to: dr }),
    );
    report.copies.push(copy);
    await steps.run('verify copy', `checksumming the copy in ${dr.name}`, () =>
      callIn(dr, longTransfer, 'verifyBackup', `Verify copy ${copy.backupId} in ${dr.name}`, { ref: copy, region: dr }),
    );
    report.checks.push({ name: 'backup and copy checksums', ok: true, detail: `sha256 ${made.sha256} in ${primary.region.name} and ${dr.name}` });
    for (const region of [primary.region, dr]) {
      const pruned = await steps.run(`prune ${region.name}`, `keeping the newest ${input.keep} backups in ${region.name}`, () =>
        callIn(region, quickCall, 'pruneBackups', `Retention in ${region.name}: keep ${input.keep}`, { region, database, keep: input.keep }),
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
