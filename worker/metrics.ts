// The worker's Prometheus endpoint. One scrape returns the Temporal runtime's own metrics (the core's
// exporter, bound to an internal loopback port and fetched per scrape) followed by Lifeboat's: the
// newest drill of each database as Temporal's visibility records it, the figures readiness
// activities publish in this process (newest backup age, standby lag, readiness verdicts), the
// objectives of the plan the worker serves, and the process's own heap and event-loop delay.
// Prometheus text format 0.0.4, written here: a handful of gauges needs no client library.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import type { MetricsExporterConfig } from '@temporalio/worker';
import type { Logger } from 'pino';
import { runbookReport } from '../workflows/runbook-failure';
import {
  FINISHED_WITH_REPORT,
  listRuns,
  numberAttribute,
  stringAttribute,
  visibilityString,
} from '../activities/visibility';
import type { ReadinessMetrics } from '../activities/deps';
import { DatabaseAttr, OutcomeAttr, RpoSecondsAttr, RtoSecondsAttr } from '../workflows/search-attributes';
import type { Objectives, RunbookReport } from '../workflows/types';
import { readinessInput, type LoadedPlan } from './plan';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value inside its double quotes: backslash, double quote and line feed are escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes backslash and line feed only (quotes are literal there). */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** One gauge family: a value per distinct label set; setting the same labels again replaces it. */
export class Gauge<L extends string = never> {
  private readonly samples = new Map<string, { labels: Record<L, string>; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
  ) {
    if (!METRIC_NAME.test(name))
      throw new Error(`metric name ${JSON.stringify(name)} is not valid; expected [a-zA-Z_:][a-zA-Z0-9_:]*`);
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith('__'))
        throw new Error(
          `label name ${JSON.stringify(label)} of ${name} is not valid; expected [a-zA-Z_][a-zA-Z0-9_]* not starting with __`,
        );
    }
  }

  set(labels: Record<L, string>, value: number): void {
    this.samples.set(this.key(labels), { labels: { ...labels }, value });
  }

  remove(labels: Record<L, string>): void {
    this.samples.delete(this.key(labels));
  }

  clear(): void {
    this.samples.clear();
  }

  get size(): number {
    return this.samples.size;
  }

  /** HELP, TYPE and one line per sample; nothing for a family without samples. */
  render(): string[] {
    if (!this.samples.size) return [];
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} gauge`];
    for (const { labels, value } of this.samples.values()) {
      const pairs = this.labelNames.map((l) => `${l}="${escapeLabelValue(labels[l])}"`);
      lines.push(`${this.name}${pairs.length ? `{${pairs.join(',')}}` : ''} ${formatValue(value)}`);
    }
    return lines;
  }

  private key(labels: Record<L, string>): string {
    const values = this.labelNames.map((l) => {
      const value = labels[l];
      if (typeof value !== 'string') throw new Error(`${this.name} needs label ${l}; got ${JSON.stringify(labels)}`);
      return value;
    });
    return JSON.stringify(values);
  }
}

/** The families of one exposition, each name registered once. */
export class GaugeRegistry {
  private readonly families = new Map<string, Gauge<string>>();

  /** Every family registered, with or without samples, and its label names: what a dashboard or a rule may use. */
  get labelsByFamily(): Map<string, readonly string[]> {
    return new Map([...this.families].map(([name, g]) => [name, g.labelNames]));
  }

  gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    if (this.families.has(name)) throw new Error(`metric ${name} is already registered`);
    const gauge = new Gauge<L>(name, help, labelNames);
    this.families.set(name, gauge as unknown as Gauge<string>);
    return gauge;
  }

  render(): string {
    const lines = [...this.families.values()].flatMap((g) => g.render());
    return lines.length ? lines.join('\n') + '\n' : '';
  }
}

/** The newest completed drill of one database, as visibility (and, for objectives, its result) tells. */
export interface DrillSighting {
  database: string;
  passed: boolean;
  closedAt: Date;
  rtoSeconds?: number;
  rpoSeconds?: number;
  objectives?: Objectives;
}

/** What the plan holds one database to, as its readiness checks judge it. */
export interface DatabaseObjectives {
  database: string;
  rpoSeconds: number;
  rtoSeconds: number;
  /** How recently a drill of the database must have passed. */
  drillWindowSeconds: number;
  /** The replica set of its streaming standby, when it has one. */
  replicaSet?: string;
}

/** The objectives of every database of the plan, for alert rules to compare measurements with. */
export function planObjectives(loaded: LoadedPlan): DatabaseObjectives[] {
  return Object.keys(loaded.plan.databases).map((database) => {
    const input = readinessInput(loaded, database, { triggeredBy: 'metrics' });
    return {
      database,
      ...input.objectives,
      drillWindowSeconds: input.drillWindowSeconds,
      ...(input.replicaSet && { replicaSet: input.replicaSet.set }),
    };
  });
}

/**
 * The Temporal runtime's Prometheus exporter at this address, its durations in seconds with the unit
 * in the name (`temporal_request_latency_seconds`), like Lifeboat's own families.
 */
export function runtimeMetricsExporter(bindAddress: string): MetricsExporterConfig {
  return { prometheus: { bindAddress, useSecondsForDurations: true, unitSuffix: true } };
}

export interface LifeboatMetricsOptions {
  /** Where the newest drills come from (drillsFromVisibility); none: no drill families. */
  drills?: () => Promise<DrillSighting[]>;
  /** The Temporal runtime's internal Prometheus exporter; none: `lifeboat_runtime_metrics_up 0`. */
  runtimeMetricsUrl?: string;
  /** Visibility is asked at most this often, however often Prometheus scrapes. */
  refreshSeconds?: number;
  /** A scrape waits this long for visibility, then serves the last known drills. */
  drillsTimeoutMs?: number;
  runtimeTimeoutMs?: number;
  logger?: Logger;
  now?: () => number;
}

/** Lifeboat's gauges, the API readiness activities publish through, and the whole exposition. */
export class LifeboatMetrics implements ReadinessMetrics {
  readonly registry = new GaugeRegistry();
  private readonly g = gauges(this.registry);
  private readonly processGauges = new ProcessGauges(this.registry);
  private readonly now: () => number;
  private drillsAskedAt = -Infinity;
  private drillsInFlight: Promise<void> | undefined;

  constructor(private readonly options: LifeboatMetricsOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  get runtimeMetricsUrl(): string | undefined {
    return this.options.runtimeMetricsUrl;
  }

  observeBackupAge(database: string, region: string, seconds: number): void {
    this.g.backupAge.set({ database, region }, seconds);
    this.g.backupMeasured.set({ database, region }, this.seconds());
  }

  /** null: not measurable this time (standby unreachable): the old figure is dropped, not kept. */
  observeStandbyLag(set: string, seconds: number | null, bytes: number | null): void {
    if (seconds === null) this.g.lagSeconds.remove({ replica_set: set });
    else this.g.lagSeconds.set({ replica_set: set }, seconds);
    if (bytes === null) this.g.lagBytes.remove({ replica_set: set });
    else this.g.lagBytes.set({ replica_set: set }, bytes);
    this.g.lagMeasured.set({ replica_set: set }, this.seconds());
  }

  observeReadiness(database: string, check: string, ok: boolean): void {
    this.g.readinessOk.set({ database, check }, ok ? 1 : 0);
    this.g.readinessMeasured.set({ database }, this.seconds());
  }

  /** The plan's objectives; a replica set's lag is held to the strictest RPO among its databases. */
  setObjectives(databases: DatabaseObjectives[]): void {
    const { rpoObjective, rtoObjective, drillWindow, lagObjective } = this.g;
    for (const g of [rpoObjective, rtoObjective, drillWindow, lagObjective]) g.clear();
    const strictest = new Map<string, number>();
    for (const d of databases) {
      const labels = { database: d.database };
      rpoObjective.set(labels, d.rpoSeconds);
      rtoObjective.set(labels, d.rtoSeconds);
      drillWindow.set(labels, d.drillWindowSeconds);
      if (d.replicaSet !== undefined)
        strictest.set(d.replicaSet, Math.min(d.rpoSeconds, strictest.get(d.replicaSet) ?? Infinity));
    }
    for (const [set, seconds] of strictest) lagObjective.set({ replica_set: set }, seconds);
  }

  /** Measures the event loop's delay from now until the returned stop is called (the endpoint's lifetime). */
  monitorEventLoop(): () => void {
    return this.processGauges.monitorEventLoop();
  }

  /** The Temporal runtime's families (when reachable), then Lifeboat's and the process's. */
  async exposition(): Promise<string> {
    const [runtime] = await Promise.all([this.runtimeText(), this.refreshDrills()]);
    this.g.runtimeUp.set({}, runtime === null ? 0 : 1);
    this.processGauges.update();
    const head = runtime === null || runtime === '' || runtime.endsWith('\n') ? (runtime ?? '') : runtime + '\n';
    return head + this.registry.render();
  }

  private async runtimeText(): Promise<string | null> {
    const url = this.options.runtimeMetricsUrl;
    if (!url) return null;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.options.runtimeTimeoutMs ?? 2000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return await res.text();
    } catch (err) {
      this.options.logger?.warn({ err, url }, 'the Temporal runtime metrics exporter did not answer');
      return null;
    }
  }

  private async refreshDrills(): Promise<void> {
    const source = this.options.drills;
    if (!source) return;
    if (!this.drillsInFlight && this.now() - this.drillsAskedAt >= (this.options.refreshSeconds ?? 15) * 1000) {
      this.drillsAskedAt = this.now();
      this.drillsInFlight = source()
        .then((drills) => {
          this.setDrills(drills);
          this.g.visibilityUp.set({}, 1);
        })
        .catch((err: unknown) => {
          // The last known drills stay: their timestamps say how old they are.
          this.g.visibilityUp.set({}, 0);
          this.options.logger?.warn({ err }, 'could not list drills from Temporal visibility for metrics');
        })
        .finally(() => (this.drillsInFlight = undefined));
    }
    if (!this.drillsInFlight) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>(
      (resolve) => (timer = setTimeout(() => resolve('timeout'), this.options.drillsTimeoutMs ?? 5000)),
    );
    const outcome = await Promise.race([this.drillsInFlight, timeout]);
    clearTimeout(timer);
    // A slow visibility store does not fail the scrape; the listing finishes for the next one.
    if (outcome === 'timeout') this.g.visibilityUp.set({}, 0);
  }

  private setDrills(drills: DrillSighting[]): void {
    const { drillPassed, drillTime, drillRto, drillRpo, objectiveRto, objectiveRpo } = this.g;
    for (const g of [drillPassed, drillTime, drillRto, drillRpo, objectiveRto, objectiveRpo]) g.clear();
    for (const d of drills) {
      const labels = { database: d.database };
      drillPassed.set(labels, d.passed ? 1 : 0);
      drillTime.set(labels, d.closedAt.getTime() / 1000);
      if (d.rtoSeconds !== undefined) drillRto.set(labels, d.rtoSeconds);
      if (d.rpoSeconds !== undefined) drillRpo.set(labels, d.rpoSeconds);
      if (d.objectives) {
        objectiveRto.set(labels, d.objectives.rtoSeconds);
        objectiveRpo.set(labels, d.objectives.rpoSeconds);
      }
    }
  }

  private seconds(): number {
    return this.now() / 1000;
  }
}

function gauges(r: GaugeRegistry) {
  return {
    drillPassed: r.gauge(
      'lifeboat_last_drill_passed',
      '1 when the newest completed drill of the database passed, 0 when it found a problem (from Temporal visibility, last 30 days).',
      ['database'],
    ),
    drillTime: r.gauge(
      'lifeboat_last_drill_timestamp_seconds',
      'When the newest completed drill of the database closed, in Unix seconds.',
      ['database'],
    ),
    drillRto: r.gauge(
      'lifeboat_last_drill_rto_seconds',
      'RTO measured by the newest completed drill (absent when it did not get that far).',
      ['database'],
    ),
    drillRpo: r.gauge(
      'lifeboat_last_drill_rpo_seconds',
      'RPO measured by the newest completed drill (absent when it did not get that far).',
      ['database'],
    ),
    objectiveRto: r.gauge(
      'lifeboat_last_drill_rto_objective_seconds',
      'The RTO objective the newest completed drill was judged against (from its report).',
      ['database'],
    ),
    objectiveRpo: r.gauge(
      'lifeboat_last_drill_rpo_objective_seconds',
      'The RPO objective the newest completed drill was judged against (from its report).',
      ['database'],
    ),
    visibilityUp: r.gauge(
      'lifeboat_visibility_up',
      '1 when the last listing of drills from Temporal visibility succeeded in time.',
    ),
    runtimeUp: r.gauge(
      'lifeboat_runtime_metrics_up',
      "1 when this scrape includes the Temporal runtime's own metrics.",
    ),
    backupAge: r.gauge(
      'lifeboat_newest_backup_age_seconds',
      'Age of the newest backup of the database in the region when a readiness check last measured it.',
      ['database', 'region'],
    ),
    backupMeasured: r.gauge(
      'lifeboat_newest_backup_measured_timestamp_seconds',
      'When lifeboat_newest_backup_age_seconds was measured, in Unix seconds.',
      ['database', 'region'],
    ),
    lagSeconds: r.gauge(
      'lifeboat_standby_lag_seconds',
      'Replay lag of the standby of the replica set, in seconds, when last measured (absent when it could not be).',
      ['replica_set'],
    ),
    lagBytes: r.gauge(
      'lifeboat_standby_lag_bytes',
      'WAL the standby of the replica set had not replayed, in bytes, when last measured (absent when it could not be).',
      ['replica_set'],
    ),
    lagMeasured: r.gauge(
      'lifeboat_standby_lag_measured_timestamp_seconds',
      'When the standby lag of the replica set was last measured (or found unmeasurable), in Unix seconds.',
      ['replica_set'],
    ),
    readinessOk: r.gauge(
      'lifeboat_readiness_ok',
      '1 when the readiness check of the database passed on its last run, else 0.',
      ['database', 'check'],
    ),
    readinessMeasured: r.gauge(
      'lifeboat_readiness_measured_timestamp_seconds',
      'When a readiness check of the database last reported, in Unix seconds.',
      ['database'],
    ),
    rpoObjective: r.gauge(
      'lifeboat_rpo_objective_seconds',
      'The RPO objective of the database in the plan this worker serves.',
      ['database'],
    ),
    rtoObjective: r.gauge(
      'lifeboat_rto_objective_seconds',
      'The RTO objective of the database in the plan this worker serves.',
      ['database'],
    ),
    drillWindow: r.gauge(
      'lifeboat_drill_window_seconds',
      'How recently a drill of the database must have passed, as readiness checks judge it (from the plan).',
      ['database'],
    ),
    lagObjective: r.gauge(
      'lifeboat_standby_lag_objective_seconds',
      "The strictest RPO objective among the plan's databases in the replica set: the lag its standby must stay under.",
      ['replica_set'],
    ),
  };
}

/**
 * Node's own figures under the names Prometheus client libraries use: memory read at each scrape,
 * the event loop's delay over the time since the previous scrape.
 */
class ProcessGauges {
  private readonly heapUsed: Gauge;
  private readonly heapTotal: Gauge;
  private readonly external: Gauge;
  private readonly resident: Gauge;
  private readonly lag: Record<'mean' | 'p99' | 'max', Gauge>;
  private eventLoop: ReturnType<typeof monitorEventLoopDelay> | undefined;

  constructor(r: GaugeRegistry) {
    this.heapUsed = r.gauge('nodejs_heap_size_used_bytes', 'V8 heap in use, in bytes.');
    this.heapTotal = r.gauge('nodejs_heap_size_total_bytes', 'V8 heap allocated, in bytes.');
    this.external = r.gauge('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript, in bytes.');
    this.resident = r.gauge('process_resident_memory_bytes', 'Resident memory of the worker process, in bytes.');
    const lag = (stat: string) =>
      r.gauge(
        `nodejs_eventloop_lag_${stat}_seconds`,
        `The ${stat} delay of the event loop since the previous scrape, in seconds.`,
      );
    this.lag = { mean: lag('mean'), p99: lag('p99'), max: lag('max') };
  }

  monitorEventLoop(): () => void {
    const histogram = monitorEventLoopDelay({ resolution: 10 });
    histogram.enable();
    this.eventLoop = histogram;
    return () => {
      histogram.disable();
      if (this.eventLoop === histogram) this.eventLoop = undefined;
    };
  }

  update(): void {
    const memory = process.memoryUsage();
    this.heapUsed.set({}, memory.heapUsed);
    this.heapTotal.set({}, memory.heapTotal);
    this.external.set({}, memory.external);
    this.resident.set({}, memory.rss);
    const histogram = this.eventLoop;
    // No sample yet (the first scrape right after start): no figure rather than a made-up one.
    if (!histogram?.count) {
      for (const g of Object.values(this.lag)) g.clear();
      return;
    }
    // The histogram is in nanoseconds.
    this.lag.mean.set({}, histogram.mean / 1e9);
    this.lag.p99.set({}, histogram.percentile(99) / 1e9);
    this.lag.max.set({}, histogram.max / 1e9);
    histogram.reset();
  }
}

const FLEET = '(fleet)';

/**
 * The newest completed drill of each database closed in the window, from visibility (one listing for
 * the fleet, bounded), with the objectives read once per run from its report.
 */
export function drillsFromVisibility(
  client: () => Promise<Client>,
  bounds: { days?: number; maxRuns?: number } = {},
): () => Promise<DrillSighting[]> {
  const objectivesByRun = new Map<string, Objectives | null>();
  return async () => {
    const c = await client();
    const since = new Date(Date.now() - (bounds.days ?? 30) * 86_400_000).toISOString();
    const query = `LifeboatRunbook = 'drill' AND ${FINISHED_WITH_REPORT} AND CloseTime >= ${visibilityString(since)}`;
    const newest = new Map<string, { sighting: DrillSighting; workflowId: string; runId: string }>();
    for await (const run of listRuns(c, query, { pageSize: 500, limit: bounds.maxRuns ?? 3000 })) {
      const database = stringAttribute(run, DatabaseAttr);
      if (!database || database === FLEET || !run.closeTime) continue;
      const known = newest.get(database);
      if (known && known.sighting.closedAt >= run.closeTime) continue;
      const rto = numberAttribute(run, RtoSecondsAttr);
      const rpo = numberAttribute(run, RpoSecondsAttr);
      newest.set(database, {
        workflowId: run.workflowId,
        runId: run.runId,
        sighting: {
          database,
          passed: stringAttribute(run, OutcomeAttr) === 'passed',
          closedAt: run.closeTime,
          ...(rto !== undefined && { rtoSeconds: rto }),
          ...(rpo !== undefined && { rpoSeconds: rpo }),
        },
      });
    }
    const runs = new Set([...newest.values()].map((n) => n.runId));
    for (const runId of objectivesByRun.keys()) if (!runs.has(runId)) objectivesByRun.delete(runId);
    const sightings: DrillSighting[] = [];
    for (const { sighting, workflowId, runId } of newest.values()) {
      if (!objectivesByRun.has(runId)) objectivesByRun.set(runId, await objectivesOf(c, workflowId, runId));
      const objectives = objectivesByRun.get(runId);
      sightings.push(objectives ? { ...sighting, objectives } : sighting);
    }
    return sightings;
  };
}

/** Optional extra: a result the client cannot read (another codec, an older report) has none. */
async function objectivesOf(client: Client, workflowId: string, runId: string): Promise<Objectives | null> {
  try {
    const report: Partial<RunbookReport> | undefined = await runbookReport(
      client.workflow.getHandle(workflowId, runId, { followRuns: false }),
    );
    const o = report?.objectives;
    return o && typeof o.rtoSeconds === 'number' && typeof o.rpoSeconds === 'number'
      ? { rtoSeconds: o.rtoSeconds, rpoSeconds: o.rpoSeconds }
      : null;
  } catch {
    return null;
  }
}

export interface MetricsServer {
  /** http://host:port, with the port actually bound (LIFEBOAT_METRICS_PORT=0 picks one). */
  url: string;
  close(): Promise<void>;
}

/** Serves GET /metrics and GET /healthz; anything else is a 404. */
export function startMetricsServer(
  metrics: LifeboatMetrics,
  options: { host: string; port: number; logger?: Logger },
): Promise<MetricsServer> {
  const server = createServer((req, res) => void handle(metrics, req, res, options.logger));
  const stopMonitor = metrics.monitorEventLoop();
  return new Promise((resolve, reject) => {
    server.once('error', (err) => {
      stopMonitor();
      reject(
        new Error(
          `cannot serve metrics on ${options.host}:${options.port} (LIFEBOAT_METRICS_HOST, LIFEBOAT_METRICS_PORT): ${err.message}`,
        ),
      );
    });
    server.listen(options.port, options.host, () => {
      const { address, port } = server.address() as AddressInfo;
      const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
      resolve({
        url,
        close: () =>
          new Promise<void>((done) => {
            stopMonitor();
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

async function handle(
  metrics: LifeboatMetrics,
  req: IncomingMessage,
  res: ServerResponse,
  logger?: Logger,
): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const send = (status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (path !== '/metrics' && path !== '/healthz') return send(404, 'not found: try /metrics or /healthz\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n', { allow: 'GET, HEAD' });
  if (path === '/healthz') return send(200, 'ok\n');
  try {
    send(200, await metrics.exposition(), { 'content-type': CONTENT_TYPE });
  } catch (err) {
    logger?.error({ err }, 'metrics exposition failed');
    send(500, 'metrics exposition failed\n');
  }
}
