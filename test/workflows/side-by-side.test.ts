// sideBySide (workflows/steps.ts), which the drill uses to run its preflight beside the canary write and
// the copy's verify beside the restore: when one step fails the other is cancelled, both settle before
// the runbook goes on, and the error it throws is the failure, not the cancellation that followed.
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { client } from '../support/stack';
import type { SideBySideActivities, SideBySideOutcome } from './fixtures/side-by-side';

const taskQueue = `side-by-side-${randomUUID()}`;
const longEnded: string[] = [];

const activities: SideBySideActivities = {
  async long(ms) {
    const ctx = Context.current();
    const until = Date.now() + ms;
    try {
      while (Date.now() < until) {
        ctx.heartbeat();
        await ctx.sleep(100);
      }
      longEnded.push('finished');
      return { value: 'long done', attempt: 1 };
    } catch (err) {
      longEnded.push(ctx.cancellationSignal.aborted ? 'cancelled' : 'failed');
      throw err;
    }
  },
  async quick({ ms, fail }) {
    await Context.current().sleep(ms);
    if (fail)
      throw ApplicationFailure.nonRetryable('the copy does not match its manifest', 'LifeboatBackupChecksumMismatch');
    return { value: 'quick done', attempt: 1 };
  },
};

let worker: Worker;
let running: Promise<void>;
let connection: NativeConnection;

beforeAll(async () => {
  await client(); // waits for the shared dev server
  connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS! });
  worker = await Worker.create({
    connection,
    taskQueue,
    workflowsPath: require.resolve('./fixtures/side-by-side'),
    activities,
  });
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await connection?.close();
});

async function run(input: { quickFails: boolean; longMs: number }): Promise<SideBySideOutcome> {
  const c = await client();
  return c.workflow.execute('sideBySideSteps', {
    taskQueue,
    workflowId: `side-by-side-${randomUUID()}`,
    args: [input],
  });
}

beforeEach(() => {
  longEnded.length = 0;
});

test('both steps complete: both values, both steps completed', async () => {
  const outcome = await run({ quickFails: false, longMs: 300 });
  expect(outcome.error).toBeUndefined();
  expect(outcome.values).toEqual(['long done', 'quick done']);
  expect(outcome.steps.map((s) => [s.name, s.status])).toEqual([
    ['long', 'completed'],
    ['quick', 'completed'],
  ]);
  expect(longEnded).toEqual(['finished']);
});

test('one step fails: the other is cancelled, both settle, and the error is the failure, not the cancellation', async () => {
  const started = Date.now();
  const outcome = await run({ quickFails: true, longMs: 60_000 });
  expect(outcome.values).toBeUndefined();
  expect(outcome.error).toBe('LifeboatBackupChecksumMismatch: the copy does not match its manifest');
  const byName = Object.fromEntries(outcome.steps.map((s) => [s.name, s]));
  expect(byName.quick).toMatchObject({
    status: 'failed',
    detail: 'LifeboatBackupChecksumMismatch: the copy does not match its manifest',
  });
  expect(byName.long).toMatchObject({ status: 'failed', detail: 'cancelled' });
  expect(byName.long!.finishedAt).toBeDefined(); // settled before the workflow went on
  expect(longEnded).toEqual(['cancelled']); // the activity itself was told, and stopped
  expect(Date.now() - started).toBeLessThan(30_000); // not the minute the long step would have run
});
