// Evidence reports as Markdown: for a ticket, a pull request or a wiki page. Every user-controlled
// string is escaped, so a pipe in a check's detail cannot break a table and `<script>` stays text.
import type { CheckResult, RunbookReport, StepRecord } from '../../workflows/types';
import { formatBytes, formatSeconds } from './terminal';
import { md, safeUrl } from './escape';
import type { FetchedRun } from './fetch';
import type { HistoryContext } from './html';
import {
  between,
  fenceText,
  fleetDrills,
  formatTime,
  lagText,
  measurements,
  measuresRecovery,
  objectivesText,
  runbookTitle,
  runbookVersion,
  stepDuration,
  topologyText,
  type RunContext,
} from './facts';

function link(url: string | null, text: string): string {
  const href = safeUrl(url);
  // Parentheses would end the link destination early: percent-encode them.
  return href ? `[${md(text)}](${href.replace(/\(/g, '%28').replace(/\)/g, '%29')})` : md(text);
}

function table(head: string[], rows: string[][]): string[] {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map((c) => c || ' ').join(' | ')} |`),
  ];
}

// GitHub ends a table cell at a pipe even inside a code span, unless it is backslash-escaped.
const code = (text: string) =>
  `\`${text
    .replace(/`/g, "'")
    .replace(/\|/g, '\\|')
    .replace(/\r\n|\r|\n/g, ' ')}\``;
const ok = (b: boolean) => (b ? '✔ ok' : '✘ **failed**');

function checkRows(results: CheckResult[]): string[] {
  return table(
    ['result', 'name', 'detail'],
    results.map((c) => [c.notCompared ? '– not compared' : ok(c.ok), md(c.name), md(c.detail)]),
  );
}

function stepRow(step: StepRecord, i: number): string[] {
  return [
    String(i + 1),
    md(step.name),
    step.status === 'failed' ? '**failed**' : md(step.status),
    md(formatTime(step.startedAt)),
    md(formatTime(step.finishedAt)),
    stepDuration(step),
    md(step.attempts),
    md(step.detail ?? ''),
  ];
}

export function runMarkdown(report: RunbookReport, ctx: RunContext): string {
  const out: string[] = [];
  out.push(
    `# ${md(`${runbookTitle(report)} of ${report.database}`)}: ${report.outcome === 'passed' ? 'PASSED' : '**FAILED**'}`,
    '',
  );
  if (report.reason) out.push(`> ${md(report.reason)}`, '');
  out.push(
    ...table(
      ['', ''],
      [
        ['Workflow ID', code(report.workflowId)],
        ['Run ID', code(report.runId)],
        ['Runbook', md(runbookTitle(report))],
        ['Database', md(report.database)],
        ['Provider', md(report.provider)],
        ['Outcome', report.outcome],
        ['Started', formatTime(report.startedAt)],
        ['Finished', formatTime(report.finishedAt)],
        ['Duration', between(report.startedAt, report.finishedAt)],
        ['Runbook version', md(runbookVersion(report))],
        ['Temporal UI', ctx.uiLink ? link(ctx.uiLink, 'this run') : 'no UI address known (set LIFEBOAT_UI_URL)'],
      ],
    ),
    '',
  );

  out.push('## Objectives and measurements', '');
  if (measuresRecovery(report)) {
    out.push(
      ...table(
        ['', 'objective', 'measured', 'verdict'],
        measurements(report).map((m) => [
          m.what,
          m.objective,
          m.measured,
          m.verdict === 'within' ? m.verdictText : `**${m.verdictText}**`,
        ]),
      ),
      '',
    );
  } else
    out.push(
      `A ${md(report.runbook)} recovers nothing, so it measures no RTO or RPO (objectives: ${objectivesText(report.objectives)}).`,
      '',
    );

  const refs = [
    report.backup,
    ...report.copies.filter((c) => !(c.region === report.backup?.region && c.backupId === report.backup.backupId)),
  ].filter((b) => b !== undefined);
  if (refs.length) {
    out.push('## Backup and copies', '');
    out.push(
      ...table(
        ['', 'backup', 'region', 'taken', 'size', 'sha256'],
        refs.map((b, i) => [
          i === 0 && report.backup ? 'backup' : 'copy',
          code(b.backupId),
          md(b.region),
          formatTime(b.createdAt),
          formatBytes(b.sizeBytes),
          code(b.sha256),
        ]),
      ),
      '',
    );
  }

  const fo = report.failover;
  if (fo) {
    const rows: string[][] = [['Mode', md(fo.mode)]];
    if (fo.approval)
      rows.push(
        ['Approved by', md(fo.approval.approvedBy)],
        ['Reason', md(fo.approval.reason)],
        ['Plan digest', code(fo.approval.planDigest)],
      );
    else rows.push(['Approval', '**none recorded** (the run never got one)']);
    if (fo.fence) rows.push(['Fence', md(fenceText(fo.fence))]);
    if (fo.lagAtDecision) rows.push(['Lag at the decision', md(lagText(fo.lagAtDecision))]);
    if (fo.walGapBytes !== null) rows.push(['WAL gap', `${fo.walGapBytes} bytes`]);
    if (fo.topology) rows.push(['Topology after', md(topologyText(fo.topology))]);
    out.push('## Approval and failover', '', ...table(['', ''], rows), '');
  }

  const xc = report.crossCloud;
  if (xc) {
    out.push('## Across clouds', '');
    out.push(
      ...table(
        ['', ''],
        [
          ['From', md(xc.from)],
          ['To', md(xc.to)],
          ['RPO the path promises', xc.rpoPromiseSeconds === null ? 'unknown' : formatSeconds(xc.rpoPromiseSeconds)],
          ['Earlier target database', md(xc.setAside ? `kept, renamed to ${xc.setAside}` : 'none')],
        ],
      ),
      '',
    );
  }

  out.push(
    '## Steps',
    '',
    ...table(
      ['#', 'step', 'status', 'started', 'finished', 'duration', 'attempts', 'detail'],
      report.steps.map(stepRow),
    ),
    '',
  );
  const notCompared = report.checks.filter((c) => c.notCompared).length;
  out.push(
    `## Checks (${report.checks.filter((c) => c.ok && !c.notCompared).length}/${report.checks.length} passed${notCompared ? `, ${notCompared} not compared` : ''})`,
    '',
    ...(report.checks.length ? checkRows(report.checks) : ['no checks']),
    '',
  );
  out.push('## Cleanup', '', ...(report.cleanup.length ? checkRows(report.cleanup) : ['nothing to clean up']), '');

  const drills = fleetDrills(report);
  if (drills) {
    out.push(
      '## Drills',
      '',
      ...table(
        ['database', 'outcome', 'RTO', 'RPO', 'workflow', 'reason'],
        drills.map((d) => [
          md(d.database),
          d.outcome,
          formatSeconds(d.rtoSeconds),
          formatSeconds(d.rpoSeconds),
          code(d.workflowId),
          md(d.reason ?? ''),
        ]),
      ),
      '',
    );
  }
  out.push(`Generated by \`lifeboat report\` at ${formatTime(ctx.generatedAt)} from namespace ${code(ctx.namespace)}.`);
  return out.join('\n') + '\n';
}

const BARS = '▁▂▃▄▅▆▇█';

/** One character per drill, oldest first: the height is the measurement against the largest, ✕ where none. */
export function sparkline(values: Array<number | null>): string {
  const max = Math.max(0, ...values.map((v) => v ?? 0));
  return values
    .map((v) =>
      v === null ? '✕' : BARS[max > 0 ? Math.min(BARS.length - 1, Math.round((v / max) * (BARS.length - 1))) : 0],
    )
    .join('');
}

export function historyMarkdown(runs: FetchedRun[], ctx: HistoryContext): string {
  const out: string[] = [`# Drill history of ${md(ctx.database)}`, ''];
  const passed = runs.filter((r) => r.report.outcome === 'passed').length;
  out.push(
    `The last ${runs.length} completed drill${runs.length === 1 ? '' : 's'} (asked for up to ${ctx.last}): ${passed} passed, ${runs.length - passed} failed.`,
    '',
  );
  if (!runs.length) {
    out.push(
      `No completed drill of ${code(ctx.database)} in namespace ${code(ctx.namespace)}. Run one with \`lifeboat drill ${ctx.database}\`.`,
    );
    return out.join('\n') + '\n';
  }
  const latest = runs[runs.length - 1]!.report.objectives;
  out.push(
    `- RTO, oldest to newest: \`${sparkline(runs.map((r) => r.report.rtoSeconds))}\` (objective ${formatSeconds(latest.rtoSeconds)}; ✕ not reached)`,
    `- RPO, oldest to newest: \`${sparkline(runs.map((r) => r.report.rpoSeconds))}\` (objective ${formatSeconds(latest.rpoSeconds)}; ✕ unknown)`,
    '',
    '(`--html` draws these as charts against the objectives.)',
    '',
  );
  const within = (v: number | null, objective: number, missing: string) =>
    v === null ? `**${missing}**` : v > objective ? `**${formatSeconds(v)}**` : formatSeconds(v);
  const rows = [...runs]
    .reverse()
    .map(({ report: r, link: url }, i) => [
      String(runs.length - i),
      formatTime(r.startedAt),
      r.outcome === 'passed' ? 'passed' : '**failed**',
      within(r.rtoSeconds, r.objectives.rtoSeconds, 'not reached'),
      within(r.rpoSeconds, r.objectives.rpoSeconds, 'unknown'),
      objectivesText(r.objectives),
      md(runbookVersion(r)),
      link(url, r.workflowId),
      md(r.reason ?? ''),
    ]);
  out.push(
    '## Runs, newest first',
    '',
    ...table(['#', 'started', 'outcome', 'RTO', 'RPO', 'objectives', 'runbook version', 'workflow', 'reason'], rows),
    '',
  );
  out.push(
    `Generated by \`lifeboat report ${ctx.database} --history\` at ${formatTime(ctx.generatedAt)} from namespace ${code(ctx.namespace)}.`,
  );
  return out.join('\n') + '\n';
}
