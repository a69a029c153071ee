// A failover while the primary's region is dark: its server is killed and no worker serves its queue.
// The only worker is a `lifeboat worker --region dk-b` process placed in the DR region (the runbook
// queue and dk-b's); the unplanned failover must still promote the standby, fence nothing it cannot
// reach (the fence is recorded as unconfirmed after its deadline), and make the DR side writable.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunbookReport } from '../../workflows/types';
import { CLI, lifeboat } from '../support/cli';
import { createReplicaSet, expectPassed, topologyOf, type ReplicaSetFixture } from '../support/replica-set';
import { local } from '../support/stack';

const DB = 'dkdb';
let fx: ReplicaSetFixture;
let worker: ChildProcess | undefined;
let output = '';

beforeAll(async () => {
  fx = await createReplicaSet({ home: 'dk-a', dr: 'dk-b', database: DB });
}, 120_000);

afterAll(async () => {
  if (worker && worker.exitCode === null) {
    const exited = new Promise((resolve) => worker!.once('exit', resolve));
    worker.kill('SIGTERM');
    await exited;
  }
  await fx?.close();
});

test('lifeboat worker --region refuses a region the plan does not have (exit 2, naming it)', async () => {
  const result = await lifeboat(['worker', '-f', fx.planFile, '--region', 'dk-c']);
  expect(result.code).toBe(2);
  expect(result.stderr).toContain(`--region dk-c: not a region of ${fx.planFile}; expected one of dk-a, dk-b`);
});

test('an unplanned failover completes with only a DR-region worker while the primary region is dark', async () => {
  worker = spawn(process.execPath, [CLI, 'worker', '-f', fx.planFile, '--region', 'dk-b'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  worker.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  worker.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!output.includes('worker ready')) {
    if (Date.now() > deadline || worker.exitCode !== null) throw new Error(`the DR worker did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  // The worker serves the runbook queue and dk-b's, not dk-a's.
  expect(output).toMatch(/"queues":\["lifeboat","lifeboat-dk-b"\]/);

  const pid = Number(readFileSync(join(local().nodeCluster(fx.home).dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  process.kill(pid, 'SIGKILL');

  const result = await lifeboat(['failover', DB, '-f', fx.planFile, '--unplanned', '--yes', '--json']);
  const report = JSON.parse(result.stdout) as RunbookReport;
  expectPassed(report);
  expect(result.code).toBe(0);
  // Nothing served dk-a: the fence could only time out, and says so.
  expect(report.failover?.fence?.confirmed).toBe(false);
  expect(report.steps.find((s) => s.name === 'fence primary')).toMatchObject({
    status: 'failed',
    detail: expect.stringContaining('timed out'),
  });
  expect(topologyOf(fx)).toMatchObject({ primary: fx.standby });
  expect(await local().nodeStatus(fx.standby)).toMatchObject({ reachable: true, writable: true });
  expect(report.rtoSeconds).not.toBeNull();
  console.log(
    `unplanned failover with the primary region dark: RTO ${report.rtoSeconds!.toFixed(1)}s, fence: ${report.failover?.fence?.how}`,
  );
}, 240_000);
