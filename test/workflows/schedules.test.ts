// `lifeboat schedule …` through the compiled CLI against the test stack's Temporal server: apply makes
// the server's schedules match the plan (and only Lifeboat's), a second apply changes nothing, and a
// triggered schedule runs a real drill.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import type { DrillInput, RunbookReport } from '../../workflows/types';
import { loadPlanFile } from '../../worker/plan';
import { lifeboat } from '../support/cli';
import { client, env, withWorker } from '../support/stack';
import { runbookReport } from '../../workflows/runbook-failure';

const DEMO = readFileSync(join(__dirname, '..', '..', 'scripts', 'dev', 'demo-plan.yaml'), 'utf8');

/** The demo plan with a schedule block for orders (indented under the database). */
function planWith(schedule: string, name: string): string {
  const file = join(env().home, `${name}.yaml`);
  writeFileSync(
    file,
    DEMO.replace('    objectives: { rpo: 15m, rto: 30m }\n', `    objectives: { rpo: 15m, rto: 30m }\n${schedule}`),
  );
  return file;
}

describe("lifeboat schedule (Temporal Schedules on the test stack's dev server)", () => {
  const first = planWith(
    '    schedule:\n      drill: { every: 24h, jitter: 30m }\n      backup: { cron: "15 * * * *" }\n      catchupWindow: 10m\n',
    'schedules-1',
  );

  afterAll(async () => {
    for await (const s of (await client()).schedule.list())
      if (s.scheduleId.startsWith('lifeboat/') || s.scheduleId === 'someone-else')
        await (
          await client()
        ).schedule
          .getHandle(s.scheduleId)
          .delete()
          .catch(() => undefined);
  });

  test('apply creates one schedule per runbook the plan asks for; a second apply changes nothing', async () => {
    const applied = await lifeboat(['schedule', 'apply', '-f', first, '--json']);
    expect(applied.code).toBe(0);
    expect(JSON.parse(applied.stdout)).toEqual({
      created: ['lifeboat/orders/drill', 'lifeboat/orders/backup'],
      updated: [],
      unchanged: [],
      deleted: [],
    });

    const drill = await (await client()).schedule.getHandle('lifeboat/orders/drill').describe();
    expect(drill.spec.intervals).toMatchObject([{ every: 24 * 3600 * 1000 }]);
    expect(drill.spec.jitter).toBe(30 * 60 * 1000);
    expect(drill.policies).toMatchObject({ overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: 10 * 60 * 1000 });
    expect(drill.action).toMatchObject({ type: 'startWorkflow', workflowType: 'drill', taskQueue: 'lifeboat' });
    const input = (drill.action as unknown as { args: DrillInput[] }).args[0]!;
    expect(input).toMatchObject({
      database: 'orders',
      triggeredBy: 'schedule:lifeboat/orders/drill',
      fromLatestBackup: false,
    });
    const backup = await (await client()).schedule.getHandle('lifeboat/orders/backup').describe();
    expect(backup.spec.calendars?.length ?? 0).toBeGreaterThan(0);

    const again = await lifeboat(['schedule', 'apply', '-f', first, '--json']);
    expect(JSON.parse(again.stdout)).toEqual({
      created: [],
      updated: [],
      unchanged: ['lifeboat/orders/drill', 'lifeboat/orders/backup'],
      deleted: [],
    });
  });

  test('a changed plan updates what changed and deletes what it dropped, keeping a paused schedule paused and never touching schedules Lifeboat did not make', async () => {
    await (
      await client()
    ).schedule.create({
      scheduleId: 'someone-else',
      spec: { intervals: [{ every: '1h' }] },
      action: { type: 'startWorkflow', workflowType: 'drill', taskQueue: 'nowhere', args: [] },
      state: { paused: true },
    });
    expect(
      (await lifeboat(['schedule', 'pause', 'lifeboat/orders/backup', '--reason', 'maintenance window'])).code,
    ).toBe(0);

    const second = planWith('    schedule:\n      backup: { every: 2h }\n', 'schedules-2');
    const applied = await lifeboat(['schedule', 'apply', '-f', second, '--json']);
    expect(JSON.parse(applied.stdout)).toEqual({
      created: [],
      updated: ['lifeboat/orders/backup'],
      unchanged: [],
      deleted: ['lifeboat/orders/drill'],
    });
    const backup = await (await client()).schedule.getHandle('lifeboat/orders/backup').describe();
    expect(backup.spec.intervals).toMatchObject([{ every: 2 * 3600 * 1000 }]);
    expect(backup.state.paused).toBe(true);
    await expect((await client()).schedule.getHandle('someone-else').describe()).resolves.toMatchObject({
      scheduleId: 'someone-else',
    });

    const listed = await lifeboat(['schedule', 'list', '--json']);
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({
        scheduleId: 'lifeboat/orders/backup',
        paused: true,
        note: expect.stringContaining('maintenance window'),
      }),
    ]);
  });

  test('trigger runs the scheduled drill now: a real drill, passed, marked as started by the schedule', async () => {
    expect((await lifeboat(['schedule', 'apply', '-f', first, '--json'])).code).toBe(0);
    // The worker checks the scheduled run's input against the plan the schedule was applied from.
    await withWorker(
      async () => {
        expect((await lifeboat(['schedule', 'trigger', 'lifeboat/orders/drill'])).code).toBe(0);
        const deadline = Date.now() + 120_000;
        let report: RunbookReport | null = null;
        while (!report && Date.now() < deadline) {
          for await (const run of (await client()).workflow.list({
            query: `WorkflowId STARTS_WITH 'lifeboat/orders/drill/scheduled'`,
          })) {
            report = await runbookReport((await client()).workflow.getHandle(run.workflowId, run.runId));
            break;
          }
          if (!report) await new Promise((r) => setTimeout(r, 500));
        }
        expect(report).toMatchObject({ runbook: 'drill', database: 'orders', outcome: 'passed' });
      },
      undefined,
      undefined,
      loadPlanFile(first),
    );
  });

  test('pause of a schedule that does not exist is a usage error naming it', async () => {
    const run = await lifeboat(['schedule', 'pause', 'lifeboat/nope/drill']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('no schedule lifeboat/nope/drill');
  });
});
