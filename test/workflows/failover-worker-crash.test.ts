// Failover and worker processes. A failover whose worker process is killed with SIGKILL while the
// runbook waits at the approval gate: a new worker process must pick the runbook up from its
// history, take the approval (an Update, which only a live worker can validate) and finish the
// switchover. And a worker process must survive a failover's fence ending the sessions its other
// activities hold on the primary. Every worker here is a real `lifeboat worker -f plan` process:
// nothing runs in-process. Own replication set: crash-a -> crash-b.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Client } from '@temporalio/client';
import { failoverInput } from '../../worker/plan';
import { approveFailoverUpdate } from '../../workflows/messages';
import { CLI, stopProcess } from '../support/cli';
import {
  canaryAtEpoch,
  createReplicaSet,
  drillWaitingOnLock,
  expectAtHome,
  expectPassed,
  lockId,
  runFailback,
  startTopologyRunbook,
  topologyOf,
  topologyReport,
  waitForStandbyToCatchUp,
  waitForStep,
  type ReplicaSetFixture,
} from '../support/replica-set';
import { client, local } from '../support/stack';

const DB = 'stock';

let fx: ReplicaSetFixture;
let temporal: Client;
const workers: ChildProcess[] = [];
const stderrOf = new Map<ChildProcess, string>();

function startWorkerProcess(): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'worker', '-f', fx.planFile], {
    env: { ...process.env, LIFEBOAT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  stderrOf.set(child, '');
  child.stderr!.on('data', (chunk: Buffer) =>
    stderrOf.set(child, (stderrOf.get(child)! + chunk.toString()).slice(-20_000)),
  );
  workers.push(child);
  return child;
}

beforeAll(async () => {
  fx = await createReplicaSet({ home: 'crash-a', dr: 'crash-b', database: DB });
  temporal = await client();
}, 180_000);

// Each test runs the worker processes it starts, and only those.
beforeEach(() => Promise.all(workers.map(stopProcess)));

afterAll(async () => {
  await Promise.all(workers.map(stopProcess));
  await temporal?.connection.close();
  await fx?.close();
});

/** The worker identities (`<pid>@<host>`) that completed the run's workflow tasks, in order. */
async function workflowTaskIdentities(workflowId: string): Promise<string[]> {
  const history = await temporal.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).flatMap((e) =>
    e.workflowTaskCompletedEventAttributes?.identity ? [e.workflowTaskCompletedEventAttributes.identity] : [],
  );
}

test('a failover survives SIGKILL of its worker at the approval gate: a new worker process takes the approval and finishes it', async () => {
  const before = expectAtHome(fx);
  await canaryAtEpoch(DB, before.epoch);
  const first = startWorkerProcess();
  const handle = await startTopologyRunbook(
    temporal,
    'failover',
    failoverInput(fx.plan, DB, { mode: 'planned', preApproved: false, triggeredBy: 'test' }),
  );
  await waitForStep(handle, 'failoverProgress', 'approval', 90_000);

  first.kill('SIGKILL');
  await once(first, 'exit');
  expect(first.signalCode).toBe('SIGKILL');
  // Killed at the gate: nothing has been fenced or moved.
  expect(topologyOf(fx)).toEqual(before);
  expect(await local().nodeStatus(fx.home)).toMatchObject({ writable: true, fenced: false });

  const second = startWorkerProcess();
  const accepted = await handle.executeUpdate(approveFailoverUpdate, {
    args: [
      {
        database: DB,
        planDigest: fx.plan.digest,
        approvedBy: 'test:on-call',
        reason: 'approved after the worker crash',
      },
    ],
  });
  expect(accepted).toEqual({ accepted: true, workflowId: lockId(DB) });

  const report = await topologyReport(fx, handle);
  expectPassed(report);
  expect(report.runId).toBe(handle.firstExecutionRunId); // the same run, carried on: not restarted
  expect(report.rpoSeconds).toBe(0);
  expect(report.failover?.fence).toMatchObject({ confirmed: true });
  expect(report.failover?.approval).toEqual({
    database: DB,
    planDigest: fx.plan.digest,
    approvedBy: 'test:on-call',
    reason: 'approved after the worker crash',
  });
  // Every step ran exactly once: nothing was redone by the new worker.
  expect(report.steps.filter((s) => s.status !== 'completed' || s.attempts !== 1)).toEqual([]);
  // The demoted primary follows the new one.
  expect(topologyOf(fx)).toMatchObject({ primary: fx.standby, standby: fx.home, fenced: [] });
  // The history names both processes: the killed one up to the gate, the new one from the approval on.
  const identities = await workflowTaskIdentities(handle.workflowId);
  expect(identities[0]).toMatch(new RegExp(`^${first.pid}@`));
  expect(identities.at(-1)).toMatch(new RegExp(`^${second.pid}@`));
  await canaryAtEpoch(DB, topologyOf(fx).primarySinceEpoch);

  // And back, on the new worker.
  const failback = await runFailback(temporal, fx);
  expectPassed(failback);
  expectAtHome(fx);
  await waitForStandbyToCatchUp(fx.home, fx.standby, DB);
  expect(second.exitCode).toBeNull();
}, 240_000);

test('a worker process survives the fence ending the sessions its drill backup holds on the primary', async () => {
  const before = expectAtHome(fx);
  await canaryAtEpoch(DB, before.epoch);
  const worker = startWorkerProcess();
  const exited = once(worker, 'exit').then(([code, signal]) => ({ code, signal }));
  // The drill's pg_dump waits behind an application's lock: its sessions are open on the primary
  // when the failover's fence ends every session there.
  const { release } = await drillWaitingOnLock(temporal, fx, 90_000);
  try {
    const failover = await startTopologyRunbook(
      temporal,
      'failover',
      failoverInput(fx.plan, DB, { mode: 'planned', preApproved: true, triggeredBy: 'test' }),
    );
    const first = await Promise.race([
      failover.result().then(() => 'failover finished'),
      exited.then(() => 'worker exited'),
    ]);
    const crash =
      first === 'worker exited'
        ? { exit: await exited, stderr: stderrOf.get(worker)!.split('\n').slice(0, 8).join('\n') }
        : null;
    if (crash) startWorkerProcess(); // so that the runbooks can still finish and the set come home

    const report = await topologyReport(fx, failover);
    const failback = await runFailback(temporal, fx);

    expect(crash).toBeNull();
    expectPassed(report);
    expectPassed(failback);
    expectAtHome(fx);
  } finally {
    await release();
  }
}, 300_000);
