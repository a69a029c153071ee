// What an AWS failover or failback test needs against moto: a clean account, a primary RDS instance
// in us-east-1 with its cross-region read replica in us-west-2, and a plan naming them. moto has no
// data plane: two local servers with PostgreSQL streaming replication stand for the two instances,
// driven by the test-only stand-in (test/fakes/rds-data-plane.ts), which every test name says.
import { join } from 'node:path';
import { CreateDBInstanceCommand, CreateDBInstanceReadReplicaCommand } from '@aws-sdk/client-rds';
import { findPgBin } from '../../activities/pg/binaries';
import type { LoadedPlan } from '../../worker/plan';
import { LocalRdsDataPlane } from '../fakes/rds-data-plane';
import { EAST, moto, rds, WEST } from './aws-drill';
import { writePlan } from './cloud-stack';
import { awsPlanRegions, awsTestFixture, resetMoto } from './moto';
import { createReplicaSet, type ReplicaSetFixture } from './replica-set';
import { env, local } from './stack';

export interface RdsReplicaOptions {
  /** The plan's regions are `<prefix>-east` and `<prefix>-west`; their stand-in servers `<prefix>-east-pg` and `<prefix>-west-pg`. */
  regionPrefix: string;
  /** The plan's database, and the PostgreSQL database on the stand-in servers. */
  database: string;
  homeInstance: string;
  replicaInstance: string;
  /** The instances' master password, given to the worker as `env:<passwordVar>`. */
  passwordVar: string;
  password: string;
}

export interface RdsReplicaSetup {
  /** The stand-in servers (their canary writer closed: these tests do not need it). */
  fx: ReplicaSetFixture;
  plan: LoadedPlan;
  dataPlane: LocalRdsDataPlane;
}

/** Resets moto, then makes the primary, its read replica, their stand-in servers and the plan. */
export async function setUpRdsReplicaSet(options: RdsReplicaOptions): Promise<RdsReplicaSetup> {
  const { regionPrefix, database, homeInstance, replicaInstance, passwordVar, password } = options;
  process.env[passwordVar] = password;
  await resetMoto(moto());
  const [east, west] = await Promise.all([awsTestFixture(moto(), EAST), awsTestFixture(moto(), WEST)]);
  const primary = await rds(EAST).send(
    new CreateDBInstanceCommand({
      DBInstanceIdentifier: homeInstance,
      Engine: 'postgres',
      EngineVersion: '16.3',
      DBInstanceClass: 'db.t4g.micro',
      MasterUsername: 'lifeboat',
      MasterUserPassword: password,
      AllocatedStorage: 20,
    }),
  );
  await rds(WEST).send(
    new CreateDBInstanceReadReplicaCommand({
      DBInstanceIdentifier: replicaInstance,
      SourceDBInstanceIdentifier: primary.DBInstance!.DBInstanceArn,
    }),
  );
  const fx = await createReplicaSet({ home: `${regionPrefix}-east-pg`, dr: `${regionPrefix}-west-pg`, database });
  await fx.traffic.close();
  const dataPlane = new LocalRdsDataPlane({
    local: local(),
    pgBin: findPgBin(env().pgBin),
    dir: join(env().home, `rds-stand-in-${regionPrefix}`),
    sources: {
      [`${EAST}/${homeInstance}`]: { node: fx.home },
      [`${WEST}/${replicaInstance}`]: { node: fx.standby },
    },
    restoreNode: { region: 'local-b', name: 'server' },
    serverOf: { [EAST]: fx.home, [WEST]: fx.standby },
  });
  const plan = writePlan(
    `${regionPrefix}-failover-plan.yaml`,
    `${awsPlanRegions(east, west, regionPrefix)}databases:
  ${database}:
    primary: { region: ${regionPrefix}-east, database: ${database}, instance: ${homeInstance}, credentials: { user: lifeboat, password: "env:${passwordVar}" } }
    dr: { region: ${regionPrefix}-west, standby: true, replica: ${replicaInstance} }
    objectives: { rpo: 1m, rto: 10m }
    checks:
      - name: orders exist
        sql: select count(*) > 0 from orders
`,
  );
  return { fx, plan, dataPlane };
}
