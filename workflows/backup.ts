// The Backup runbook (schedulable): a backup, its copy to the DR region, and retention pruning.
//
//   preflight | canary write -> backup -> verify | copy to DR -> verify copy -> prune both regions
//
// `a | b` run side by side (as in the drill, and behind the same patch id): the canary write fails on
// its own where the preflight would, and a local or portable copy hashes what it reads and keeps
// nothing that differs from the manifest (a platform snapshot copy waits for the verify). Pruning
// waits for the copy's verify: no older backup goes before the new one is proven in both regions.
import { defineQuery, patched } from '@temporalio/workflow';
import { runbook } from './kit';
import { backupAndCopy, CHECKS_ALONGSIDE, preflightAndCanary, verifyCopy } from './shared-steps';
import { subjectOf, validateRunbookInput } from './report';
import type { Progress } from './steps';
import type { BackupInput, RunbookReport } from './types';

export const backupProgressQuery = defineQuery<Progress>('backupProgress');

export function backup(input: BackupInput): Promise<RunbookReport> {
  return runbook(
    { kind: 'backup', input, validate: validateRunbookInput, subject: subjectOf, progress: backupProgressQuery },
    async (run) => {
      const { primary, dr, database, keep } = input;
      const alongside = patched(CHECKS_ALONGSIDE);
      await preflightAndCanary(run, primary, database, alongside);
      const { backup: made, copy } = await backupAndCopy(run, input, { verifyBesideCopy: alongside });
      run.report.backup = made;
      run.report.copies.push(copy);
      await verifyCopy(run, dr, copy);
      run.check({
        name: 'backup and copy checksums',
        ok: true,
        detail: `sha256 ${made.sha256} in ${primary.region.name} and ${dr.name}`,
      });
      for (const region of [primary.region, dr]) {
        // Backups are labelled with the PostgreSQL database they hold, which a plan may name differently.
        const pruned = await run.step(
          `prune ${region.name}`,
          () =>
            run.in(region).quick.pruneBackups({
              region,
              database: primary.database,
              keep,
              ...(input.portable && { portable: true }),
            }),
          `keeping the newest ${keep} backups in ${region.name}`,
        );
        run.check({
          name: `retention ${region.name}`,
          ok: true,
          detail: `kept ${pruned.kept}, deleted ${pruned.deleted.length}`,
        });
      }
    },
  );
}
