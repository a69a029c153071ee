// What a cross-cloud drill from AWS needs against moto: everything setUpAwsDrill makes (a clean moto
// account, the source RDS instance, its seeded stand-in database on local-a), plus an S3 bucket in
// moto as the AWS region's store, a directory as the local DR region's store, and a plan naming them.
//
// One difference from setUpAwsDrill: the stand-in for the source instance logs in as the instance's
// master user with its password (a login role made on local-a), not as local-a's own superuser. The
// secret is then really in use during the drill (the Node client's sessions, pg_dump's passfile), so
// a leak check means something. The password is the one the worker resolves from `env:<passwordVar>`;
// the stand-in reads the same variable, since the provider does not hand the data plane its login.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { AwsDataPlane } from '../../activities/providers/aws-data-plane';
import { quoteIdent, withClient, type PgConnection } from '../../activities/pg/sql';
import type { LoadedPlan } from '../../worker/plan';
import type { LocalRdsDataPlane } from '../fakes/rds-data-plane';
import { EAST, moto, setUpAwsDrill } from './aws-drill';
import { writePlan } from './cloud-stack';
import { motoClientConfig, type AwsTestFixture } from './moto';
import { env, local } from './stack';

/** The local server (started by the global setup) whose database stands for the RDS instance's data. */
export const SOURCE_SERVER = { region: 'local-a', name: 'server' };

export interface CrossCloudAwsSetup {
  plan: LoadedPlan;
  /** The stand-in as the AWS provider should get it: the source instance reached with its own login. */
  dataPlane: AwsDataPlane;
  /** The underlying stand-in, for its event log. */
  standIn: LocalRdsDataPlane;
  east: AwsTestFixture;
  /** The DR region's store (a directory). */
  storeDir: string;
  s3: S3Client;
}

export interface CrossCloudAwsOptions {
  /** Plan database name (the scratch database is named after it). */
  database: string;
  instance: string;
  /** The PostgreSQL database on local-a that stands for the instance's data, and the plan's primary.database. */
  pgDatabase: string;
  /** The instance's master user: a login role on local-a with `password`. */
  user: string;
  passwordVar: string;
  password: string;
  bucket: string;
  drRegion: string;
  /**
   * Adds table public.blobs holding this many random (incompressible) bytes, in 64 KiB rows: enough
   * makes the dump larger than one S3 part, so the upload is multipart and the copy streams parts.
   */
  blobBytes?: number;
}

export async function setUpCrossCloudAwsDrill(options: CrossCloudAwsOptions): Promise<CrossCloudAwsSetup> {
  const { database, instance, pgDatabase, user, passwordVar, password, bucket, drRegion, blobBytes = 0 } = options;
  // Resets moto (buckets included), so the bucket is made after it.
  const { dataPlane: standIn, east } = await setUpAwsDrill({
    name: 'xc-aws',
    instance,
    pgDatabase,
    passwordVar,
    password,
  });
  const s3 = new S3Client({ ...motoClientConfig(moto(), EAST), forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));

  // The master login: reads everything (pg_read_all_data) and owns the database (the canary schema),
  // as an RDS master user may; not a superuser.
  await withClient(await local().connectNode(SOURCE_SERVER, 'postgres'), async (c) => {
    const exists = await c.query('select 1 from pg_roles where rolname = $1', [user]);
    if (exists.rowCount === 0) await c.query(`create role ${quoteIdent(user)} login`);
    // A utility statement takes no parameters; the literal is escaped as PostgreSQL reads it.
    await c.query(`alter role ${quoteIdent(user)} login password '${password.replace(/'/g, "''")}'`);
    await c.query(`grant pg_read_all_data to ${quoteIdent(user)}`);
    await c.query(`alter database ${quoteIdent(pgDatabase)} owner to ${quoteIdent(user)}`);
  });
  if (blobBytes > 0) {
    await withClient(await local().connectNode(SOURCE_SERVER, pgDatabase), async (c) => {
      await c.query('create table blobs (id int primary key, bytes bytea not null)');
      // 4096 md5 digests of random values: 64 KiB of bytes no compressor shrinks.
      await c.query(
        `insert into blobs select r, (select decode(string_agg(md5(random()::text || r || i), ''), 'hex') from generate_series(1, 4096) i)
           from generate_series(1, $1::int) r`,
        [Math.ceil(blobBytes / 65536)],
      );
    });
  }
  const source = `${EAST}/${instance}`;
  const dataPlane: AwsDataPlane = {
    connect: async (awsRegion, id, db) => {
      const conn = await standIn.connect(awsRegion, id, db);
      if (`${awsRegion}/${id}` !== source) return conn;
      const secret = process.env[passwordVar];
      if (!secret) throw new Error(`test stand-in: ${passwordVar} is not set`);
      // No passfile: the tools get one made from this login, as for a managed server.
      return {
        host: conn.host,
        port: conn.port,
        user,
        password: secret,
        database: conn.database,
      } satisfies PgConnection;
    },
    snapshotCreated: (...args) => standIn.snapshotCreated(...args),
    snapshotCopied: (...args) => standIn.snapshotCopied(...args),
    instanceRestored: (...args) => standIn.instanceRestored(...args),
    instanceDeleted: (...args) => standIn.instanceDeleted(...args),
    instancePromoted: (...args) => standIn.instancePromoted(...args),
    replicaCreated: (...args) => standIn.replicaCreated(...args),
  };

  const storeDir = join(env().home, 'xc-aws-dr-store');
  rmSync(storeDir, { recursive: true, force: true });
  mkdirSync(storeDir, { recursive: true });
  const plan = writePlan(
    'xc-aws-plan.yaml',
    `regions:
${awsSourceRegionYaml(east, bucket)}
  ${drRegion}:
    provider: local
    store: { dir: ${storeDir} }
databases:
  ${database}:
    primary: { region: aws-east, database: ${pgDatabase}, instance: ${instance}, credentials: { user: ${user}, password: "env:${passwordVar}" } }
    dr: { region: ${drRegion} }
    objectives: { rpo: 1h, rto: 1h }
    retention: { keep: 1 }
    checks:
      - name: recent orders exist
        sql: select count(*) > 0 from orders
      - name: every order has its customer
        sql: select not exists (select 1 from orders o left join customers c on c.id = o.customer_id where c.id is null)
`,
  );
  return { plan, dataPlane, standIn, east, storeDir, s3 };
}

/** The row count of each of `tables` in the source's stand-in database, keyed `public.<table>`. */
export async function sourceRowCounts(pgDatabase: string, tables: string[]): Promise<Record<string, number>> {
  return withClient(await local().connectNode(SOURCE_SERVER, pgDatabase), async (c) => {
    const counts: Record<string, number> = {};
    for (const table of tables)
      counts[`public.${table}`] = Number(
        (await c.query<{ n: string }>(`select count(*) as n from ${table}`)).rows[0]!.n,
      );
    return counts;
  });
}

/** Drops the stand-in database and the login role made for it. */
export async function tearDownCrossCloudAwsDrill(
  options: Pick<CrossCloudAwsOptions, 'pgDatabase' | 'user'>,
): Promise<void> {
  await withClient(await local().connectNode(SOURCE_SERVER, 'postgres'), async (c) => {
    await c.query(`drop database if exists ${quoteIdent(options.pgDatabase)} with (force)`);
    await c.query(`drop role if exists ${quoteIdent(options.user)}`);
  });
}

/** The plan's aws-east region, the source of the cross-cloud drills: moto's network and KMS key, an S3 store. */
export function awsSourceRegionYaml(
  east: { kmsKeyArn: string; subnetGroup: string; securityGroupId: string },
  bucket: string,
): string {
  return `  aws-east:
    provider: aws
    awsRegion: ${EAST}
    kmsKeyId: "${east.kmsKeyArn}"
    scratch: { subnetGroup: ${east.subnetGroup}, securityGroups: [${east.securityGroupId}] }
    store: { s3: { bucket: ${bucket}, prefix: lifeboat/ } }`;
}
