// What an evidence report states, before it is written as HTML or Markdown: the title, objectives
// against measurements, times and durations. Both writers say the same things in the same words.
import type { FleetDrillResult } from '../../workflows/fleet';
import type { Objectives, RunbookReport, StepRecord, TopologyView } from '../../workflows/types';
import { formatSeconds } from './terminal';

/** A Fleet Drill's report also lists its child drills. */
export type FleetDrills = FleetDrillResult['drills'];

/** What the renderers need besides the report: where the run lives in the Temporal UI, and when the report was made. */
export interface RunContext {
  uiLink: string | null;
  namespace: string;
  generatedAt: string;
}

export const UNVERSIONED = 'not recorded (run predates version stamping)';

export function runbookVersion(report: RunbookReport): string {
  // Older workers did not stamp a version; the field is optional in the type for that reason.
  const version = (report as { runbookVersion?: unknown }).runbookVersion;
  return typeof version === 'string' && version ? version : UNVERSIONED;
}

export function runbookTitle(report: RunbookReport): string {
  const fo = report.failover;
  switch (report.runbook) {
    case 'drill':
      return 'Drill';
    case 'backup':
      return 'Backup';
    case 'failback':
      return report.crossCloud ? 'Cross-cloud failback' : 'Failback';
    case 'failover':
      if (report.crossCloud) return 'Cross-cloud failover';
      return fo?.mode === 'unplanned'
        ? 'Unplanned failover'
        : fo?.mode === 'zonal'
          ? 'Zonal failover'
          : 'Planned switchover';
    case 'readiness':
      return 'Readiness check';
    default:
      return String(report.runbook);
  }
}

export function headline(report: RunbookReport): string {
  return `${runbookTitle(report)} of ${report.database}: ${report.outcome === 'passed' ? 'PASSED' : 'FAILED'}`;
}

/** Backups and readiness checks recover nothing, so they measure no RTO or RPO. */
export function measuresRecovery(report: RunbookReport): boolean {
  return report.runbook !== 'backup' && report.runbook !== 'readiness';
}

export interface Measurement {
  what: 'RTO' | 'RPO';
  objective: string;
  measured: string;
  verdict: 'within' | 'exceeded' | 'not measured';
  /** The verdict in words, with the null case explained. */
  verdictText: string;
}

export function measurements(report: RunbookReport): Measurement[] {
  const row = (what: 'RTO' | 'RPO', objective: number, measured: number | null, missing: string): Measurement => {
    if (measured === null)
      return {
        what,
        objective: formatSeconds(objective),
        measured: missing,
        verdict: 'not measured',
        verdictText: `${missing}: no figure to hold against the objective`,
      };
    const within = measured <= objective;
    return {
      what,
      objective: formatSeconds(objective),
      measured: formatSeconds(measured),
      verdict: within ? 'within' : 'exceeded',
      verdictText: within ? 'within objective' : 'exceeds objective',
    };
  };
  return [
    row('RTO', report.objectives.rtoSeconds, report.rtoSeconds, 'not reached'),
    row('RPO', report.objectives.rpoSeconds, report.rpoSeconds, 'unknown'),
  ];
}

/** `2025-05-01 03:00:12.345 UTC`: exact, unambiguous, sortable. */
export function formatTime(iso: string | undefined): string {
  if (!iso) return '';
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

export function between(from: string | undefined, to: string | undefined): string {
  if (!from || !to) return '';
  const seconds = (Date.parse(to) - Date.parse(from)) / 1000;
  return Number.isFinite(seconds) ? formatSeconds(Math.max(0, seconds)) : '';
}

export function stepDuration(step: StepRecord): string {
  return between(step.startedAt, step.finishedAt);
}

export function objectivesText(o: Objectives): string {
  return `RTO ${formatSeconds(o.rtoSeconds)}, RPO ${formatSeconds(o.rpoSeconds)}`;
}

export function fleetDrills(report: RunbookReport): FleetDrills | null {
  const drills = (report as { drills?: unknown }).drills;
  return Array.isArray(drills) ? (drills as FleetDrills) : null;
}

export function fenceText(fence: { confirmed: boolean; how: string }): string {
  return `${fence.confirmed ? 'confirmed' : 'NOT confirmed'}: ${fence.how}`;
}

export function lagText(lag: { bytes: number | null; seconds: number | null }): string {
  return `${lag.bytes ?? '?'} bytes, ${lag.seconds === null ? '?' : formatSeconds(lag.seconds)}`;
}

export function nodeText(node: { region: string; name: string } | null): string {
  return node ? `${node.region}/${node.name}` : 'none';
}

/** The topology a failover or failback left: who is primary, standby and fenced, at which epoch. */
export function topologyText(t: TopologyView): string {
  const fenced = t.fenced.length ? `, fenced ${t.fenced.map(nodeText).join(', ')}` : '';
  return `primary ${nodeText(t.primary)}, standby ${nodeText(t.standby)}${fenced} (epoch ${t.epoch})`;
}
