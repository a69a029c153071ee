// Workers re-check every run's input against the plan they loaded (worker/input-check.ts): a drill
// started by hand with the Temporal client, with a check the plan does not have, is refused with
// LifeboatInputMismatch before anything is done for it: no canary, no backup, no scratch instance,
// and no activity body ran (every activity the runbook scheduled was refused at its first attempt).
import { randomBytes } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { withClient } from '../../activities/pg/sql';
import { CodecKeys, lifeboatDataConverter } from '../../worker/codec';
import { RUNBOOK_TASK_QUEUE } from '../../workflows/types';
import { client, demoDrillInput, demoPlan, local, LogCapture, startWorker, type RunningWorker } from '../support/stack';
import { endOf, expectNothingRan } from '../support/refused';

let log = new LogCapture();
let worker: RunningWorker | undefined;

afterEach(async () => {
  await worker?.stop();
  worker = undefined;
});

test('a drill started by hand (Temporal client) with a check that is not in the plan is refused with LifeboatInputMismatch, and nothing ran', async () => {
  log = new LogCapture();
  worker = await startWorker({ capture: log, plan: demoPlan() });
  const p = local();
  const regions = [
    { name: 'local-a', provider: 'local' as const },
    { name: 'local-b', provider: 'local' as const },
  ];
  const backupIds = async () =>
    (await Promise.all(regions.map((r) => p.listBackups(r, 'orders'))))
      .flat()
      .map((b) => `${b.region}/${b.backupId}`)
      .sort();
  const backupsBefore = await backupIds();

  const base = demoDrillInput({ triggeredBy: 'by-hand' });
  const input = {
    ...base,
    checks: [...base.checks, { name: 'read a server file', sql: "select pg_read_file('/etc/hostname') is not null" }],
  };
  const c = await client();
  const handle: WorkflowHandle = await c.workflow.start('drill', {
    taskQueue: RUNBOOK_TASK_QUEUE,
    workflowId: `by-hand/orders/drill/${Date.now()}`,
    args: [input],
  });

  const ended = await endOf(handle);
  expect(ended.outcome).toBe('failed');
  expect(ended.reason).toMatch(
    new RegExp(`LifeboatInputMismatch: drill ${handle.workflowId} was not built from the plan this worker loaded`),
  );
  expect(ended.reason).toContain('checks: "read a server file" is not the plan\'s (the run has 5 checks, the plan 4)');
  expect(ended.reason).not.toContain('pg_read_file'); // the SQL is not repeated into reports and logs

  const { runId } = await handle.describe();
  await expectNothingRan(handle, log);
  // What the drill would have made first: the canary row on the primary, a backup, the scratch instance.
  // (On a fresh stack the canary table itself does not exist yet: nothing ever wrote one.)
  const canaryRows = await withClient(p.regionCluster('local-a').connection('orders'), async (pg) => {
    const table = await pg.query<{ present: boolean }>("select to_regclass('lifeboat.canary') is not null as present");
    if (!table.rows[0]!.present) return 0;
    return Number(
      (
        await pg.query<{ n: string }>('select count(*) as n from lifeboat.canary where token = $1', [
          `${handle.workflowId}/${runId}/canary`,
        ])
      ).rows[0]!.n,
    );
  });
  expect(canaryRows).toBe(0);
  expect(await backupIds()).toEqual(backupsBefore);
  expect(await p.listScratch(regions[1]!)).not.toContain(`drill-${runId.replace(/-/g, '').slice(-8)}`);
  await c.connection.close();
});

test("with payloads encrypted (the codec every dev stack has), the worker still reads the run's input and refuses a hand-made one", async () => {
  const keys = CodecKeys.parse(`input-check ${randomBytes(32).toString('base64')}\n`, 'input-check test');
  const dataConverter = lifeboatDataConverter(keys);
  log = new LogCapture();
  worker = await startWorker({ capture: log, plan: demoPlan(), dataConverter });
  const sealed = await client(dataConverter);
  const base = demoDrillInput({ triggeredBy: 'by-hand' });
  const handle = await sealed.workflow.start('drill', {
    taskQueue: RUNBOOK_TASK_QUEUE,
    workflowId: `by-hand/orders/drill/sealed/${Date.now()}`,
    args: [
      { ...base, primary: { ...base.primary, credentials: { user: 'postgres', password: 'file:/root/.pgpass' } } },
    ],
  });
  const ended = await endOf(handle);
  expect(ended.reason).toContain(
    `LifeboatInputMismatch: drill ${handle.workflowId} was not built from the plan this worker loaded`,
  );
  expect(ended.reason).toContain('differs from the plan at primary.credentials');
  await expectNothingRan(handle, log);
  await sealed.connection.close();
});
