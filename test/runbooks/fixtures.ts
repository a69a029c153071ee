// A small in-memory plan and scripted activities that behave like a healthy replication set, for
// the runbook tests. Each test overrides the one or two activities its branch is about.
import { failoverInput, parsePlan } from '../../worker/plan';
import type { FailoverInput, NodeRef, TopologyView } from '../../workflows/types';
import { planText } from '../support/replica-set';
import { CAUGHT_UP_LAG } from '../support/t2-drill';
import { besides, type Script } from './harness';

export const HOME = 'rb-a';
export const DR = 'rb-b';
export const DATABASE = 'shop';

// The plan the real-server tests use for a replication set (test/support/replica-set.ts), in memory.
export const plan = parsePlan(planText(HOME, DR, DATABASE), 'runbook-test plan');

export const primary: NodeRef = { region: HOME, name: 'server' };
export const standby: NodeRef = { region: DR, name: `standby-of-${HOME}` };

export function plannedFailover(overrides: Partial<Parameters<typeof failoverInput>[2]> = {}): FailoverInput {
  return failoverInput(plan, DATABASE, { mode: 'planned', preApproved: true, triggeredBy: 'test', ...overrides });
}

const topology = (over: Partial<TopologyView> = {}): TopologyView => ({
  set: HOME,
  primary,
  standby,
  fenced: [],
  epoch: 7,
  primarySinceEpoch: 6,
  updatedAt: '2026-01-01T00:00:00.000Z',
  updatedBy: 'test',
  ...over,
});

const nodeUp = (isPrimary: boolean, promoteRequested = false) => ({
  running: true,
  reachable: true,
  inRecovery: !isPrimary,
  writable: isPrimary,
  fenced: false,
  lsn: '0/1000000',
  streaming: isPrimary ? null : true,
  promoteRequested,
  detail: isPrimary ? 'primary, writable' : 'standby, streaming',
});

export const CANARY = { id: 41, writtenAt: '2026-01-01T00:00:01.000Z' };

/**
 * A replication set where everything works: a switchover passes. The steps that run side by side
 * wait for each other to start (besides), so the test can see them overlap; the record's epoch
 * moves with each repoint.
 */
export function healthySwitchover(): Script {
  let epoch = 7;
  const hold = besides('waitForReplay', null);
  return {
    cancelDrills: besides('readTopology', { cancelled: [] }),
    readTopology: besides('cancelDrills', topology()),
    checkReplication: besides('writeCanaryOnNode', {
      primary: nodeUp(true),
      standby: nodeUp(false),
      lag: CAUGHT_UP_LAG,
    }),
    writeCanaryOnNode: besides('checkReplication', CANARY),
    notify: () => ({ sent: false }),
    fenceNode: () => ({ confirmed: true, how: 'scripted demote', finalLsn: '0/1000001', canFollow: true }),
    unfenceNode: () => ({ existed: true }),
    waitForReplay: besides('repointTraffic', { replayLsn: '0/1000001' }),
    repointTraffic: async (input, call, log) => {
      if (input.next.primary === null) await hold(input, call, log);
      epoch += 1;
      return topology({ ...input.next, epoch, primarySinceEpoch: epoch });
    },
    promoteNode: () => ({ lsn: '0/1000002', alreadyPrimary: false }),
    smokeTest: besides('findCanaries', {
      checks: [{ name: 'write on the new primary', ok: true, detail: 'canary committed' }],
    }),
    findCanaries: besides('smokeTest', { newest: CANARY, missing: [] }),
    rebuildAsStandby: () => ({ method: 'follows', node: primary }),
    acknowledgedCanaries: () => ({ newest: { ...CANARY, database: DATABASE, epoch: 7 }, term: [] }),
  };
}

export const healthyNode = nodeUp;
