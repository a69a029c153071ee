// What the cloud provider tests (moto, the Cloud SQL fake, fake-gcs-server) share on top of the
// stack: ids for their runs, a runbook run and its report, plans written under LIFEBOAT_HOME, a Cloud
// SQL fake with the GCP provider pointed at it, and the checks every drill and leak test makes.
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { Storage } from '@google-cloud/storage';
import type { v1 } from '@google-cloud/sql';
import { findPgBin } from '../../activities/pg/binaries';
import { withClient, type PgConnection } from '../../activities/pg/sql';
import { AwsProvider } from '../../activities/providers/aws';
import type { AwsDataPlane } from '../../activities/providers/aws-data-plane';
import { GcpProvider } from '../../activities/providers/gcp';
import { seedDemo } from '../../scripts/dev/seed';
import { loadPlanFile, type LoadedPlan } from '../../worker/plan';
import { RUNBOOK_TASK_QUEUE, type RunbookReport } from '../../workflows/types';
import { adminClients, fakeClientOptions, untilDone } from '../fakes/cloudsql/clients';
import { startCloudSqlFake, type CloudSqlFake } from '../fakes/cloudsql/server';
import { client, env, historyText, type LogCapture } from './stack';
import { runbookReport } from '../../workflows/runbook-failure';

/** The hex sha256 of bytes, as manifests and backup references carry it. */
export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Workflow ids `test/<area>/<what>/<time>-<n>`: each call a new one. */
export function workflowIds(area: string): (what: string) => string {
  let seq = 0;
  return (what) => `test/${area}/${what}/${Date.now()}-${seq++}`;
}

/**
 * What a cloud test file names after its area, so that files running at once never share them: its
 * workflow ids, its GCP project and GCS bucket, and the environment variable its password is under.
 */
export function cloudTestNames(area: string): {
  workflowId: (what: string) => string;
  project: string;
  bucket: string;
  passwordVar: string;
} {
  return {
    workflowId: workflowIds(area),
    project: `lifeboat-${area}`,
    bucket: `lifeboat-${area}-backups`,
    passwordVar: `LIFEBOAT_TEST_${area.toUpperCase()}_PASSWORD`,
  };
}

/** Starts a runbook on the runbook queue and waits for its report. */
export async function runRunbook(
  workflowType: string,
  input: unknown,
  workflowId: string,
): Promise<{ handle: WorkflowHandle; report: RunbookReport }> {
  const handle = await (
    await client()
  ).workflow.start(workflowType, { taskQueue: RUNBOOK_TASK_QUEUE, workflowId, args: [input] });
  return { handle, report: await runbookReport(handle) };
}

/** Writes a plan file under LIFEBOAT_HOME and loads it as the worker and the CLI would. */
export function writePlan(fileName: string, yaml: string): LoadedPlan {
  const file = join(env().home, fileName);
  writeFileSync(file, yaml);
  return loadPlanFile(file);
}

/**
 * The AWS provider as a worker would build it, over a test-only data plane (moto has none): at moto
 * (AWS_ENDPOINT_URL), or at `endpoint` (a fault proxy in front of moto).
 */
export function rdsProvider(
  dataPlane: AwsDataPlane,
  options: { pollMs?: number; endpoint?: string } = {},
): AwsProvider {
  const { pollMs = 50, endpoint } = options;
  return new AwsProvider({ home: env().home, secrets: process.env, pollMs, ...(endpoint && { endpoint }), dataPlane });
}

/** A Cloud SQL fake of a test file's own, with the admin clients the test drives it by. */
export interface CloudSqlStand {
  fake: CloudSqlFake;
  instances: v1.SqlInstancesServiceClient;
  operations: v1.SqlOperationsServiceClient;
  backupRuns: v1.SqlBackupRunsServiceClient;
  /** Closes the clients, then the fake. */
  close(): Promise<void>;
}

/** Starts a Cloud SQL fake, its instances' data in a new directory under LIFEBOAT_HOME. */
export async function startCloudSql(name: string, opDelayMs: number): Promise<CloudSqlStand> {
  const fake = await startCloudSqlFake({
    dir: mkdtempSync(join(env().home, `cloudsql-${name}-`)),
    pgBin: findPgBin(env().pgBin),
    opDelayMs,
  });
  const clients = adminClients(fake);
  return {
    fake,
    ...clients,
    close: async () => {
      await clients.close();
      await fake.close();
    },
  };
}

/**
 * The GCP provider as a worker would build it, pointed at the fake (with its test-only port lookup),
 * or at `via` (a fault proxy's http://host:port in front of the fake).
 */
export function cloudSqlProvider(fake: CloudSqlFake, via?: string): GcpProvider {
  const proxy = via ? new URL(via) : undefined;
  return new GcpProvider({
    home: env().home,
    secrets: process.env,
    pollMs: 50,
    ...fakeClientOptions(fake),
    ...(proxy && { apiEndpoint: proxy.hostname, port: Number(proxy.port) }),
    instancePort: (project, instance) => fake.portOf(project, instance),
  });
}

/** How a test logs into a fake's instance: as postgres, straight to the server behind it. */
export function cloudSqlConnection(
  fake: CloudSqlFake,
  project: string,
  instance: string,
  password: string,
  database: string,
): PgConnection {
  return { host: '127.0.0.1', port: fake.portOf(project, instance), user: 'postgres', password, database };
}

/** Whether the server takes writes: out of recovery, and not read-only by default. */
export const takesWrites = (conn: PgConnection): Promise<boolean> =>
  withClient(
    conn,
    async (c) =>
      (
        await c.query<{ w: boolean }>(
          `select not pg_is_in_recovery() and current_setting('default_transaction_read_only') = 'off' as w`,
        )
      ).rows[0]!.w,
  );

type InstanceBody = NonNullable<Parameters<v1.SqlInstancesServiceClient['insert']>[0]>['body'];

/** instances.insert as an operator would, then waits for its operation: the instance is RUNNABLE when this returns. */
export async function createCloudSqlInstance(stand: CloudSqlStand, project: string, body: InstanceBody): Promise<void> {
  const [operation] = await stand.instances.insert({ project, body });
  await untilDone(stand.operations, project, operation);
}

/** A read replica of `primary` in us-east4: the DR side of a failover test. */
export function createCloudSqlReplica(
  stand: CloudSqlStand,
  project: string,
  name: string,
  primary: string,
): Promise<void> {
  return createCloudSqlInstance(stand, project, {
    name,
    region: 'us-east4',
    masterInstanceName: primary,
    settings: { tier: 'db-custom-1-3840' },
  });
}

/** A primary instance (postgres logs in with `password`) holding `database`, seeded with the demo schema at `scale`. */
export async function createSeededPrimary(
  stand: CloudSqlStand,
  project: string,
  options: { body: InstanceBody & { name: string }; password: string; database: string; scale: number },
): Promise<void> {
  const { body, password, database, scale } = options;
  await createCloudSqlInstance(stand, project, { ...body, rootPassword: password });
  const conn = (db: string) => cloudSqlConnection(stand.fake, project, body.name, password, db);
  await withClient(conn('postgres'), (c) => c.query(`create database ${database}`));
  await withClient(conn(database), (c) => seedDemo(c, scale));
}

/** A plan's two Cloud SQL regions, `<prefix>-central` (us-central1) and `<prefix>-east` (us-east4), scratch on PostgreSQL 16. */
export function gcpPlanRegions(project: string, prefix = 'gcp'): string {
  return `regions:
  ${prefix}-central: { provider: gcp, project: ${project}, gcpRegion: us-central1, scratch: { databaseVersion: POSTGRES_16 } }
  ${prefix}-east: { provider: gcp, project: ${project}, gcpRegion: us-east4, scratch: { databaseVersion: POSTGRES_16 } }
`;
}

/** A new, empty directory under LIFEBOAT_HOME for a local region's backup store. */
export const storeDir = (name: string): string => mkdtempSync(join(env().home, `${name}-store-`));

/**
 * A plan's regions for portable backups from local-a to Cloud SQL: local-a keeps its backups in a
 * new directory (named after `name`), gcp-east (us-east4) in the GCS bucket, under backups/.
 */
export function localToCloudSqlRegions(name: string, project: string, bucket: string): string {
  return `regions:
  local-a: { provider: local, store: { dir: ${storeDir(name)} } }
  gcp-east:
    provider: gcp
    project: ${project}
    gcpRegion: us-east4
    scratch: { databaseVersion: POSTGRES_15 }
    store: { gcs: { bucket: ${bucket}, prefix: backups/ } }
`;
}

/** A bucket in fake-gcs-server (STORAGE_EMULATOR_HOST), kept when an earlier run made it. */
export async function createGcsBucket(project: string, bucket: string): Promise<Storage> {
  const storage = new Storage({ projectId: project });
  await storage.createBucket(bucket).catch((err: { code?: number }) => {
    if (err.code !== 409) throw err;
  });
  return storage;
}

/** A drill that passed with every table restored and checksummed (at least `minTables` of them). */
export function expectDrillPassed(report: RunbookReport, minTables = 6): void {
  expect(report.reason).toBeUndefined();
  expect(report.outcome).toBe('passed');
  const tables = report.checks.filter((c) => c.name.startsWith('table '));
  expect(tables.length).toBeGreaterThanOrEqual(minTables);
  for (const t of tables)
    expect(t).toMatchObject({ ok: true, detail: expect.stringMatching(/rows, checksum matches$/) });
}

/** Each table's check says the row count of the source and a matching checksum. */
export function expectRowsMatch(report: RunbookReport, sourceRows: Record<string, number>): void {
  for (const [table, rows] of Object.entries(sourceRows))
    expect(report.checks.find((c) => c.name === `table ${table}`)?.detail).toBe(`${rows} rows, checksum matches`);
}

/** The secret went in by reference (`env:<name>`): its value is not in the run's history nor in the worker's logs. */
export async function expectSecretByReference(
  handle: WorkflowHandle,
  logs: LogCapture,
  secret: { name: string; value: string },
): Promise<void> {
  const history = historyText(await handle.fetchHistory());
  expect(history).toContain(`env:${secret.name}`);
  expect(history).not.toContain(secret.value);
  expect(logs.text).not.toContain(secret.value);
}
