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
import {
  CancelledFailure,
  CancellationScope,
  defineQuery,
  isCancellation,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { callIn } from './calls';
import { notify } from './notify';
import { longTransfer, provisioning, quickCall, teardown } from './options';
import { backupAndCopy, CHECKS_ALONGSIDE, preflightAndCanary, runTag, verifyCopy } from './shared-steps';
import { finishReport, startReport, subjectOf, validateRunbookInput, type Cleanup } from './report';
import { StepLog, describeFailure, sideBySide, type Progress } from './steps';
import type { BackupRef, CheckResult, DrillInput, RunbookReport, ScratchInstance } from './types';

export const drillProgressQuery = defineQuery<Progress>('drillProgress');

/** Since this patch the scratch instance is made alongside the backup and copy, not after them. */
export const SCRATCH_ALONGSIDE_BACKUP = 'scratch-alongside-backup';

export async function drill(input: DrillInput): Promise<RunbookReport> {
  validateRunbookInput(input);
  const info = workflowInfo();
  const steps = new StepLog();
  setHandler(drillProgressQuery, () => steps.progress());
  const report = startReport('drill', subjectOf(input), info);
  const declaredStart = Date.now();
  const { primary, dr, database } = input;
  const cleanups: Cleanup[] = [];
  let cancelled: unknown;
  // A platform restore keeps the source's roles, so the source's login reaches the scratch instance;
  // a portable restore (pg_restore) brings none, and the instance is made with the DR side's login.
  const login = input.portable ? input.drCredentials : primary.credentials;
  const scratch: ScratchInstance = {
    name: `drill-${runTag(info.runId)}`,
    region: dr,
    // The PostgreSQL database the backup holds, not the plan's name for it: a platform restore
    // (an RDS snapshot, a Cloud SQL backup run) brings the database back under its own name.
    database: primary.database,
    ...(login && { credentials: login }),
    ...(input.portable && { portable: true }),
  };
  const createScratch = () =>
    steps.run('create scratch instance', `starting ${scratch.name} in ${dr.name}`, () =>
      callIn(dr, provisioning, 'createScratchInstance', `Scratch instance ${scratch.name} in ${dr.name}`, scratch),
    );
  let scratchReady: Promise<ScratchInstance> | undefined;

  try {
    const alongside = patched(CHECKS_ALONGSIDE);
    const canary = await preflightAndCanary(steps, primary, database, `${info.workflowId}/${info.runId}/canary`, alongside);

    // Registered before creation: a create that half-succeeds still gets torn down.
    cleanups.unshift({
      name: `tear down ${scratch.name}`,
      run: () => callIn(dr, teardown, 'dropScratchInstance', `Tear down scratch instance ${scratch.name}`, { scratch }),
    });
    if (patched(SCRATCH_ALONGSIDE_BACKUP)) {
      // The scratch instance needs only the DR region: it comes up while the backup is taken and copied.
      scratchReady = createScratch();
      scratchReady.catch(() => undefined); // awaited below; this only marks the rejection as handled
    }

    let restoreFrom: BackupRef;
    if (input.fromLatestBackup) {
      steps.skip('backup', 'restoring the newest existing copy instead (--from-latest-backup)');
      restoreFrom = await steps.run('find latest backup', `listing backups of ${database} in ${dr.name}`, () =>
        callIn(dr, quickCall, 'findLatestBackup', `Newest backup of ${database} in ${dr.name}`, {
          region: dr,
          database: primary.database,
          ...(input.portable && { portable: true }),
        }),
      );
      report.backup = restoreFrom;
    } else {
      const made = await backupAndCopy(steps, info, input, { verifyBesideCopy: alongside });
      report.backup = made.backup;
      restoreFrom = made.copy;
    }
    report.copies.push(restoreFrom);
    const checkCopy = () => verifyCopy(steps, dr, restoreFrom);
    // What the restore could not load as a role without superuser, by name: failed checks of the drill.
    let restoreFindings: CheckResult[] = [];
    const restore = async () => {
      await (scratchReady ?? createScratch());
      // The copy's verify failed (or the drill was cancelled) while the instance came up: not started.
      if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('restore not started');
      const restored = await steps.run('restore', `restore of ${restoreFrom.backupId} into ${scratch.name}`, () =>
        callIn(dr, longTransfer, 'restoreBackup', `Restore ${restoreFrom.backupId} into ${scratch.name}`, { ref: restoreFrom, scratch }),
      );
      // Histories recorded before restores ran as a role without superuser have no findings.
      restoreFindings = restored.findings ?? [];
      if (restoreFindings.length > 0) steps.annotate('restore', `${restoreFindings.length} object(s) not restored: ${restoreFindings.map((f) => f.name).join(', ')}`);
    };
    let copy: Awaited<ReturnType<typeof checkCopy>>;
    if (alongside) [copy] = await sideBySide(checkCopy, restore);
    else {
      copy = await checkCopy();
      await restore();
    }
    const verified = await steps.run('verify data', `checking every table and the plan's checks`, () =>
      callIn(dr, longTransfer, 'verifyRestore', `Verify data in ${scratch.name}`, { ref: restoreFrom, scratch, checks: input.checks }),
    );

    // RPO, from data: the drill's start against the newest canary the restored database holds.
    const restoredCanary = verified.newestCanary;
    const canaryCheck: CheckResult = !restoredCanary
      ? { name: 'canary present', ok: false, detail: 'the restored database has no canary row: RPO cannot be measured' }
      : input.fromLatestBackup
        ? { name: 'canary present', ok: true, detail: `newest canary #${restoredCanary.id} written ${restoredCanary.writtenAt}` }
        : restoredCanary.id >= canary.id
          ? { name: 'canary present', ok: true, detail: `canary #${canary.id} written at the drill's start is in the restored data` }
          : { name: 'canary present', ok: false, detail: `the restored data's newest canary is #${restoredCanary.id}; the drill wrote #${canary.id} before the backup` };
    const manifestCanary = copy.newestCanary;
    report.checks = [
      ...restoreFindings,
      ...verified.tables.map((t) => ({ ...t, name: `table ${t.name}` })),
      ...(verified.objects ?? []),
      ...verified.checks,
      ...(verified.access ?? []),
      canaryCheck,
      ...(manifestCanary && restoredCanary && manifestCanary.id !== restoredCanary.id
        ? [{ name: 'canary matches manifest', ok: false, detail: `manifest says #${manifestCanary.id}, restored data has #${restoredCanary.id}` }]
        : []),
    ];
    if (restoredCanary) {
      report.rpoSeconds = Math.max(0, (declaredStart - Date.parse(restoredCanary.writtenAt)) / 1000);
    }
    if (report.checks.every((c) => c.ok)) {
      report.rtoSeconds = (Date.now() - declaredStart) / 1000;
      // The drill proves the objectives, not just restorability: missing one is a finding.
      report.checks.push(withinObjective('RTO', report.rtoSeconds, input.objectives.rtoSeconds));
      if (report.rpoSeconds !== null) report.checks.push(withinObjective('RPO', report.rpoSeconds, input.objectives.rpoSeconds));
    }
    const failed = report.checks.filter((c) => !c.ok);
    if (failed.length > 0) {
      report.outcome = 'failed';
      report.reason = `${failed.length} of ${report.checks.length} data checks failed: ${failed.map((c) => `${c.name} (${c.detail})`).join('; ')}`;
    }
  } catch (err) {
    if (isCancellation(err)) cancelled = err;
    // Cancelled while a step was in flight, and the step then failed rather than stopped (a failover's
    // fence ended its sessions): still a cancelled drill, not a failed one.
    else if (CancellationScope.current().consideredCancelled) cancelled = new CancelledFailure(`cancelled; the step in flight then failed: ${describeFailure(err)}`);
    report.outcome = 'failed';
    report.reason = describeFailure(err);
  } finally {
    await CancellationScope.nonCancellable(async () => {
      // A scratch instance still being created when a step failed is waited for, then torn down.
      await scratchReady?.catch(() => undefined);
      await runCleanups(steps, cleanups, report);
    });
  }

  if (report.outcome === 'failed' && !cancelled) {
    await notify(steps, dr, {
      event: 'drill.failed',
      database: input.database,
      runbook: 'drill',
      summary: `drill of ${input.database} failed`,
      outcome: 'failed',
      ...(report.reason && { reason: report.reason }),
      rtoSeconds: report.rtoSeconds,
      rpoSeconds: report.rpoSeconds,
    });
  }
  finishReport(report, steps);
  if (cancelled) throw cancelled;
  return report;
}

function withinObjective(what: 'RTO' | 'RPO', measured: number, objective: number): CheckResult {
  const ok = measured <= objective;
  return { name: `${what} within objective`, ok, detail: `${measured.toFixed(1)}s measured, objective ${objective}s` };
}

/** Runs registered cleanups newest first; each failure is recorded and the rest still run. */
export async function runCleanups(steps: StepLog, cleanups: Cleanup[], report: RunbookReport): Promise<void> {
  for (const cleanup of cleanups) {
    try {
      const result = await steps.run(cleanup.name, cleanup.name, cleanup.run);
      report.cleanup.push({ name: cleanup.name, ok: true, detail: result.existed ? 'deleted' : 'nothing to delete' });
    } catch (err) {
      report.cleanup.push({ name: cleanup.name, ok: false, detail: describeFailure(err) });
      report.outcome = 'failed';
      report.reason = [report.reason, `cleanup failed: ${cleanup.name}: ${describeFailure(err)}`].filter(Boolean).join('; ');
    }
  }
}
