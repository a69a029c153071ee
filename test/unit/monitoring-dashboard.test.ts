// The Grafana dashboard in monitoring/: JSON Grafana imports, every panel querying the dashboard's
// Prometheus data source, ids unique, and the layout inside Grafana's 24-column grid.
import { dashboard, dataPanels } from '../support/monitoring-kit';

describe('the Grafana dashboard', () => {
  const d = dashboard();

  test('has a uid, a title and a schema version Grafana 10 and later import', () => {
    expect(d.uid).toBe('lifeboat-dr');
    expect(d.title).toEqual(expect.any(String));
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
  });

  test('has unique panel ids', () => {
    const ids = (d.panels ?? []).map((p) => p.id);
    expect(ids.every((id) => Number.isInteger(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('shows what the kit promises: drills against objectives, backup age, standby lag, readiness', () => {
    const exprs = dataPanels(d).flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    for (const family of [
      'lifeboat_last_drill_passed',
      'lifeboat_last_drill_rto_seconds',
      'lifeboat_last_drill_rto_objective_seconds',
      'lifeboat_last_drill_rpo_seconds',
      'lifeboat_last_drill_rpo_objective_seconds',
      'lifeboat_newest_backup_age_seconds',
      'lifeboat_standby_lag_seconds',
      'lifeboat_readiness_ok',
    ])
      expect([family, exprs.some((e) => e?.includes(family))]).toEqual([family, true]);
  });

  test.each(dataPanels(d).map((p) => [p.title ?? `panel ${p.id}`, p] as const))(
    'panel "%s" queries the Prometheus data source variable, with an expression per target',
    (_title, p) => {
      const source = { type: 'prometheus', uid: '${datasource}' };
      expect(p.datasource).toEqual(source);
      expect(p.targets?.length).toBeGreaterThan(0);
      const refIds = p.targets!.map((t) => t.refId);
      expect(new Set(refIds).size).toBe(refIds.length);
      for (const t of p.targets!)
        expect(t).toEqual(expect.objectContaining({ datasource: source, expr: expect.stringMatching(/\S/) }));
      const { x, w } = p.gridPos!;
      expect(x >= 0 && w > 0 && x + w <= 24).toBe(true);
    },
  );

  test('its $datasource variable picks a Prometheus data source', () => {
    expect(d.templating?.list).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }),
      ]),
    );
  });
});
