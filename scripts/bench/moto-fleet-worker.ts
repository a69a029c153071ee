// The one worker process of the moto fleet benchmark (scripts/bench/moto-fleet.ts starts it; not for
// use on its own): Lifeboat's own worker (worker/main.ts runWorker: the runbook queue and one activity
// queue per region, the product's concurrency limits) with one difference the CLI worker cannot have,
// the AWS provider's test-only data plane (test/fakes/rds-data-plane.ts), because moto has no
// PostgreSQL behind its RDS instances.
//
//   node dist-bench/scripts/bench/moto-fleet-worker.js <config.json>
//
// config.json (written by moto-fleet.ts): { regions, pollMs, dataPlane: { dir, sources, restoreNode } }.
// Everything else comes from the environment as for `lifeboat worker`: LIFEBOAT_HOME, TEMPORAL_ADDRESS,
// AWS_ENDPOINT_URL and the credentials, the `env:` password of the plan. Runs until SIGTERM.
import { readFileSync } from 'node:fs';
import { findPgBin } from '../../activities/pg/binaries';
import { AwsProvider } from '../../activities/providers/aws';
import { loadEnv } from '../../worker/env';
import { buildProviders, runWorker } from '../../worker/main';
import type { NodeRef, RegionSpec } from '../../workflows/types';
import { LocalRdsDataPlane } from '../../test/fakes/rds-data-plane';

export interface FleetWorkerConfig {
  regions: RegionSpec[];
  /** How often the AWS provider's waits poll moto. */
  pollMs: number;
  dataPlane: {
    /** Where the stand-in keeps its snapshot files. */
    dir: string;
    /** `<awsRegion>/<instance>` -> the local database standing for the instance. */
    sources: Record<string, { node: NodeRef; database: string }>;
    /** The local server restored instances become databases on. */
    restoreNode: NodeRef;
  };
}

async function main(configFile: string | undefined): Promise<void> {
  if (!configFile)
    throw new Error(
      'usage: node dist-bench/scripts/bench/moto-fleet-worker.js <config.json> (written by moto-fleet.ts)',
    );
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as FleetWorkerConfig;
  const env = loadEnv();
  const dataPlane = new LocalRdsDataPlane({
    local: buildProviders(env).local,
    pgBin: findPgBin(env.pgBin),
    ...config.dataPlane,
  });
  await runWorker({
    regions: config.regions,
    env,
    providers: { aws: new AwsProvider({ home: env.home, secrets: env.secrets, pollMs: config.pollMs, dataPlane }) },
  });
}

main(process.argv[2]).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`moto-fleet-worker: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
