// How reports and progress look in a terminal.
import type { Progress } from '../../workflows/steps';
import type { BackupRef, CheckResult, RunbookReport, StepRecord } from '../../workflows/types';

const color = (code: number) => (s: string) => (process.stdout.isTTY ? `\x1b[${code}m${s}\x1b[0m` : s);
const green = color(32);
const red = color(31);
const dim = color(2);
const bold = color(1);

export function formatSeconds(s: number | null): string {
  if (s === null) return 'n/a';
  if (s < 120) return `${s.toFixed(1)}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${(s / 3600).toFixed(1)}h`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function stepDuration(step: StepRecord): string {
  if (!step.startedAt || !step.finishedAt) return '';
  return formatSeconds((Date.parse(step.finishedAt) - Date.parse(step.startedAt)) / 1000);
}

function mark(status: StepRecord['status'] | boolean): string {
  if (status === true || status === 'completed') return green('✔');
  if (status === false || status === 'failed') return red('✘');
  if (status === 'skipped') return dim('–');
  if (status === 'running') return '…';
  return ' ';
}

function checkLine(c: CheckResult): string {
  return `  ${c.notCompared ? mark('skipped') : mark(c.ok)} ${c.name.padEnd(40)} ${c.ok ? dim(c.detail) : red(c.detail)}`;
}

export function renderReport(report: RunbookReport, uiUrl: string | null): string {
  const lines: string[] = [];
  const verdict = report.outcome === 'passed' ? green(bold('PASSED')) : red(bold('FAILED'));
  const title = {
    drill: 'Drill',
    backup: 'Backup',
    failover:
      report.failover?.mode === 'unplanned'
        ? 'Unplanned failover'
        : report.failover?.mode === 'zonal'
          ? 'Zonal failover'
          : 'Planned switchover',
    failback: 'Failback',
    readiness: 'Readiness check',
  }[report.runbook];
  lines.push(`${bold(title)} of ${bold(report.database)} (${report.provider}): ${verdict}`);
  if (report.reason) lines.push(`  ${red(report.reason)}`);
  if (report.runbook !== 'backup' && report.runbook !== 'readiness') {
    lines.push(
      `  RTO ${bold(formatSeconds(report.rtoSeconds))} (objective ${formatSeconds(report.objectives.rtoSeconds)})` +
        `   RPO ${bold(formatSeconds(report.rpoSeconds))} (objective ${formatSeconds(report.objectives.rpoSeconds)})`,
    );
  }
  const describe = (ref: BackupRef) =>
    `${ref.backupId} in ${ref.region}, ${formatBytes(ref.sizeBytes)}, sha256 ${ref.sha256.slice(0, 16)}…`;
  if (report.backup) lines.push(`  backup  ${describe(report.backup)}`);
  for (const copy of report.copies) {
    const isTheBackup = copy.region === report.backup?.region && copy.backupId === report.backup.backupId;
    if (!isTheBackup) lines.push(`  copy    ${describe(copy)}`);
  }
  const fo = report.failover;
  if (fo) {
    if (fo.approval) lines.push(`  approved by ${fo.approval.approvedBy}: ${fo.approval.reason}`);
    if (fo.fence)
      lines.push(`  fence   ${fo.fence.confirmed ? green('confirmed') : red('NOT confirmed')}: ${fo.fence.how}`);
    if (fo.lagAtDecision)
      lines.push(
        `  lag at the decision: ${fo.lagAtDecision.bytes ?? '?'} bytes, ${fo.lagAtDecision.seconds === null ? '?' : formatSeconds(fo.lagAtDecision.seconds)}`,
      );
    if (fo.topology) {
      const n = (x: { region: string; name: string } | null) => (x ? `${x.region}/${x.name}` : 'none');
      lines.push(
        `  now     primary ${bold(n(fo.topology.primary))}, standby ${n(fo.topology.standby)}${fo.topology.fenced.length ? `, fenced ${fo.topology.fenced.map(n).join(', ')}` : ''}`,
      );
    }
  }
  lines.push('', bold('Steps'));
  for (const step of report.steps) {
    const attempts = step.attempts > 1 ? ` attempts ${step.attempts}` : '';
    lines.push(
      `  ${mark(step.status)} ${step.name.padEnd(40)} ${stepDuration(step).padStart(7)}${attempts}${step.detail ? `  ${step.status === 'failed' ? red(step.detail) : dim(step.detail)}` : ''}`,
    );
  }
  if (report.checks.length) {
    const notCompared = report.checks.filter((c) => c.notCompared).length;
    lines.push(
      '',
      bold(
        `Checks (${report.checks.filter((c) => c.ok && !c.notCompared).length}/${report.checks.length} passed${notCompared ? `, ${notCompared} not compared` : ''})`,
      ),
    );
    lines.push(...report.checks.map(checkLine));
  }
  if (report.cleanup.length) {
    lines.push('', bold('Cleanup'));
    lines.push(...report.cleanup.map(checkLine));
  }
  lines.push('', `Workflow ${report.workflowId}`);
  if (uiUrl) lines.push(`Temporal UI: ${uiUrl}`);
  return lines.join('\n');
}

/** A live view of the steps, redrawn in place. */
export class ProgressView {
  private drawn = 0;

  draw(title: string, progress: Progress, elapsedSeconds: number): void {
    const lines = [`${bold(title)}  ${dim(formatSeconds(elapsedSeconds))}`];
    for (const step of progress.steps) {
      const running = step.status === 'running' ? `  ${dim(step.detail ?? '')}` : '';
      lines.push(`  ${mark(step.status)} ${step.name.padEnd(40)} ${stepDuration(step).padStart(7)}${running}`);
    }
    const up = this.drawn ? `\x1b[${this.drawn}F` : '';
    process.stdout.write(up + lines.map((l) => `\x1b[2K${l}`).join('\n') + '\n');
    this.drawn = lines.length;
  }

  clear(): void {
    if (this.drawn) process.stdout.write(`\x1b[${this.drawn}F\x1b[0J`);
    this.drawn = 0;
  }
}
