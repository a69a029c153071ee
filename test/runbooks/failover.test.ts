// The failover runbook's branches, on scripted activities (test/runbooks/harness.ts): the order of
// a planned switchover and what runs side by side, cancellation at every step before the promote,
// an approval that times out, a promote that failed after (or before) its request.
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { ErrorType, type RunbookReport } from '../../workflows/types';
import { CANARY, DR, HOME, healthyNode, healthySwitchover, plannedFailover, primary, standby } from './fixtures';
import {
  overlapped,
  sleep,
  useRunbookServer,
  untilCancelled,
  verdictFailure,
  type ActivityName,
  type Call,
  type Script,
} from './harness';

const server = useRunbookServer();
// The tests that cancel a run while it runs: on the dev server (see ServerKind in harness.ts).
const devServer = useRunbookServer('dev');

const regions = [HOME, DR];
const q = (region: string) => `lifeboat-${region}`;
/** A call as the tests compare it: the activity, and for repoints whom the record names primary. */
const step = (c: Call): string => {
  if (c.name !== 'repointTraffic') return c.name;
  const next = (c.input as { next: { primary: { name: string } | null; standby: { name: string } | null } }).next;
  return next.primary === null
    ? 'repointTraffic(hold)'
    : `repointTraffic(primary=${next.primary.name}${next.standby ? `, standby=${next.standby.name}` : ''})`;
};

test('a planned failover runs its steps in order, on the region each acts on, with four pairs side by side', async () => {
  const { result, calls } = await server().run<RunbookReport>('failover', plannedFailover(), {
    regions,
    script: healthySwitchover(),
  });
  expect(result?.outcome).toBe('passed');
  expect(result?.rpoSeconds).toBe(0);
  // Pairs are listed in the order they were scheduled; the test sorts each pair, since both start together.
  const order = calls.calls.map((c) => `${step(c)}@${c.queue}`);
  const pairs: Array<[string, string]> = [
    [`cancelDrills@${q(DR)}`, `readTopology@${q(DR)}`],
    [`checkReplication@${q(DR)}`, `writeCanaryOnNode@${q(HOME)}`],
    [`repointTraffic(hold)@${q(DR)}`, `waitForReplay@${q(DR)}`],
    [`smokeTest@${q(DR)}`, `findCanaries@${q(DR)}`],
  ];
  const sorted = (a: string[]) => [...a].sort();
  expect(sorted(order.slice(0, 2))).toEqual(sorted(pairs[0]!));
  expect(sorted(order.slice(2, 4))).toEqual(sorted(pairs[1]!));
  // The "started" notification is off the critical path: it and the fence start together.
  expect(sorted(order.slice(4, 6))).toEqual(sorted([`notify@${q(DR)}`, `fenceNode@${q(HOME)}`]));
  expect(sorted(order.slice(6, 8))).toEqual(sorted(pairs[2]!));
  expect(order.slice(8, 10)).toEqual([`promoteNode@${q(DR)}`, `repointTraffic(primary=${standby.name})@${q(DR)}`]);
  expect(sorted(order.slice(10, 12))).toEqual(sorted(pairs[3]!));
  expect(order.slice(12)).toEqual([
    `rebuildAsStandby@${q(HOME)}`,
    `repointTraffic(primary=${standby.name}, standby=${primary.name})@${q(DR)}`,
    `notify@${q(DR)}`,
  ]);
  // Side by side: each pair's calls overlapped in time (each mock takes 150 ms).
  for (const [a, b] of [
    ['cancelDrills', 'readTopology'],
    ['checkReplication', 'writeCanaryOnNode'],
    ['waitForReplay', 'repointTraffic'],
    ['smokeTest', 'findCanaries'],
  ] as Array<[ActivityName, ActivityName]>) {
    expect({ pair: `${a} | ${b}`, overlapped: overlapped(calls.of(a)[0]!, calls.of(b)[0]!) }).toEqual({
      pair: `${a} | ${b}`,
      overlapped: true,
    });
  }
  // The canary written before the fence is the one looked for on the new primary.
  expect(calls.of('findCanaries')[0]!.input).toMatchObject({ node: standby, canaries: [CANARY] });
}, 30_000);

// Every step before the promote, and what must be undone when the run is cancelled during it.
const beforePromote: Array<{ at: ActivityName; undo: string[] }> = [
  { at: 'cancelDrills', undo: [] },
  { at: 'readTopology', undo: [] },
  { at: 'checkReplication', undo: [] },
  { at: 'writeCanaryOnNode', undo: [] },
  // The unfence is registered before the fence: a fence cut short may have fenced some of it.
  { at: 'fenceNode', undo: ['unfenceNode'] },
  // The hold finished beside it: traffic goes back first, then the old primary is unfenced.
  { at: 'waitForReplay', undo: [`repointTraffic(primary=${primary.name}, standby=${standby.name})`, 'unfenceNode'] },
];

test.each(beforePromote)(
  'a failover cancelled during $at undoes $undo, newest first, and ends cancelled',
  async ({ at, undo }) => {
    const script: Script = { ...healthySwitchover(), [at]: untilCancelled };
    const { error, calls } = await devServer().run('failover', plannedFailover(), {
      regions,
      script,
      during: async (handle, log) => {
        await log.started(at);
        await handle.cancel();
      },
    });
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    const blocked = calls.of(at)[0]!;
    expect(blocked.outcome).toBe('cancelled');
    // What ran after the cancelled step: the undo actions, then the "finished" notification.
    const after = calls.calls.slice(calls.calls.indexOf(blocked) + 1).filter((c) => c.startedAt >= blocked.finishedAt!);
    expect(after.map(step)).toEqual([...undo, 'notify']);
    expect(calls.names()).not.toContain('promoteNode');
    expect(after.at(-1)!.input).toMatchObject({ event: 'failover.finished', outcome: 'failed', reason: 'cancelled' });
  },
  30_000,
);

// A run cancelled while it holds traffic: the hold is not cancelled (an activity told to stop may
// still have written the record), so it finishes, and both undos run: traffic back, then unfence.
test('a failover cancelled while it holds traffic lets the hold finish, then restores traffic and unfences, newest first, and ends cancelled', async () => {
  const healthy = healthySwitchover();
  const script: Script = {
    ...healthy,
    repointTraffic: async (input, call, log) => {
      if (input.next.primary === null) await sleep(1_500); // the cancel arrives meanwhile
      return healthy.repointTraffic!(input, call, log);
    },
  };
  const { error, calls } = await devServer().run('failover', plannedFailover(), {
    regions,
    script,
    during: async (handle, log) => {
      await log.started('repointTraffic');
      await handle.cancel();
    },
  });
  expect(error).toBeInstanceOf(WorkflowFailedError);
  expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  const hold = calls.of('repointTraffic')[0]!;
  expect(hold.outcome).toBe('completed');
  const after = calls.calls.slice(calls.calls.indexOf(hold) + 1).filter((c) => c.startedAt >= hold.finishedAt!);
  expect(after.map(step)).toEqual([
    `repointTraffic(primary=${primary.name}, standby=${standby.name})`,
    'unfenceNode',
    'notify',
  ]);
  expect(calls.names()).not.toContain('promoteNode');
}, 30_000);

// The plan's default approval timeout, 15 minutes, passes in well under a second: the test server
// skips to the timer once the run waits on nothing else.
test('an approval that times out after the default 15 minutes changes nothing: no fence, no repoint, the report says so', async () => {
  const input = plannedFailover({ preApproved: false });
  expect(input.approval.timeoutSeconds).toBe(900);
  const { result, calls } = await server().run<RunbookReport>('failover', input, {
    regions,
    script: healthySwitchover(),
  });
  expect(result?.outcome).toBe('failed');
  expect(result?.reason).toBe('approval timed out after 900s; nothing was changed');
  expect(result?.failover?.approval).toBeNull();
  expect(calls.names()).toEqual(expect.arrayContaining(['readTopology', 'checkReplication', 'writeCanaryOnNode']));
  for (const changes of ['fenceNode', 'unfenceNode', 'repointTraffic', 'promoteNode'] as const)
    expect(calls.names()).not.toContain(changes);
  expect(calls.calls.filter((c) => c.name === 'notify').map((c) => (c.input as { event: string }).event)).toEqual([
    'failover.approval_needed',
    'failover.finished',
  ]);
}, 30_000);

/** A promote that fails; the standby then reports whether a promote request reached it. */
function failedPromote(requestReachedStandby: boolean): Script {
  const healthy = healthySwitchover();
  let promoteFailed = false;
  return {
    ...healthy,
    promoteNode: () => {
      promoteFailed = true;
      throw verdictFailure(ErrorType.ProviderRejected, `promote of ${standby.name} did not finish in time`);
    },
    checkReplication: async (input, call, log) => {
      const health = await healthy.checkReplication!(input, call, log);
      return promoteFailed ? { ...health, standby: healthyNode(false, requestReachedStandby) } : health;
    },
  };
}

test('a promote that failed after its request reached the standby is never undone: fenced, traffic held, the report says why', async () => {
  const { result, calls } = await server().run<RunbookReport>('failover', plannedFailover(), {
    regions,
    script: failedPromote(true),
  });
  expect(result?.outcome).toBe('failed');
  expect(result?.reason).toContain('did not finish in time');
  const fromPromote = calls.calls.slice(calls.names().indexOf('promoteNode')).map(step);
  expect(fromPromote).toEqual(['promoteNode', 'checkReplication', 'notify']);
  expect(result?.cleanup).toEqual([
    {
      name: 'undo of the switchover skipped',
      ok: false,
      detail: expect.stringMatching(
        new RegExp(
          `^${DR}/${standby.name} may have been promoted \\(standby, streaming; a promote was requested\\): ${HOME}/server stays fenced and traffic held`,
        ),
      ),
    },
  ]);
}, 30_000);

test('a promote that failed with no request made is undone: traffic restored, then the old primary unfenced', async () => {
  const { result, calls } = await server().run<RunbookReport>('failover', plannedFailover(), {
    regions,
    script: failedPromote(false),
  });
  expect(result?.outcome).toBe('failed');
  const fromPromote = calls.calls.slice(calls.names().indexOf('promoteNode')).map(step);
  expect(fromPromote).toEqual([
    'promoteNode',
    'checkReplication',
    `repointTraffic(primary=${primary.name}, standby=${standby.name})`,
    'unfenceNode',
    'notify',
  ]);
  expect(result?.cleanup.map((c) => [c.name, c.ok])).toEqual([
    [`restore traffic to ${HOME}/server`, true],
    [`unfence ${HOME}/server`, true],
  ]);
}, 30_000);

test('an unplanned failover whose fence cannot reach the primary still takes over: hold, promote, repoint; the report says the fence was not confirmed', async () => {
  const script: Script = {
    ...healthySwitchover(),
    fenceNode: () => {
      throw verdictFailure(ErrorType.ProviderRejected, `${HOME}/server cannot be reached`);
    },
  };
  const input = plannedFailover();
  const { result, calls } = await server().run<RunbookReport>(
    'failover',
    { ...input, mode: 'unplanned' },
    { regions, script },
  );
  expect(result?.outcome).toBe('passed');
  expect(result?.failover?.fence).toEqual({ confirmed: false, how: expect.stringContaining('not confirmed') });
  const order = calls.calls.map(step).filter((s) => s !== 'notify');
  const sorted = (a: string[]) => [...a].sort();
  expect(sorted(order.slice(0, 2))).toEqual(['cancelDrills', 'readTopology']);
  // No canary on a primary that may be down; no replay to wait for.
  expect(order.slice(2, 7)).toEqual([
    'checkReplication',
    'fenceNode',
    'repointTraffic(hold)',
    'promoteNode',
    `repointTraffic(primary=${standby.name})`,
  ]);
  expect(calls.names()).not.toContain('writeCanaryOnNode');
  expect(calls.names()).not.toContain('waitForReplay');
  // RPO from the ledger: the newest acknowledged canary is looked for on the new primary.
  expect(calls.of('acknowledgedCanaries')).toHaveLength(1);
  expect(calls.of('findCanaries')[0]!.input).toMatchObject({ node: standby });
}, 30_000);
