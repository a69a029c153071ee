// A check that could not be compared exactly (an unlogged table after a platform restore, a table
// the reader may not read in full) is neither a pass nor a failure: every rendering says so.
import { runHtml } from '../../services/evidence/html';
import { runMarkdown } from '../../services/evidence/markdown';
import { renderReport } from '../../services/evidence/terminal';
import type { RunbookReport } from '../../workflows/types';

const report = {
  workflowId: 'lifeboat/orders/drill/2025-05-01T03:00:00.000Z',
  runId: 'run-0001',
  runbook: 'drill',
  database: 'orders',
  provider: 'aws',
  outcome: 'passed',
  startedAt: '2025-05-01T03:00:00.000Z',
  finishedAt: '2025-05-01T03:01:40.000Z',
  objectives: { rtoSeconds: 1800, rpoSeconds: 900 },
  rtoSeconds: 42,
  rpoSeconds: 10,
  copies: [],
  steps: [],
  checks: [
    { name: 'table public.orders', ok: true, detail: '120 rows, checksum matches' },
    {
      name: 'table public.sessions',
      ok: true,
      notCompared: true,
      detail:
        'not compared: an unlogged table, which a restore from a platform snapshot brings back empty (the backup had 7 rows)',
    },
  ],
  cleanup: [],
} as unknown as RunbookReport;
const ctx = { uiLink: null, namespace: 'default', generatedAt: '2025-05-02T00:00:00.000Z' };

test('the terminal, Markdown and HTML reports show a not-compared check as such, not as passed', () => {
  const text = renderReport(report, null);
  expect(text).toContain('Checks (1/2 passed, 1 not compared)');
  expect(text).toMatch(/– table public\.sessions/);
  const markdown = runMarkdown(report, ctx);
  expect(markdown).toContain('## Checks (1/2 passed, 1 not compared)');
  expect(markdown).toMatch(/\| – not compared \| table public\.sessions \|/);
  const page = runHtml(report, ctx);
  expect(page).toContain('Checks (1/2 passed, 1 not compared)');
  expect(page).toMatch(/<span class="verdict skipped">not compared<\/span><\/td><td>table public\.sessions/);
});
