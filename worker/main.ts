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
import { loadEnv, type LifeboatEnv } from './env';
import { createLogger } from './logger';
import { connectClient, temporalTarget, type TemporalTarget } from './temporal';
import { CanaryLedger } from '../activities/canary-ledger';
import { PortableBackups } from '../activities/portable/portable-backups';
import { sweepToolEnvOrphans } from '../activities/pg/tool-env';
import { TopologyStore } from '../activities/topology';
import { join } from 'node:path';

export interface WorkerOptions {
  regions: RegionSpec[];
  env?: LifeboatEnv;
  logger?: Logger;
  temporal?: TemporalTarget;
  /** Providers to use instead of the defaults (tests: the AWS provider with moto's stand-in data plane). */
  providers?: Partial<Providers>;
  /** A prebuilt workflow bundle (tests build one once); otherwise workflows/ is bundled at start. */
  workflowBundle?: { code: string };
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

let runtimeInstalled = false;

/** Creates the workers (not yet running). */
export async function createWorkers(options: WorkerOptions): Promise<{ workers: Worker[]; connection: NativeConnection; logger: Logger }> {
  const env = options.env ?? loadEnv();
  const logger = options.logger ?? createLogger(env.logLevel);
  if (!runtimeInstalled) {
    const sdkLog = logger.child({ component: 'temporal-sdk' });
    Runtime.install({
      logger: new DefaultLogger('WARN', (entry) => {
        const level = entry.level.toLowerCase() as Lowercase<LogLevel>;
        const method = level === 'trace' ? 'trace' : level === 'debug' ? 'debug' : level === 'info' ? 'info' : level === 'warn' ? 'warn' : 'error';
        sdkLog[method](entry.meta ?? {}, entry.message);
      }),
    });
    runtimeInstalled = true;
  }
  const temporal = options.temporal ?? temporalTarget();
  const connection = await NativeConnection.connect(temporal.connectionOptions);
  let client: ReturnType<typeof connectClient> | undefined;
  const portable = new PortableBackups({ pgBin: findPgBin(env.pgBin), workDir: join(env.home, 'restore-staging') });
  const swept = [...portable.sweepOrphans(), ...sweepToolEnvOrphans()];
  if (swept.length) logger.warn({ swept }, 'removed staged dumps and passfiles left by killed workers');
  const activities = createActivities({
    providers: buildProviders(env, options.providers),
    logger,
    ledger: new CanaryLedger(env.home),
    portable,
    topologies: new TopologyStore(env.home),
    notify: { webhookUrl: env.webhookUrl, uiUrl: env.uiUrl },
    temporal: () => (client ??= connectClient(temporal)),
  });

  const workflowSource = options.workflowBundle
    ? { workflowBundle: options.workflowBundle }
    : { workflowsPath: require.resolve('../workflows') };
  const workers = [
    await Worker.create({ connection, namespace: temporal.namespace, taskQueue: RUNBOOK_TASK_QUEUE, ...workflowSource }),
    ...(await Promise.all(
      options.regions.map((region) =>
        Worker.create({
          connection,
          namespace: temporal.namespace,
          taskQueue: regionTaskQueue(region.name),
          activities,
          // Transfers are disk- and CPU-bound: a few at a time per region is what one machine sustains.
          maxConcurrentActivityTaskExecutions: 4,
        }),
      ),
    )),
  ];
  logger.info({ namespace: temporal.namespace, address: temporal.connectionOptions.address, queues: [RUNBOOK_TASK_QUEUE, ...options.regions.map((r) => regionTaskQueue(r.name))] }, 'worker ready');
  return { workers, connection, logger };
}

/** Runs until SIGINT/SIGTERM, then drains and closes. */
export async function runWorker(options: WorkerOptions): Promise<void> {
  const { workers, connection, logger } = await createWorkers(options);
  // A stray rejection in one activity must not take down every other run this worker serves.
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection (a bug: please report it)'));
  try {
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    await connection.close();
  }
}
