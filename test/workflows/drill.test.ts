// The Drill runbook against a real Temporal dev server and real PostgreSQL regions.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { withClient } from '../../activities/pg/sql';
import { OutcomeAttr } from '../../workflows/search-attributes';
import type { Progress } from '../../workflows/steps';
import { RUNBOOK_TASK_QUEUE, type DrillInput, type RunbookReport } from '../../workflows/types';
import { client, demoDrillInput, env, historyText, local, LogCapture, withWorker } from '../support/stack';
import { markerDirectory, markerTableSql, passedDrillSteps } from '../support/t2-drill';
import { runbookReport } from '../../workflows/runbook-failure';

const regionB = { name: 'local-b', provider: 'local' as const };
let seq = 0;
const workflowId = (what: string) => `test/drill/${what}/${Date.now()}-${seq++}`;

async function runDrill(input: DrillInput, id = workflowId('run')) {
  const c = await client();
  const handle = await c.workflow.start('drill', { taskQueue: RUNBOOK_TASK_QUEUE, workflowId: id, args: [input] });
  return { handle, report: await runbookReport(handle) };
}

function regionPasswords(): string[] {
  return ['local-a', 'local-b'].map((r) => {
    const line = readFileSync(join(env().home, 'regions', r, 'cluster', 'pgpass'), 'utf8').trim();
    return line.split(':').slice(4).join(':');
  });
}

describe('drill on the local provider', () => {
  const logs = new LogCapture();
  let passed: { report: RunbookReport; history: string; id: string };

  beforeAll(async () => {
    passed = await withWorker(async () => {
      const id = workflowId('passing');
      const { handle, report } = await runDrill(demoDrillInput(), id);
      const raw = await handle.fetchHistory();
      const history = historyText(raw);
      if (process.env.LIFEBOAT_RECORD_HISTORIES) {
        const dir = join(__dirname, '..', 'replay', 'histories');
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'drill-passed.json'), historyToJSON(raw) + '\n');
      }
      return { report, history, id };
    }, logs);
  });

  test('passes with every table verified against the manifest, RTO and RPO measured', async () => {
    const { report } = passed;
    expect(report.outcome).toBe('passed');
    expect(report.reason).toBeUndefined();
    const tables = report.checks.filter((c) => c.name.startsWith('table '));
    expect(tables.map((t) => t.name).sort()).toEqual(
      [
        'lifeboat.canary',
        'public.customers',
        'public.order_items',
        'public.orders',
        'public.payments',
        'public.products',
      ].map((t) => `table ${t}`),
    );
    for (const t of tables)
      expect(t).toMatchObject({ ok: true, detail: expect.stringMatching(/^\d+ rows, checksum matches$/) });
    expect(report.checks.find((c) => c.name === 'recent orders exist')).toMatchObject({ ok: true });
    // Owners and privileges of every object compared with the manifest's (activities/pg/access.ts).
    expect(report.checks.find((c) => c.name === 'owners and privileges')).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/^\d+ objects as in the backup/),
    });
    expect(report.checks.find((c) => c.name === 'canary present')).toMatchObject({ ok: true });
    expect(report.checks.find((c) => c.name === 'RTO within objective')).toMatchObject({ ok: true });
    expect(report.checks.find((c) => c.name === 'RPO within objective')).toMatchObject({ ok: true });
    expect(report.rtoSeconds).toBeGreaterThan(0);
    // The drill's own canary is in the backup: nothing written before the start was lost.
    expect(report.rpoSeconds).toBe(0);
    // The scratch instance comes up alongside the backup and copy.
    expect(report.steps.map((s) => s.name)).toEqual(
      passedDrillSteps('local-b', expect.stringMatching(/^tear down drill-/)),
    );
    expect(report.steps.every((s) => s.status === 'completed' && s.attempts === 1)).toBe(true);
    expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
  });

  test('leaves exactly one backup in the primary region and one verified copy in DR, and no scratch instance', async () => {
    const { report } = passed;
    const p = local();
    const inA = (await p.listBackups({ name: 'local-a', provider: 'local' }, 'orders')).filter(
      (b) => b.backupId === report.backup?.backupId,
    );
    const inB = (await p.listBackups(regionB, 'orders')).filter((b) => b.backupId === report.backup?.backupId);
    expect(inA).toHaveLength(1);
    expect(inB).toHaveLength(1);
    expect(inB[0]!.sha256).toBe(inA[0]!.sha256);
    expect(await p.listScratch(regionB)).toEqual([]);
  });

  test('marks the run in the Temporal UI: outcome search attribute and the report as the result', async () => {
    const c = await client();
    const description = await c.workflow.getHandle(passed.id).describe();
    expect(description.typedSearchAttributes.get(OutcomeAttr)).toBe('passed');
  });

  test('no secret reaches the workflow history, the worker log or the report', () => {
    const passwords = regionPasswords();
    expect(passwords.every((p) => p.length >= 20)).toBe(true);
    for (const secret of passwords) {
      expect(passed.history).not.toContain(secret);
      expect(logs.text).not.toContain(secret);
      expect(JSON.stringify(passed.report)).not.toContain(secret);
    }
    // The log and the history did record the run, so an empty capture cannot make this pass.
    expect(logs.text).toContain('"activity":"createBackup"');
    expect(passed.history).toContain('public.order_items');
  });

  test('--from-latest-backup restores the newest existing copy without taking a backup', async () => {
    const report = await withWorker(async () => (await runDrill(demoDrillInput({ fromLatestBackup: true }))).report);
    expect(report.outcome).toBe('passed');
    expect(report.steps.find((s) => s.name === 'backup')?.status).toBe('skipped');
    expect(report.steps.some((s) => s.name === 'copy to local-b')).toBe(false);
    expect(report.backup?.region).toBe('local-b');
    expect(report.rpoSeconds).toBeGreaterThan(0);
  });

  test('a restore older than the RPO objective fails the drill, with the measured figures', async () => {
    const input = demoDrillInput({ fromLatestBackup: true, objectives: { rpoSeconds: 0.001, rtoSeconds: 1800 } });
    const report = await withWorker(async () => (await runDrill(input)).report);
    expect(report.outcome).toBe('failed');
    expect(report.checks.filter((c) => c.name.startsWith('table ')).every((c) => c.ok)).toBe(true);
    expect(report.checks.find((c) => c.name === 'RTO within objective')).toMatchObject({ ok: true });
    expect(report.checks.find((c) => c.name === 'RPO within objective')).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/s measured, objective 0.001s$/),
    });
    expect(report.reason).toContain('RPO within objective');
    expect(report.cleanup).toEqual([expect.objectContaining({ ok: true })]);
  });

  test('a failing plan check fails the drill, and the scratch instance is still torn down', async () => {
    const input = demoDrillInput({ checks: [{ name: 'impossible', sql: 'select false' }] });
    const report = await withWorker(async () => (await runDrill(input)).report);
    expect(report.outcome).toBe('failed');
    expect(report.rtoSeconds).toBeNull();
    expect(report.reason).toContain('impossible (first column was false; expected true)');
    expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
    expect(await local().listScratch(regionB)).toEqual([]);
  });

  test('cancelling mid-drill still tears the scratch instance down', async () => {
    await withWorker(async () => {
      const c = await client();
      const handle = await c.workflow.start('drill', {
        taskQueue: RUNBOOK_TASK_QUEUE,
        workflowId: workflowId('cancel'),
        args: [demoDrillInput()],
      });
      // Cancel while the scratch instance is being created: the hardest moment to clean up after.
      const deadline = Date.now() + 60_000;
      for (;;) {
        const progress = await handle.query<Progress>('drillProgress').catch(() => null);
        if (progress?.running.includes('create scratch instance') || progress?.running.includes('restore')) break;
        if (Date.now() > deadline) throw new Error('drill never reached the scratch instance');
        await new Promise((r) => setTimeout(r, 20));
      }
      await handle.cancel();
      const error = await handle.result().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WorkflowFailedError);
      expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    });
    expect(await local().listScratch(regionB)).toEqual([]);
  });

  test('bad input fails at once, without retries', async () => {
    const input = demoDrillInput({ dr: { name: 'local-a', provider: 'local' } });
    const error = await withWorker(() => runDrill(input).catch((e: unknown) => e));
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const cause = (error as WorkflowFailedError).cause as { type?: string; message: string };
    expect(cause.type).toBe('LifeboatInvalidInput');
    expect(cause.message).toContain('dr region local-a must differ');
  });

  // Last: it adds a table to the demo database for its own drill, and removes it afterwards.
  test('a table whose CHECK constraint runs a program when a superuser evaluates it: the drill never runs it, and fails naming the table', async () => {
    const markerDir = markerDirectory();
    const marker = join(markerDir, 'touched');
    const primary = await local().connect({ region: { name: 'local-a', provider: 'local' }, database: 'orders' });
    try {
      await withClient(primary, (c) =>
        c.query(`${markerTableSql('lifeboat_test_touch', 'lifeboat_test_guarded', marker)}
          insert into lifeboat_test_guarded values (1, 1), (2, 2), (3, 3);`),
      );
      // As a superuser, it does: "no marker" below means something.
      expect(existsSync(marker)).toBe(true);
      rmSync(marker);

      const report = await withWorker(async () => (await runDrill(demoDrillInput())).report);
      expect(existsSync(marker)).toBe(false);
      // The load went on without the table's rows; the report names the table and the permission
      // error, and the verify shows the rows missing.
      expect(report.outcome).toBe('failed');
      expect(report.steps.find((s) => s.name === 'restore')).toMatchObject({
        status: 'completed',
        detail: expect.stringContaining('restore of TABLE DATA public lifeboat_test_guarded'),
      });
      expect(report.checks).toEqual(
        expect.arrayContaining([
          {
            name: 'restore of TABLE DATA public lifeboat_test_guarded',
            ok: false,
            detail: expect.stringMatching(
              /^not restored: COPY failed for table "lifeboat_test_guarded": ERROR: must be superuser or have privileges of the pg_execute_server_program role/,
            ),
          },
          { name: 'table public.lifeboat_test_guarded', ok: false, detail: '0 rows; the backup had 3' },
          expect.objectContaining({ name: 'table public.orders', ok: true }),
        ]),
      );
      expect(report.reason).toContain('restore of TABLE DATA public lifeboat_test_guarded');
      expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
    } finally {
      await withClient(primary, (c) =>
        c.query('drop table if exists lifeboat_test_guarded; drop function if exists lifeboat_test_touch(int)'),
      );
      rmSync(markerDir, { recursive: true, force: true });
    }
  });
});
