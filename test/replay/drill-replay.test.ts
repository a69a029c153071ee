// Recorded runbook histories (drills, a backup, a failover, a failback) must replay against today's
// runbook code. A change that alters the sequence of commands (without patched()) fails here before
// it can strand a running runbook.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { DeterminismViolationError } from '@temporalio/workflow';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { workflowBundle } from '../support/stack';

const dir = join(__dirname, 'histories');
const histories = readdirSync(dir).filter((f) => f.endsWith('.json'));
const read = (file: string) =>
  JSON.parse(readFileSync(join(dir, file), 'utf8')) as { workflowId?: string; events: unknown[] };
const load = (file: string) => historyFromJSON(read(file));

test('there are recorded histories to replay', () => {
  expect(histories.length).toBeGreaterThan(0);
});

test.each(histories)('%s replays against the current runbooks', async (file) => {
  // A runbook that names its children after its own ID (a fleet drill) is replayed under the ID it ran with.
  await expect(
    Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, load(file), read(file).workflowId),
  ).resolves.toBeUndefined();
});

test('the replay check can fail: a drill that reorders its steps is a determinism violation', async () => {
  const reordered = await bundleWorkflowCode({
    workflowsPath: require.resolve('./fixtures/reordered-drill'),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
  });
  const drillHistory = histories.find((f) => f.startsWith('drill-'))!;
  await expect(Worker.runReplayHistory({ workflowBundle: reordered }, load(drillHistory))).rejects.toBeInstanceOf(
    DeterminismViolationError,
  );
});
