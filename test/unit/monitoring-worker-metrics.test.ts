// What the worker's endpoint adds for the monitoring kit: the process's heap and event-loop delay
// under Prometheus's conventional names and units, the plan's objectives the alert rules compare
// with, and the Temporal runtime's durations in seconds like Lifeboat's own.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import {
  LifeboatMetrics,
  planObjectives,
  runtimeMetricsExporter,
  startMetricsServer,
  type MetricsServer,
} from '../../worker/metrics';
import { loadPlanFile, parsePlan } from '../../worker/plan';
import { promtool, withPromtool } from '../support/monitoring-kit';
import { freePort } from '../support/ports';

const ROOT = join(__dirname, '..', '..');

/** name{labels} -> value, for the sample lines of one exposition. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}

/**
 * Lets the event-loop monitor tick: its first tick only sets a baseline, and on a loaded machine one
 * long wait can be a single turn of the loop.
 */
async function eventLoopTurns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 10));
}

describe('process metrics on the worker endpoint', () => {
  let server: MetricsServer;
  beforeAll(async () => {
    server = await startMetricsServer(new LifeboatMetrics(), { host: '127.0.0.1', port: 0 });
  });
  afterAll(() => server.close());

  test('a scrape shows heap, resident memory and the event-loop delay since the previous scrape, in bytes and seconds', async () => {
    // Hold the event loop for 200 ms (once the monitor has ticked, so it has a baseline): the delay
    // must show as about that, in seconds (not nanoseconds).
    await eventLoopTurns();
    const until = Date.now() + 200;
    while (Date.now() < until);
    await eventLoopTurns(1);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const s = samples(text);
    for (const name of [
      'nodejs_heap_size_used_bytes',
      'nodejs_heap_size_total_bytes',
      'nodejs_external_memory_bytes',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_mean_seconds',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_eventloop_lag_max_seconds',
    ])
      expect(text).toMatch(new RegExp(`^# TYPE ${name} gauge$`, 'm'));
    expect(s.get('nodejs_heap_size_used_bytes')).toBeGreaterThan(1e6);
    expect(s.get('nodejs_heap_size_used_bytes')).toBeLessThanOrEqual(s.get('nodejs_heap_size_total_bytes')!);
    expect(s.get('process_resident_memory_bytes')).toBeGreaterThan(s.get('nodejs_heap_size_used_bytes')!);
    expect(s.get('nodejs_eventloop_lag_max_seconds')).toBeGreaterThanOrEqual(0.15);
    expect(s.get('nodejs_eventloop_lag_max_seconds')).toBeLessThan(60);
    expect(s.get('nodejs_eventloop_lag_p99_seconds')).toBeLessThanOrEqual(s.get('nodejs_eventloop_lag_max_seconds')!);
  });
});

describe('the whole exposition', () => {
  withPromtool("passes promtool's lint of names, units and help (every family with a sample)", async () => {
    const m = new LifeboatMetrics({
      drills: () =>
        Promise.resolve([
          {
            database: 'orders',
            passed: true,
            closedAt: new Date(),
            rtoSeconds: 60,
            rpoSeconds: 1,
            objectives: { rtoSeconds: 1800, rpoSeconds: 900 },
          },
        ]),
    });
    const stop = m.monitorEventLoop();
    await eventLoopTurns();
    m.setObjectives(planObjectives(loadPlanFile(join(ROOT, 'scripts', 'dev', 'demo-plan.yaml'))));
    m.observeBackupAge('orders', 'local-b', 30);
    m.observeStandbyLag('local-a', 0.5, 1024);
    m.observeReadiness('orders', 'backup fresh', true);
    const text = await m.exposition();
    stop();
    const families = text.match(/^# TYPE \S+/gm) ?? [];
    expect(families).toHaveLength(m.registry.labelsByFamily.size);
    expect(promtool(['check', 'metrics'], undefined, text)).toEqual({ code: 0, output: '' });
  });
});

describe("the plan's objectives on the worker endpoint", () => {
  test('each database has its RPO, RTO and drill window; its replica set the RPO its standby must keep', async () => {
    const m = new LifeboatMetrics();
    m.setObjectives(planObjectives(loadPlanFile(join(ROOT, 'scripts', 'dev', 'demo-plan.yaml'))));
    const s = samples(await m.exposition());
    expect(s.get('lifeboat_rpo_objective_seconds{database="orders"}')).toBe(900);
    expect(s.get('lifeboat_rto_objective_seconds{database="orders"}')).toBe(1800);
    // No drill schedule in the demo plan: a week.
    expect(s.get('lifeboat_drill_window_seconds{database="orders"}')).toBe(7 * 24 * 3600);
    expect(s.get('lifeboat_standby_lag_objective_seconds{replica_set="local-a"}')).toBe(900);
  });

  test('a replica set shared by databases is held to the strictest RPO; a database without a standby has none', async () => {
    const plan = parsePlan(
      [
        'regions: { a: { provider: local }, b: { provider: local } }',
        'databases:',
        '  strict: { primary: { region: a, database: strict }, dr: { region: b, standby: true }, objectives: { rpo: 5m, rto: 1h } }',
        '  loose: { primary: { region: a, database: loose }, dr: { region: b, standby: true }, objectives: { rpo: 1h, rto: 1h } }',
        '  cold: { primary: { region: b, database: cold }, dr: { region: a }, objectives: { rpo: 1m, rto: 1h } }',
      ].join('\n'),
      'test plan',
    );
    const m = new LifeboatMetrics();
    m.setObjectives(planObjectives(plan));
    const lag = [...samples(await m.exposition())].filter(([k]) =>
      k.startsWith('lifeboat_standby_lag_objective_seconds'),
    );
    expect(lag).toEqual([['lifeboat_standby_lag_objective_seconds{replica_set="a"}', 300]]);
  });
});

describe("the Temporal runtime's metrics", () => {
  test('report durations in seconds, with the unit in the name', async () => {
    // A process of its own: the runtime is installed once per process, with these options.
    const port = await freePort();
    const script = `
      const { Runtime, NativeConnection } = require('@temporalio/worker');
      const [metrics, address, url] = JSON.parse(process.env.RUNTIME_TEST);
      Runtime.install({ telemetryOptions: { metrics } });
      NativeConnection.connect({ address })
        .then(async () => process.stdout.write(await (await fetch(url)).text(), () => process.exit(0)))
        .catch((err) => { console.error(err); process.exit(1); });`;
    const child = spawn(process.execPath, ['-e', script], {
      cwd: ROOT,
      env: {
        ...process.env,
        RUNTIME_TEST: JSON.stringify([
          runtimeMetricsExporter(`127.0.0.1:${port}`),
          process.env.TEMPORAL_ADDRESS,
          `http://127.0.0.1:${port}/metrics`,
        ]),
      },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect({ code, err }).toEqual({ code: 0, err: '' });
    // Connecting asked the server for its system info: one request, timed in seconds.
    expect(out).toMatch(/^# TYPE temporal_request_latency_seconds histogram$/m);
    const bounds = [...out.matchAll(/^temporal_request_latency_seconds_bucket\{.*le="([^"]+)"\}/gm)].map((m) => m[1]);
    expect(bounds).toContain('0.05');
    expect(bounds).not.toContain('50');
  });
});
