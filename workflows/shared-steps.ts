// Steps that more than one runbook takes, written once so that every runbook names, summarizes and
// times them the same way (and a change to one cannot drift from the others).
import type { Run } from './kit';
import { sideBySide } from './steps';
import type { BackupRef, Canary, DatabaseTarget, RegionSpec } from './types';

export function preflight(run: Run, primary: DatabaseTarget, database: string) {
  return run.step(
    'preflight',
    () => run.in(primary.region).quick.preflight({ target: primary }),
    `checking ${database} in ${primary.region.name}`,
  );
}

/**
 * Preflight, then the canary write; with `alongside` (CHECKS_ALONGSIDE) side by side: the canary
 * write fails on its own where the preflight would. The canary written.
 */
export async function preflightAndCanary(
  run: Run,
  primary: DatabaseTarget,
  database: string,
  alongside: boolean,
): Promise<Canary> {
  const checkPrimary = () => preflight(run, primary, database);
  const writeCanary = () => canaryWrite(run, primary);
  if (alongside) return (await sideBySide(checkPrimary, writeCanary))[1];
  await checkPrimary();
  return writeCanary();
}

/** One canary row on the primary; the token ties it to this run, so a retry writes no second row. */
export function canaryWrite(run: Run, primary: DatabaseTarget): Promise<Canary> {
  const token = `${run.info.workflowId}/${run.info.runId}/canary`;
  return run.step(
    'canary write',
    () => run.in(primary.region).quick.writeCanary({ target: primary, token }),
    'writing a canary row on the primary',
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
  run: Run,
  {
    primary,
    dr,
    database,
    portable,
  }: { primary: DatabaseTarget; dr: RegionSpec; database: string; portable?: boolean },
  { verifyBesideCopy = false }: { verifyBesideCopy?: boolean } = {},
): Promise<{ backup: BackupRef; copy: BackupRef }> {
  const { info } = run;
  const home = run.in(primary.region);
  const where = portable ? `the object store of ${primary.region.name}` : primary.region.name;
  const backupId = backupIdFor(database, info.runStartTime, info.runId);
  const backup = await run.step(
    'backup',
    () =>
      home.long.createBackup({
        target: primary,
        backupId,
        createdBy: info.workflowId,
        ...(portable && { portable: true }),
      }),
    `${portable ? 'portable pg_dump' : 'backup'} of ${database} into ${where}`,
  );
  const verify = () =>
    run.step(
      'verify backup',
      () => home.long.verifyBackup({ ref: backup, region: primary.region }),
      `checksumming ${backup.backupId}`,
    );
  const copyToDr = () =>
    run.step(
      `copy to ${dr.name}`,
      () => run.in(dr).long.copyBackupToRegion({ ref: backup, from: primary.region, to: dr }),
      `copying ${backup.backupId} to ${dr.name}`,
    );
  if (verifyBesideCopy && backup.copyChecksSource) {
    const [, copy] = await sideBySide(verify, copyToDr);
    return { backup, copy };
  }
  await verify();
  return { backup, copy: await copyToDr() };
}

/** The copy at rest in the DR region, against its manifest. */
export function verifyCopy(run: Run, dr: RegionSpec, copy: BackupRef) {
  return run.step(
    'verify copy',
    () => run.in(dr).long.verifyBackup({ ref: copy, region: dr }),
    `checksumming the copy in ${dr.name}`,
  );
}

/** Backup names come from the run, so a retried backup step finds the first attempt's backup. */
export function backupIdFor(database: string, runStart: Date, runId: string): string {
  const stamp = runStart
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
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
