// The Cross-cloud Failover runbook (and failback: the same steps with the two ends swapped), for a
// database whose DR side is on another cloud. No replication crosses clouds, so the database moves
// as a portable backup (pg_dump + manifest) restored into the other side's instance.
//
//   cancel drills -> read the record -> preflight both sides -> [planned: canary write] -> approval
//   -> planned:   fence `from` (read-only) -> final portable backup -> verify -> copy to `to`'s store
//                 -> verify copy                                  (RPO 0: everything before the fence)
//   -> unplanned: fence `from` with a deadline (recorded) -> newest copy already in `to`'s store
//                 -> verify it              (RPO: all writes after that backup; promised and measured)
//   -> restore into `to` (an existing database there is renamed aside, never dropped)
//   -> verify every table against the manifest + the plan's checks -> record `to` as the primary
//   -> smoke test (a write) -> RPO from data -> RTO -> report
//
// Until the record moves, every change has an undo (the fence is lifted); the restored copy on `to`
// is left in place, marked with this run, for the next attempt to redo.
import { runbook } from './kit';
import { crossCloudProgressQuery } from './messages';
import { finishedNote } from './notify';
import { invalid } from './report';
import { backupAndCopy, runTag, verifyCopy } from './shared-steps';
import { describeFailure } from './steps';
import { approvalGate } from './topology-steps';
import type { BackupRef, Canary, CrossCloudInput, DatabaseTarget, NodeRef, RunbookReport } from './types';

export { crossCloudProgressQuery } from './messages';

export function crossCloudFailover(input: CrossCloudInput): Promise<RunbookReport> {
  // The record lives with the DR side's workers (as a replication set's does): a failover runs while
  // the home region is dark, and failover and failback read and write the same record.
  const recordRegion = () => (input.direction === 'failover' ? input.to.region : input.from.region);
  const subject = () => ({
    database: input.database,
    provider: input.to.region.provider,
    triggeredBy: input.triggeredBy,
    objectives: input.objectives,
  });
  const spec = {
    kind: input?.direction,
    input,
    validate: validateCrossCloudInput,
    subject,
    progress: crossCloudProgressQuery,
    finished: { region: recordRegion, note: finishedNote },
  };
  return runbook(spec, async (run) => {
    const { steps, report, info, declaredStart } = run;
    const { from, to, mode } = input;
    const [atFrom, atTo, atRecord] = [run.in(from.region), run.in(to.region), run.in(recordRegion())];
    report.failover = {
      mode: input.direction === 'failback' ? 'failback' : mode,
      approval: null,
      fence: null,
      lagAtDecision: null,
      walGapBytes: null,
      topology: null,
    };
    report.crossCloud = { from: where(from), to: where(to), rpoPromiseSeconds: null, setAside: null };
    await run.step(
      'cancel drills',
      () => atTo.quick.cancelDrills({ database: input.database }),
      `cancelling running drills of ${input.database}`,
    );
    const record = await run.step(
      'read record',
      () => atRecord.quick.readRecoveryRecord({ database: input.database }),
      `where ${input.database} is served now`,
    );
    if (record && !record.primary)
      throw invalid(
        `the record of ${input.database} has no primary: an earlier run stopped half way; check \`lifeboat status\``,
      );
    // Only the side that serves the database may be moved from: a failback from a DR copy nobody
    // failed over to would restore stale data over the live home database.
    const serving = record?.primary ?? (input.direction === 'failover' ? nodeOf(from) : null);
    if (!serving || !same(serving, nodeOf(from))) {
      const now = serving ? `${serving.region}/${serving.name}` : 'its home (it was never failed over)';
      throw invalid(`${input.database} is served from ${now}, not ${where(from)}: nothing to ${input.direction}`);
    }

    const target = await run.step(
      'preflight target',
      () => atTo.quick.preflightServer({ target: to }),
      `checking ${where(to)}`,
    );
    if (mode === 'planned') {
      const source = await run.step(
        'preflight source',
        () => atFrom.quick.preflight({ target: from }),
        `checking ${where(from)}`,
      );
      // Found now, not after the source has been fenced for the length of a dump and a copy.
      if (source.serverVersionNum > target.serverVersionNum) {
        throw invalid(
          `${where(from)} runs PostgreSQL ${source.serverVersion} and ${where(to)} ${target.serverVersion}: pg_restore cannot load a dump into an older server; nothing was changed`,
        );
      }
    }

    const approval = await approvalGate({ steps, info, input }, input.direction, recordRegion());
    report.failover.approval = approval;
    if (!approval) return run.fail(`approval timed out after ${input.approval.timeoutSeconds}s; nothing was changed`);

    // Registered before the fence: a fence that half-succeeds is still lifted if the run stops.
    run.undo(`unfence ${where(from)}`, () => atFrom.quick.unfenceDatabase({ target: from }, `Unfence ${where(from)}`));
    let copy: BackupRef;
    let startCanary: Canary | null = null;
    if (mode === 'planned') {
      // The last write before the fence: the restored data must hold it (RPO 0, from data).
      startCanary = await run.step(
        'canary write',
        () => atFrom.quick.writeCanary({ target: from, token: `${info.workflowId}/${info.runId}/canary` }),
        `writing a canary row on ${where(from)}`,
      );
      const fence = await run.step(
        'fence source',
        () => atFrom.quick.fenceDatabase({ target: from, mode: 'planned' }),
        `making ${where(from)} read-only and ending its sessions`,
      );
      report.failover.fence = fence;
      if (!fence.confirmed) throw invalid(`could not confirm the fence of ${where(from)}: ${fence.how}`);
      // The final backup is taken after the fence: it holds every write the source ever acknowledged.
      const made = await backupAndCopy(run, { primary: from, dr: to.region, database: input.database, portable: true });
      report.backup = made.backup;
      copy = made.copy;
      report.crossCloud.rpoPromiseSeconds = 0;
    } else {
      try {
        report.failover.fence = await run.step(
          'fence source',
          () => atFrom.fence.fenceDatabase({ target: from, mode: 'unplanned' }),
          `stopping writes to ${where(from)} if it can be reached (30 s deadline)`,
        );
      } catch (err) {
        report.failover.fence = { confirmed: false, how: `not confirmed: ${describeFailure(err)}` };
      }
      copy = await run.step(
        'find latest copy',
        () => atTo.quick.findLatestBackup({ region: to.region, database: from.database, portable: true }),
        `the newest portable backup of ${input.database} in ${to.region.name}`,
      );
      // Everything written after this backup was taken is what an unplanned move loses.
      report.crossCloud.rpoPromiseSeconds = Math.max(0, (declaredStart - Date.parse(copy.createdAt)) / 1000);
    }
    report.copies.push(copy);
    await verifyCopy(run, to.region, copy);

    const restored = await run.step(
      'restore',
      () =>
        atTo.long.restoreForRecovery({
          ref: copy,
          target: to,
          marker: `lifeboat recovery ${info.workflowId}/${info.runId} from ${copy.backupId}`,
          // PostgreSQL cuts names at 63 bytes; the tag must survive the cut.
          asideName: `${to.database.slice(0, 46)}_before_${runTag(info.runId)}`,
        }),
      `restore of ${copy.backupId} into ${where(to)}`,
    );
    report.crossCloud.setAside = restored.setAside;
    // Until the record moves, nobody is to write to the restored copy: it is fenced if the run stops.
    run.undo(`fence the restored copy on ${where(to)}`, () =>
      atTo.quick.fenceDatabase({ target: to, mode: 'unplanned' }, `Fence the unused restored copy on ${where(to)}`),
    );
    const verified = await run.step(
      'verify data',
      () => atTo.long.verifyRecovered({ ref: copy, target: to, checks: input.checks }),
      `checking every table and the plan's checks on ${where(to)}`,
    );
    run.check(
      ...verified.tables.map((t) => ({ ...t, name: `table ${t.name}` })),
      ...(verified.objects ?? []),
      ...verified.checks,
      ...(verified.access ?? []),
    );
    const failed = report.checks.filter((c) => !c.ok);
    if (failed.length > 0) {
      throw invalid(
        `the restored data on ${where(to)} failed ${failed.length} check(s), so ${where(from)} stays the primary: ${failed.map((c) => `${c.name} (${c.detail})`).join('; ')}`,
      );
    }

    // The point of no return: clients are sent to `to`; the source stays fenced.
    const after = await run.step(
      'record new primary',
      () =>
        atRecord.quick.recordRecovery({
          database: input.database,
          primary: nodeOf(to),
          fenced: [
            ...(record?.fenced ?? []).filter((n) => !same(n, nodeOf(to)) && !same(n, nodeOf(from))),
            nodeOf(from),
          ],
          expectedEpoch: record?.epoch ?? 0,
          by: info.workflowId,
        }),
      `recording ${where(to)} as the side that serves ${input.database}`,
    );
    run.forgetUndos();
    report.failover.topology = after;

    const smoke = await run.step(
      'smoke test',
      () => atTo.quick.writeCanary({ target: to, token: `${info.workflowId}/${info.runId}/smoke` }),
      `a write on ${where(to)}`,
    );
    run.check({
      name: 'write on the new primary',
      ok: true,
      detail: `canary #${smoke.id} committed at ${smoke.writtenAt}`,
    });
    measureRpoOfRestore(report, input, verified.newestCanary, startCanary, declaredStart);
    report.rtoSeconds = run.elapsed();
    run.check({
      name: 'RTO within objective',
      ok: report.rtoSeconds <= input.objectives.rtoSeconds,
      detail: `${report.rtoSeconds.toFixed(1)}s measured, objective ${input.objectives.rtoSeconds}s`,
    });
    run.passedChecks(() => `${where(to)} serves ${input.database} now, but`);
  });
}

/**
 * RPO of a cross-cloud recovery, from the restored data. Planned: the canary written before the fence
 * must be in the restored data (RPO 0).
 * Unplanned: the declared start against the newest canary the restored data holds, within the
 * objective; the promise (the newest copy's age) is reported beside it.
 */
function measureRpoOfRestore(
  report: RunbookReport,
  input: CrossCloudInput,
  restored: Canary | null,
  startCanary: Canary | null,
  declaredStart: number,
): void {
  const promise = report.crossCloud?.rpoPromiseSeconds ?? null;
  if (input.mode === 'planned') {
    const ok = Boolean(restored && startCanary && restored.id >= startCanary.id);
    report.rpoSeconds = ok ? 0 : null;
    report.checks.push({
      name: 'no acknowledged write lost',
      ok,
      detail: ok
        ? `canary #${startCanary!.id}, written before the fence, is in the restored data`
        : `canary #${startCanary?.id ?? '?'} written before the fence is missing; newest restored: ${restored ? `#${restored.id}` : 'none'}`,
    });
    return;
  }
  if (!restored) {
    report.checks.push({
      name: 'RPO measurable',
      ok: false,
      detail: 'the restored data has no canary row: data loss cannot be measured',
    });
    return;
  }
  report.rpoSeconds = Math.max(0, (declaredStart - Date.parse(restored.writtenAt)) / 1000);
  report.checks.push({
    name: 'RPO within objective',
    ok: report.rpoSeconds <= input.objectives.rpoSeconds,
    detail:
      `${report.rpoSeconds.toFixed(1)}s of writes lost at most (newest restored canary #${restored.id} at ${restored.writtenAt}); ` +
      `objective ${input.objectives.rpoSeconds}s; this path promised ${promise === null ? 'nothing' : `${promise.toFixed(1)}s`} (the newest copy's age)`,
  });
}

function nodeOf(target: DatabaseTarget): NodeRef {
  return { region: target.region.name, name: target.instance ?? 'server' };
}

function where(target: DatabaseTarget): string {
  return `${target.region.name}/${target.instance ?? 'server'}/${target.database}`;
}

function same(a: NodeRef | null, b: NodeRef): boolean {
  return Boolean(a && a.region === b.region && a.name === b.name);
}

function validateCrossCloudInput(input: CrossCloudInput): void {
  const problems: string[] = [];
  if (!input || typeof input !== 'object') throw invalid('runbook input must be an object');
  if (!input.database) problems.push('database is required');
  if (!input.from?.region?.name || !input.to?.region?.name) problems.push('from.region and to.region are required');
  else {
    if (!input.from.region.store || !input.to.region.store)
      problems.push('both regions need a store for portable backups');
    if (input.from.region.name === input.to.region.name) problems.push('from and to must be in different regions');
  }
  if (!['planned', 'unplanned'].includes(input.mode))
    problems.push(`mode ${JSON.stringify(input.mode)} must be planned or unplanned`);
  if (!['failover', 'failback'].includes(input.direction))
    problems.push(`direction ${JSON.stringify(input.direction)} must be failover or failback`);
  if (!(input.approval?.timeoutSeconds > 0)) problems.push('approval.timeoutSeconds must be greater than zero');
  if (problems.length) throw invalid(`invalid runbook input: ${problems.join('; ')}`);
}
