// The composition root: config -> logger -> clients -> activities -> Worker.create.
// One process serves the runbook queue and one activity queue per region of the plan.
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createActivities } from '../activities';
import { findPgBin } from '../activities/pg/binaries';
import { LocalProvider } from '../activities/providers/local';
import { AwsProvider } from '../activities/providers/aws';
import { GcpProvider } from '../activities/providers/gcp';
import type { DatabaseProvider } from '../activities/providers/provider';
import { regionTaskQueue, RUNBOOK_TASK_QUEUE, type ProviderKind, type RegionSpec } from '../workflows/types';
import { sendWorkerNotification } from '../activities/notify';
import { watchFences } from './fence-watch';
import { loadEnv, type LifeboatEnv } from './env';
import { createLogger } from './logger';
import { connectClient, temporalTarget, type TemporalTarget } from './temporal';
import { CanaryLedger } from '../activities/canary-ledger';
import { PortableBackups } from '../activities/portable/portable-backups';
import { sweepToolEnvOrphans } from '../activities/pg/tool-env';
import { TopologyStore } from '../activities/topology';
import { runbookVersion } from './version';
import { freePort } from '../activities/pg/ports';
import {
  drillsFromVisibility,
  LifeboatMetrics,
  planObjectives,
  runtimeMetricsExporter,
  startMetricsServer,
} from './metrics';
import { join } from 'node:path';
import { replicaSetsOf, type LoadedPlan } from './plan';
import { runInputCheck } from './input-check';

export interface WorkerOptions {
  regions: RegionSpec[];
  env?: LifeboatEnv;
  logger?: Logger;
  temporal?: TemporalTarget;
  /** Providers to use instead of the defaults (tests: the AWS provider with moto's stand-in data plane). */
  providers?: Partial<Providers>;
  /** A prebuilt workflow bundle (tests build one once); otherwise workflows/ is bundled at start. */
  workflowBundle?: { code: string };
  /**
   * The plan this worker serves: every run's input is checked against it before any of its
   * activities runs (worker/input-check.ts). `lifeboat worker` always passes one.
   */
  plan?: LoadedPlan;
}

export type Providers = Record<ProviderKind, DatabaseProvider> & { local: LocalProvider };

export function buildProviders(env: LifeboatEnv, overrides: Partial<Providers> = {}): Providers {
  return {
    local: new LocalProvider({ home: env.home, pgBin: findPgBin(env.pgBin) }),
    aws: new AwsProvider({ home: env.home, secrets: env.secrets, caFile: env.rdsCaFile }),
    gcp: new GcpProvider({ home: env.home, secrets: env.secrets, ...env.cloudSqlApi }),
    ...overrides,
  };
}

/** Where notifications go, for the notify activity and the fence watch alike. */
function notifyConfigOf(env: LifeboatEnv) {
  return { webhookUrl: env.webhookUrl, webhookSecret: env.webhookSecret, uiUrl: env.uiUrl };
}

let runtimeInstalled = false;
/** The Temporal runtime's own Prometheus exporter, internal to this process (set when it was installed with one). */
let runtimeMetricsUrl: string | undefined;

/** Creates the workers (not yet running). */
export async function createWorkers(options: WorkerOptions): Promise<{
  workers: Worker[];
  connection: NativeConnection;
  logger: Logger;
  metrics: LifeboatMetrics;
  providers: Providers;
}> {
  const env = options.env ?? loadEnv();
  const logger = options.logger ?? createLogger(env.logLevel);
  if (!runtimeInstalled) {
    const sdkLog = logger.child({ component: 'temporal-sdk' });
    // The core's exporter stays on loopback: the worker's /metrics fetches it and adds Lifeboat's families.
    const runtimePort = env.metrics ? await freePort() : undefined;
    Runtime.install({
      logger: new DefaultLogger('WARN', (entry) => {
        const level = entry.level.toLowerCase() as Lowercase<LogLevel>;
        const method =
          level === 'trace'
            ? 'trace'
            : level === 'debug'
              ? 'debug'
              : level === 'info'
                ? 'info'
                : level === 'warn'
                  ? 'warn'
                  : 'error';
        sdkLog[method](entry.meta ?? {}, entry.message);
      }),
      ...(runtimePort !== undefined && {
        telemetryOptions: { metrics: runtimeMetricsExporter(`127.0.0.1:${runtimePort}`) },
      }),
    });
    runtimeInstalled = true;
    runtimeMetricsUrl = runtimePort !== undefined ? `http://127.0.0.1:${runtimePort}/metrics` : undefined;
  }
  const temporal = options.temporal ?? temporalTarget();
  const connection = await NativeConnection.connect(temporal.connectionOptions);
  let client: ReturnType<typeof connectClient> | undefined;
  // A failed connection is not kept: the next caller (an activity, a metrics scrape) tries again.
  const temporalClient = () =>
    (client ??= connectClient(temporal).catch((err: unknown) => {
      client = undefined;
      throw err;
    }));
  const metrics = new LifeboatMetrics({
    drills: drillsFromVisibility(temporalClient),
    runtimeMetricsUrl,
    logger: logger.child({ component: 'metrics' }),
  });
  if (options.plan) metrics.setObjectives(planObjectives(options.plan));
  const portable = new PortableBackups({ pgBin: findPgBin(env.pgBin), workDir: join(env.home, 'restore-staging') });
  const swept = [...portable.sweepOrphans(), ...sweepToolEnvOrphans()];
  if (swept.length) logger.warn({ swept }, 'removed staged dumps and passfiles left by killed workers');
  const providers = buildProviders(env, options.providers);
  const activities = createActivities({
    providers,
    logger,
    ledger: new CanaryLedger(env.home),
    portable,
    topologies: new TopologyStore(env.home),
    notify: notifyConfigOf(env),
    temporal: temporalClient,
    metrics,
  });

  const inputCheck = options.plan && {
    interceptors: {
      activity: [
        runInputCheck({
          plan: options.plan,
          client: temporalClient,
          logger: logger.child({ component: 'input-check' }),
        }),
      ],
    },
  };
  const version = runbookVersion(env.projectRoot);
  const workflowSource = options.workflowBundle
    ? { workflowBundle: options.workflowBundle }
    : { workflowsPath: require.resolve('../workflows') };
  const workers = [
    await Worker.create({
      connection,
      namespace: temporal.namespace,
      taskQueue: RUNBOOK_TASK_QUEUE,
      ...workflowSource,
      // Payload encryption when keys are configured (worker/codec.ts); the same converter as every client.
      dataConverter: temporal.dataConverter,
      // Stamps every workflow task with the code that ran it (not versioned routing: any build takes any run).
      workerDeploymentOptions: {
        version: { deploymentName: 'lifeboat', buildId: version },
        useWorkerVersioning: false,
      },
    }),
    ...(await Promise.all(
      options.regions.map((region) =>
        Worker.create({
          connection,
          namespace: temporal.namespace,
          taskQueue: regionTaskQueue(region.name),
          activities,
          dataConverter: temporal.dataConverter,
          // Transfers are disk- and CPU-bound: a few at a time per region is what one machine sustains.
          maxConcurrentActivityTaskExecutions: 4,
          ...inputCheck,
        }),
      ),
    )),
  ];
  logger.info(
    {
      version,
      namespace: temporal.namespace,
      address: temporal.connectionOptions.address,
      queues: [RUNBOOK_TASK_QUEUE, ...options.regions.map((r) => regionTaskQueue(r.name))],
      plan: options.plan
        ? `${options.plan.source} (sha256 ${options.plan.digest.slice(0, 12)})`
        : 'none: inputs not checked',
    },
    'worker ready',
  );
  return { workers, connection, logger, metrics, providers };
}

/** Runs until SIGINT/SIGTERM, then drains and closes. */
export async function runWorker(options: WorkerOptions): Promise<void> {
  const env = options.env ?? loadEnv();
  const { workers, connection, logger, metrics, providers } = await createWorkers({ ...options, env });
  const fences = watchFences({
    sets: options.plan ? replicaSetsOf(options.plan) : [],
    regions: options.regions.map((r) => r.name),
    providerFor: (set) => providers[set.home.provider],
    logger: logger.child({ component: 'fence-watch' }),
    onViolation: async (v) => {
      await sendWorkerNotification(
        notifyConfigOf(env),
        {
          event: 'fence.violation',
          database: v.set,
          runbook: 'fence-watch',
          summary: `${v.node} is listed as fenced in ${v.set} but accepted read-write transactions (${v.seen}); fenced again: ${v.fence ? `${v.fence.confirmed ? 'confirmed' : 'NOT confirmed'}, ${v.fence.how}` : `FAILED: ${v.error}`}`,
        },
        AbortSignal.timeout(15_000),
        `fence-watch/${v.node}/${v.at}`,
      );
    },
  });
  // A stray rejection in one activity must not take down every other run this worker serves.
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection (a bug: please report it)'));
  const running = workers.map((w) => w.run());
  const ran = Promise.all(running);
  ran.catch(() => undefined); // awaited below, once the metrics endpoint is up
  let server: Awaited<ReturnType<typeof startMetricsServer>> | undefined;
  try {
    if (env.metrics) {
      server = await startMetricsServer(metrics, { ...env.metrics, logger });
      logger.info(
        { url: `${server.url}/metrics`, runtimeMetrics: Boolean(metrics.runtimeMetricsUrl) },
        'serving metrics',
      );
    }
    await ran;
  } catch (err) {
    // The metrics port is taken, or one worker failed: stop the others, so the connection can close.
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.allSettled(running);
    throw err;
  } finally {
    await fences.stop();
    await server?.close();
    await connection.close();
  }
}
