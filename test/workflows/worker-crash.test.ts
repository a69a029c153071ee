// The worker process is killed with SIGKILL mid-drill (after the copy, while restoring). A new
// worker must finish the drill: no duplicate backup, no leaked scratch instance.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI } from '../support/cli';
import { client, env, local, parsePlan } from '../support/stack';
import { drillInput } from '../../worker/plan';
import { withClient } from '../../activities/pg/sql';
import { seedDemo } from '../../scripts/dev/seed';
import type { Progress } from '../../workflows/steps';
import { RUNBOOK_TASK_QUEUE } from '../../workflows/types';
import { runbookReport } from '../../workflows/runbook-failure';

const BIG = 'orders_crash';
const PLAN = `
regions:
  local-a: { provider: local }
  local-b: { provider: local }
databases:
  ${BIG.replace('_', '-')}:
    primary: { region: local-a, database: ${BIG} }
    dr: { region: local-b }
    objectives: { rpo: 15m, rto: 30m }
    checks:
      - name: orders exist
        sql: select count(*) > 0 from orders
`;

// The worker serves this plan: it checks every run's input against the plan it loaded.
const planFile = join(env().home, 'plans', 'worker-crash.yaml');

const workers: ChildProcess[] = [];
function startWorker(): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'worker', '-f', planFile], {
    env: { ...process.env, LIFEBOAT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  workers.push(child);
  return child;
}

afterAll(() => {
  for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
});

beforeAll(async () => {
  mkdirSync(join(env().home, 'plans'), { recursive: true });
  writeFileSync(planFile, PLAN);
  // Big enough that the restore takes a moment to kill the worker in.
  const cluster = local().regionCluster('local-a');
  await withClient(cluster.connection('postgres'), async (c) => {
    const exists = await c.query('select 1 from pg_database where datname = $1', [BIG]);
    if (!exists.rowCount) await c.query(`create database ${BIG}`);
  });
  await withClient(cluster.connection(BIG), (c) => seedDemo(c, 5));
}, 300_000);

test('a drill survives SIGKILL of its worker while restoring: no duplicate backup, no leaked scratch instance', async () => {
  const input = drillInput(parsePlan(PLAN, planFile), BIG.replace('_', '-'), {
    fromLatestBackup: false,
    triggeredBy: 'test',
  });
  const first = startWorker();
  const c = await client();
  const handle = await c.workflow.start('drill', {
    taskQueue: RUNBOOK_TASK_QUEUE,
    workflowId: `test/crash/${Date.now()}`,
    args: [input],
  });

  const deadline = Date.now() + 120_000;
  for (;;) {
    const progress = await handle.query<Progress>('drillProgress').catch(() => null);
    if (progress?.running.includes('restore')) break;
    if (progress?.steps.some((s) => s.name === 'restore' && s.status !== 'running'))
      throw new Error('the restore finished before the worker could be killed');
    if (Date.now() > deadline) throw new Error('the drill never reached the restore step');
    await new Promise((r) => setTimeout(r, 20));
  }
  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));

  startWorker();
  const report = await runbookReport(handle);

  expect(report.outcome).toBe('passed');
  const restore = report.steps.find((s) => s.name === 'restore');
  expect(restore).toMatchObject({ status: 'completed' });
  expect(restore!.attempts).toBeGreaterThanOrEqual(2); // the killed attempt, then the new worker's
  // The copy's verify runs beside the restore, so the kill may have caught it too; it completed.
  expect(report.steps.find((s) => s.name === 'verify copy')).toMatchObject({ status: 'completed' });
  const besideTheKill = new Set(['restore', 'verify copy']);
  expect(report.steps.filter((s) => !besideTheKill.has(s.name) && s.attempts !== 1)).toEqual([]);

  const p = local();
  const backupId = report.backup!.backupId;
  const inA = (await p.listBackups({ name: 'local-a', provider: 'local' }, BIG)).filter(
    (b) => b.createdAt >= report.startedAt,
  );
  const inB = (await p.listBackups({ name: 'local-b', provider: 'local' }, BIG)).filter(
    (b) => b.createdAt >= report.startedAt,
  );
  expect(inA.map((b) => b.backupId)).toEqual([backupId]);
  expect(inB.map((b) => b.backupId)).toEqual([backupId]);
  expect(await p.listScratch({ name: 'local-b', provider: 'local' })).toEqual([]);
}, 240_000);
