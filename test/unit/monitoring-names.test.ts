// The alert rules and the dashboard name only metrics and labels the worker really exports: the
// families are read from the worker's own registry, not from a list kept by hand.
import { LifeboatMetrics } from '../../worker/metrics';
import { kitExpressions } from '../support/monitoring-kit';

const exported = new LifeboatMetrics().registry.labelsByFamily;
/** Lifeboat's families and the process's; the Temporal runtime's (`temporal_*`) are the SDK's. */
const OWN_METRIC = /\b(?:lifeboat|nodejs|process)_[a-zA-Z0-9_]*/g;
/** Labels every scraped series gets from Prometheus itself. */
const TARGET_LABELS = ['instance', 'job'];

function labelsUsed(expr: string): string[] {
  const grouped = [...expr.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)].flatMap(
    (m) => m[1]!.split(','),
  );
  const matched = [...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) =>
    [...m[1]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!),
  );
  return [...grouped, ...matched].map((l) => l.trim()).filter(Boolean);
}

describe('the monitoring kit uses what the worker exports', () => {
  test('the worker exports the families the kit is about, with their labels', () => {
    // Guards the derivation itself: an empty registry would make every check below pass.
    const sample = [
      'lifeboat_last_drill_passed',
      'lifeboat_standby_lag_objective_seconds',
      'nodejs_heap_size_used_bytes',
    ];
    expect(new Map(sample.map((name) => [name, exported.get(name)]))).toEqual(
      new Map([
        ['lifeboat_last_drill_passed', ['database']],
        ['lifeboat_standby_lag_objective_seconds', ['replica_set']],
        ['nodejs_heap_size_used_bytes', []],
      ]),
    );
  });

  test.each(kitExpressions())('$where names only exported metrics', ({ expr }) => {
    const used = [...expr.matchAll(OWN_METRIC)].map((m) => m[0]);
    expect(used.filter((name) => !exported.has(name))).toEqual([]);
  });

  test.each(kitExpressions().filter(({ expr }) => !/\btemporal_/.test(expr)))(
    '$where groups and matches only on labels its metrics have',
    ({ expr }) => {
      const names = [...expr.matchAll(OWN_METRIC)].map((m) => m[0]);
      const known = new Set([...TARGET_LABELS, ...names.flatMap((n) => exported.get(n) ?? [])]);
      expect(labelsUsed(expr).filter((l) => !known.has(l))).toEqual([]);
    },
  );
});
