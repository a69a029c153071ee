// What a test file needs from the shared stack: a client, an in-process worker, a captured log,
// and the local provider to look at what runbooks left behind.
import { Writable } from 'node:stream';
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { bundleWorkflowCode, type Worker } from '@temporalio/worker';
import { loadEnv } from '../../worker/env';
import { createLogger } from '../../worker/logger';
import { buildProviders, createWorkers, type Providers } from '../../worker/main';
import { parsePlan, loadPlanFile, drillInput, type LoadedPlan } from '../../worker/plan';
import { join } from 'node:path';
import { portOpen } from '../../scripts/dev/stack';
import { withClient, type PgConnection } from '../../activities/pg/sql';
import type { DrillInput } from '../../workflows/types';

export const env = () => loadEnv();
/** The test server; with a data converter (worker/codec.ts) when a test encrypts its payloads. */
export const temporal = (dataConverter?: DataConverter) => ({
  connectionOptions: { address: process.env.TEMPORAL_ADDRESS! },
  namespace: 'default',
  dataConverter,
});
export const local = () => buildProviders(env()).local;
export const demoPlan = (): LoadedPlan => loadPlanFile(join(env().projectRoot, 'scripts', 'dev', 'demo-plan.yaml'));
export { parsePlan };

/** Creates each of `databases` that does not exist yet on the server `conn` (to its postgres database) reaches. */
export async function createDatabases(conn: PgConnection, databases: string[]): Promise<void> {
  await withClient(conn, async (c) => {
    for (const db of databases)
      if (!(await c.query('select 1 from pg_database where datname = $1', [db])).rowCount)
        await c.query(`create database ${db}`);
  });
}

export function demoDrillInput(overrides: Partial<DrillInput> = {}): DrillInput {
  return { ...drillInput(demoPlan(), 'orders', { fromLatestBackup: false, triggeredBy: 'test' }), ...overrides };
}

export async function client(dataConverter?: DataConverter): Promise<Client> {
  await temporalReachable();
  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS! });
  return new Client({ connection, dataConverter });
}

/**
 * Waits (up to a minute) while the shared server is away: restarted by a chaos test, or by the
 * watchdog after it died (test/support/temporal-watchdog.ts), which says why in the run's log.
 */
async function temporalReachable(): Promise<void> {
  const address = process.env.TEMPORAL_ADDRESS!;
  const port = Number(address.split(':').pop());
  const deadline = Date.now() + 60_000;
  while (!(await portOpen(port))) {
    if (Date.now() > deadline)
      throw new Error(
        `the test stack's Temporal dev server at ${address} has not answered for a minute; the watchdog's lines (!!) in the log say why`,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
}

const bundles = new Map<string, Promise<{ code: string }>>();
/** Built once per failure converter: a data converter's failureConverterPath must be inside the workflow bundle too. */
export function workflowBundle(failureConverterPath?: string): Promise<{ code: string }> {
  const key = failureConverterPath ?? '';
  let bundle = bundles.get(key);
  if (!bundle) {
    bundle = bundleWorkflowCode({
      workflowsPath: require.resolve('../../workflows'),
      failureConverterPath,
      logger: quietBundlerLogger,
    });
    bundles.set(key, bundle);
  }
  return bundle;
}

const quietBundlerLogger = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} };

/** Everything the worker logged, as text, for leak checks. */
export class LogCapture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

export interface RunningWorker {
  /** Shuts the workers down (in-flight work is cancelled) and closes their connection. Safe to repeat. */
  stop(): Promise<void>;
}

/**
 * Starts in-process workers: the runbook queue plus one activity queue per region (the demo regions
 * unless told otherwise), until stop().
 */
export async function startWorker(
  options: {
    regions?: string[];
    capture?: LogCapture;
    providers?: Partial<Providers>;
    dataConverter?: DataConverter;
    plan?: LoadedPlan;
  } = {},
): Promise<RunningWorker> {
  const logger = createLogger('info', options.capture ?? new LogCapture());
  await temporalReachable();
  const { workers, connection } = await createWorkers({
    // Only the names matter here: each becomes a task queue; the provider comes from the run's input.
    regions: (options.regions ?? ['local-a', 'local-b']).map((name) => ({ name, provider: 'local' as const })),
    providers: options.providers,
    env: env(),
    logger,
    temporal: temporal(options.dataConverter),
    workflowBundle: await workflowBundle(options.dataConverter?.failureConverterPath),
    // With a plan, the worker checks every run's input against it, as `lifeboat worker` does.
    plan: options.plan,
  });
  const running = workers.map((w: Worker) => w.run());
  let stopping: Promise<void> | undefined;
  return {
    stop: () =>
      (stopping ??= (async () => {
        workers.forEach((w) => w.shutdown());
        await Promise.all(running);
        await connection.close();
      })()),
  };
}

/** Runs in-process workers for the demo regions (or the regions given) while `fn` runs; with a plan, checking every run against it. */
export async function withWorker<T>(
  fn: () => Promise<T>,
  capture?: LogCapture,
  regions?: string[],
  plan?: LoadedPlan,
): Promise<T> {
  const worker = await startWorker({ regions, capture, plan });
  try {
    return await fn();
  } finally {
    await worker.stop();
  }
}

/**
 * Every string and every payload in a history, decoded to text. Payload data is bytes (and base64 in
 * JSON), so searching the JSON alone would never find a leaked secret: this decodes it first.
 */
export function historyText(node: unknown): string {
  const parts: string[] = [];
  const walk = (value: unknown): void => {
    if (value === null || value === undefined) return;
    if (value instanceof Uint8Array) parts.push(Buffer.from(value).toString('utf8'));
    else if (typeof value === 'string') parts.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (typeof value === 'object') Object.values(value as Record<string, unknown>).forEach(walk);
  };
  walk(node);
  return parts.join('\n');
}
