// `lifeboat report` end to end: real drills on the real dev server and PostgreSQL, the compiled CLI
// writing the evidence reports, and headless Chromium (Debian's, through playwright-core) opening them.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { DatabaseAttr, RunbookAttr } from '../../workflows/search-attributes';
import { RUNBOOK_TASK_QUEUE, type RunbookReport } from '../../workflows/types';
import { lifeboat } from '../support/cli';
import { client, demoDrillInput, env, withWorker } from '../support/stack';
import { runbookReport } from '../../workflows/runbook-failure';

const CHROMIUM = '/usr/bin/chromium';
// A failing plan check whose name tries to run script in whoever opens the report.
const HOSTILE = `<script>window.pwned=1</script><img src=x onerror="window.pwned=2"> | orders`;
// Its own plan name, so the history holds exactly this file's drills whatever else ran on the server.
const DB = `orders-evidence-${Date.now().toString(36)}`;

interface Drill {
  id: string;
  report: RunbookReport;
}

describe('lifeboat report', () => {
  const out = mkdtempSync(join(tmpdir(), 'lifeboat-evidence-'));
  let drills: Drill[] = [];
  let browser: Browser;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `${CHROMIUM} is missing: the evidence-report test opens the reports in it. Run \`bash scripts/setup.sh --with-chromium\``,
      );
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const c = await client();
    const hostileCheck = { name: HOSTILE, sql: 'select false' };
    drills = await withWorker(async () => {
      const done: Drill[] = [];
      // Oldest first: passed, failed (the hostile check), passed.
      for (const [i, checks] of [undefined, [hostileCheck], undefined].entries()) {
        const input = demoDrillInput({ database: DB, ...(checks ? { checks } : {}) });
        const id = `test/evidence/${DB}/${i}`;
        const handle = await c.workflow.start('drill', {
          taskQueue: RUNBOOK_TASK_QUEUE,
          workflowId: id,
          args: [input],
        });
        done.push({ id, report: await runbookReport(handle) });
      }
      return done;
    });
    // Visibility catches up with the history asynchronously: wait until it lists all three.
    const query = `LifeboatDatabase = '${DB}' AND ExecutionStatus != 'Running'`;
    const deadline = Date.now() + 20_000;
    while ((await c.workflow.count(query)).count < 3) {
      if (Date.now() > deadline) throw new Error('visibility never listed the three drills');
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 400_000);

  afterAll(async () => {
    await browser?.close();
    rmSync(out, { recursive: true, force: true });
  });

  /** Opens a report in Chromium; every console error and page error is collected. */
  async function open(path: string): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`file://${path}`, { waitUntil: 'load' });
    return { page, errors };
  }

  test('the drills ran as the history needs: two passed, one failed on the hostile check with no RTO', () => {
    expect(drills.map((d) => d.report.outcome)).toEqual(['passed', 'failed', 'passed']);
    expect(drills[1]!.report.rtoSeconds).toBeNull();
    expect(drills[1]!.report.checks.find((c) => c.name === HOSTILE)).toMatchObject({ ok: false });
  });

  test('report <id> --html writes a page that names the run and shows the hostile check as text', async () => {
    const failed = drills[1]!;
    const file = join(out, 'run.html');
    const md = join(out, 'run.md');
    const result = await lifeboat(['report', failed.id, '--html', file, '--md', md]);
    expect(result).toMatchObject({ code: 0 });
    expect(result.stderr).toContain(`wrote ${file} (Drill of ${DB}: FAILED)`);

    const { page, errors } = await open(file);
    expect(await page.title()).toContain(failed.id);
    expect(await page.locator('h1').textContent()).toBe(`Drill of ${DB}: FAILED`);
    const hostileCell = page.locator('table.checks td', { hasText: 'window.pwned=1' });
    expect(await hostileCell.textContent()).toBe(HOSTILE);
    expect(await page.evaluate('typeof window.pwned')).toBe('undefined');
    expect(await page.evaluate('document.querySelectorAll("script, img").length')).toBe(0);
    // Every step, with its attempts; the objectives beside the measurements; the cleanup.
    expect(await page.locator('table.steps tbody tr').count()).toBe(failed.report.steps.length);
    expect(await page.locator('table.steps td.attempts').allTextContents()).toEqual(
      failed.report.steps.map((s) => String(s.attempts)),
    );
    expect(await page.locator('table.measurements').textContent()).toContain('not reached');
    expect(await page.locator('#cleanup').textContent()).toContain('deleted');
    const href = await page.locator('header a').getAttribute('href');
    // The dev server's UI, unless the environment names another (LIFEBOAT_UI_URL or LIFEBOAT_UI_PORT), as the CLI reads it.
    const ui = env().uiUrl ?? 'http://localhost:8233';
    expect(href).toBe(
      `${ui}/namespaces/default/workflows/${encodeURIComponent(failed.id)}/${failed.report.runId}/history`,
    );
    expect(errors).toEqual([]);
    await page.close();

    const text = readFileSync(md, 'utf8');
    expect(text).toContain(`# Drill of ${DB}: **FAILED**`);
    expect(text).toContain('\\<script\\>window.pwned=1\\</script\\>');
    expect(text).toContain('onerror="window.pwned=2"\\> \\| orders');
  });

  test('report <db> --history --html charts every drill against the objectives', async () => {
    const file = join(out, 'history.html');
    const result = await lifeboat(['report', DB, '--history', '--html', file]);
    expect(result).toMatchObject({ code: 0 });

    const { page, errors } = await open(file);
    expect(await page.title()).toBe(`Drill history of ${DB}`);
    for (const chart of ['rto', 'rpo']) {
      const svg = page.locator(`svg.chart.${chart}`);
      const box = await svg.boundingBox();
      expect(box?.width).toBeGreaterThan(100);
      expect(box?.height).toBeGreaterThan(100);
      expect(await svg.locator('.point').count()).toBe(3);
      expect(await svg.locator('line.objective').count()).toBe(1);
    }
    // The failed drill measured no RTO: its point is the "not reached" cross, in the failed colour.
    const rto = page.locator('svg.chart.rto');
    expect(await rto.locator('.point.passed').count()).toBe(2);
    expect(await rto.locator('.point.failed.missing').count()).toBe(1);
    expect(await rto.locator('line.objective').getAttribute('data-objective-seconds')).toBe(
      String(drills[0]!.report.objectives.rtoSeconds),
    );
    const rows = page.locator('table.runs tbody tr');
    expect(await rows.count()).toBe(3);
    expect(await rows.nth(1).textContent()).toContain('not reached');
    expect(await rows.nth(1).textContent()).toContain(HOSTILE); // in the failed drill's reason, as text
    expect(await page.evaluate('document.querySelectorAll("script, img").length')).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  });

  test('without --html or --md the run report is Markdown on stdout', async () => {
    const result = await lifeboat(['report', drills[0]!.id]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`# Drill of ${DB}: PASSED`);
    expect(result.stdout).toMatch(/\| RTO \| 30m00s \| [\d.]+s \| within objective \|/);
  });

  test('nothing to report is exit 2, said plainly: unknown ID, not a runbook, still running, a hostile name', async () => {
    const unknown = await lifeboat(['report', 'no/such/workflow']);
    expect(unknown).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('no workflow with ID no/such/workflow in namespace default'),
    });

    const injected = await lifeboat(['report', "orders' OR LifeboatRunbook = 'failover", '--history']);
    expect(injected.code).toBe(2);
    expect(injected.stderr).toContain('is not a plan database name');

    // Two workflows no worker polls for: they stay running.
    const c = await client();
    const stranger = await c.workflow.start('somethingElse', {
      taskQueue: 'evidence-test-nobody',
      workflowId: `test/evidence/stranger/${DB}`,
    });
    const running = await c.workflow.start('drill', {
      taskQueue: 'evidence-test-nobody',
      workflowId: `test/evidence/running/${DB}`,
      args: [demoDrillInput({ database: DB })],
      typedSearchAttributes: [
        { key: DatabaseAttr, value: DB },
        { key: RunbookAttr, value: 'drill' },
      ],
    });
    try {
      const notOurs = await lifeboat(['report', stranger.workflowId]);
      expect(notOurs).toMatchObject({
        code: 2,
        stderr: expect.stringContaining('is a somethingElse workflow, not a Lifeboat runbook'),
      });
      const unfinished = await lifeboat(['report', running.workflowId]);
      expect(unfinished).toMatchObject({
        code: 2,
        stderr: expect.stringContaining(`(drill of ${DB}) is still running`),
      });
    } finally {
      await stranger.terminate('test over');
      await running.terminate('test over');
    }
  });

  test('Temporal out of reach is exit 1, with the address', async () => {
    const result = await lifeboat(['report', drills[0]!.id], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('cannot reach Temporal at 127.0.0.1:1');
  });
});
