// A dark home region that comes back. The home region's worker is down (its server is not): an
// unplanned failover runs on a DR-only worker, cannot reach the primary to fence it, and promotes the
// standby. A client that ignores the traffic pointer writes to the former primary. When the home
// worker starts, it must fence that node within 60 s and say so (a `fence.violation` webhook,
// `lifeboat status`), and a failback must refuse to discard the write unasked, then keep a copy of
// the node when the operator says --discard-divergent.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { withClient, writeCanary } from '../../activities/pg/sql';
import type { Canary, RunbookReport } from '../../workflows/types';
import { CLI, lifeboat, stopProcess } from '../support/cli';
import {
  acceptsWrites,
  canariesInCopy,
  createReplicaSet,
  expectPassed,
  sleep,
  topologyOf,
  type ReplicaSetFixture,
} from '../support/replica-set';
import { local } from '../support/stack';

const DB = 'fsdb';
let fx: ReplicaSetFixture;
const workers: ChildProcess[] = [];
let webhook: Server;
const notifications: Array<Record<string, unknown>> = [];
let webhookUrl = '';

beforeAll(async () => {
  fx = await createReplicaSet({ home: 'fs-a', dr: 'fs-b', database: DB });
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      notifications.push(JSON.parse(body) as Record<string, unknown>);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook`;
}, 120_000);

afterAll(async () => {
  for (const w of workers) await stopProcess(w);
  await new Promise((resolve) => webhook?.close(resolve));
  await fx?.close();
});

/** `lifeboat worker --region <region>` as its own process; resolves once it is ready. */
async function startRegionWorker(region: string): Promise<{ readyAt: number; output: () => string }> {
  let output = '';
  const worker = spawn(process.execPath, [CLI, 'worker', '-f', fx.planFile, '--region', region], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LIFEBOAT_WEBHOOK_URL: webhookUrl },
  });
  workers.push(worker);
  worker.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  worker.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!output.includes('worker ready')) {
    if (Date.now() > deadline || worker.exitCode !== null)
      throw new Error(`the ${region} worker did not start:\n${output}`);
    await sleep(100);
  }
  return { readyAt: Date.now(), output: () => output };
}

test('a former primary that took writes while its region was dark is fenced on sight when its worker returns; failback refuses to discard the write unless told, then keeps a copy that holds it', async () => {
  await startRegionWorker('fs-b');
  // Dark: no worker serves fs-a, but its server runs and accepts writes.
  const failover = await lifeboat(['failover', DB, '-f', fx.planFile, '--unplanned', '--yes', '--json']);
  const report = JSON.parse(failover.stdout) as RunbookReport;
  expectPassed(report);
  expect(report.failover?.fence?.confirmed).toBe(false);
  expect(topologyOf(fx)).toMatchObject({ primary: fx.standby, fenced: [fx.home] });

  // A client that ignores the traffic pointer writes to the former primary: the split brain the
  // fence exists to end.
  expect(await acceptsWrites(fx.home)).toBe(true);
  const darkWrite: Canary = await withClient(await local().connectNode(fx.home, DB), (c) =>
    writeCanary(c, `test/dark-write/${Date.now()}`),
  );
  const before = await lifeboat(['status', DB, '-f', fx.planFile, '--json']);
  expect(JSON.parse(before.stdout)).toMatchObject({ writablePrimaries: 2 });
  expect(before.code).toBe(1);

  // The home region's worker returns: within 60 s the node refuses writes, and a notification says why.
  const home = await startRegionWorker('fs-a');
  while (await acceptsWrites(fx.home)) {
    if (Date.now() - home.readyAt > 60_000)
      throw new Error(`fs-a/server still accepts writes 60 s after its worker started:\n${home.output()}`);
    await sleep(250);
  }
  const fencedAfter = (Date.now() - home.readyAt) / 1000;
  console.log(`fence on sight: fs-a/server refused writes ${fencedAfter.toFixed(1)} s after its worker was ready`);
  expect(fencedAfter).toBeLessThanOrEqual(60);
  for (let i = 0; i < 50 && !notifications.some((n) => n.event === 'fence.violation'); i++) await sleep(100);
  expect(notifications.filter((n) => n.event === 'fence.violation')).toEqual([
    expect.objectContaining({
      event: 'fence.violation',
      summary: expect.stringMatching(
        /^fs-a\/server is listed as fenced in fs-a but accepted read-write transactions .*fenced again: confirmed/,
      ),
    }),
  ]);
  expect(home.output()).toContain(
    'fence violation: fs-a/server is listed as fenced but accepted read-write transactions; fenced again',
  );
  const after = await lifeboat(['status', DB, '-f', fx.planFile, '--json']);
  expect(JSON.parse(after.stdout)).toMatchObject({ writablePrimaries: 1 });
  expect(after.code).toBe(0);

  // Failing back would rewind the dark write away: refused, naming it, nothing changed.
  const topologyBefore = topologyOf(fx);
  const refused = await lifeboat(['failback', DB, '-f', fx.planFile, '--yes', '--json']);
  expect(refused.code).toBe(1);
  const refusedReport = JSON.parse(refused.stdout) as RunbookReport;
  expect(refusedReport.reason).toMatch(
    /^LifeboatDivergentWrites: fs-a\/server committed [1-9]\d* transactions? after the fork at [0-9A-F]+\/[0-9A-F]+ on timeline 1 /,
  );
  expect(topologyOf(fx)).toEqual(topologyBefore);

  const failback = await lifeboat(['failback', DB, '-f', fx.planFile, '--yes', '--discard-divergent', '--json']);
  const passed = JSON.parse(failback.stdout) as RunbookReport;
  expectPassed(passed);
  expect(failback.code).toBe(0);
  const kept = passed.failover?.discardedDivergence;
  expect(kept).toMatchObject({
    node: 'fs-a/server',
    detail: expect.stringMatching(/committed [1-9]\d* transactions? after the fork/),
  });
  expect(existsSync(kept!.preservedAt)).toBe(true);
  expect(await canariesInCopy(kept!.preservedAt, DB, [darkWrite])).toEqual([darkWrite.id]);
  expect(topologyOf(fx)).toMatchObject({ primary: fx.home, standby: fx.standby, fenced: [] });
}, 360_000);
