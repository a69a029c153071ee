// Evidence reports as one self-contained HTML file: inline style, inline SVG, no script, no external
// font or stylesheet (it must open offline, years later, from an audit folder). A Content-Security-Policy
// forbids scripts outright, behind the escaping every user-controlled string goes through.
import type { CheckResult, RunbookReport, StepRecord } from '../../workflows/types';
import { formatBytes, formatSeconds } from './terminal';
import { lineChart, type ChartPoint } from './chart';
import { html, safeUrl } from './escape';
import type { FetchedRun } from './fetch';
import {
  between,
  fenceText,
  fleetDrills,
  formatTime,
  headline,
  lagText,
  measurements,
  measuresRecovery,
  objectivesText,
  runbookTitle,
  runbookVersion,
  stepDuration,
  topologyText,
  UNVERSIONED,
  type RunContext,
} from './facts';

const STYLE = `
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #24292f; margin: 2em auto; max-width: 1100px; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0; } th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } table.facts th { width: 11em; } td.num { text-align: right; white-space: nowrap; } td.time { white-space: nowrap; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .92em; word-break: break-all; }
.passed, .ok, .within, .completed { color: #1a7f37; } .failed, .exceeded { color: #cf222e; } .skipped, .muted, .pending { color: #57606a; } .running { color: #9a6700; }
.verdict { font-weight: 700; } .reason { border-left: 4px solid #cf222e; padding: .4em .8em; background: #fff5f5; white-space: pre-wrap; }
svg.chart { max-width: 100%; height: auto; display: block; margin: .5em 0 1.5em; }
footer { margin-top: 2.5em; color: #57606a; font-size: .9em; }
@media print { a { color: inherit; } }
`;

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

function anchor(url: string | null, text: string): string {
  const href = safeUrl(url);
  return href ? `<a href="${html(href)}">${html(text)}</a>` : html(text);
}

function table(head: string[], rows: string[][], cls = ''): string {
  return (
    `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.map((r) => `<tr>${r.join('')}</tr>`).join('\n')}</tbody></table>`
  );
}

function facts(rows: Array<[string, string]>): string {
  return `<table class="facts"><tbody>${rows.map(([k, v]) => `<tr><th>${html(k)}</th><td>${v}</td></tr>`).join('\n')}</tbody></table>`;
}

const td = (content: string, cls = '') => `<td${cls ? ` class="${cls}"` : ''}>${content}</td>`;
const verdict = (ok: boolean) => `<span class="verdict ${ok ? 'ok' : 'failed'}">${ok ? 'ok' : 'failed'}</span>`;

function checkTable(results: CheckResult[]): string {
  const result = (c: CheckResult) =>
    c.notCompared ? td('<span class="verdict skipped">not compared</span>') : td(verdict(c.ok));
  return table(
    ['result', 'name', 'detail'],
    results.map((c) => [result(c), td(html(c.name)), td(html(c.detail), c.ok ? '' : 'failed')]),
    'checks',
  );
}

function stepRow(step: StepRecord, i: number): string[] {
  return [
    td(String(i + 1), 'num'),
    td(html(step.name)),
    td(`<span class="${html(step.status)}">${html(step.status)}</span>`),
    td(html(formatTime(step.startedAt)), 'time'),
    td(html(formatTime(step.finishedAt)), 'time'),
    td(html(stepDuration(step)), 'num'),
    td(String(step.attempts), 'num attempts'),
    td(html(step.detail ?? ''), step.status === 'failed' ? 'failed' : 'muted'),
  ];
}

/** One finished run: what it proved, step by step, with links back into the Temporal UI. */
export function runHtml(report: RunbookReport, ctx: RunContext): string {
  const title = headline(report);
  const passed = report.outcome === 'passed';
  const out: string[] = [];
  out.push(
    `<header><h1>${html(`${runbookTitle(report)} of ${report.database}`)}: <span class="verdict ${passed ? 'passed' : 'failed'}">${passed ? 'PASSED' : 'FAILED'}</span></h1>` +
      `<p>Workflow <code>${html(report.workflowId)}</code> · ${anchor(ctx.uiLink, 'open this run in the Temporal UI')}</p></header>`,
  );
  if (report.reason) out.push(`<p class="reason">${html(report.reason)}</p>`);

  const version = runbookVersion(report);
  out.push(
    `<section id="run"><h2>Run</h2>` +
      facts([
        ['Workflow ID', `<code>${html(report.workflowId)}</code>`],
        ['Run ID', `<code>${html(report.runId)}</code>`],
        ['Runbook', html(runbookTitle(report))],
        ['Database', html(report.database)],
        ['Provider', html(report.provider)],
        ['Outcome', `<span class="verdict ${passed ? 'passed' : 'failed'}">${html(report.outcome)}</span>`],
        ['Started', html(formatTime(report.startedAt))],
        ['Finished', html(formatTime(report.finishedAt))],
        ['Duration', html(between(report.startedAt, report.finishedAt))],
        [
          'Runbook version',
          version === UNVERSIONED ? `<span class="muted">${html(version)}</span>` : `<code>${html(version)}</code>`,
        ],
        [
          'Temporal UI',
          ctx.uiLink
            ? anchor(ctx.uiLink, ctx.uiLink)
            : '<span class="muted">no UI address known (set LIFEBOAT_UI_URL)</span>',
        ],
      ]) +
      `</section>`,
  );

  out.push(`<section id="objectives"><h2>Objectives and measurements</h2>`);
  if (measuresRecovery(report)) {
    out.push(
      table(
        ['', 'objective', 'measured', 'verdict'],
        measurements(report).map((m) => [
          `<th>${m.what}</th>`,
          td(html(m.objective), 'num'),
          td(html(m.measured), `num ${m.verdict === 'within' ? 'within' : 'exceeded'}`),
          td(`<span class="${m.verdict === 'within' ? 'within' : 'exceeded'}">${html(m.verdictText)}</span>`),
        ]),
        'measurements',
      ),
    );
  } else
    out.push(
      `<p class="muted">A ${html(report.runbook)} recovers nothing, so it measures no RTO or RPO (objectives: ${html(objectivesText(report.objectives))}).</p>`,
    );
  out.push(`</section>`);

  if (report.backup || report.copies.length) {
    const rows = [
      report.backup,
      ...report.copies.filter((c) => !(c.region === report.backup?.region && c.backupId === report.backup.backupId)),
    ]
      .filter((b) => b !== undefined)
      .map((b, i) => [
        td(i === 0 && report.backup ? 'backup' : 'copy'),
        td(`<code>${html(b.backupId)}</code>`),
        td(html(b.region)),
        td(html(formatTime(b.createdAt)), 'time'),
        td(html(formatBytes(b.sizeBytes)), 'num'),
        td(`<code>${html(b.sha256)}</code>`),
      ]);
    out.push(
      `<section id="backups"><h2>Backup and copies</h2>${table(['', 'backup', 'region', 'taken', 'size', 'sha256'], rows)}</section>`,
    );
  }

  const fo = report.failover;
  if (fo) {
    const a = fo.approval;
    const rows: Array<[string, string]> = [['Mode', html(fo.mode)]];
    if (a)
      rows.push(
        ['Approved by', html(a.approvedBy)],
        ['Reason', html(a.reason)],
        ['Plan digest', `<code>${html(a.planDigest)}</code>`],
      );
    else rows.push(['Approval', '<span class="failed">none recorded (the run never got one)</span>']);
    if (fo.fence)
      rows.push(['Fence', `<span class="${fo.fence.confirmed ? 'ok' : 'failed'}">${html(fenceText(fo.fence))}</span>`]);
    if (fo.lagAtDecision) rows.push(['Lag at the decision', html(lagText(fo.lagAtDecision))]);
    if (fo.walGapBytes !== null) rows.push(['WAL gap', html(`${fo.walGapBytes} bytes`)]);
    if (fo.topology) rows.push(['Topology after', html(topologyText(fo.topology))]);
    out.push(`<section id="approval"><h2>Approval and failover</h2>${facts(rows)}</section>`);
  }

  const xc = report.crossCloud;
  if (xc) {
    out.push(
      `<section id="cross-cloud"><h2>Across clouds</h2>` +
        facts([
          ['From', html(xc.from)],
          ['To', html(xc.to)],
          [
            'RPO the path promises',
            html(xc.rpoPromiseSeconds === null ? 'unknown' : formatSeconds(xc.rpoPromiseSeconds)),
          ],
          ['Earlier target database', html(xc.setAside ? `kept, renamed to ${xc.setAside}` : 'none')],
        ]) +
        `</section>`,
    );
  }

  out.push(
    `<section id="steps"><h2>Steps</h2>${table(['#', 'step', 'status', 'started', 'finished', 'duration', 'attempts', 'detail'], report.steps.map(stepRow), 'steps')}</section>`,
  );
  const passedChecks = report.checks.filter((c) => c.ok && !c.notCompared).length;
  const notCompared = report.checks.filter((c) => c.notCompared).length;
  out.push(
    `<section id="checks"><h2>Checks (${passedChecks}/${report.checks.length} passed${notCompared ? `, ${notCompared} not compared` : ''})</h2>${report.checks.length ? checkTable(report.checks) : '<p class="muted">no checks</p>'}</section>`,
  );
  out.push(
    `<section id="cleanup"><h2>Cleanup</h2>${report.cleanup.length ? checkTable(report.cleanup) : '<p class="muted">nothing to clean up</p>'}</section>`,
  );

  const drills = fleetDrills(report);
  if (drills) {
    const rows = drills.map((d) => [
      td(html(d.database)),
      td(`<span class="verdict ${d.outcome === 'passed' ? 'passed' : 'failed'}">${html(d.outcome)}</span>`),
      td(html(formatSeconds(d.rtoSeconds)), 'num'),
      td(html(formatSeconds(d.rpoSeconds)), 'num'),
      td(`<code>${html(d.workflowId)}</code>`),
      td(html(d.reason ?? '')),
    ]);
    out.push(
      `<section id="drills"><h2>Drills</h2>${table(['database', 'outcome', 'RTO', 'RPO', 'workflow', 'reason'], rows)}</section>`,
    );
  }

  out.push(
    `<footer>Generated by <code>lifeboat report</code> at ${html(formatTime(ctx.generatedAt))} from namespace <code>${html(ctx.namespace)}</code>. The run's history in Temporal is the record this report was read from.</footer>`,
  );
  return page(`${title} — ${report.workflowId}`, out.join('\n'));
}

export interface HistoryContext {
  database: string;
  last: number;
  namespace: string;
  generatedAt: string;
}

export function chartPoints(runs: FetchedRun[], what: 'RTO' | 'RPO'): ChartPoint[] {
  return runs.map(({ report, link }) => ({
    workflowId: report.workflowId,
    startedAt: report.startedAt,
    outcome: report.outcome,
    value: what === 'RTO' ? report.rtoSeconds : report.rpoSeconds,
    objective: what === 'RTO' ? report.objectives.rtoSeconds : report.objectives.rpoSeconds,
    link: safeUrl(link),
  }));
}

/** The last N drills of one database: RTO and RPO against the objectives, then every run in a table. */
export function historyHtml(runs: FetchedRun[], ctx: HistoryContext): string {
  const title = `Drill history of ${ctx.database}`;
  const passed = runs.filter((r) => r.report.outcome === 'passed').length;
  const out: string[] = [];
  out.push(
    `<header><h1>${html(title)}</h1><p>The last ${runs.length} completed drill${runs.length === 1 ? '' : 's'} (asked for up to ${ctx.last}): ` +
      `<span class="passed">${passed} passed</span>, <span class="${runs.length - passed ? 'failed' : 'muted'}">${runs.length - passed} failed</span>.</p></header>`,
  );
  if (!runs.length) {
    out.push(
      `<p>No completed drill of <code>${html(ctx.database)}</code> in namespace <code>${html(ctx.namespace)}</code>. Run one with <code>lifeboat drill ${html(ctx.database)}</code>.</p>`,
    );
  } else {
    out.push(`<section id="rto"><h2>RTO</h2>${lineChart('RTO', chartPoints(runs, 'RTO'), 'not reached')}</section>`);
    out.push(`<section id="rpo"><h2>RPO</h2>${lineChart('RPO', chartPoints(runs, 'RPO'), 'unknown')}</section>`);
    const rows = [...runs]
      .reverse()
      .map(({ report: r, link }, i) => [
        td(String(runs.length - i), 'num'),
        td(html(formatTime(r.startedAt)), 'time'),
        td(`<span class="verdict ${r.outcome === 'passed' ? 'passed' : 'failed'}">${html(r.outcome)}</span>`),
        td(
          html(r.rtoSeconds === null ? 'not reached' : formatSeconds(r.rtoSeconds)),
          `num${r.rtoSeconds === null || r.rtoSeconds > r.objectives.rtoSeconds ? ' exceeded' : ''}`,
        ),
        td(
          html(r.rpoSeconds === null ? 'unknown' : formatSeconds(r.rpoSeconds)),
          `num${r.rpoSeconds === null || r.rpoSeconds > r.objectives.rpoSeconds ? ' exceeded' : ''}`,
        ),
        td(html(objectivesText(r.objectives))),
        td(html(runbookVersion(r)), 'mono'),
        td(anchor(link, r.workflowId), 'mono'),
        td(html(r.reason ?? '')),
      ]);
    out.push(
      `<section id="runs"><h2>Runs, newest first</h2>${table(['#', 'started', 'outcome', 'RTO', 'RPO', 'objectives', 'runbook version', 'workflow', 'reason'], rows, 'runs')}</section>`,
    );
  }
  out.push(
    `<footer>Generated by <code>lifeboat report ${html(ctx.database)} --history</code> at ${html(formatTime(ctx.generatedAt))} from namespace <code>${html(ctx.namespace)}</code>, from each drill's report (its workflow result).</footer>`,
  );
  return page(title, out.join('\n'));
}
