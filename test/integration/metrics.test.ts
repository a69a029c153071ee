// The worker's Prometheus endpoint, for real: a `lifeboat worker` process with LIFEBOAT_METRICS_PORT
// runs a drill of the demo database, and one scrape shows the Temporal runtime's metrics beside that
// drill's verdict and RTO as visibility recorded them. The readiness API and label escaping are
// checked on an in-process endpoint (the readiness activities publish from the worker's process).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LifeboatMetrics, startMetricsServer, type MetricsServer } from '../../worker/metrics';
import { RUNBOOK_TASK_QUEUE, type RunbookReport } from '../../workflows/types';
import { CLI } from '../support/cli';
import { freePort } from '../support/ports';
import { drillInput, loadPlanFile, readinessInput } from '../../worker/plan';
import { client, env } from '../support/stack';
import { runbookReport } from '../../workflows/runbook-failure';

/** The value of one sample line, by its exact name and label part (`''` for none). */
function sample(text: string, name: string, labels = ''): string | undefined {
  const prefix = `${name}${labels} `;
  return text
    .split('\n')
    .find((l) => l.startsWith(prefix))
    ?.slice(prefix.length);
}

async function scrape(url: string): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

// The drill's own name in the plan (its PostgreSQL database is still orders): other test files drill
// "orders" too, and a run of theirs finishing later would be the newest "orders" drill.
const DRILL_DB = `metrics-orders-${Date.now()}`;

/** The demo plan plus DRILL_DB: the worker checks every run's input against the plan it serves. */
function writePlan(): string {
  const demo = readFileSync(join(env().projectRoot, 'scripts', 'dev', 'demo-plan.yaml'), 'utf8');
  const file = join(env().home, 'plans', 'metrics.yaml');
  mkdirSync(join(env().home, 'plans'), { recursive: true });
  writeFileSync(
    file,
    `${demo.trimEnd()}\n  ${DRILL_DB}:\n    primary: { region: local-a, database: orders }\n    dr: { region: local-b }\n    objectives: { rpo: 15m, rto: 30m }\n` +
      `    checks:\n      - name: recent orders exist\n        sql: select count(*) > 0 from orders\n`,
  );
  return file;
}

describe('the metrics endpoint of a `lifeboat worker` process', () => {
  let worker: ChildProcess;
  let output = '';
  let base: string;
  let report: RunbookReport;
  let readiness: RunbookReport;

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const planFile = writePlan();
    const plan = loadPlanFile(planFile);
    worker = spawn(process.execPath, [CLI, 'worker', '-f', planFile], {
      env: { ...process.env, LIFEBOAT_METRICS_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    worker.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    try {
      await waitFor('the worker to serve /healthz', 60_000, async () =>
        (await fetch(`${base}/healthz`)).ok ? true : undefined,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\nworker output:\n${output}`);
    }
    const c = await client();
    const handle = await c.workflow.start('drill', {
      taskQueue: RUNBOOK_TASK_QUEUE,
      workflowId: `test/metrics/drill/${Date.now()}`,
      args: [drillInput(plan, DRILL_DB, { fromLatestBackup: false, triggeredBy: 'test' })],
    });
    report = await runbookReport(handle);
    const input = readinessInput(plan, 'orders', { triggeredBy: 'test' });
    readiness = await runbookReport(
      await c.workflow.start('readiness', {
        taskQueue: RUNBOOK_TASK_QUEUE,
        workflowId: `test/metrics/readiness/${Date.now()}`,
        args: [input],
      }),
    );
  });

  afterAll(async () => {
    if (!worker || worker.exitCode !== null) return;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.kill('SIGTERM');
    const timer = setTimeout(() => worker.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  });

  test("one scrape has the Temporal runtime's metrics and the drill's verdict, RTO and RPO as visibility recorded them", async () => {
    expect(report.outcome).toBe('passed');
    expect(report.rtoSeconds).toBeGreaterThan(0);
    // Visibility is asked at most every 15 s: wait until the scrape reflects this drill.
    let last = '';
    const { type, text } = await waitFor('the drill in /metrics', 45_000, async () => {
      const s = await scrape(`${base}/metrics`);
      last = s.text
        .split('\n')
        .filter((l) => /^lifeboat_(last_drill|visibility)/.test(l) && (l.includes(DRILL_DB) || !l.includes('{')))
        .join('\n');
      return sample(s.text, 'lifeboat_last_drill_rto_seconds', `{database="${DRILL_DB}"}`) === String(report.rtoSeconds)
        ? s
        : undefined;
    }).catch((err: Error) => {
      throw new Error(
        `${err.message}; the drill's RTO ${report.rtoSeconds}; last scrape:\n${last}\nworker output:\n${output.slice(-3000)}`,
      );
    });
    expect(type).toBe('text/plain; version=0.0.4; charset=utf-8');

    expect(sample(text, 'lifeboat_runtime_metrics_up')).toBe('1');
    expect(text).toMatch(/^# TYPE temporal_request counter$/m);
    expect(text).toMatch(/^temporal_workflow_completed\{.*\} \d+$/m);
    expect(text).toMatch(/^temporal_num_pollers\{.*\} \d+$/m);

    expect(sample(text, 'lifeboat_visibility_up')).toBe('1');
    expect(sample(text, 'lifeboat_last_drill_passed', `{database="${DRILL_DB}"}`)).toBe('1');
    expect(Number(sample(text, 'lifeboat_last_drill_rto_seconds', `{database="${DRILL_DB}"}`))).toBe(report.rtoSeconds);
    expect(Number(sample(text, 'lifeboat_last_drill_rpo_seconds', `{database="${DRILL_DB}"}`))).toBe(report.rpoSeconds);
    expect(Number(sample(text, 'lifeboat_last_drill_rto_objective_seconds', `{database="${DRILL_DB}"}`))).toBe(
      report.objectives.rtoSeconds,
    );
    expect(Number(sample(text, 'lifeboat_last_drill_rpo_objective_seconds', `{database="${DRILL_DB}"}`))).toBe(
      report.objectives.rpoSeconds,
    );
    const closed = Number(sample(text, 'lifeboat_last_drill_timestamp_seconds', `{database="${DRILL_DB}"}`));
    expect(closed * 1000).toBeGreaterThanOrEqual(Date.parse(report.finishedAt) - 1000);
    expect(closed * 1000).toBeLessThanOrEqual(Date.now());
    // Fleet drills record the database '(fleet)': not a database, never a series.
    expect(text).not.toContain('database="(fleet)"');

    // Every family is declared exactly once.
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    expect(new Set(types).size).toBe(types.length);
  });

  test("a readiness run's figures and verdicts reach the worker's endpoint: backup age per region, one gauge per check", async () => {
    const { text } = await scrape(`${base}/metrics`);
    const age = Number(sample(text, 'lifeboat_newest_backup_age_seconds', '{database="orders",region="local-a"}'));
    // The drill above made a backup seconds ago.
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(600);
    expect(readiness.checks.length).toBeGreaterThan(3);
    for (const check of readiness.checks) {
      expect({
        check: check.name,
        value: sample(text, 'lifeboat_readiness_ok', `{database="orders",check="${check.name}"}`),
      }).toEqual({ check: check.name, value: check.ok ? '1' : '0' });
    }
  });

  test('/healthz answers ok; other paths are 404, other methods 405', async () => {
    expect(await scrape(`${base}/healthz`)).toMatchObject({ status: 200, text: 'ok\n' });
    expect((await scrape(`${base}/`)).status).toBe(404);
    expect((await scrape(`${base}/metrics/extra`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  test('SIGTERM stops the worker and closes the endpoint', async () => {
    const exited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));
    worker.kill('SIGTERM');
    expect(await exited).toBe(0);
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});

describe('the readiness API on an in-process endpoint', () => {
  let server: MetricsServer;
  let metrics: LifeboatMetrics;

  beforeAll(async () => {
    // The runtime exporter's address answers nothing: Lifeboat's metrics are still served, and say so.
    metrics = new LifeboatMetrics({ runtimeMetricsUrl: `http://127.0.0.1:${await freePort()}/metrics` });
    server = await startMetricsServer(metrics, { host: '127.0.0.1', port: 0 });
  });
  afterAll(() => server?.close());

  test('published backup age, lag and readiness appear, with hostile names escaped', async () => {
    const hostile = 'or"ders\\x\n} 1\nlifeboat_readiness_ok{database="forged"';
    metrics.observeBackupAge('orders', 'local-b', 12.5);
    metrics.observeBackupAge(hostile, 'local-a', 99);
    metrics.observeStandbyLag('orders', 0.25, 1024);
    metrics.observeReadiness(hostile, 'backup fresh', true);
    const { status, text } = await scrape(`${server.url}/metrics`);
    expect(status).toBe(200);
    expect(sample(text, 'lifeboat_runtime_metrics_up')).toBe('0');
    expect(sample(text, 'lifeboat_newest_backup_age_seconds', '{database="orders",region="local-b"}')).toBe('12.5');
    const escaped = 'or\\"ders\\\\x\\n} 1\\nlifeboat_readiness_ok{database=\\"forged\\"';
    expect(sample(text, 'lifeboat_newest_backup_age_seconds', `{database="${escaped}",region="local-a"}`)).toBe('99');
    expect(sample(text, 'lifeboat_readiness_ok', `{database="${escaped}",check="backup fresh"}`)).toBe('1');
    expect(text).not.toContain('lifeboat_readiness_ok{database="forged"');
    expect(text.split('\n').filter((l) => l.startsWith('lifeboat_readiness_ok'))).toHaveLength(1);
    expect(sample(text, 'lifeboat_standby_lag_seconds', '{replica_set="orders"}')).toBe('0.25');
    expect(sample(text, 'lifeboat_standby_lag_bytes', '{replica_set="orders"}')).toBe('1024');
    const measured = Number(
      sample(text, 'lifeboat_newest_backup_measured_timestamp_seconds', '{database="orders",region="local-b"}'),
    );
    expect(Math.abs(measured - Date.now() / 1000)).toBeLessThan(60);
  });
});
