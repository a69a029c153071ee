// Steps that more than one runbook takes, written once so that every runbook names, summarizes and
// times them the same way (and a change to one cannot drift from the others).
import type { WorkflowInfo } from '@temporalio/workflow';
import { callIn } from './calls';
import { longTransfer, quickCall } from './options';
import { sideBySide, type StepLog } from './steps';
import type { BackupRef, Canary, DatabaseTarget, RegionSpec } from './types';

export function preflight(steps: StepLog, primary: DatabaseTarget, database: string) {
  return steps.run('preflight', `checking ${database} in ${primary.region.name}`, () =>
    callIn(primary.region, quickCall, 'preflight', `Preflight ${database} in ${primary.region.name}`, { target: primary }),
  );
}

/**
 * Preflight, then the canary write; with `alongside` (CHECKS_ALONGSIDE) side by side: the canary
 * write fails on its own where the preflight would. The canary written.
 */
export async function preflightAndCanary(steps: StepLog, primary: DatabaseTarget, database: string, token: string, alongside: boolean): Promise<Canary> {
  const checkPrimary = () => preflight(steps, primary, database);
  const writeCanary = () => canaryWrite(steps, primary, database, token);
  if (alongside) return (await sideBySide(checkPrimary, writeCanary))[1];
  await checkPrimary();
  return writeCanary();
}

/** One canary row on the primary; the token ties it to this run, so a retry writes no second row. */
export function canaryWrite(steps: StepLog, primary: DatabaseTarget, database: string, token: string): Promise<Canary> {
  return steps.run('canary write', 'writing a canary row on the primary', () =>
    callIn(primary.region, quickCall, 'writeCanary', `Canary write on ${database}`, { target: primary, token }),
  );
}

/**
 * The patch (`patched()`) since which the drill and the backup runbook run the preflight beside the
 * canary write and, where the copy checks what it reads, the backup's verify beside its copy; the
 * drill also runs the copy's verify beside the restore. Runs started before it replay as they ran.
 */
export const CHECKS_ALONGSIDE = 'checks-alongside-next-step';

/**
 * backup -> verify backup -> copy to the DR region. Names come from the run: retries adopt. With
 * `verifyBesideCopy`, a backup whose copy checks the bytes it reads (`copyChecksSource`) is verified
 * and copied side by side.
 */
export async function backupAndCopy(
  steps: StepLog,
  info: WorkflowInfo,
  { primary, dr, database, portable }: { primary: DatabaseTarget; dr: RegionSpec; database: string; portable?: boolean },
  { verifyBesideCopy = false }: { verifyBesideCopy?: boolean } = {},
): Promise<{ backup: BackupRef; copy: BackupRef }> {
  const where = portable ? `the object store of ${primary.region.name}` : primary.region.name;
  const backup = await steps.run('backup', `${portable ? 'portable pg_dump' : 'backup'} of ${database} into ${where}`, () =>
    callIn(primary.region, longTransfer, 'createBackup', `Back up ${database} in ${primary.region.name}${portable ? ' (portable)' : ''}`, {
      target: primary,
      backupId: backupIdFor(database, info.runStartTime, info.runId),
      createdBy: info.workflowId,
      ...(portable && { portable: true }),
    }),
  );
  const verify = () =>
    steps.run('verify backup', `checksumming ${backup.backupId}`, () =>
      callIn(primary.region, longTransfer, 'verifyBackup', `Verify backup ${backup.backupId}`, { ref: backup, region: primary.region }),
    );
  const copyToDr = () =>
    steps.run(`copy to ${dr.name}`, `copying ${backup.backupId} to ${dr.name}`, () =>
      callIn(dr, longTransfer, 'copyBackupToRegion', `Copy ${backup.backupId} to ${dr.name}`, { ref: backup, from: primary.region, to: dr }),
    );
  if (verifyBesideCopy && backup.copyChecksSource) {
    const [, copy] = await sideBySide(verify, copyToDr);
    return { backup, copy };
  }
  await verify();
  return { backup, copy: await copyToDr() };
}

/** The copy at rest in the DR region, against its manifest. */
export function verifyCopy(steps: StepLog, dr: RegionSpec, copy: BackupRef) {
  return steps.run('verify copy', `checksumming the copy in ${dr.name}`, () =>
    callIn(dr, longTransfer, 'verifyBackup', `Verify copy ${copy.backupId} in ${dr.name}`, { ref: copy, region: dr }),
  );
}

/** Backup names come from the run, so a retried backup step finds the first attempt's backup. */
export function backupIdFor(database: string, runStart: Date, runId: string): string {
  const stamp = runStart.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${database}-${stamp}-${runTag(runId)}`;
}

/**
 * Eight characters that tell runs apart. The tail of the run ID, not its head: the head of a
 * time-ordered (v7) UUID is the same for every run started within the same minute or so, and names
 * built from it collided (Cloud SQL does not even reuse a deleted instance's name for a week).
 */
export function runTag(runId: string): string {
  return runId.replace(/-/g, '').slice(-8);
}
