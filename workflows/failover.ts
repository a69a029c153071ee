// The Failover runbook: move a database's primary role to its streaming standby in the DR region.
//
//   cancel drills -> read topology -> preflight (standby health, lag vs the RPO objective)
//   -> [planned: canary write on the primary] -> approval gate
//   -> planned:   fence (read-only) -> hold traffic -> wait for the standby to replay the last WAL
//                 -> promote -> repoint traffic                                    (RPO 0, checked)
//                 (the fence is a demote: a clean shutdown; after the RTO is taken, the demoted
//                 primary follows the new one as its standby, with no pg_rewind)
//   -> unplanned: fence with a deadline (recorded) -> hold traffic -> promote -> repoint traffic
//   -> smoke tests (a write, the plan's checks) -> RPO from data -> RTO -> report with the new topology
//   zonal: canary write -> approval gate -> the platform's regional HA failover of the primary
//          (Cloud SQL: instances.failover) -> smoke tests on the same primary -> RPO from data
//
// Until the promote, every change has an undo; an approval that times out changes nothing.
import { CancellationScope, isCancellation, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import { callIn } from './calls';
import { notifyFinished } from './notify';
import { failoverProgressQuery } from './messages';
import { provisioning, quickCall } from './options';
import { finishReport, invalid, startReport, subjectOf, validateFailoverInput } from './report';
import { describeFailure, StepLog } from './steps';
import {
  approvalGate,
  cancelDrillsAndReadTopology,
  compensate,
  DEMOTED_PRIMARY_FOLLOWS,
  followNewPrimary,
  label,
  plannedSwitchover,
  regionOf,
  settleBackground,
  sideBySideFrom,
  unplannedTakeover,
  verifyNewPrimary,
  type TopologyRun,
} from './topology-steps';
import type { Canary, FailoverInput, RunbookReport, TopologyView } from './types';

export { approveFailoverUpdate, failoverProgressQuery } from './messages';

export async function failover(input: FailoverInput): Promise<RunbookReport> {
  validateFailoverInput(input);
  const info = workflowInfo();
  const steps = new StepLog();
  setHandler(failoverProgressQuery, () => steps.progress());
  const report = startReport('failover', subjectOf(input), info);
  report.failover = { mode: input.mode, approval: null, fence: null, lagAtDecision: null, walGapBytes: null, topology: null };
  const run: TopologyRun = { steps, info, input, report, compensations: [], background: [] };
  const declaredStart = Date.now();
  const { replicaSet: set } = input;
  let cancelled: unknown;

  try {
    const topology = await cancelDrillsAndReadTopology(run);
    if (input.mode === 'zonal') {
      await zonalFailover(run, topology, declaredStart);
      return finish();
    }
    const from = topology.primary;
    const to = topology.standby;
    if (!from || !to) throw invalid(`replication set ${set.set} has no ${from ? 'standby' : 'primary'} to fail over (primary ${label(from)}, standby ${label(to)})`);

    const preflight = async () => {
      const health = await steps.run('preflight', `checking ${label(to)} and its lag`, () =>
        callIn(set.dr, quickCall, 'checkReplication', `Replication health of ${set.set}`, { set, primary: from, standby: to }),
      );
      report.failover!.lagAtDecision = health.lag ? { bytes: health.lag.lagBytes, seconds: health.lag.lagSeconds } : null;
      report.failover!.walGapBytes = health.lag?.lagBytes ?? null;
      const problems = preflightProblems(input, health);
      if (problems.length) throw invalid(`preflight failed, nothing was changed: ${problems.join('; ')}`);
    };
    // A canary row changes nothing that matters: it may be written while the preflight looks.
    const canary = async () =>
      input.mode !== 'planned'
        ? null
        : steps.run('canary write', `writing a canary row on ${label(from)}`, () =>
            callIn(regionOf(set, from), quickCall, 'writeCanaryOnNode', `Canary write on ${label(from)}`, { set, node: from, database: input.pgDatabase, token: `${info.workflowId}/${info.runId}/canary` }),
          );
    const [, startCanary] = await sideBySideFrom<void, Canary | null>(input.mode === 'planned', preflight, canary);

    const approval = await approvalGate(run, 'failover', set.dr);
    report.failover.approval = approval;
    if (!approval) {
      report.outcome = 'failed';
      report.reason = `approval timed out after ${input.approval.timeoutSeconds}s; nothing was changed`;
    } else {
      const switched = input.mode === 'planned' ? await plannedSwitchover(run, set, from, to, topology) : { topology: await unplannedTakeover(run, set, from, to, topology), canFollow: false };
      report.failover.topology = switched.topology;

      report.rpoSeconds = await verifyNewPrimary(run, to, input.mode, startCanary, declaredStart);
      if (report.checks.every((c) => c.ok)) {
        report.rtoSeconds = (Date.now() - declaredStart) / 1000;
      } else {
        report.outcome = 'failed';
        report.reason = `smoke tests failed on ${label(to)}: ${report.checks.filter((c) => !c.ok).map((c) => `${c.name} (${c.detail})`).join('; ')}`;
      }
      if (switched.canFollow && patched(DEMOTED_PRIMARY_FOLLOWS)) report.failover.topology = await followNewPrimary(run, set, from, to, switched.topology);
    }
  } catch (err) {
    if (isCancellation(err)) cancelled = err;
    report.outcome = 'failed';
    report.reason = describeFailure(err);
  } finally {
    await CancellationScope.nonCancellable(async () => {
      await compensate(run);
      await settleBackground(run);
      await notifyFinished(steps, set.dr, report);
    });
  }
  return finish();

  function finish(): RunbookReport {
    finishReport(report, steps);
    if (cancelled) throw cancelled;
    return report;
  }
}

/** The primary moves to its HA standby in another zone; the node, its address and the topology stay. */
async function zonalFailover(run: TopologyRun, topology: TopologyView, declaredStart: number): Promise<void> {
  const { steps, info, input, report } = run;
  const set = input.replicaSet;
  const primary = topology.primary;
  if (!primary) throw invalid(`replication set ${set.set} has no primary right now (a switch is in progress?)`);
  const region = regionOf(set, primary);
  const startCanary = await steps.run('canary write', `writing a canary row on ${label(primary)}`, () =>
    callIn(region, quickCall, 'writeCanaryOnNode', `Canary write on ${label(primary)}`, { set, node: primary, database: input.pgDatabase, token: `${info.workflowId}/${info.runId}/canary` }),
  );
  const approval = await approvalGate(run, 'failover', set.dr);
  if (report.failover) report.failover.approval = approval;
  if (!approval) {
    report.outcome = 'failed';
    report.reason = `approval timed out after ${input.approval.timeoutSeconds}s; nothing was changed`;
    return;
  }
  const moved = await steps.run('zonal failover', `moving ${label(primary)} to its standby zone`, () =>
    callIn(region, provisioning, 'haFailover', `Regional HA failover of ${label(primary)}`, { set, node: primary }),
  );
  report.checks.push({ name: 'zonal failover', ok: true, detail: moved.how });
  if (report.failover) report.failover.topology = topology;
  report.rpoSeconds = await verifyNewPrimary(run, primary, 'planned', startCanary, declaredStart);
  if (report.checks.every((c) => c.ok)) report.rtoSeconds = (Date.now() - declaredStart) / 1000;
  else {
    report.outcome = 'failed';
    report.reason = `smoke tests failed on ${label(primary)} after the zonal failover: ${report.checks.filter((c) => !c.ok).map((c) => `${c.name} (${c.detail})`).join('; ')}`;
  }
}

function preflightProblems(
  input: FailoverInput,
  health: { primary: { writable: boolean; reachable: boolean }; standby: { reachable: boolean; inRecovery: boolean | null; streaming: boolean | null }; lag: { streaming: boolean; lagSeconds: number | null; slotActive: boolean | null } | null },
): string[] {
  const problems: string[] = [];
  if (!health.standby.reachable) problems.push('the standby is not reachable');
  else if (!health.standby.inRecovery) problems.push('the standby is not in recovery (it is not a standby)');
  if (input.mode === 'planned') {
    if (!health.primary.reachable || !health.primary.writable) problems.push('the primary is not reachable and writable (use --unplanned for a primary that is down)');
    if (!health.lag?.streaming) problems.push('the standby is not streaming from the primary');
    if (health.lag && health.lag.slotActive === false) problems.push('the replication slot is not active');
    const lag = health.lag?.lagSeconds;
    if (lag !== null && lag !== undefined && lag > input.objectives.rpoSeconds) problems.push(`standby lag ${lag.toFixed(1)}s exceeds the RPO objective ${input.objectives.rpoSeconds}s`);
  }
  return problems;
}
