// The monitoring kit in monitoring/ as its tests read it: the alert rules, the dashboard, the PromQL
// expressions of both, and promtool (Debian package prometheus: scripts/dev/install-promtool.sh).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

export const MONITORING = join(__dirname, '..', '..', 'monitoring');
export const RULES_FILE = 'lifeboat-alerts.yml';
export const RULE_TESTS_FILE = 'lifeboat-alerts.test.yml';
export const DASHBOARD_FILE = 'lifeboat-dashboard.json';

/** One PromQL expression of the kit, and where it is (for test names and messages). */
export interface Expression {
  where: string;
  expr: string;
}

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface DashboardTarget {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}

export interface DashboardPanel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: DashboardTarget[];
  gridPos?: { x: number; y: number; w: number; h: number };
}

export interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels?: DashboardPanel[];
  templating?: { list?: { name: string; type: string; query?: string | { query?: string } }[] };
}

export function alertRules(): AlertRule[] {
  const file = parseYaml(readFileSync(join(MONITORING, RULES_FILE), 'utf8')) as { groups: { rules: AlertRule[] }[] };
  return file.groups.flatMap((g) => g.rules);
}

export function dashboard(): Dashboard {
  return JSON.parse(readFileSync(join(MONITORING, DASHBOARD_FILE), 'utf8')) as Dashboard;
}

/** Panels that show data (rows only group them). */
export function dataPanels(d: Dashboard): DashboardPanel[] {
  return (d.panels ?? []).filter((p) => p.type !== 'row');
}

/** Every expression of the rules and of the dashboard (panel targets and query variables). */
export function kitExpressions(): Expression[] {
  const d = dashboard();
  return [
    ...alertRules().map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
    ...dataPanels(d).flatMap((p) =>
      (p.targets ?? []).map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr ?? '' })),
    ),
    ...(d.templating?.list ?? [])
      .filter((v) => v.type === 'query')
      .map((v) => ({
        where: `variable $${v.name}`,
        expr: typeof v.query === 'string' ? v.query : (v.query?.query ?? ''),
      })),
  ];
}

const inCi = !['', '0', 'false'].includes(process.env.CI ?? '');
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';
const promtoolFound = spawnSync(PROMTOOL, ['--version'], { stdio: 'ignore' }).status === 0;

/**
 * Tests that need promtool: skipped (and reported as skipped) on a machine without it, run in CI
 * (CI=true), where a missing promtool fails them with the way to install it.
 */
export const withPromtool = promtoolFound || inCi ? test : test.skip;

export function promtool(args: string[], cwd = MONITORING, input?: string): { code: number | null; output: string } {
  if (!promtoolFound)
    throw new Error(
      `${PROMTOOL} is missing (CI=${process.env.CI}): install it with bash scripts/dev/install-promtool.sh`,
    );
  const run = spawnSync(PROMTOOL, args, { cwd, input, encoding: 'utf8', timeout: 60_000 });
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}
