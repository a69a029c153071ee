// The Failback runbook: return a failed-over database to its home region's server.
//
//   cancel drills -> read topology -> re-protect (rebuild the home server as a standby of the
//   current primary: pg_rewind, else a fresh base backup) -> wait until caught up -> approval gate
//   -> canary write -> planned switchover back (fence, hold, replay, promote, repoint) -> smoke tests
//   -> re-protect the former primary as the new standby -> nothing written during the failover lost
import { failbackProgressQuery } from './messages';
import { invalid } from './report';
import {
  approvalGate,
  canaryWriteOnNode,
  cancelDrillsAndReadTopology,
  label,
  plannedSwitchover,
  rebuiltDetail,
  regionOf,
  topologyRunbook,
  verifyNewPrimary,
  withoutNode,
  type TopologyRun,
} from './topology-steps';
import type { FailbackInput, NodeRef, RegionSpec, RunbookReport, TopologyView } from './types';

export { failbackProgressQuery } from './messages';

export function failback(input: FailbackInput): Promise<RunbookReport> {
  return topologyRunbook('failback', input, failbackProgressQuery, 'failback', async (run, failback) => {
    const { report, info } = run;
    const { replicaSet: set, database } = input;
    const [home, dr] = [run.in(set.home), run.in(set.dr)];
    let topology = await cancelDrillsAndReadTopology(run);
    const current = topology.primary;
    if (!current)
      throw invalid(
        `replication set ${set.set} has no primary right now (a switch is in progress?): nothing to fail back from`,
      );
    if (current.region === set.home.name) {
      // Already home. What may be left is a former primary that is not (or no longer) a working
      // standby — a failback whose last step failed, a standby that will not start: re-protect it.
      // The node to re-protect sits in the DR region (a fenced home-region node stays fenced).
      const leftover = topology.standby ?? topology.fenced.find((n) => n.region === set.dr.name) ?? topology.fenced[0];
      if (!leftover)
        throw invalid(
          `${database} already runs on its home server ${label(current)} and has no other node to re-protect`,
        );
      const standby = topology.standby;
      if (standby) {
        const health = await run.step(
          'preflight',
          () => dr.quick.checkReplication({ set, primary: current, standby }),
          `checking ${label(standby)}`,
        );
        if (health.lag?.streaming)
          throw invalid(
            `${database} already runs on its home server ${label(current)} and ${label(standby)} is streaming: nothing to fail back`,
          );
      }
      failback.topology = await reprotect(run, leftover, current, topology);
      report.rtoSeconds = run.elapsed();
      return;
    }
    const failoverTerm = topology.primarySinceEpoch;

    // Re-protect: the old primary becomes a standby of the current one (on RDS: a new replica beside it).
    const formerHome = homeNodeOf(set, topology);
    const homeNode = await rebuildStep(run, 're-protect home server', set.home, formerHome, current);
    const before = topology;
    topology = await run.step(
      'record standby',
      () =>
        dr.quick.repointTraffic({
          set,
          next: { primary: current, standby: homeNode, fenced: withoutNode(before.fenced, homeNode) },
          expectedEpoch: before.epoch,
          by: info.workflowId,
        }),
      `recording ${label(homeNode)} as the standby`,
    );
    const lag = await run.step(
      'wait until caught up',
      () => home.long.waitUntilCaughtUp({ set, primary: current, standby: homeNode }),
      `waiting for ${label(homeNode)} to catch up`,
    );
    failback.lagAtDecision = { bytes: lag.lagBytes, seconds: lag.lagSeconds };

    const approval = (failback.approval = await approvalGate(run, 'failback', set.dr));
    if (!approval)
      return run.fail(
        `approval timed out after ${input.approval.timeoutSeconds}s; ${label(current)} is still the primary, ${label(homeNode)} its standby`,
      );
    const startCanary = await canaryWriteOnNode(run, current);
    const switched = await plannedSwitchover(run, { set, from: current, to: homeNode, topology });
    report.rpoSeconds = await verifyNewPrimary(run, homeNode, 'planned', startCanary, run.declaredStart);
    if (report.checks.every((c) => c.ok)) report.rtoSeconds = run.elapsed();

    // Everything the canary writer had acknowledged during the failover term must be here too.
    const fencedAt = new Date(switched.fencedAt).toISOString();
    const { term } = await run.step(
      'canaries of the failover term',
      () => dr.quick.acknowledgedCanaries({ database: input.pgDatabase, before: fencedAt, sinceEpoch: failoverTerm }),
      'reading the canary ledger',
    );
    const found = await run.step(
      'nothing lost',
      () =>
        home.quick.findCanaries({
          set,
          node: homeNode,
          database: input.pgDatabase,
          canaries: term.map((e) => ({ id: e.id, writtenAt: e.writtenAt })),
        }),
      `looking for ${term.length} acknowledged canaries on ${label(homeNode)}`,
    );
    run.check({
      name: 'writes of the failover term kept',
      ok: found.missing.length === 0,
      detail:
        found.missing.length === 0
          ? `all ${term.length} canaries acknowledged by ${label(current)} are on ${label(homeNode)}`
          : `missing canaries: ${found.missing.slice(0, 10).join(', ')}`,
    });

    // Restore the original shape: the former primary becomes the standby again (a demoted one
    // follows as it is, with no pg_rewind).
    failback.topology = await reprotect(run, current, homeNode, switched.topology);
    if (!run.passedChecks((failed) => `${failed} checks failed`)) report.rtoSeconds = null;
  });
}

/**
 * The home region's server to rebuild: the newest fenced former primary (or a standby already
 * there); the local provider's fixed name when the record holds neither. Newest: on a cloud an
 * unplanned failover's failback makes a new home instance and the one before stays fenced, so after
 * two rounds the record holds both, oldest first, and the one to rebuild is the one that was primary.
 */
function homeNodeOf(set: FailbackInput['replicaSet'], topology: TopologyView): NodeRef {
  const inHome = (n: NodeRef | null): n is NodeRef => n !== null && n.region === set.home.name;
  return (
    [...topology.fenced].reverse().find(inHome) ??
    (inHome(topology.standby) ? topology.standby : { region: set.home.name, name: 'server' })
  );
}

/** The rebuild's input: discarding a node's divergent writes only on the operator's explicit word. */
function rebuildInput(run: TopologyRun, node: NodeRef, primary: NodeRef) {
  const input = run.input as FailbackInput;
  return {
    set: input.replicaSet,
    node,
    primary,
    ...(input.discardDivergent && { discardDivergent: { by: input.triggeredBy } }),
  };
}

/**
 * Rebuilds `node` as a standby of `primary` (an activity in `region`; the step and its check are
 * called `name`) and returns the node that is the standby now: on RDS a new replica beside it.
 */
async function rebuildStep(
  run: TopologyRun,
  name: string,
  region: RegionSpec,
  node: NodeRef,
  primary: NodeRef,
): Promise<NodeRef> {
  const rebuilt = await run.step(
    name,
    () => run.in(region).long.rebuildAsStandby(rebuildInput(run, node, primary)),
    `rebuilding ${label(node)} as a standby of ${label(primary)}`,
  );
  // Workers from before providers could name a new node return only the method.
  const standby = rebuilt.node ?? node;
  run.check({
    name,
    ok: true,
    detail: rebuiltDetail(standby, rebuilt.method, primary) + discardedDetail(run, standby, rebuilt),
  });
  return standby;
}

/** What the report says of divergent writes a rebuild discarded, and where their copy is. */
function discardedDetail(
  run: TopologyRun,
  node: NodeRef,
  rebuilt: { discarded?: { detail: string; preservedAt: string; by: string } },
): string {
  const d = rebuilt.discarded;
  if (!d) return '';
  if (run.report.failover) run.report.failover.discardedDivergence = { node: label(node), ...d };
  return `; divergent writes discarded on the word of ${d.by} (--discard-divergent): ${d.detail}; a copy of the node was kept at ${d.preservedAt}`;
}

/** A former primary becomes the standby of the home server again, and the record says so. */
async function reprotect(
  run: TopologyRun,
  former: NodeRef,
  home: NodeRef,
  topology: TopologyView,
): Promise<TopologyView> {
  const { input, info } = run;
  const set = input.replicaSet;
  const node = await rebuildStep(run, 're-protect former primary', regionOf(set, former), former, home);
  return run.step(
    'record standby',
    () =>
      run.in(set.home).quick.repointTraffic({
        set,
        next: { primary: home, standby: node, fenced: withoutNode(topology.fenced, node) },
        expectedEpoch: topology.epoch,
        by: info.workflowId,
      }),
    `recording ${label(node)} as the standby`,
  );
}
