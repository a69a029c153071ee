// The steps failover and failback share: the approval gate, a planned switchover (RPO 0), an
// unplanned takeover, the smoke tests on a new primary. Each is an activity in the region it acts on:
// the old primary's region for its fence, the new primary's region for everything else, so a
// failover runs on DR workers while the primary region is dark.
import {
  CancellationScope,
  CancelledFailure,
  condition,
  isCancellation,
  patched,
  setHandler,
  upsertSearchAttributes,
  type QueryDefinition,
} from '@temporalio/workflow';
import { runbook, type Run } from './kit';
import { approveFailoverUpdate } from './messages';
import { invalid, subjectOf, validateFailoverInput } from './report';
import { finishedNote, notify } from './notify';
import { ApprovedByAttr } from './search-attributes';
import { describeFailure, sideBySide, type Progress, type StepLog } from './steps';
import type {
  Approval,
  Canary,
  CheckResult,
  FailoverInput,
  FailbackInput,
  NodeRef,
  RegionSpec,
  ReplicaSetSpec,
  RunbookReport,
  TopologyView,
} from './types';

export const label = (n: NodeRef | null): string => (n ? `${n.region}/${n.name}` : '(none)');
export const same = (a: NodeRef | null, b: NodeRef | null): boolean =>
  Boolean(a && b && a.region === b.region && a.name === b.name);

/** The RegionSpec a node runs in (for its task queue). */
export function regionOf(set: ReplicaSetSpec, node: NodeRef): RegionSpec {
  if (node.region === set.home.name) return set.home;
  if (node.region === set.dr.name) return set.dr;
  throw invalid(
    `node ${label(node)} is in neither region of replication set ${set.set} (${set.home.name}, ${set.dr.name})`,
  );
}

/** A failover's or failback's run (./kit.ts): its report, steps, undo stack and input. */
export type TopologyRun = Run & { input: FailoverInput | FailbackInput };

type FailoverSection = NonNullable<RunbookReport['failover']>;

/**
 * A failover or failback runbook (validated, its end told in the DR region): the body gets the run
 * with its input, and the report's failover section, empty but for `mode`, to fill in.
 */
export function topologyRunbook(
  kind: 'failover' | 'failback',
  input: FailoverInput | FailbackInput,
  progress: QueryDefinition<Progress>,
  mode: FailoverSection['mode'],
  body: (run: TopologyRun, section: FailoverSection) => Promise<void>,
): Promise<RunbookReport> {
  const spec = {
    kind,
    input,
    validate: validateFailoverInput,
    subject: subjectOf,
    progress,
    finished: { region: () => input.replicaSet.dr, note: finishedNote },
  };
  return runbook(spec, (kit) => {
    const run: TopologyRun = Object.assign(kit, { input });
    const section: FailoverSection = {
      mode,
      approval: null,
      fence: null,
      lagAtDecision: null,
      walGapBytes: null,
      topology: null,
    };
    run.report.failover = section;
    return body(run, section);
  });
}

/**
 * Since this patch a switchover runs side by side what does not depend on each other: cancelling
 * drills and reading the record; the preflight and the start canary; holding traffic and waiting for
 * replay; the smoke tests and the RPO check. The "started" notification no longer holds up the fence.
 * Each pair is the same two activities as before, so nothing is checked less.
 */
export const SWITCHOVER_SIDE_BY_SIDE = 'switchover-side-by-side';

/** a, then b; or both side by side when `when` holds in a run made since SWITCHOVER_SIDE_BY_SIDE. */
export async function sideBySideFrom<A, B>(when: boolean, a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> {
  if (when && patched(SWITCHOVER_SIDE_BY_SIDE)) return sideBySide(a, b);
  const x = await a();
  return [x, await b()];
}

/**
 * Waits for approval (an Update with a validator) unless the run was pre-approved. Returns the
 * approval, or null when the timeout passed: the caller aborts cleanly, nothing having changed.
 */
export async function approvalGate(
  run: Pick<TopologyRun, 'steps' | 'info'> & {
    inBackground?: (work: Promise<unknown>) => void;
    input: Pick<FailoverInput, 'approval' | 'database' | 'planDigest' | 'triggeredBy'>;
  },
  what: string,
  notifyIn: RegionSpec,
): Promise<Approval | null> {
  const { input, steps, info } = run;
  let approval: Approval | null = input.approval.preApproved
    ? {
        database: input.database,
        planDigest: input.planDigest,
        approvedBy: input.triggeredBy,
        reason: 'pre-approved (--yes)',
      }
    : null;
  let waiting = !approval;
  setHandler(
    approveFailoverUpdate,
    (given) => {
      approval = given;
      waiting = false;
      return { accepted: true, workflowId: info.workflowId };
    },
    {
      validator: (given) => {
        if (!waiting) throw invalid(`${info.workflowId} is not waiting for approval`);
        if (!given || given.database !== input.database) {
          throw invalid(
            `approval names database ${JSON.stringify(given?.database)}; this run is a ${what} of ${input.database}`,
          );
        }
        if (given.planDigest !== input.planDigest) {
          throw invalid(
            `stale plan: the approval was made against plan ${given.planDigest.slice(0, 12)}, this run uses ${input.planDigest.slice(0, 12)}; re-read the plan and approve again`,
          );
        }
        if (!given.approvedBy) throw invalid('approvedBy is required: who approves');
      },
    },
  );
  const started = async (given: Approval) => {
    recordApproval(steps, given);
    const sent = notify(steps, notifyIn, {
      event: 'failover.started',
      database: input.database,
      runbook: what,
      summary: `${what} of ${input.database} approved by ${given.approvedBy} and starting`,
    });
    // notify() never fails; off the critical path, the runbook awaits it before it finishes.
    if (run.inBackground && patched(SWITCHOVER_SIDE_BY_SIDE)) run.inBackground(sent);
    else await sent;
  };
  if (approval) {
    await steps.run('approval', 'pre-approved', async () => ({ value: null, attempt: 1 }));
    await started(approval);
    return approval;
  }
  await notify(steps, notifyIn, {
    event: 'failover.approval_needed',
    database: input.database,
    runbook: what,
    summary: `${what} of ${input.database} waits for approval: lifeboat approve ${info.workflowId} (times out in ${input.approval.timeoutSeconds}s)`,
  });
  const approved = await steps.run(
    'approval',
    `waiting for approval: lifeboat approve ${info.workflowId}`,
    async () => ({
      value: await condition(() => approval !== null, input.approval.timeoutSeconds * 1000),
      attempt: 1,
    }),
  );
  waiting = false;
  if (approved && approval) await started(approval);
  return approved ? approval : null;
}

/** Since this patch the approver is a search attribute (audit: "everything alice approved"). */
export const APPROVAL_AUDIT = 'approval-audit';

/** Who approved and why, where an auditor looks: the approval step of the report and the run's attributes. */
function recordApproval(steps: StepLog, approval: Approval): void {
  steps.annotate('approval', `approved by ${approval.approvedBy}: ${approval.reason}`);
  if (patched(APPROVAL_AUDIT)) upsertSearchAttributes([{ key: ApprovedByAttr, value: approval.approvedBy }]);
}

/**
 * A change of roles in a replication set: `from` gives up the primary role, `to` takes it, starting
 * from the record read at the start of the run.
 */
export interface Move {
  set: ReplicaSetSpec;
  from: NodeRef;
  to: NodeRef;
  topology: TopologyView;
}

/**
 * Planned switchover from `from` (the primary) to `to` (its streaming standby), losing nothing:
 * fence -> hold traffic -> wait until `to` has replayed the fenced primary's last WAL -> promote ->
 * repoint traffic. Until the promote, every step has an undo registered (un-hold, unfence).
 */
export async function plannedSwitchover(
  run: TopologyRun,
  move: Move,
): Promise<{ topology: TopologyView; fencedAt: number; canFollow: boolean }> {
  const { set, from, to, topology } = move;
  const { info, report } = run;
  const fromRegion = regionOf(set, from);
  const toRegion = regionOf(set, to);
  // The undo is registered before the fence: a fence that fails half way (some databases already
  // read-only) must still be lifted. Unfencing a node that was never fenced changes nothing.
  run.undo(`unfence ${label(from)}`, () =>
    run.in(fromRegion).quick.unfenceNode({ set, node: from }, `Unfence ${label(from)}`),
  );
  const fenceStarted = Date.now();
  const fence = await run.step(
    'fence primary',
    () => run.in(fromRegion).quick.fenceNode({ set, node: from, mode: 'planned' }),
    `making ${label(from)} read-only and ending its sessions`,
  );
  const fencedAt = Date.now();
  if (report.failover) report.failover.fence = { confirmed: fence.confirmed, how: fence.how };
  if (!fence.confirmed || !fence.finalLsn) throw invalid(`could not confirm the fence of ${label(from)}: ${fence.how}`);

  const hold = async (): Promise<TopologyView> => {
    const held = await holdTraffic(run, move);
    run.undo(`restore traffic to ${label(from)}`, () =>
      run.in(toRegion).quick.repointTraffic(
        {
          set,
          next: { primary: from, standby: to, fenced: topology.fenced },
          expectedEpoch: held.epoch,
          by: info.workflowId,
        },
        `Restore traffic to ${label(from)}`,
      ),
    );
    return held;
  };
  const replayed = () =>
    run.step(
      'wait for replay',
      () => run.in(toRegion).long.waitForReplay({ set, node: to, lsn: fence.finalLsn! }),
      `waiting until ${label(to)} has replayed ${fence.finalLsn}`,
    );
  let held: TopologyView;
  if (patched(SWITCHOVER_SIDE_BY_SIDE)) held = await holdWhileReplaying(hold, replayed);
  else {
    held = await hold();
    await replayed();
  }
  const next = await promoteAndRepoint(run, move, held, 'planned');
  if (report.failover) {
    report.failover.walGapBytes = 0;
    // Clients could not write from the fence until the record pointed at the new primary.
    report.failover.writeOutageSeconds = (Date.now() - fenceStarted) / 1000;
  }
  return { topology: next, fencedAt, canFollow: fence.canFollow === true };
}

/**
 * Holding traffic and waiting for replay, side by side. The hold is never cancelled, by its partner
 * or by a cancel of the run: a cancelled activity may still have run, and a hold that ran must have
 * its undo registered (hold() registers it when it returns). So a failed wait lets the hold finish first; a failed hold stops the
 * wait (a read, safe to cancel). The first failure is thrown once both have settled.
 */
async function holdWhileReplaying(
  hold: () => Promise<TopologyView>,
  replayed: () => Promise<unknown>,
): Promise<TopologyView> {
  const waiting = new CancellationScope();
  const wait = waiting.run(replayed);
  // Not even a cancel of the whole run stops it: it is one quick record write, and its undo must be known.
  const held = CancellationScope.nonCancellable(hold).catch((err: unknown) => {
    waiting.cancel();
    throw err;
  });
  const [h, w] = await Promise.allSettled([held, wait]);
  if (h.status === 'rejected') throw h.reason;
  if (w.status === 'rejected') throw w.reason;
  // Cancelled while the hold finished: stop here, before the promote, so that both undos run (a
  // promote step cut short by the cancel would count as one that may have been sent).
  if (CancellationScope.current().consideredCancelled)
    throw new CancelledFailure('cancelled while traffic was being held');
  return h.value;
}

/** Since this patch a planned switchover ends with the demoted primary streaming from the new one. */
export const DEMOTED_PRIMARY_FOLLOWS = 'demoted-primary-follows';

/**
 * The demoted primary (a clean shutdown its standby replayed to the end) becomes the new primary's
 * standby as it is, and the record says so: the set keeps a standby, and the node can never take a
 * write as a former primary. It runs after the RTO is taken: clients are served before it starts. If that fails the
 * switchover still stands: the node stays fenced (stopped, and only ever starts in recovery), and the
 * report says a failback (or its repair mode) rebuilds it.
 */
export async function followNewPrimary(run: TopologyRun, move: Move): Promise<TopologyView> {
  const { set, from, to, topology } = move;
  const { report, info } = run;
  try {
    const rebuilt = await run.step(
      're-protect former primary',
      () => run.in(regionOf(set, from)).long.rebuildAsStandby({ set, node: from, primary: to }),
      `${label(from)} follows ${label(to)}`,
    );
    report.checks.push({
      name: 're-protect former primary',
      ok: true,
      detail: rebuiltDetail(rebuilt.node ?? from, rebuilt.method, to),
    });
    return await run.step(
      'record standby',
      () =>
        run.in(regionOf(set, to)).quick.repointTraffic({
          set,
          next: {
            primary: to,
            standby: rebuilt.node ?? from,
            fenced: withoutNode(topology.fenced, rebuilt.node ?? from),
          },
          expectedEpoch: topology.epoch,
          by: info.workflowId,
        }),
      `recording ${label(rebuilt.node ?? from)} as the standby`,
    );
  } catch (err) {
    if (isCancellation(err)) throw err;
    report.cleanup.push({
      name: 're-protect former primary',
      ok: false,
      detail: `${label(from)} stays fenced (stopped; it only starts in recovery) and ${set.set} has no standby: ${describeFailure(err)}; \`lifeboat failback\` rebuilds it`,
    });
    return topology;
  }
}

/** How a node was made a standby, in the report: a retry that finds it streaming says so. */
export function rebuiltDetail(node: NodeRef, method: string, primary: NodeRef): string {
  if (method === 'already') return `${label(node)} was already a streaming standby of ${label(primary)}`;
  if (method === 'follows')
    return `${label(node)} follows ${label(primary)} as it was (clean demote: nothing to rewind)`;
  return `${label(node)} rebuilt with ${method}`;
}

/**
 * Unplanned takeover: the primary may be dead. Fence it within a deadline (recorded, confirmed or
 * not), hold traffic, promote the standby whatever it has, repoint.
 */
export async function unplannedTakeover(run: TopologyRun, move: Move): Promise<TopologyView> {
  const { set, from } = move;
  const { report } = run;
  let fence: { confirmed: boolean; how: string };
  try {
    fence = await run.step(
      'fence primary',
      () => run.in(regionOf(set, from)).fence.fenceNode({ set, node: from, mode: 'unplanned' }),
      `stopping ${label(from)} if it can be reached (30 s deadline)`,
    );
  } catch (err) {
    fence = { confirmed: false, how: `not confirmed: ${describeFailure(err)}` };
  }
  if (report.failover) report.failover.fence = fence;
  const held = await holdTraffic(run, move);
  return promoteAndRepoint(run, move, held, 'unplanned');
}

/** Promote the standby, then point clients at it; from the promote on, nothing is undone. */
async function promoteAndRepoint(
  run: TopologyRun,
  move: Move,
  held: TopologyView,
  mode: 'planned' | 'unplanned',
): Promise<TopologyView> {
  const { set, from, to, topology } = move;
  const toRegion = regionOf(set, to);
  // The mode lets a platform that moves the writer itself pick how (Aurora: no data loss when planned).
  try {
    await run.step(
      'promote standby',
      () => run.in(toRegion).provisioning.promoteNode({ set, node: to, mode }),
      `promoting ${label(to)}`,
    );
  } catch (err) {
    if (patched(CHECK_BEFORE_UNDOING_PROMOTE)) await keepFencedUnlessStillStandby(run, move);
    throw err;
  }
  // Past the point of no return: the old primary stays fenced whatever happens next.
  run.forgetUndos();
  return run.step(
    'repoint traffic',
    () =>
      run.in(toRegion).quick.repointTraffic({
        set,
        next: { primary: to, standby: null, fenced: withNode(topology.fenced, from) },
        expectedEpoch: held.epoch,
        by: run.info.workflowId,
      }),
    `pointing clients at ${label(to)}`,
  );
}

/** Since this patch a failed promote is checked before its undo runs (see keepFencedUnlessStillStandby). */
export const CHECK_BEFORE_UNDOING_PROMOTE = 'check-before-undoing-promote';

/**
 * A promote step can fail after the platform took the request (a timeout, a lost answer). Undoing
 * the fence then would leave two writable primaries, or point traffic at what is now a replica. So
 * the undo runs only when the standby is seen still in recovery; otherwise traffic stays held and
 * the old primary fenced, and the report says to look before acting.
 */
async function keepFencedUnlessStillStandby(run: TopologyRun, { set, from, to }: Move): Promise<void> {
  const health = await run
    .step(
      'check the promotion',
      () => run.in(regionOf(set, to)).quick.checkReplication({ set, primary: from, standby: to }),
      `is ${label(to)} still a standby?`,
    )
    .catch(() => null);
  // Still a standby, and no promote request reached it (a request is recorded before it is sent):
  // nothing happened, undo as usual. A recorded request may still take effect (pg_promote goes on
  // after its wait times out; an RDS promote is asynchronous), so then nothing is undone.
  if (health?.standby.reachable && health.standby.inRecovery === true && health.standby.promoteRequested !== true)
    return;
  run.forgetUndos();
  run.report.cleanup.push({
    name: 'undo of the switchover skipped',
    ok: false,
    detail: `${label(to)} may have been promoted (${health ? `${health.standby.detail}${health.standby.promoteRequested ? '; a promote was requested' : ''}` : 'its state could not be read'}): ${label(from)} stays fenced and traffic held; check \`lifeboat status\`, then run the failover again`,
  });
}

/** No primary while the roles change: the traffic proxy refuses and cuts every connection. */
function holdTraffic(run: TopologyRun, move: Move): Promise<TopologyView> {
  const { set, from, to, topology } = move;
  return run.step(
    'hold traffic',
    () =>
      run.in(regionOf(set, to)).quick.repointTraffic({
        set,
        next: { primary: null, standby: to, fenced: withNode(topology.fenced, from) },
        expectedEpoch: topology.epoch,
        by: run.info.workflowId,
      }),
    'pointing clients nowhere while the roles change',
  );
}

/** The first two steps of every topology change: drills of the database stop, the record is read. */
export async function cancelDrillsAndReadTopology(run: TopologyRun): Promise<TopologyView> {
  const { input } = run;
  const set = input.replicaSet;
  const cancelDrills = () =>
    run.step(
      'cancel drills',
      () => run.in(set.dr).quick.cancelDrills({ database: input.database }),
      `cancelling running drills of ${input.database}`,
    );
  const readTopology = () =>
    run.step('read topology', () => run.in(set.dr).quick.readTopology({ set }), `reading the topology of ${set.set}`);
  // Reading the record changes nothing: it need not wait for the drills to stop.
  if (patched(SWITCHOVER_SIDE_BY_SIDE)) return (await sideBySide(cancelDrills, readTopology))[1];
  await cancelDrills();
  return readTopology();
}

/** The canary row written on the primary before a switch: the RPO is measured by it (canaryWrite, on a node). */
export function canaryWriteOnNode(run: TopologyRun, node: NodeRef): Promise<Canary> {
  const { input, info } = run;
  const set = input.replicaSet;
  return run.step(
    'canary write',
    () =>
      run.in(regionOf(set, node)).quick.writeCanaryOnNode({
        set,
        node,
        database: input.pgDatabase,
        token: `${info.workflowId}/${info.runId}/canary`,
      }),
    `writing a canary row on ${label(node)}`,
  );
}

/**
 * What proves the new primary serves: the smoke tests (a write, the plan's checks), then RPO from
 * data (measureRpoOnNewPrimary). Side by side since SWITCHOVER_SIDE_BY_SIDE; the report lists them in that order.
 */
export async function verifyNewPrimary(
  run: TopologyRun,
  node: NodeRef,
  mode: 'planned' | 'unplanned',
  startCanary: Canary | null,
  declaredStart: number,
): Promise<number | null> {
  const set = run.input.replicaSet;
  if (!patched(SWITCHOVER_SIDE_BY_SIDE)) {
    run.report.checks.push(...(await smokeTests(run, set, node)));
    return measureRpoOnNewPrimary(run, mode, node, startCanary, declaredStart);
  }
  const at = run.report.checks.length;
  const [smoke, rpo] = await sideBySide(
    () => smokeTests(run, set, node),
    () => measureRpoOnNewPrimary(run, mode, node, startCanary, declaredStart),
  );
  run.report.checks.splice(at, 0, ...smoke);
  return rpo;
}

/** A write and the plan's checks on the new primary. */
export async function smokeTests(run: TopologyRun, set: ReplicaSetSpec, node: NodeRef): Promise<CheckResult[]> {
  const { info, input } = run;
  const { checks } = await run.step(
    'smoke tests',
    () =>
      run.in(regionOf(set, node)).quick.smokeTest({
        set,
        node,
        database: input.pgDatabase,
        checks: input.checks,
        token: `${info.workflowId}/${info.runId}/smoke`,
      }),
    `a write and the plan's checks on ${label(node)}`,
  );
  return checks;
}

export function withNode(nodes: NodeRef[], node: NodeRef): NodeRef[] {
  return nodes.some((n) => same(n, node)) ? nodes : [...nodes, node];
}

export function withoutNode(nodes: NodeRef[], node: NodeRef): NodeRef[] {
  return nodes.filter((n) => !same(n, node));
}

/**
 * RPO of a failover or failback, from the data on the promoted node. Planned: the canary written
 * before the fence must be on the new primary (RPO 0).
 * Unplanned: the newest canary acknowledged before the declared start, against the newest the new
 * primary holds.
 */
export async function measureRpoOnNewPrimary(
  run: TopologyRun,
  mode: 'planned' | 'unplanned',
  node: NodeRef,
  startCanary: Canary | null,
  declaredStart: number,
): Promise<number | null> {
  const { input, report } = run;
  const set = input.replicaSet;
  const at = new Date(declaredStart).toISOString();
  const acknowledged =
    startCanary ??
    (
      await run.step(
        'acknowledged canaries',
        () => run.in(set.dr).quick.acknowledgedCanaries({ database: input.pgDatabase, before: at }),
        'reading the canary ledger',
      )
    ).newest;
  if (!acknowledged) {
    report.checks.push({
      name: 'RPO measurable',
      ok: mode === 'unplanned',
      detail: 'no acknowledged canary before the start: RPO unknown',
    });
    return null;
  }
  const found = await run.step(
    'canaries on the new primary',
    () =>
      run.in(regionOf(set, node)).quick.findCanaries({
        set,
        node,
        database: input.pgDatabase,
        canaries: [{ id: acknowledged.id, writtenAt: acknowledged.writtenAt }],
        // What the new primary wrote since its promotion is no part of the old history.
        before: acknowledged.writtenAt,
      }),
    `looking for canary #${acknowledged.id} on ${label(node)}`,
  );
  if (found.missing.length === 0) {
    report.checks.push({
      name: 'no acknowledged write lost',
      ok: true,
      detail: `canary #${acknowledged.id} (${acknowledged.writtenAt}) is on the new primary`,
    });
    return 0;
  }
  const newest = found.newest;
  const rpo = newest ? Math.max(0, (Date.parse(acknowledged.writtenAt) - Date.parse(newest.writtenAt)) / 1000) : null;
  // Planned must lose nothing; unplanned reports what it lost (the report says how much).
  report.checks.push({
    name: mode === 'planned' ? 'no acknowledged write lost' : 'data loss within the RPO objective',
    ok: mode === 'unplanned' && rpo !== null && rpo <= input.objectives.rpoSeconds,
    detail: `newest acknowledged canary #${acknowledged.id} (${acknowledged.writtenAt}) is missing; newest on the new primary: ${newest ? `#${newest.id} (${newest.writtenAt})` : 'none'}`,
  });
  return rpo;
}
