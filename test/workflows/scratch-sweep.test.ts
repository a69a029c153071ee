// The scratch-instance sweep (activities/scratch-sweep.ts): `lifeboat sweep --json` and the same
// sweep as a step of the readiness runbook delete scratch instances whose drill is no longer running.
// A drill terminated from "the UI" (the client's terminate: no teardown runs) leaves its scratch
// instance, and the next sweep deletes it and reports it; the scratch instance of a running drill
// survives. The running drill is a drill run on a task queue no worker polls (so it stays Running)
// with a scratch instance made for it by the test under the name the runbook would give it.
import type { Client, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { scratchTagOf, type SweepOutcome } from '../../activities/scratch-sweep';
import { createLogger } from '../../worker/logger';
import { readinessInput } from '../../worker/plan';
import { listRuns } from '../../activities/visibility';
import type { Progress } from '../../workflows/steps';
import { RUNBOOK_TASK_QUEUE, type ScratchInstance } from '../../workflows/types';
import { lifeboat } from '../support/cli';
import { client, demoDrillInput, demoPlan, local, LogCapture, startWorker, type RunningWorker } from '../support/stack';
import { runbookReport } from '../../workflows/runbook-failure';

const regionB = { name: 'local-b', provider: 'local' as const };
const log = new LogCapture();
let worker: RunningWorker;
let c: Client;
const leftovers: WorkflowHandle[] = [];
/** Scratch instances this file made by hand: the tests after it expect the DR region to hold none. */
const made: ScratchInstance[] = [];

beforeAll(async () => {
  worker = await startWorker({ capture: log, plan: demoPlan() });
  c = await client();
});

afterAll(async () => {
  for (const handle of leftovers) await handle.terminate('test cleanup').catch(() => undefined);
  for (const scratch of made)
    await local()
      .dropScratch(scratch)
      .catch(() => undefined);
  await worker?.stop();
  await c?.connection.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until visibility lists the run with this status (the sweep asks visibility). */
async function visibleAs(handle: WorkflowHandle, status: 'Running' | 'Terminated'): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    for await (const run of listRuns(c, `WorkflowId = '${handle.workflowId}' AND ExecutionStatus = '${status}'`))
      if (run.workflowId === handle.workflowId) return;
    if (Date.now() > deadline) throw new Error(`${handle.workflowId} never showed as ${status} in visibility`);
    await sleep(200);
  }
}

/** A real drill, terminated as soon as its scratch instance is up (before its teardown can run). */
async function drillTerminatedMidRun(): Promise<{ handle: WorkflowHandle; runId: string; scratch: string }> {
  const handle = await c.workflow.start('drill', {
    taskQueue: RUNBOOK_TASK_QUEUE,
    workflowId: `test/sweep/terminated/${Date.now()}`,
    args: [demoDrillInput()],
  });
  leftovers.push(handle);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const progress = await handle.query<Progress>('drillProgress').catch(() => null);
    if (progress?.steps.some((s) => s.name.startsWith('tear down')))
      throw new Error('the drill reached its teardown before the test could terminate it');
    if (progress?.steps.some((s) => s.name === 'create scratch instance' && s.status === 'completed')) break;
    if (Date.now() > deadline)
      throw new Error(`the drill never made its scratch instance (progress: ${JSON.stringify(progress)})`);
    await sleep(20);
  }
  await handle.terminate('terminated from the Temporal UI');
  return { handle, runId: handle.firstExecutionRunId, scratch: `drill-${scratchTagOf(handle.firstExecutionRunId)}` };
}

/** A drill that stays Running (no worker polls its queue), and a scratch instance under its run's name. */
async function runningDrillWithScratch(): Promise<{ handle: WorkflowHandleWithFirstExecutionRunId; scratch: string }> {
  const handle = await c.workflow.start('drill', {
    taskQueue: 'test-sweep-nobody-polls',
    workflowId: `test/sweep/running/${Date.now()}`,
    args: [demoDrillInput()],
  });
  leftovers.push(handle);
  const scratch = `drill-${scratchTagOf(handle.firstExecutionRunId)}`;
  made.push(
    await local().createScratch(regionB, scratch, 'orders', {
      heartbeat: () => undefined,
      signal: new AbortController().signal,
      logger: createLogger('warn', new LogCapture()),
    }),
  );
  return { handle, scratch };
}

test("a drill terminated from the UI mid-run leaves its scratch instance; `lifeboat sweep --json` deletes it and reports it; a running drill's scratch instance survives", async () => {
  const terminated = await drillTerminatedMidRun();
  const running = await runningDrillWithScratch();
  await visibleAs(terminated.handle, 'Terminated');
  await visibleAs(running.handle, 'Running');
  // No teardown ran: the terminated drill's scratch instance is still there.
  expect(await local().listScratch(regionB)).toEqual(expect.arrayContaining([terminated.scratch, running.scratch]));

  const result = await lifeboat(['sweep', '--json']);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  const swept = JSON.parse(result.stdout) as SweepOutcome;
  expect(swept.deleted).toContainEqual({
    region: 'local-b',
    name: terminated.scratch,
    drill: { workflowId: terminated.handle.workflowId, runId: terminated.runId, status: 'TERMINATED' },
  });
  expect(swept.kept).toContainEqual({
    region: 'local-b',
    name: running.scratch,
    reason: 'its drill is running',
    drill: { workflowId: running.handle.workflowId, runId: running.handle.firstExecutionRunId, status: 'RUNNING' },
  });
  expect(swept.failed).toEqual([]);
  const after = await local().listScratch(regionB);
  expect(after).not.toContain(terminated.scratch);
  expect(after).toContain(running.scratch);

  // Again: nothing more to delete, the running drill's instance still kept.
  const again = JSON.parse((await lifeboat(['sweep', '--json'])).stdout) as SweepOutcome;
  expect(again.deleted.map((d) => d.name)).not.toContain(terminated.scratch);
  expect(again.kept.map((k) => k.name)).toContain(running.scratch);
}, 240_000);

test('the readiness runbook sweeps its DR region too: once the drill is terminated, its scratch instance is deleted and the step names it', async () => {
  const running = await runningDrillWithScratch();
  await running.handle.terminate('terminated from the Temporal UI');
  await visibleAs(running.handle, 'Terminated');
  expect(await local().listScratch(regionB)).toContain(running.scratch);

  const report = await runbookReport(
    await c.workflow.start('readiness', {
      taskQueue: RUNBOOK_TASK_QUEUE,
      workflowId: `test/sweep/readiness/${Date.now()}`,
      args: [readinessInput(demoPlan(), 'orders', { triggeredBy: 'test' })],
    }),
  );
  const step = report.steps.find((s) => s.name === 'sweep scratch');
  expect(step).toMatchObject({
    status: 'completed',
    detail: expect.stringContaining(`deleted ${running.scratch} (drill ${running.handle.workflowId} terminated)`),
  });
  expect(report.checks.map((check) => check.name)).not.toContain('sweep scratch'); // housekeeping, not a readiness verdict
  expect(await local().listScratch(regionB)).not.toContain(running.scratch);
}, 120_000);
