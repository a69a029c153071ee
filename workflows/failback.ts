// The Failback runbook: return a failed-over database to its home region's server.
//
//   cancel drills -> read topology -> re-protect (rebuild the home server as a standby of the
//   current primary: pg_rewind, else a fresh base backup) -> wait until caught up -> approval gate
//   -> canary write -> planned switchover back (fence, hold, replay, promote, repoint) -> smoke tests
//   -> re-protect the former primary as the new standby -> nothing written during the failover lost
import { CancellationScope, isCancellation, setHandler, workflowInfo } from '@temporalio/workflow';
import { callIn } from './calls';
import { notifyFinished } from './notify';
import { failbackProgressQuery } from './messages';
import { longTransfer, quickCall } from './options';
import { finishReport, invalid, startReport, subjectOf, validateFailoverInput } from './report';
import { describeFailure, StepLog } from './steps';
import {
  approvalGate,
  cancelDrillsAndReadTopology,
  compensate,
  label,
  plannedSwitchover,
  rebuiltDetail,
  regionOf,
  settleBackground,
  verifyNewPrimary,
  withoutNode,
  type TopologyRun,
} from './topology-steps';
import type { FailbackInput, NodeRef, RunbookReport, TopologyView } from './types';

export { failbackProgressQuery } from './messages';

export async function failback(input: FailbackInput): Promise<RunbookReport> {
  validateFailoverInput(input);
  const info = workflowInfo();
  const steps = new StepLog();
  setHandler(failbackProgressQuery, () => steps.progress());
  const report = startReport('failback', subjectOf(input), info);
  report.failover = { mode: 'failback', approval: null, fence: null, lagAtDecision: null, walGapBytes: null, topology: null };
  const run: TopologyRun = { steps, info, input, report, compensations: [], background: [] };
  const declaredStart = Date.now();
  const { replicaSet: set, database } = input;
  let cancelled: unknown;

  try {
    let topology = await cancelDrillsAndReadTopology(run);
    const current = topology.primary;
    if (!current) throw invalid(`replication set ${set.set} has no primary right now (a switch is in progress?): nothing to fail back from`);
    if (current.region === set.home.name) {
      const home = current;
      // Already home. What may be left is a former primary that is not (or no longer) a working
      // standby — a failback whose last step failed, a standby that will not start: re-protect it.
      // The node to re-protect sits in the DR region (a fenced home-region node stays fenced).
      const leftover = topology.standby ?? topology.fenced.find((n) => n.region === set.dr.name) ?? topology.fenced[0];
      if (!leftover) throw invalid(`${database} already runs on its home server ${label(home)} and has no other node to re-protect`);
      if (topology.standby) {
        const health = await steps.run('preflight', `checking ${label(topology.standby)}`, () =>
          callIn(set.dr, quickCall, 'checkReplication', `Replication health of ${set.set}`, { set, primary: home, standby: topology.standby! }),
        );
        if (health.lag?.streaming) throw invalid(`${database} already runs on its home server ${label(home)} and ${label(topology.standby)} is streaming: nothing to fail back`);
      }
      report.failover.topology = await reprotect(run, leftover, home, topology);
      report.rtoSeconds = (Date.now() - declaredStart) / 1000;
      return finish(report, steps);
    }
    const failoverTerm = topology.primarySinceEpoch;

    // Re-protect: the old primary becomes a standby of the current one (on RDS: a new replica beside it).
    const formerHome = homeNodeOf(set, topology);
    const rebuilt = await steps.run('re-protect home server', `rebuilding ${label(formerHome)} as a standby of ${label(current)}`, () =>
      callIn(set.home, longTransfer, 'rebuildAsStandby', `Rebuild ${label(formerHome)} as a standby of ${label(current)}`, rebuildInput(run, formerHome, current)),
    );
    // Workers from before providers could name a new node return only the method.
    const home = rebuilt.node ?? formerHome;
    report.checks.push({ name: 're-protect home server', ok: true, detail: rebuiltDetail(home, rebuilt.method, current) + discardedDetail(run, home, rebuilt) });
    topology = await steps.run('record standby', `recording ${label(home)} as the standby`, () =>
      callIn(set.dr, quickCall, 'repointTraffic', `Record ${label(home)} as standby of ${set.set}`, {
        set,
        next: { primary: current, standby: home, fenced: withoutNode(topology.fenced, home) },
        expectedEpoch: topology.epoch,
        by: info.workflowId,
      }),
    );
    const lag = await steps.run('wait until caught up', `waiting for ${label(home)} to catch up`, () =>
      callIn(set.home, longTransfer, 'waitUntilCaughtUp', `Wait for ${label(home)} to catch up`, { set, primary: current, standby: home }),
    );
    report.failover.lagAtDecision = { bytes: lag.lagBytes, seconds: lag.lagSeconds };

    const approval = await approvalGate(run, 'failback', set.dr);
    report.failover.approval = approval;
    if (!approval) {
      report.outcome = 'failed';
      report.reason = `approval timed out after ${input.approval.timeoutSeconds}s; ${label(current)} is still the primary, ${label(home)} its standby`;
    } else {
      const startCanary = await steps.run('canary write', `writing a canary row on ${label(current)}`, () =>
        callIn(regionOf(set, current), quickCall, 'writeCanaryOnNode', `Canary write on ${label(current)}`, { set, node: current, database: input.pgDatabase, token: `${info.workflowId}/${info.runId}/canary` }),
      );
      const switched = await plannedSwitchover(run, set, current, home, topology);
      report.rpoSeconds = await verifyNewPrimary(run, home, 'planned', startCanary, declaredStart);
      if (report.checks.every((c) => c.ok)) report.rtoSeconds = (Date.now() - declaredStart) / 1000;

      // Everything the canary writer had acknowledged during the failover term must be here too.
      const fencedAt = new Date(switched.fencedAt).toISOString();
      const { term } = await steps.run('canaries of the failover term', 'reading the canary ledger', () =>
        callIn(set.dr, quickCall, 'acknowledgedCanaries', `Canaries acknowledged by ${label(current)}`, { database: input.pgDatabase, before: fencedAt, sinceEpoch: failoverTerm }),
      );
      const found = await steps.run('nothing lost', `looking for ${term.length} acknowledged canaries on ${label(home)}`, () =>
        callIn(set.home, quickCall, 'findCanaries', `Canaries on ${label(home)}`, { set, node: home, database: input.pgDatabase, canaries: term.map((e) => ({ id: e.id, writtenAt: e.writtenAt })) }),
      );
      report.checks.push({
        name: 'writes of the failover term kept',
        ok: found.missing.length === 0,
        detail: found.missing.length === 0 ? `all ${term.length} canaries acknowledged by ${label(current)} are on ${label(home)}` : `missing canaries: ${found.missing.slice(0, 10).join(', ')}`,
      });

      // Restore the original shape: the former primary becomes the standby again (a demoted one
      // follows as it is, with no pg_rewind).
      report.failover.topology = await reprotect(run, current, home, switched.topology);
      const failed = report.checks.filter((c) => !c.ok);
      if (failed.length) {
        report.outcome = 'failed';
        report.rtoSeconds = null;
        report.reason = `${failed.length} checks failed: ${failed.map((c) => `${c.name} (${c.detail})`).join('; ')}`;
      }
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
  if (cancelled) {
    finishReport(report, steps);
    throw cancelled;
  }
  return finish(report, steps);
}

function finish(report: RunbookReport, steps: StepLog): RunbookReport {
  finishReport(report, steps);
  return report;
}

/**
 * The home region's server to rebuild: the newest fenced former primary (or a standby already
 * there); the local provider's fixed name when the record holds neither. Newest: on a cloud an
 * unplanned failover's failback makes a new home instance and the one before stays fenced, so after
 * two rounds the record holds both, oldest first, and the one to rebuild is the one that was primary.
 */
function homeNodeOf(set: FailbackInput['replicaSet'], topology: TopologyView): NodeRef {
  const inHome = (n: NodeRef | null): n is NodeRef => n !== null && n.region === set.home.name;
  return [...topology.fenced].reverse().find(inHome) ?? (inHome(topology.standby) ? topology.standby : { region: set.home.name, name: 'server' });
}

/** The rebuild's input: discarding a node's divergent writes only on the operator's explicit word. */
function rebuildInput(run: TopologyRun, node: NodeRef, primary: NodeRef) {
  const input = run.input as FailbackInput;
  return { set: input.replicaSet, node, primary, ...(input.discardDivergent && { discardDivergent: { by: input.triggeredBy } }) };
}

/** What the report says of divergent writes a rebuild discarded, and where their copy is. */
function discardedDetail(run: TopologyRun, node: NodeRef, rebuilt: { discarded?: { detail: string; preservedAt: string; by: string } }): string {
  const d = rebuilt.discarded;
  if (!d) return '';
  if (run.report.failover) run.report.failover.discardedDivergence = { node: label(node), ...d };
  return `; divergent writes discarded on the word of ${d.by} (--discard-divergent): ${d.detail}; a copy of the node was kept at ${d.preservedAt}`;
}

/** A former primary becomes the standby of the home server again, and the record says so. */
async function reprotect(run: TopologyRun, former: NodeRef, home: NodeRef, topology: TopologyView): Promise<TopologyView> {
  const { steps, input, info, report } = run;
  const set = input.replicaSet;
  const rebuilt = await steps.run('re-protect former primary', `rebuilding ${label(former)} as a standby of ${label(home)}`, () =>
    callIn(regionOf(set, former), longTransfer, 'rebuildAsStandby', `Rebuild ${label(former)} as a standby of ${label(home)}`, rebuildInput(run, former, home)),
  );
  const node = rebuilt.node ?? former;
  report.checks.push({ name: 're-protect former primary', ok: true, detail: rebuiltDetail(node, rebuilt.method, home) + discardedDetail(run, node, rebuilt) });
  return steps.run('record standby', `recording ${label(node)} as the standby`, () =>
    callIn(set.home, quickCall, 'repointTraffic', `Record ${label(node)} as standby of ${set.set}`, {
      set,
      next: { primary: home, standby: node, fenced: withoutNode(topology.fenced, node) },
      expectedEpoch: topology.epoch,
      by: info.workflowId,
    }),
  );
}
