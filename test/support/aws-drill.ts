// What an AWS drill test needs against moto: a clean account with KMS keys and scratch networking in
// two regions, a source RDS instance, a plan naming them, and the test-only data-plane stand-in with
// a seeded local database standing for the instance's data (its own, so other tests' are untouched).
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { RDSClient } from '@aws-sdk/client-rds';
import { findPgBin } from '../../activities/pg/binaries';
import { withClient } from '../../activities/pg/sql';
import { seedDemo } from '../../scripts/dev/seed';
import { loadPlanFile, type LoadedPlan } from '../../worker/plan';
import { LocalRdsDataPlane } from '../fakes/rds-data-plane';
import {
  awsPlanDatabase,
  awsPlanRegions,
  awsTestFixture,
  createInstanceCommand,
  EAST,
  motoClientConfig,
  resetMoto,
  WEST,
  type AwsTestFixture,
} from './moto';
import { env, local } from './stack';

export { EAST, WEST } from './moto';

export const moto = (): string => process.env.AWS_ENDPOINT_URL!;
export const rds = (region: string): RDSClient => new RDSClient(motoClientConfig(moto(), region));

/** The KMS keys and scratch networking a drill uses in moto at `endpoint`: in us-east-1 (the source's region) and us-west-2 (DR). */
export async function awsRegionFixtures(endpoint: string): Promise<{ east: AwsTestFixture; west: AwsTestFixture }> {
  const [east, west] = await Promise.all([awsTestFixture(endpoint, EAST), awsTestFixture(endpoint, WEST)]);
  return { east, west };
}

export interface AwsDrillSetup {
  plan: LoadedPlan;
  dataPlane: LocalRdsDataPlane;
  east: AwsTestFixture;
  west: AwsTestFixture;
}

/**
 * Resets moto, then makes everything a drill of database `orders` (plan name) needs: the source
 * instance `instance` in us-east-1 with `password` as its master password, exposed to the worker as
 * `env:<passwordVar>`, and `pgDatabase` seeded on local-a as its data.
 */
export async function setUpAwsDrill(options: {
  name: string;
  instance: string;
  pgDatabase: string;
  passwordVar: string;
  password: string;
}): Promise<AwsDrillSetup> {
  const { name, instance, pgDatabase, passwordVar, password } = options;
  process.env[passwordVar] = password;
  await resetMoto(moto());
  const { east, west } = await awsRegionFixtures(moto());
  await rds(EAST).send(createInstanceCommand(instance, password, east));
  const server = { region: 'local-a', name: 'server' };
  await withClient(await local().connectNode(server, 'postgres'), async (c) => {
    await c.query(`drop database if exists ${pgDatabase} with (force)`);
    await c.query(`create database ${pgDatabase}`);
  });
  await withClient(await local().connectNode(server, pgDatabase), (c) => seedDemo(c, 0.05));
  const dataPlane = new LocalRdsDataPlane({
    local: local(),
    pgBin: findPgBin(env().pgBin),
    dir: join(env().home, `rds-stand-in-${name}`),
    sources: { [`${EAST}/${instance}`]: { node: server, database: pgDatabase } },
    restoreNode: { region: 'local-b', name: 'server' },
  });
  const file = join(env().home, `${name}-plan.yaml`);
  writeFileSync(
    file,
    `${awsPlanRegions(east, west)}databases:\n${awsPlanDatabase('orders', { pgDatabase, instance, passwordVar })}`,
  );
  return { plan: loadPlanFile(file), dataPlane, east, west };
}
