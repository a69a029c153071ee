// The Prometheus text format the worker writes itself: escaping, one family per name, HELP/TYPE,
// values replaced rather than duplicated, and what Lifeboat's own families say.
import { escapeLabelValue, GaugeRegistry, LifeboatMetrics, type DrillSighting } from '../../worker/metrics';

/** Sample lines of one family, keyed by their label part. */
function samples(text: string, name: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    const cut = rest.lastIndexOf(' ');
    out.set(rest.slice(0, cut), rest.slice(cut + 1));
  }
  return out;
}

describe('the exposition format', () => {
  test('label values escape backslash, double quote and line feed, and nothing else', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeLabelValue("plain 'single' {braces}, = ok")).toBe("plain 'single' {braces}, = ok");
    const r = new GaugeRegistry();
    r.gauge('x_seconds', 'x', ['database']).set({ database: 'evil"} 1\nfake_metric{a="b' }, 2);
    const text = r.render();
    expect(text).toContain('x_seconds{database="evil\\"} 1\\nfake_metric{a=\\"b"} 2\n');
    // The hostile value cannot start a line of its own.
    expect(text.split('\n').filter((l) => l.startsWith('fake_metric'))).toEqual([]);
  });

  test('each family has HELP then TYPE gauge before its samples, once; HELP escapes backslash and line feed', () => {
    const r = new GaugeRegistry();
    const a = r.gauge('a_total_things', 'first line\nsecond \\ "quoted"', ['k']);
    const b = r.gauge('b_up', 'up');
    a.set({ k: '1' }, 1);
    a.set({ k: '2' }, 2);
    b.set({}, 1);
    expect(r.render()).toBe(
      [
        '# HELP a_total_things first line\\nsecond \\\\ "quoted"',
        '# TYPE a_total_things gauge',
        'a_total_things{k="1"} 1',
        'a_total_things{k="2"} 2',
        '# HELP b_up up',
        '# TYPE b_up gauge',
        'b_up 1',
        '',
      ].join('\n'),
    );
  });

  test('setting the same labels replaces the value; other label sets stay; removed ones go', () => {
    const r = new GaugeRegistry();
    const g = r.gauge('lag_seconds', 'lag', ['replica_set', 'region']);
    g.set({ replica_set: 'orders', region: 'a' }, 5);
    g.set({ region: 'a', replica_set: 'orders' }, 7);
    g.set({ replica_set: 'orders', region: 'b' }, 1);
    let text = r.render();
    expect(text.match(/^lag_seconds\{/gm)).toHaveLength(2);
    expect(text).toContain('lag_seconds{replica_set="orders",region="a"} 7\n');
    expect(text.match(/^# TYPE lag_seconds gauge$/gm)).toHaveLength(1);
    g.remove({ replica_set: 'orders', region: 'a' });
    text = r.render();
    expect(text).not.toContain('region="a"');
    g.clear();
    // A family without samples is left out entirely.
    expect(r.render()).toBe('');
  });

  test('special values use Prometheus spellings; large and fractional numbers round-trip', () => {
    const r = new GaugeRegistry();
    const g = r.gauge('v', 'v', ['n']);
    g.set({ n: 'nan' }, NaN);
    g.set({ n: 'inf' }, Infinity);
    g.set({ n: 'ninf' }, -Infinity);
    g.set({ n: 'frac' }, 12.345678901234567);
    g.set({ n: 'big' }, 1e21);
    const s = samples(r.render(), 'v');
    expect(s.get('{n="nan"}')).toBe('NaN');
    expect(s.get('{n="inf"}')).toBe('+Inf');
    expect(s.get('{n="ninf"}')).toBe('-Inf');
    expect(Number(s.get('{n="frac"}'))).toBe(12.345678901234567);
    expect(Number(s.get('{n="big"}'))).toBe(1e21);
  });

  test('invalid metric and label names, a name registered twice, and missing labels are refused', () => {
    const r = new GaugeRegistry();
    expect(() => r.gauge('1bad', 'x')).toThrow(/metric name "1bad" is not valid/);
    expect(() => r.gauge('ok', 'x', ['bad-label'])).toThrow(/label name "bad-label" of ok is not valid/);
    expect(() => r.gauge('ok2', 'x', ['__reserved'])).toThrow(/not starting with __/);
    r.gauge('twice', 'x');
    expect(() => r.gauge('twice', 'x')).toThrow(/twice is already registered/);
    const g = r.gauge('needs', 'x', ['database']);
    expect(() => g.set({} as { database: string }, 1)).toThrow(/needs label database/);
  });
});

describe("Lifeboat's families", () => {
  const clock = { t: 1_700_000_000_000 };
  const now = () => clock.t;

  test('readiness figures carry a measured timestamp; unmeasurable lag drops the old figure', async () => {
    const m = new LifeboatMetrics({ now });
    m.observeBackupAge('orders', 'local-a', 120);
    m.observeBackupAge('orders', 'local-a', 30);
    m.observeStandbyLag('orders', 1.5, 4096);
    m.observeReadiness('orders', 'standby streaming', true);
    m.observeReadiness('orders', 'backup fresh', false);
    let text = await m.exposition();
    expect(samples(text, 'lifeboat_newest_backup_age_seconds')).toEqual(
      new Map([['{database="orders",region="local-a"}', '30']]),
    );
    expect(
      samples(text, 'lifeboat_newest_backup_measured_timestamp_seconds').get('{database="orders",region="local-a"}'),
    ).toBe('1700000000');
    expect(samples(text, 'lifeboat_standby_lag_seconds').get('{replica_set="orders"}')).toBe('1.5');
    expect(samples(text, 'lifeboat_standby_lag_bytes').get('{replica_set="orders"}')).toBe('4096');
    expect(samples(text, 'lifeboat_readiness_ok')).toEqual(
      new Map([
        ['{database="orders",check="standby streaming"}', '1'],
        ['{database="orders",check="backup fresh"}', '0'],
      ]),
    );
    expect(samples(text, 'lifeboat_readiness_measured_timestamp_seconds').get('{database="orders"}')).toBe(
      '1700000000',
    );
    // No runtime exporter configured: said, not silently missing.
    expect(samples(text, 'lifeboat_runtime_metrics_up').get('')).toBe('0');
    // No drill source: no drill families and no visibility gauge.
    expect(text).not.toContain('lifeboat_last_drill');
    expect(text).not.toContain('lifeboat_visibility_up');

    clock.t += 60_000;
    m.observeStandbyLag('orders', null, null);
    text = await m.exposition();
    expect(samples(text, 'lifeboat_standby_lag_seconds').size).toBe(0);
    expect(samples(text, 'lifeboat_standby_lag_bytes').size).toBe(0);
    expect(samples(text, 'lifeboat_standby_lag_measured_timestamp_seconds').get('{replica_set="orders"}')).toBe(
      '1700000060',
    );
  });

  test('drills: asked at most once per refresh interval, replaced on each listing, kept (visibility down) when it fails', async () => {
    let calls = 0;
    let answer: () => Promise<DrillSighting[]> = async () => [
      {
        database: 'orders',
        passed: true,
        closedAt: new Date(1_700_000_000_500),
        rtoSeconds: 42.25,
        rpoSeconds: 0,
        objectives: { rtoSeconds: 1800, rpoSeconds: 900 },
      },
      { database: 'billing', passed: false, closedAt: new Date(1_699_000_000_000) },
    ];
    const m = new LifeboatMetrics({ now, drills: () => (calls++, answer()) });
    let text = await m.exposition();
    expect(samples(text, 'lifeboat_last_drill_passed')).toEqual(
      new Map([
        ['{database="orders"}', '1'],
        ['{database="billing"}', '0'],
      ]),
    );
    expect(samples(text, 'lifeboat_last_drill_timestamp_seconds').get('{database="orders"}')).toBe('1700000000.5');
    expect(samples(text, 'lifeboat_last_drill_rto_seconds')).toEqual(new Map([['{database="orders"}', '42.25']]));
    expect(samples(text, 'lifeboat_last_drill_rpo_seconds')).toEqual(new Map([['{database="orders"}', '0']]));
    expect(samples(text, 'lifeboat_last_drill_rto_objective_seconds').get('{database="orders"}')).toBe('1800');
    expect(samples(text, 'lifeboat_last_drill_rpo_objective_seconds').get('{database="orders"}')).toBe('900');
    expect(samples(text, 'lifeboat_visibility_up').get('')).toBe('1');

    await m.exposition();
    expect(calls).toBe(1);

    clock.t += 15_000;
    answer = async () => [{ database: 'orders', passed: false, closedAt: new Date(1_700_000_010_000) }];
    text = await m.exposition();
    expect(calls).toBe(2);
    expect(samples(text, 'lifeboat_last_drill_passed')).toEqual(new Map([['{database="orders"}', '0']]));
    expect(samples(text, 'lifeboat_last_drill_rto_seconds').size).toBe(0);

    clock.t += 15_000;
    answer = async () => {
      throw new Error('visibility unavailable');
    };
    text = await m.exposition();
    expect(samples(text, 'lifeboat_visibility_up').get('')).toBe('0');
    expect(samples(text, 'lifeboat_last_drill_passed')).toEqual(new Map([['{database="orders"}', '0']]));
  });

  test('a slow visibility listing does not hold the scrape', async () => {
    let release: (d: DrillSighting[]) => void = () => undefined;
    const m = new LifeboatMetrics({
      now,
      drillsTimeoutMs: 50,
      drills: () => new Promise((resolve) => (release = resolve)),
    });
    const text = await m.exposition();
    expect(samples(text, 'lifeboat_visibility_up').get('')).toBe('0');
    release([{ database: 'orders', passed: true, closedAt: new Date(0) }]);
    await new Promise((r) => setImmediate(r));
    // The listing finished after the scrape: the next scrape has it without asking again.
    const next = await m.exposition();
    expect(samples(next, 'lifeboat_last_drill_passed').get('{database="orders"}')).toBe('1');
    expect(samples(next, 'lifeboat_visibility_up').get('')).toBe('1');
  });
});
