// The Drill runbook: prove that the latest backup restores and that the data is right.
//
//   preflight | canary write -> backup -> verify backup | copy to DR -> verify copy | restore
//   -> verify data (every table + plan checks) -> RTO/RPO
//   -> tear down (always: on success, failure and cancellation) -> report
//
// `a | b` run side by side, and the scratch instance in DR comes up beside the backup and the copy.
// A check beside the step after it holds that step back from nothing it needs: the canary write
// fails on its own where the preflight would, a local or portable copy hashes what it reads and
// keeps nothing that differs from the manifest (a platform snapshot copy waits for the verify), and
// the restore hashes the copy's bytes against the manifest again while it loads them (a difference
// stops the load with the checksum verdict). Either failing cancels the other and fails the drill.
//
// With fromLatestBackup the backup and copy steps are replaced by picking the newest existing copy
// in the DR region: restore testing of what already exists.
import { CancelledFailure, CancellationScope, defineQuery, patched } from '@temporalio/workflow';
import { runbook, torndown } from './kit';
import { backupAndCopy, CHECKS_ALONGSIDE, preflightAndCanary, runTag, verifyCopy } from './shared-steps';
import { subjectOf, validateRunbookInput } from './report';
import { sideBySide, type Progress } from './steps';
import type { BackupRef, CheckResult, DrillInput, RunbookReport, ScratchInstance } from './types';

export const drillProgressQuery = defineQuery<Progress>('drillProgress');

/** Since this patch the scratch instance is made alongside the backup and copy, not after them. */
export const SCRATCH_ALONGSIDE_BACKUP = 'scratch-alongside-backup';

export function drill(input: DrillInput): Promise<RunbookReport> {
  const spec = {
    kind: 'drill' as const,
    input,
    validate: validateRunbookInput,
    subject: subjectOf,
    progress: drillProgressQuery,
    finished: {
      region: () => input.dr,
      note: (report: RunbookReport, cancelled: boolean) =>
        report.outcome === 'failed' && !cancelled
          ? {
              event: 'drill.failed' as const,
              database: input.database,
              runbook: 'drill',
              summary: `drill of ${input.database} failed`,
              outcome: 'failed' as const,
              ...(report.reason && { reason: report.reason }),
              rtoSeconds: report.rtoSeconds,
              rpoSeconds: report.rpoSeconds,
            }
          : null,
    },
  };
  return runbook(spec, async (run) => {
    const { report, info } = run;
    const { primary, database } = input;
    const dr = run.in(input.dr);
    // A platform restore keeps the source's roles, so the source's login reaches the scratch instance;
    // a portable restore (pg_restore) brings none, and the instance is made with the DR side's login.
    const login = input.portable ? input.drCredentials : primary.credentials;
    const scratch: ScratchInstance = {
      name: `drill-${runTag(info.runId)}`,
      region: input.dr,
      // The PostgreSQL database the backup holds, not the plan's name for it: a platform restore
      // (an RDS snapshot, a Cloud SQL backup run) brings the database back under its own name.
      database: primary.database,
      ...(login && { credentials: login }),
      ...(input.portable && { portable: true }),
    };
    const createScratch = () =>
      run.step(
        'create scratch instance',
        () => dr.provisioning.createScratchInstance(scratch),
        `starting ${scratch.name} in ${input.dr.name}`,
      );
    let scratchReady: Promise<ScratchInstance> | undefined;

    const alongside = patched(CHECKS_ALONGSIDE);
    const canary = await preflightAndCanary(run, primary, database, alongside);

    // Registered before creation: a create that half-succeeds still gets torn down; one still being
    // created when a step failed is waited for, then torn down.
    run.undo(
      `tear down ${scratch.name}`,
      async () => {
        await scratchReady?.catch(() => undefined);
        return dr.teardown.dropScratchInstance({ scratch }, `Tear down scratch instance ${scratch.name}`);
      },
      torndown,
    );
    if (patched(SCRATCH_ALONGSIDE_BACKUP)) {
      // The scratch instance needs only the DR region: it comes up while the backup is taken and copied.
      scratchReady = createScratch();
      scratchReady.catch(() => undefined); // awaited below; this only marks the rejection as handled
    }

    let restoreFrom: BackupRef;
    if (input.fromLatestBackup) {
      run.steps.skip('backup', 'restoring the newest existing copy instead (--from-latest-backup)');
      restoreFrom = await run.step(
        'find latest backup',
        () =>
          dr.quick.findLatestBackup({
            region: input.dr,
            database: primary.database,
            ...(input.portable && { portable: true }),
          }),
        `listing backups of ${database} in ${input.dr.name}`,
      );
      report.backup = restoreFrom;
    } else {
      const made = await backupAndCopy(run, input, { verifyBesideCopy: alongside });
      report.backup = made.backup;
      restoreFrom = made.copy;
    }
    report.copies.push(restoreFrom);
    const checkCopy = () => verifyCopy(run, input.dr, restoreFrom);
    // What the restore could not load as a role without superuser, by name: failed checks of the drill.
    let restoreFindings: CheckResult[] = [];
    const restore = async () => {
      await (scratchReady ?? createScratch());
      // The copy's verify failed (or the drill was cancelled) while the instance came up: not started.
      if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('restore not started');
      const restored = await run.step(
        'restore',
        () => dr.long.restoreBackup({ ref: restoreFrom, scratch }),
        `restore of ${restoreFrom.backupId} into ${scratch.name}`,
      );
      // Histories recorded before restores ran as a role without superuser have no findings.
      restoreFindings = restored.findings ?? [];
      if (restoreFindings.length > 0)
        run.steps.annotate(
          'restore',
          `${restoreFindings.length} object(s) not restored: ${restoreFindings.map((f) => f.name).join(', ')}`,
        );
    };
    let copy: Awaited<ReturnType<typeof checkCopy>>;
    if (alongside) [copy] = await sideBySide(checkCopy, restore);
    else {
      copy = await checkCopy();
      await restore();
    }
    const verified = await run.step(
      'verify data',
      () => dr.long.verifyRestore({ ref: restoreFrom, scratch, checks: input.checks }),
      `checking every table and the plan's checks in ${scratch.name}`,
    );

    // RPO, from data: the drill's start against the newest canary the restored database holds.
    const restoredCanary = verified.newestCanary;
    const canaryCheck: CheckResult = !restoredCanary
      ? { name: 'canary present', ok: false, detail: 'the restored database has no canary row: RPO cannot be measured' }
      : input.fromLatestBackup
        ? {
            name: 'canary present',
            ok: true,
            detail: `newest canary #${restoredCanary.id} written ${restoredCanary.writtenAt}`,
          }
        : restoredCanary.id >= canary.id
          ? {
              name: 'canary present',
              ok: true,
              detail: `canary #${canary.id} written at the drill's start is in the restored data`,
            }
          : {
              name: 'canary present',
              ok: false,
              detail: `the restored data's newest canary is #${restoredCanary.id}; the drill wrote #${canary.id} before the backup`,
            };
    const manifestCanary = copy.newestCanary;
    run.check(
      ...restoreFindings,
      ...verified.tables.map((t) => ({ ...t, name: `table ${t.name}` })),
      ...(verified.objects ?? []),
      ...verified.checks,
      ...(verified.access ?? []),
      canaryCheck,
      ...(manifestCanary && restoredCanary && manifestCanary.id !== restoredCanary.id
        ? [
            {
              name: 'canary matches manifest',
              ok: false,
              detail: `manifest says #${manifestCanary.id}, restored data has #${restoredCanary.id}`,
            },
          ]
        : []),
    );
    if (restoredCanary)
      report.rpoSeconds = Math.max(0, (run.declaredStart - Date.parse(restoredCanary.writtenAt)) / 1000);
    if (report.checks.every((c) => c.ok)) {
      report.rtoSeconds = run.elapsed();
      // The drill proves the objectives, not just restorability: missing one is a finding.
      run.check(withinObjective('RTO', report.rtoSeconds, input.objectives.rtoSeconds));
      if (report.rpoSeconds !== null) run.check(withinObjective('RPO', report.rpoSeconds, input.objectives.rpoSeconds));
    }
    run.passedChecks((failed, all) => `${failed} of ${all} data checks failed`);
  });
}

function withinObjective(what: 'RTO' | 'RPO', measured: number, objective: number): CheckResult {
  const ok = measured <= objective;
  return { name: `${what} within objective`, ok, detail: `${measured.toFixed(1)}s measured, objective ${objective}s` };
}
