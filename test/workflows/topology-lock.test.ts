// The one-failover-per-database lock holds where runs start, not only in the CLI: on a replication
// set of this file's own (lk-a -> lk-b), a second failover of the same database started by hand
// with the Temporal client while the first waits for approval is refused, and the first is unaffected
// (it still waits, nothing moved, and its approval then runs it to the end).
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { failoverInput } from '../../worker/plan';
import { approveFailoverUpdate } from '../../workflows/messages';
import type { Progress } from '../../workflows/steps';
import { RUNBOOK_TASK_QUEUE } from '../../workflows/types';
import {
  createReplicaSet,
  expectAtHome,
  expectPassed,
  lockId,
  startTopologyRunbook,
  topologyOf,
  waitForStep,
  type ReplicaSetFixture,
} from '../support/replica-set';
import { endOf, expectNothingRan } from '../support/refused';
import { client, local, LogCapture, startWorker, type RunningWorker } from '../support/stack';
import { runbookReport } from '../../workflows/runbook-failure';

const DB = 'lockdb';

let fx: ReplicaSetFixture;
let temporal: Client;
let worker: RunningWorker;
const log = new LogCapture();
const leftovers: WorkflowHandle[] = [];

beforeAll(async () => {
  fx = await createReplicaSet({ home: 'lk-a', dr: 'lk-b', database: DB });
  temporal = await client();
  // As `lifeboat worker -f plan` runs it: checking every run against the plan it loaded.
  worker = await startWorker({ regions: ['lk-a', 'lk-b'], capture: log, plan: fx.plan });
}, 180_000);

afterAll(async () => {
  for (const handle of leftovers) await handle.terminate('test cleanup').catch(() => undefined);
  await worker?.stop();
  await temporal?.connection.close();
  await fx?.close();
});

test('a second failover of the same database started by hand while the first waits for approval is refused, and the first is unaffected', async () => {
  const before = expectAtHome(fx);
  const first = await startTopologyRunbook(
    temporal,
    'failover',
    failoverInput(fx.plan, DB, { mode: 'planned', preApproved: false, triggeredBy: 'test' }),
  );
  leftovers.push(first);
  await waitForStep(first, 'failoverProgress', 'approval', 90_000);

  // By hand under the lock ID: Temporal itself refuses a second open run with the same ID.
  const preApproved = failoverInput(fx.plan, DB, { mode: 'unplanned', preApproved: true, triggeredBy: 'by-hand' });
  await expect(
    temporal.workflow.start('failover', { taskQueue: RUNBOOK_TASK_QUEUE, workflowId: lockId(DB), args: [preApproved] }),
  ).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);

  // By hand under another ID, pre-approved and unplanned (it would promote the standby at once): the
  // worker refuses it before its first activity, so it neither cancels, fences nor promotes anything.
  const second = await temporal.workflow.start('failover', {
    taskQueue: RUNBOOK_TASK_QUEUE,
    workflowId: `by-hand/${DB}/failover/${Date.now()}`,
    args: [preApproved],
  });
  leftovers.push(second);
  const ended = await endOf(second);
  expect(ended.outcome).toBe('failed');
  expect(ended.reason).toContain(
    `LifeboatInputMismatch: failover ${second.workflowId} was not built from the plan this worker loaded`,
  );
  expect(ended.reason).toContain(`a failover of "${DB}" runs only as ${lockId(DB)}, the per-database lock`);
  await expectNothingRan(second, log);

  // The first: still running, still at its approval gate, and nothing of the set moved.
  expect((await first.describe()).status.name).toBe('RUNNING');
  expect((await first.query<Progress>('failoverProgress')).running).toEqual(['approval']);
  expect(topologyOf(fx)).toEqual(before);
  expect(await local().nodeStatus(fx.home)).toMatchObject({ reachable: true, writable: true, fenced: false });
  expect(await local().nodeStatus(fx.standby)).toMatchObject({ reachable: true, inRecovery: true });

  // And it takes its approval and runs to the end.
  await first.executeUpdate(approveFailoverUpdate, {
    args: [{ database: DB, planDigest: fx.plan.digest, approvedBy: 'test', reason: 'the lock test' }],
  });
  const report = await runbookReport(first);
  expectPassed(report);
  // A planned failover: the demoted primary follows the new one.
  expect(topologyOf(fx)).toMatchObject({ primary: fx.standby, standby: fx.home, fenced: [] });
}, 240_000);
