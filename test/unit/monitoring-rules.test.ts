// The alert rules as Prometheus loads them: `promtool check rules`, and `promtool test rules` on
// input series where each alert must fire when it should and stay quiet otherwise. The dashboard's
// expressions go through the same PromQL parser as recording rules.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import {
  alertRules,
  dashboard,
  dataPanels,
  MONITORING,
  promtool,
  RULE_TESTS_FILE,
  RULES_FILE,
  withPromtool,
} from '../support/monitoring-kit';

describe('the alert rules', () => {
  test('are the four the kit promises, each with a severity, a summary and a description', () => {
    const rules = alertRules();
    expect(rules.map((r) => r.alert).sort()).toEqual([
      'LifeboatBackupOlderThanRpo',
      'LifeboatDrillFailed',
      'LifeboatDrillOverdue',
      'LifeboatStandbyLagOverRpo',
    ]);
    for (const r of rules) {
      expect([r.alert, r.labels?.severity]).toEqual([r.alert, expect.stringMatching(/^(warning|critical)$/)]);
      expect([r.alert, Object.keys(r.annotations ?? {}).sort()]).toEqual([r.alert, ['description', 'summary']]);
    }
  });

  test('each alert has a unit test in which it fires', () => {
    const file = parseYaml(readFileSync(join(MONITORING, RULE_TESTS_FILE), 'utf8')) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
    };
    const firing = new Set(
      file.tests
        .flatMap((t) => t.alert_rule_test ?? [])
        .filter((c) => c.exp_alerts?.length)
        .map((c) => c.alertname),
    );
    expect(
      alertRules()
        .filter((r) => !firing.has(r.alert))
        .map((r) => r.alert),
    ).toEqual([]);
  });

  withPromtool('pass promtool check rules', () => {
    const { code, output } = promtool(['check', 'rules', RULES_FILE]);
    expect({ code, output }).toEqual({ code: 0, output: expect.stringContaining('SUCCESS: 4 rules found') });
  });

  withPromtool('pass their promtool unit tests', () => {
    const { code, output } = promtool(['test', 'rules', RULE_TESTS_FILE]);
    expect({ code, output }).toEqual({ code: 0, output: expect.stringContaining('SUCCESS') });
  });

  withPromtool("the dashboard's expressions parse as PromQL", () => {
    // As recording rules, promtool parses them without a server; $database is inside a string.
    const rules = dataPanels(dashboard()).flatMap((p) =>
      (p.targets ?? []).map((t) => ({ record: `dashboard:panel_${p.id}:${t.refId}`, expr: t.expr })),
    );
    const dir = mkdtempSync(join(tmpdir(), 'lifeboat-dashboard-'));
    try {
      writeFileSync(join(dir, 'dashboard.yml'), toYaml({ groups: [{ name: 'dashboard', rules }] }));
      const { code, output } = promtool(['check', 'rules', 'dashboard.yml'], dir);
      expect({ code, output }).toEqual({
        code: 0,
        output: expect.stringContaining(`SUCCESS: ${rules.length} rules found`),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
