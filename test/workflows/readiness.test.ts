// The Readiness runbook against a real replication set of its own (rd-a -> rd-b, database rddb): each
// problem it is meant to find is made for real (no backup, no drill, a stopped standby, a deleted DR
// copy, a backup older than the RPO, a region no worker serves), found, and posted to a webhook.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import { backupInput, drillInput, readinessInput } from '../../worker/plan';
import { RUNBOOK_TASK_QUEUE, type ReadinessInput, type RunbookReport } from '../../workflows/types';
import { createReplicaSet, waitUntil, type ReplicaSetFixture } from '../support/replica-set';
import { client, local, LogCapture, startWorker, type RunningWorker } from '../support/stack';
import { lifeboat } from '../support/cli';
import { runbookReport } from '../../workflows/runbook-failure';

const DB = 'rddb';
let fx: ReplicaSetFixture;
let temporal: Client;
let worker: RunningWorker;
let server: Server;
const posted: Array<{ event: string; database: string; summary: string; reason?: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      posted.push(JSON.parse(body) as (typeof posted)[number]);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.env.LIFEBOAT_WEBHOOK_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  fx = await createReplicaSet({ home: 'rd-a', dr: 'rd-b', database: DB });
  temporal = await client();
  worker = await startWorker({ regions: ['rd-a', 'rd-b'], capture: new LogCapture() });
}, 180_000);

afterAll(async () => {
  delete process.env.LIFEBOAT_WEBHOOK_URL;
  await worker?.stop();
  await fx?.close();
  await new Promise((resolve) => server?.close(resolve));
});

async function run(workflowType: string, input: object): Promise<RunbookReport> {
  return runbookReport(
    await temporal.workflow.start(workflowType, {
      taskQueue: RUNBOOK_TASK_QUEUE,
      workflowId: `test/readiness/${workflowType}/${Date.now()}`,
      args: [input],
    }),
  );
}

function check(overrides: Partial<ReadinessInput> = {}): Promise<RunbookReport> {
  return run('readiness', { ...readinessInput(fx.plan, DB, { triggeredBy: 'test' }), ...overrides });
}

const verdicts = (report: RunbookReport) => Object.fromEntries(report.checks.map((c) => [c.name, c.ok]));
const detailOf = (report: RunbookReport, name: string) => report.checks.find((c) => c.name === name)?.detail;

test('a database never backed up nor drilled is not ready: both found, one notification each; regions and standby are fine', async () => {
  posted.length = 0;
  const report = await check();
  expect(verdicts(report)).toEqual({
    'rd-b answers': true,
    'rd-a answers': true,
    'newest backup within RPO': false,
    'standby present': true,
    'standby lag within RPO': true,
    'drill within window': false,
  });
  expect(report.outcome).toBe('failed');
  expect(detailOf(report, 'newest backup within RPO')).toBe('no Lifeboat backup of rddb in rd-a');
  expect(detailOf(report, 'drill within window')).toBe('no drill of rddb passed in the last 7.0d');
  expect(posted.map((p) => [p.event, p.database, p.summary])).toEqual([
    ['readiness.problem', DB, 'rddb is not ready to recover: newest backup within RPO'],
    ['readiness.problem', DB, 'rddb is not ready to recover: drill within window'],
  ]);
}, 120_000);

test('after a backup and a passed drill every check passes and nothing is posted; the CLI exits 0', async () => {
  expect((await run('backup', backupInput(fx.plan, DB, { triggeredBy: 'test' }))).outcome).toBe('passed');
  const drill = await run('drill', drillInput(fx.plan, DB, { fromLatestBackup: false, triggeredBy: 'test' }));
  expect(drill.outcome).toBe('passed');
  posted.length = 0;
  const report = await check();
  expect(report.checks.filter((c) => !c.ok)).toEqual([]);
  expect(Object.keys(verdicts(report))).toEqual([
    'rd-b answers',
    'rd-a answers',
    'newest backup within RPO',
    'copy in rd-b',
    'standby present',
    'standby lag within RPO',
    'drill within window',
  ]);
  expect(detailOf(report, 'drill within window')).toContain(`${drill.workflowId} passed at`);
  expect(report.outcome).toBe('passed');
  expect(posted).toEqual([]);

  const cli = await lifeboat(['readiness', DB, '-f', fx.planFile, '--json']);
  expect({ code: cli.code, outcome: (JSON.parse(cli.stdout) as RunbookReport).outcome }).toEqual({
    code: 0,
    outcome: 'passed',
  });
}, 240_000);

test('a backup older than the RPO is found (objective 1s, backup seconds old)', async () => {
  const report = await check({ objectives: { rpoSeconds: 1, rtoSeconds: 600 } });
  expect(verdicts(report)['newest backup within RPO']).toBe(false);
  expect(detailOf(report, 'newest backup within RPO')).toMatch(/^rddb-\S+ is \d+s old; objective 1s$/);
}, 60_000);

test('a stopped standby is DR drift: "standby present" fails naming it; started again, the check passes', async () => {
  const cluster = local().nodeCluster(fx.standby);
  await cluster.stop('immediate');
  try {
    const report = await check();
    expect(verdicts(report)['standby present']).toBe(false);
    expect(detailOf(report, 'standby present')).toContain(`${fx.standby.region}/${fx.standby.name} is unreachable`);
    expect(verdicts(report)).not.toHaveProperty('standby lag within RPO');
  } finally {
    await cluster.start();
  }
  await waitUntil('the standby streams again', 30_000, async () => verdicts(await check())['standby present'] === true);
}, 120_000);

test('a deleted DR copy is a missing cross-region copy', async () => {
  const dr = { name: 'rd-b', provider: 'local' as const };
  const copies = await local().listBackups(dr, DB);
  expect(copies.length).toBeGreaterThan(0);
  for (const copy of copies) await local().deleteBackup(copy);
  const report = await check();
  expect(verdicts(report)['copy in rd-b']).toBe(false);
  expect(detailOf(report, 'copy in rd-b')).toMatch(/^rddb-\S+ has no copy in rd-b$/);
}, 60_000);

test('a DR region no worker serves is found within the answer time, not waited on forever', async () => {
  posted.length = 0;
  const report = await check({ dr: { name: 'rd-dark', provider: 'local' }, regionAnswerSeconds: 2 });
  expect(verdicts(report)['rd-dark answers']).toBe(false);
  expect(detailOf(report, 'rd-dark answers')).toContain('SCHEDULE_TO_START');
  // The rest ran in the region that answered: the drill lookup, and the news that DR is dark.
  expect(verdicts(report)['drill within window']).toBe(true);
  expect(posted.map((p) => p.summary)).toContain('rddb is not ready to recover: rd-dark answers');
}, 120_000);
