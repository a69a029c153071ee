// The Readiness runbook: between drills, is the database still recoverable the way the plan says?
// Read-only; run on a schedule (plan `schedule.readiness`) or by `lifeboat readiness <db>`.
//
//   DR region answers -> primary region answers -> newest backup within the RPO -> copy in DR
//   -> standby present and streaming -> standby lag within the RPO -> a drill passed in its window
//   -> sweep the DR region's scratch instances whose drill is no longer running (not a check)
//   -> publish the verdicts (metrics) -> one notification per problem -> report
//
// Every check runs even when an earlier one failed: the report lists everything that is wrong.
import { defineQuery, patched } from '@temporalio/workflow';
import type { DrillSighting, NewestBackup, StandbyHealth } from '../activities/readiness';
import type { SweepOutcome } from '../activities/scratch-sweep';
import { runbook } from './kit';
import { notify } from './notify';
import { readinessProbe } from './options';
import { invalid, subjectOf } from './report';
import { describeFailure, type Progress } from './steps';
import type { Attempted, ReadinessInput, RegionSpec, RunbookReport } from './types';

export const readinessProgressQuery = defineQuery<Progress>('readinessProgress');

/** Since this patch a readiness run also sweeps its DR region's scratch instances of drills no longer running. */
export const SCRATCH_SWEEP = 'readiness-scratch-sweep';

export function readiness(input: ReadinessInput): Promise<RunbookReport> {
  return runbook(
    {
      kind: 'readiness',
      input,
      validate: validateReadinessInput,
      subject: subjectOf,
      progress: readinessProgressQuery,
    },
    async (run) => {
      const { primary, dr, database, objectives } = input;
      const rpo = objectives.rpoSeconds;
      const probeOptions = { ...readinessProbe, scheduleToStartTimeout: (input.regionAnswerSeconds ?? 120) * 1000 };
      const probesIn = (region: RegionSpec) => run.callsIn(region, probeOptions);

      /** A probe that fails is itself the finding; the next checks still run. */
      const probe = async <T>(
        check: string,
        waitingFor: string,
        call: () => Promise<Attempted<T>>,
      ): Promise<{ ok: true; value: T } | { ok: false }> => {
        try {
          return { ok: true, value: await run.step(check, call, waitingFor) };
        } catch (err) {
          run.check({ name: check, ok: false, detail: describeFailure(err) });
          return { ok: false };
        }
      };
      const newestIn = (region: RegionSpec) =>
        probe<NewestBackup | null>(`${region.name} answers`, `listing backups of ${database} in ${region.name}`, () =>
          probesIn(region).newestBackup({
            region,
            database: primary.database,
            ...(input.portable && { portable: true }),
            measureFor: database,
          }),
        );

      const inDr = await newestIn(dr);
      if (inDr.ok)
        run.check({
          name: `${dr.name} answers`,
          ok: true,
          detail: `a worker serves ${dr.name} and reaches its ${input.portable ? 'store' : 'platform'}`,
        });
      const atHome = await newestIn(primary.region);
      if (atHome.ok) {
        run.check({
          name: `${primary.region.name} answers`,
          ok: true,
          detail: `a worker serves ${primary.region.name}`,
        });
        const newest = atHome.value;
        run.check(
          !newest
            ? {
                name: 'newest backup within RPO',
                ok: false,
                detail: `no Lifeboat backup of ${database} in ${primary.region.name}`,
              }
            : {
                name: 'newest backup within RPO',
                ok: newest.ageSeconds <= rpo,
                detail: `${newest.backupId} is ${age(newest.ageSeconds)} old; objective ${age(rpo)}`,
              },
        );
        if (newest && inDr.ok) {
          const copy = inDr.value;
          const copied = copy !== null && (copy.backupId === newest.backupId || copy.createdAt >= newest.createdAt);
          run.check({
            name: `copy in ${dr.name}`,
            ok: copied,
            detail: copied
              ? `${copy.backupId} is in ${dr.name}`
              : `${newest.backupId} has no copy in ${dr.name}${copy ? `; the newest there is ${copy.backupId}` : ''}`,
          });
        }
      }

      if (input.replicaSet) {
        const set = input.replicaSet;
        const health = await probe<StandbyHealth>('standby present', `reading the standby of ${set.set}`, () =>
          probesIn(set.home).standbyHealth({ set }),
        );
        if (health.ok) {
          const h = health.value;
          const present = h.standby !== null && h.reachable && h.streaming !== false;
          run.check({
            name: 'standby present',
            ok: present,
            detail: !h.standby
              ? h.detail
              : !h.reachable
                ? `${h.standby.region}/${h.standby.name} is unreachable: ${h.detail}`
                : h.streaming === false
                  ? `${h.standby.region}/${h.standby.name} is not streaming`
                  : `${h.standby.region}/${h.standby.name} streaming`,
          });
          if (present) {
            run.check({
              name: 'standby lag within RPO',
              ok: h.lagSeconds === null || h.lagSeconds <= rpo,
              detail: `${h.lagSeconds === null ? 'no replay lag measured (idle primary)' : `${h.lagSeconds.toFixed(1)}s behind`}${h.lagBytes !== null ? `, ${h.lagBytes} bytes` : ''}; objective ${age(rpo)}`,
            });
          }
        }
      }

      // The rest runs where a worker answered: a dark DR region must not silence the news that it is dark.
      const answering = inDr.ok ? dr : atHome.ok ? primary.region : null;
      const since = new Date(Date.now() - input.drillWindowSeconds * 1000).toISOString();
      const drills = answering
        ? await probe<{ newest: DrillSighting | null; newestPassed: DrillSighting | null }>(
            'drill within window',
            `looking for drills of ${database} since ${since}`,
            () => probesIn(answering).lastDrills({ database, since }),
          )
        : { ok: false as const };
      if (!answering)
        run.check({
          name: 'drill within window',
          ok: false,
          detail: 'not looked up: no region of this database has a worker that answers',
        });
      if (drills.ok) {
        const { newest, newestPassed } = drills.value;
        run.check(
          newestPassed
            ? {
                name: 'drill within window',
                ok: true,
                detail: `${newestPassed.workflowId} passed at ${newestPassed.closedAt}; window ${age(input.drillWindowSeconds)}`,
              }
            : {
                name: 'drill within window',
                ok: false,
                detail: `no drill of ${database} passed in the last ${age(input.drillWindowSeconds)}${newest ? `; the newest, ${newest.workflowId}, ${newest.outcome}` : ''}`,
              },
        );
      }

      // Housekeeping, not a verdict: a leaked scratch instance costs money but does not make the
      // database less recoverable. The step's detail says what was deleted; a failed sweep is retried next time.
      if (inDr.ok && patched(SCRATCH_SWEEP)) {
        await run
          .step(
            'sweep scratch',
            () => run.in(dr).sweep.sweepScratch({ regions: [dr] }),
            `deleting scratch instances in ${dr.name} whose drill is no longer running`,
          )
          .then(
            (swept) => run.steps.annotate('sweep scratch', sweepSummary(swept)),
            () => undefined, // the failed step says why
          );
      }

      const checks = run.report.checks;
      const problems = checks.filter((c) => !c.ok);
      run.passedChecks((failed, all) => `${failed} of ${all} readiness checks failed`);
      if (!answering) return run.steps.skip('publish', 'no region of this database has a worker that answers');
      // The failed step says why; the verdicts are in the report regardless.
      await run
        .step(
          'publish',
          () =>
            probesIn(answering).recordReadiness(
              { database, checks },
              `Readiness of ${database}: ${problems.length} problem(s)`,
            ),
          'publishing the verdicts to the metrics endpoint',
        )
        .catch(() => undefined);
      for (const problem of problems) {
        await notify(run.steps, answering, {
          event: 'readiness.problem',
          database,
          runbook: 'readiness',
          summary: `${database} is not ready to recover: ${problem.name}`,
          outcome: 'failed',
          reason: problem.detail,
        });
      }
    },
  );
}

function sweepSummary(swept: SweepOutcome): string {
  const deleted = swept.deleted.map((d) =>
    `${d.name} (drill ${d.drill?.workflowId ?? '?'} ${d.drill?.status.toLowerCase() ?? ''})`.trim(),
  );
  return [
    deleted.length ? `deleted ${deleted.join(', ')}` : 'nothing to delete',
    swept.kept.length ? `kept ${swept.kept.length}` : '',
    swept.failed.length ? `could not delete ${swept.failed.map((f) => `${f.name}: ${f.error}`).join('; ')}` : '',
  ]
    .filter(Boolean)
    .join('; ');
}

function age(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)}h`;
  return `${(seconds / 86400).toFixed(1)}d`;
}

function validateReadinessInput(input: ReadinessInput): void {
  if (!input || typeof input !== 'object') throw invalid('runbook input must be an object');
  const problems: string[] = [];
  if (!input.database) problems.push('database is required');
  if (!input.primary?.region?.name || !input.primary.database)
    problems.push('primary.region.name and primary.database are required');
  if (!input.dr?.name) problems.push('dr.name is required');
  if (!(input.objectives?.rpoSeconds >= 0)) problems.push('objectives.rpoSeconds must be zero or more');
  if (!(input.drillWindowSeconds > 0)) problems.push('drillWindowSeconds must be greater than zero');
  if (input.regionAnswerSeconds !== undefined && !(input.regionAnswerSeconds >= 1))
    problems.push('regionAnswerSeconds must be at least 1');
  if (problems.length) throw invalid(`invalid runbook input: ${problems.join('; ')}`);
}
