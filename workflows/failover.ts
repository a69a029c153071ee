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
import { patched } from '@temporalio/workflow';
import { failoverProgressQuery } from './messages';
import { invalid } from './report';
import {
  approvalGate,
  canaryWriteOnNode,
  cancelDrillsAndReadTopology,
  DEMOTED_PRIMARY_FOLLOWS,
  followNewPrimary,
  label,
  plannedSwitchover,
  regionOf,
  sideBySideFrom,
  topologyRunbook,
  unplannedTakeover,
  verifyNewPrimary,
  type TopologyRun,
} from './topology-steps';
import type { Canary, FailoverInput, RunbookReport, TopologyView } from './types';

export { approveFailoverUpdate, failoverProgressQuery } from './messages';

export function failover(input: FailoverInput): Promise<RunbookReport> {
  return topologyRunbook('failover', input, failoverProgressQuery, input.mode, async (run, failover) => {
    const { report } = run;
    const set = input.replicaSet;
    const topology = await cancelDrillsAndReadTopology(run);
    if (input.mode === 'zonal') return zonalFailover(run, topology);
    const from = topology.primary;
    const to = topology.standby;
    if (!from || !to)
      throw invalid(
        `replication set ${set.set} has no ${from ? 'standby' : 'primary'} to fail over (primary ${label(from)}, standby ${label(to)})`,
      );

    const preflight = async () => {
      const health = await run.step(
        'preflight',
        () => run.in(set.dr).quick.checkReplication({ set, primary: from, standby: to }),
        `checking ${label(to)} and its lag`,
      );
      failover.lagAtDecision = health.lag ? { bytes: health.lag.lagBytes, seconds: health.lag.lagSeconds } : null;
      failover.walGapBytes = health.lag?.lagBytes ?? null;
      const problems = preflightProblems(input, health);
      if (problems.length) throw invalid(`preflight failed, nothing was changed: ${problems.join('; ')}`);
    };
    // A canary row changes nothing that matters: it may be written while the preflight looks.
    const canary = async () => (input.mode !== 'planned' ? null : canaryWriteOnNode(run, from));
    const [, startCanary] = await sideBySideFrom<void, Canary | null>(input.mode === 'planned', preflight, canary);

    const approval = (failover.approval = await approvalGate(run, 'failover', set.dr));
    if (!approval) return run.fail(`approval timed out after ${input.approval.timeoutSeconds}s; nothing was changed`);
    const switched =
      input.mode === 'planned'
        ? await plannedSwitchover(run, { set, from, to, topology })
        : { topology: await unplannedTakeover(run, { set, from, to, topology }), canFollow: false };
    failover.topology = switched.topology;

    report.rpoSeconds = await verifyNewPrimary(run, to, input.mode, startCanary, run.declaredStart);
    if (run.passedChecks(() => `smoke tests failed on ${label(to)}`)) report.rtoSeconds = run.elapsed();
    if (switched.canFollow && patched(DEMOTED_PRIMARY_FOLLOWS))
      failover.topology = await followNewPrimary(run, { set, from, to, topology: switched.topology });
  });
}

/** The primary moves to its HA standby in another zone; the node, its address and the topology stay. */
async function zonalFailover(run: TopologyRun, topology: TopologyView): Promise<void> {
  const { input, report } = run;
  const set = input.replicaSet;
  const primary = topology.primary;
  if (!primary) throw invalid(`replication set ${set.set} has no primary right now (a switch is in progress?)`);
  const region = run.in(regionOf(set, primary));
  const startCanary = await canaryWriteOnNode(run, primary);
  const approval = await approvalGate(run, 'failover', set.dr);
  if (report.failover) report.failover.approval = approval;
  if (!approval) return run.fail(`approval timed out after ${input.approval.timeoutSeconds}s; nothing was changed`);
  const moved = await run.step(
    'zonal failover',
    () => region.provisioning.haFailover({ set, node: primary }),
    `moving ${label(primary)} to its standby zone`,
  );
  run.check({ name: 'zonal failover', ok: true, detail: moved.how });
  if (report.failover) report.failover.topology = topology;
  report.rpoSeconds = await verifyNewPrimary(run, primary, 'planned', startCanary, run.declaredStart);
  if (run.passedChecks(() => `smoke tests failed on ${label(primary)} after the zonal failover`))
    report.rtoSeconds = run.elapsed();
}

function preflightProblems(
  input: FailoverInput,
  health: {
    primary: { writable: boolean; reachable: boolean };
    standby: { reachable: boolean; inRecovery: boolean | null; streaming: boolean | null };
    lag: { streaming: boolean; lagSeconds: number | null; slotActive: boolean | null } | null;
  },
): string[] {
  const problems: string[] = [];
  if (!health.standby.reachable) problems.push('the standby is not reachable');
  else if (!health.standby.inRecovery) problems.push('the standby is not in recovery (it is not a standby)');
  if (input.mode === 'planned') {
    if (!health.primary.reachable || !health.primary.writable)
      problems.push('the primary is not reachable and writable (use --unplanned for a primary that is down)');
    if (!health.lag?.streaming) problems.push('the standby is not streaming from the primary');
    if (health.lag && health.lag.slotActive === false) problems.push('the replication slot is not active');
    const lag = health.lag?.lagSeconds;
    if (lag !== null && lag !== undefined && lag > input.objectives.rpoSeconds)
      problems.push(`standby lag ${lag.toFixed(1)}s exceeds the RPO objective ${input.objectives.rpoSeconds}s`);
  }
  return problems;
}
