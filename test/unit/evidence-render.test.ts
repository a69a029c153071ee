// Evidence reports rendered from hand-built RunbookReports: what they state, how they escape, and
// the geometry of the history chart. The browser-level test is test/workflows/evidence-report.test.ts.
import { FRAME, lineChart, MISSING_Y, scaleFor } from '../../services/evidence/chart';
import { html, md } from '../../services/evidence/escape';
import { UNVERSIONED } from '../../services/evidence/facts';
import { asRunbookReport, drillHistoryQuery, NoReport, type FetchedRun } from '../../services/evidence/fetch';
import { chartPoints, historyHtml, runHtml } from '../../services/evidence/html';
import { historyMarkdown, runMarkdown } from '../../services/evidence/markdown';
import type { RunbookReport } from '../../workflows/types';

const HOSTILE = '<script>window.pwned=1</script>';
const HOSTILE_REASON = 'bad | data </p><img src=x onerror="window.pwned=2">';

function drillReport(overrides: Partial<RunbookReport> = {}): RunbookReport {
  return {
    workflowId: 'lifeboat/orders/drill/2025-05-01T03:00:00.000Z',
    runId: 'run-0001',
    runbook: 'drill',
    database: 'orders',
    provider: 'local',
    outcome: 'failed',
    reason: HOSTILE_REASON,
    startedAt: '2025-05-01T03:00:00.000Z',
    finishedAt: '2025-05-01T03:01:40.000Z',
    objectives: { rtoSeconds: 1800, rpoSeconds: 900 },
    rtoSeconds: 42,
    rpoSeconds: 1000,
    runbookVersion: 'lifeboat@0.1.0+g4501a81c2d3e',
    copies: [],
    steps: [
      {
        name: 'preflight',
        status: 'completed',
        attempts: 1,
        startedAt: '2025-05-01T03:00:00.000Z',
        finishedAt: '2025-05-01T03:00:01.500Z',
      },
      {
        name: 'restore',
        status: 'completed',
        attempts: 3,
        startedAt: '2025-05-01T03:00:10.000Z',
        finishedAt: '2025-05-01T03:00:40.000Z',
      },
      {
        name: 'verify data',
        status: 'failed',
        attempts: 1,
        startedAt: '2025-05-01T03:00:40.000Z',
        finishedAt: '2025-05-01T03:00:42.000Z',
        detail: 'check | failed',
      },
    ],
    checks: [
      { name: 'table public.orders', ok: true, detail: '120 rows, checksum matches' },
      { name: HOSTILE, ok: false, detail: 'first column was false | expected true' },
    ],
    cleanup: [{ name: 'scratch drill-x', ok: true, detail: 'deleted' }],
    ...overrides,
  } as RunbookReport;
}

const ctx = {
  uiLink: 'http://localhost:8233/namespaces/default/workflows/lifeboat%2Forders%2Fdrill/run-0001/history',
  namespace: 'default',
  generatedAt: '2025-05-02T00:00:00.000Z',
};

/** The cells of a Markdown table row, split at pipes that are not escaped. */
function cells(row: string): string[] {
  return row
    .trim()
    .replace(/^\|/, '')
    .replace(/(?<!\\)\|$/, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

describe('escaping', () => {
  test('html() neutralises markup and quotes', () => {
    expect(html(`<a href="x" onclick='y'>&`)).toBe('&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;');
  });
  test('md() escapes pipes, markup and emphasis, and keeps a cell on one line', () => {
    expect(md('a|b <b>*c*</b>\nnext')).toBe('a\\|b \\<b\\>\\*c\\*\\</b\\> next');
  });
});

describe('run report as HTML', () => {
  const page = runHtml(drillReport(), ctx);

  test('states objectives against the measured RTO and RPO, with verdicts', () => {
    const table = page.match(/<table class="measurements">[\s\S]*?<\/table>/)![0];
    expect(table).toMatch(/<th>RTO<\/th><td class="num">30m00s<\/td><td class="num within">42\.0s<\/td>/);
    expect(table).toMatch(/<th>RPO<\/th><td class="num">15m00s<\/td><td class="num exceeded">16m40s<\/td>/);
    expect(table).toContain('exceeds objective');
  });

  test('lists every step with its times, duration and attempts', () => {
    const rows = page.match(/<table class="steps">[\s\S]*?<\/table>/)![0].match(/<tr><td[\s\S]*?<\/tr>/g)!;
    expect(rows).toHaveLength(3);
    expect(rows[1]).toContain('<td>restore</td>');
    expect(rows[1]).toContain('<td class="num attempts">3</td>');
    expect(rows[1]).toContain('2025-05-01 03:00:10.000 UTC');
    expect(rows[1]).toContain('<td class="num">30.0s</td>');
    expect(rows[2]).toContain('<span class="failed">failed</span>');
  });

  test('shows each check as ok or failed with its detail, and the cleanup', () => {
    expect(page).toContain('Checks (1/2 passed)');
    expect(page).toMatch(
      /<span class="verdict ok">ok<\/span><\/td><td>table public\.orders<\/td><td>120 rows, checksum matches<\/td>/,
    );
    expect(page).toMatch(/<span class="verdict failed">failed<\/span><\/td><td>&lt;script&gt;/);
    expect(page).toContain('<td>scratch drill-x</td><td>deleted</td>');
  });

  test('escapes hostile names and reasons: no script or injected element survives', () => {
    expect(page).not.toMatch(/<script/i);
    expect(page).not.toMatch(/<img/i);
    expect(page).toContain('&lt;script&gt;window.pwned=1&lt;/script&gt;');
    expect(page).toContain('bad | data &lt;/p&gt;&lt;img src=x onerror=&quot;window.pwned=2&quot;&gt;');
    // Defence in depth: the page forbids scripts even if something slipped through.
    expect(page).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
  });

  test('names the runbook version, or says the run predates version stamping', () => {
    expect(page).toContain('<code>lifeboat@0.1.0+g4501a81c2d3e</code>');
    const old = drillReport();
    delete (old as { runbookVersion?: string }).runbookVersion;
    expect(runHtml(old, ctx)).toContain(UNVERSIONED);
  });

  test('links the run into the Temporal UI, and says so when there is no UI address', () => {
    expect(page).toContain(`<a href="${ctx.uiLink}">open this run in the Temporal UI</a>`);
    expect(runHtml(drillReport(), { ...ctx, uiLink: null })).toContain('no UI address known (set LIFEBOAT_UI_URL)');
    expect(runHtml(drillReport(), { ...ctx, uiLink: 'javascript:alert(1)' })).not.toContain('href="javascript');
  });

  test('a failover shows who approved it, why, and against which plan; a cross-cloud one where from and to', () => {
    const failover = runHtml(
      drillReport({
        runbook: 'failover',
        crossCloud: { from: 'aws-east/orders', to: 'gcp-central/orders', rpoPromiseSeconds: 0, setAside: null },
        failover: {
          mode: 'planned',
          approval: {
            database: 'orders',
            planDigest: 'ab'.repeat(32),
            approvedBy: '"><script>x()</script>',
            reason: 'quarterly | switchover',
          },
          fence: { confirmed: true, how: 'read-only at LSN 0/3000060' },
          lagAtDecision: { bytes: 0, seconds: 0 },
          walGapBytes: 0,
          topology: null,
        },
      }),
      ctx,
    );
    expect(failover).toContain('<h1>Cross-cloud failover of orders');
    expect(failover).toContain('<th>Approved by</th><td>&quot;&gt;&lt;script&gt;x()&lt;/script&gt;</td>');
    expect(failover).toContain('<th>Reason</th><td>quarterly | switchover</td>');
    expect(failover).toContain(`<th>Plan digest</th><td><code>${'ab'.repeat(32)}</code></td>`);
    expect(failover).toContain('<th>From</th><td>aws-east/orders</td>');
    expect(failover).not.toMatch(/<script/i);
  });
});

describe('run report as Markdown', () => {
  const text = runMarkdown(drillReport(), ctx);
  const lines = text.split('\n');

  test('states objectives against measurements and every step with its attempts', () => {
    expect(lines).toContain('| RTO | 30m00s | 42.0s | within objective |');
    expect(lines).toContain('| RPO | 15m00s | 16m40s | **exceeds objective** |');
    const restore = lines.find((l) => l.startsWith('| 2 | restore |'))!;
    expect(cells(restore)).toEqual([
      '2',
      'restore',
      'completed',
      '2025-05-01 03:00:10.000 UTC',
      '2025-05-01 03:00:40.000 UTC',
      '30.0s',
      '3',
      '',
    ]);
  });

  test('pipes and markup in user strings stay inside their cell, as text', () => {
    const check = lines.find((l) => l.includes('window.pwned=1'))!;
    expect(cells(check)).toEqual([
      '✘ **failed**',
      '\\<script\\>window.pwned=1\\</script\\>',
      'first column was false \\| expected true',
    ]);
    const step = lines.find((l) => l.startsWith('| 3 | verify data |'))!;
    expect(cells(step)).toHaveLength(8);
    expect(text).not.toMatch(/(?<!\\)<script/);
    expect(text).toContain('> bad \\| data \\</p\\>\\<img src=x onerror="window.pwned=2"\\>');
  });

  test('every table row has as many cells as its header', () => {
    let width = 0;
    for (const line of lines) {
      if (!line.startsWith('|')) {
        width = 0;
        continue;
      }
      if (!width) width = cells(line).length;
      else expect(cells(line)).toHaveLength(width);
    }
  });

  test('names the runbook version and links the run', () => {
    expect(text).toContain('| Runbook version | lifeboat@0.1.0+g4501a81c2d3e |');
    expect(text).toContain(`| Temporal UI | [this run](${ctx.uiLink}) |`);
  });
});

describe('drill history chart', () => {
  const runs: FetchedRun[] = [
    {
      report: drillReport({
        outcome: 'passed',
        reason: undefined,
        rtoSeconds: 600,
        rpoSeconds: 0,
        startedAt: '2025-05-01T03:00:00.000Z',
        workflowId: 'w1',
      }),
      link: null,
    },
    {
      report: drillReport({
        outcome: 'passed',
        reason: undefined,
        rtoSeconds: 1800,
        rpoSeconds: 0,
        startedAt: '2025-05-02T03:00:00.000Z',
        workflowId: 'w2',
      }),
      link: 'http://localhost:8233/x',
    },
    {
      report: drillReport({
        outcome: 'failed',
        rtoSeconds: null,
        rpoSeconds: null,
        startedAt: '2025-05-03T03:00:00.000Z',
        workflowId: 'w3',
      }),
      link: null,
    },
    {
      report: drillReport({
        outcome: 'failed',
        rtoSeconds: 2400,
        rpoSeconds: 30,
        startedAt: '2025-05-04T03:00:00.000Z',
        workflowId: HOSTILE,
      }),
      link: null,
    },
  ];
  const points = chartPoints(runs, 'RTO');
  const svg = lineChart('RTO', points, 'not reached');
  const attr = (el: string, name: string) => Number(el.match(new RegExp(` ${name}="([^"]+)"`))![1]);

  test('has one point per run, coloured by outcome, the unmeasured one marked as such', () => {
    const marks = svg.match(/<(circle|g) class="point [^"]*"[^>]*>/g)!;
    expect(marks).toHaveLength(4);
    expect(marks.map((m) => m.match(/class="point ([^"]*)"/)![1])).toEqual([
      'passed',
      'passed',
      'failed missing',
      'failed',
    ]);
    expect(marks[0]).toContain('data-seconds="600"');
    expect(marks[2]).toContain('data-seconds=""');
    // Off the scale, above the plot, where no measurement can be mistaken for it.
    const cross = svg.match(/<g class="point failed missing"[\s\S]*?<path d="M([\d.]+) ([\d.]+)/)!;
    expect(Number(cross[2])).toBeCloseTo(MISSING_Y - 5);
    expect(MISSING_Y).toBeLessThan(FRAME.top);
  });

  test('draws the objective line at the objective, where a run measured exactly that sits', () => {
    const scale = scaleFor(points);
    expect(scale.top).toBeGreaterThanOrEqual(2400);
    const objective = svg.match(/<line class="objective"[^>]*>/g)!;
    expect(objective).toHaveLength(1);
    expect(attr(objective[0]!, 'y1')).toBeCloseTo(scale.y(1800));
    expect(attr(objective[0]!, 'y1')).toBeCloseTo(
      FRAME.top + (FRAME.height - FRAME.top - FRAME.bottom) * (1 - 1800 / scale.top),
    );
    const atObjective = svg.match(/<circle class="point passed" data-workflow-id="w2"[^>]*>/)![0];
    expect(attr(atObjective, 'cy')).toBeCloseTo(attr(objective[0]!, 'y1'));
    // Points go left to right in start order, the 600 s one lower on the page than the 2400 s one is high.
    const circles = svg.match(/<circle class="point [^"]*"[^>]*>/g)!;
    const xs = circles.map((c) => attr(c, 'cx'));
    expect([...xs].sort((a, b) => a - b)).toEqual(xs);
    expect(attr(circles[0]!, 'cy')).toBeGreaterThan(attr(circles[2]!, 'cy'));
  });

  test('a changed objective gets its own segment at its own height', () => {
    const changed = points.map((p, i) => ({ ...p, objective: i < 2 ? 1800 : 3600 }));
    const lines = lineChart('RTO', changed, 'not reached').match(/<line class="objective"[^>]*>/g)!;
    const scale = scaleFor(changed);
    expect(lines.map((l) => attr(l, 'y1'))).toEqual([scale.y(1800), scale.y(3600)]);
  });

  test('an RPO of 0 sits on the bottom axis', () => {
    const rpo = chartPoints(runs, 'RPO');
    const first = lineChart('RPO', rpo, 'unknown').match(/<circle class="point [^"]*"[^>]*>/)![0];
    expect(attr(first, 'cy')).toBeCloseTo(FRAME.height - FRAME.bottom);
  });

  test('the history page holds both charts and a table of the runs, everything escaped', () => {
    const page = historyHtml(runs, {
      database: 'orders',
      last: 30,
      namespace: 'default',
      generatedAt: '2025-05-05T00:00:00.000Z',
    });
    expect(page.match(/<svg class="chart (rto|rpo)"/g)).toEqual(['<svg class="chart rto"', '<svg class="chart rpo"']);
    expect(page.match(/<table class="runs">[\s\S]*?<\/table>/)![0].match(/<tr><td/g)).toHaveLength(4);
    expect(page).toContain('not reached');
    expect(page).not.toMatch(/<script/i);
    expect(page).toContain('&lt;script&gt;window.pwned=1&lt;/script&gt;');
    const text = historyMarkdown(runs, {
      database: 'orders',
      last: 30,
      namespace: 'default',
      generatedAt: '2025-05-05T00:00:00.000Z',
    });
    expect(text).toContain('- RTO, oldest to newest: `▃▆✕█`');
    expect(text.split('\n').filter((l) => /^\| \d/.test(l))).toHaveLength(4);
    expect(text).toContain('| 3 | 2025-05-03 03:00:00.000 UTC | **failed** | **not reached** | **unknown** |');
  });
});

describe('finding runs', () => {
  test('the visibility query takes only a plan database name', () => {
    expect(drillHistoryQuery('orders')).toBe(
      "LifeboatDatabase = 'orders' AND LifeboatRunbook = 'drill' AND (ExecutionStatus = 'Completed' OR (ExecutionStatus = 'Failed' AND LifeboatOutcome = 'failed'))",
    );
    for (const bad of ["orders' OR LifeboatRunbook = 'failover", 'Orders', 'orders\\', '', 'a'.repeat(64)]) {
      expect(() => drillHistoryQuery(bad)).toThrow(NoReport);
    }
  });

  test('a result that is not a runbook report is recognised as such; older reports get their lists', () => {
    expect(asRunbookReport({ hello: 'world' })).toBeNull();
    expect(asRunbookReport(null)).toBeNull();
    const old: Partial<RunbookReport> = drillReport();
    delete old.checks;
    delete old.cleanup;
    delete old.copies;
    expect(asRunbookReport(old)).toMatchObject({ checks: [], cleanup: [], copies: [] });
  });
});
