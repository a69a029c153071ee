// A cross-cloud drill from AWS RDS to Google Cloud SQL, through portable backups: pg_dump of the "RDS"
// database into an S3 bucket, a streamed, checksummed copy into the DR region's GCS bucket, a
// pg_restore into a Cloud SQL scratch instance made with the plan's DR login, every table checked.
//
// Stand-ins, named in every test: moto_server for RDS's control plane and S3 (no IAM, no real
// durability) with the test-only RDS data plane (a local database reached with the instance's master
// login, as in xc-aws-drill.ts); the Cloud SQL fake (real PostgreSQL behind its REST routes, no
// IAM/TLS/networking); fake-gcs-server for GCS (no IAM, no real durability).
import type { WorkflowHandle } from '@temporalio/client';
import type { Storage } from '@google-cloud/storage';
import { scratchNameFor } from '../../activities/providers/gcp';
import { drillInput, type LoadedPlan } from '../../worker/plan';
import { runTag } from '../../workflows/shared-steps';
import { RUNBOOK_TASK_QUEUE, type RunbookReport } from '../../workflows/types';
import type { CloudSqlFake } from '../fakes/cloudsql/server';
import {
  cloudSqlProvider,
  createGcsBucket,
  expectRowsMatch,
  rdsProvider,
  sha256,
  startCloudSql,
  workflowIds,
  writePlan,
  type CloudSqlStand,
} from '../support/cloud-stack';
import { client, historyText, LogCapture, startWorker, type RunningWorker } from '../support/stack';
import {
  awsSourceRegionYaml,
  setUpCrossCloudAwsDrill,
  sourceRowCounts,
  tearDownCrossCloudAwsDrill,
  type CrossCloudAwsOptions,
  type CrossCloudAwsSetup,
} from '../support/xc-aws-drill';
import { runbookReport } from '../../workflows/runbook-failure';

const GCP_REGION = 'gcp-dr';
const PROJECT = 'lifeboat-rds2sql';
const S3_BUCKET = `lifeboat-rds2sql-${process.pid}`;
/** The source: an RDS instance in moto, its data a local database logged into with its master login. */
const XC: CrossCloudAwsOptions = {
  database: 'orders',
  instance: 'orders-rds-xg',
  pgDatabase: 'xc_rds_sql_orders',
  user: 'lifeboat_xg',
  passwordVar: 'LIFEBOAT_TEST_RDS2SQL_RDS_PASSWORD',
  password: 'rds2sql-Rds-7f3a:b1',
  bucket: S3_BUCKET,
  // Its plan (with a local DR region) is not used: the plan below has the same AWS region and a GCP one.
  drRegion: 'local-b',
};
const DR_PASSWORD_VAR = 'LIFEBOAT_TEST_RDS2SQL_DR_PASSWORD';
const DR_PASSWORD = 'rds2sql-Dr-c09e\\z4';
const GCS_BUCKET = `lifeboat-rds2sql-dr-${process.pid}`;
const PUBLIC_TABLES = ['customers', 'order_items', 'orders', 'payments', 'products'];
const STAND_INS = 'moto S3 + test-only RDS data plane; Cloud SQL fake; fake-gcs-server: no IAM, no real durability';

const workflowId = workflowIds('rds2sql');

describe(`cross-cloud drill from AWS RDS to Google Cloud SQL (${STAND_INS})`, () => {
  let setup: CrossCloudAwsSetup;
  let stand: CloudSqlStand;
  let fake: CloudSqlFake;
  let storage: Storage;
  let plan: LoadedPlan;
  let worker: RunningWorker;
  const logs = new LogCapture();
  let sourceRows: Record<string, number>;

  const cloudSqlNames = async () =>
    ((await stand.instances.list({ project: PROJECT }))[0].items ?? []).map((i) => i.name!);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** Runs a drill, watching the project's Cloud SQL instances meanwhile (so "deleted" means it existed). */
  async function drill(): Promise<{
    handle: WorkflowHandle;
    report: RunbookReport;
    scratch: string;
    seen: Set<string>;
    ms: number;
  }> {
    const started = Date.now();
    const input = drillInput(plan, XC.database, { fromLatestBackup: false, triggeredBy: 'test' });
    const handle = await (
      await client()
    ).workflow.start('drill', { taskQueue: RUNBOOK_TASK_QUEUE, workflowId: workflowId('drill'), args: [input] });
    const seen = new Set<string>();
    let done = false;
    const watching = (async () => {
      for (; !done; await sleep(50)) for (const name of await cloudSqlNames()) seen.add(name);
    })();
    watching.catch(() => undefined); // awaited below; this only marks the rejection as handled
    const report = await runbookReport(handle).finally(() => (done = true));
    await watching;
    return {
      handle,
      report,
      scratch: scratchNameFor(`drill-${runTag((await handle.describe()).runId)}`),
      seen,
      ms: Date.now() - started,
    };
  }
  /** dropScratch only asks for the delete; the fake finishes it (opDelayMs) shortly after. */
  async function expectGone(name: string) {
    for (const deadline = Date.now() + 15_000; Date.now() < deadline && (await cloudSqlNames()).includes(name);)
      await sleep(100);
    expect(await cloudSqlNames()).not.toContain(name);
  }
  /** Both secrets were in use (the source's sessions and pg_dump; the scratch's root login and pg_restore), by reference only. */
  async function expectNoSecrets(handle: WorkflowHandle) {
    const history = historyText(await handle.fetchHistory());
    expect(history).toContain(`env:${XC.passwordVar}`);
    expect(history).toContain(`env:${DR_PASSWORD_VAR}`);
    expect(logs.text.length).toBeGreaterThan(0);
    for (const secret of [XC.password, DR_PASSWORD]) {
      expect(history).not.toContain(secret);
      expect(logs.text).not.toContain(secret);
    }
  }

  beforeAll(async () => {
    process.env[DR_PASSWORD_VAR] = DR_PASSWORD;
    // Moto reset, the source RDS instance, its seeded stand-in database, its master login, the S3 bucket.
    // Its plan (with a local DR region) is not used: the plan below has the same AWS region and a GCP one.
    setup = await setUpCrossCloudAwsDrill(XC);
    stand = await startCloudSql('rds2sql', 100);
    fake = stand.fake;
    storage = await createGcsBucket(PROJECT, GCS_BUCKET);

    const { east } = setup;
    plan = writePlan(
      'rds2sql-plan.yaml',
      `regions:
${awsSourceRegionYaml(east, S3_BUCKET)}
  ${GCP_REGION}:
    provider: gcp
    project: ${PROJECT}
    gcpRegion: us-east4
    scratch: { databaseVersion: POSTGRES_15 }
    store: { gcs: { bucket: ${GCS_BUCKET}, prefix: dr/ } }
databases:
  ${XC.database}:
    primary: { region: aws-east, database: ${XC.pgDatabase}, instance: ${XC.instance}, credentials: { user: ${XC.user}, password: "env:${XC.passwordVar}" } }
    dr: { region: ${GCP_REGION}, credentials: { user: postgres, password: "env:${DR_PASSWORD_VAR}" } }
    objectives: { rpo: 1h, rto: 1h }
    retention: { keep: 2 }
    checks:
      - name: recent orders exist
        sql: select count(*) > 0 from orders
`,
    );
    worker = await startWorker({
      regions: ['aws-east', GCP_REGION],
      capture: logs,
      providers: {
        aws: rdsProvider(setup.dataPlane),
        gcp: cloudSqlProvider(fake),
      },
    });
    sourceRows = await sourceRowCounts(XC.pgDatabase, PUBLIC_TABLES);
  });

  afterAll(async () => {
    await worker?.stop();
    setup?.s3.destroy();
    await stand?.close();
    await tearDownCrossCloudAwsDrill(XC);
  });

  test(`a drill passes: pg_dump from RDS into S3, streamed into GCS with the same sha256, pg_restore into a Cloud SQL scratch instance, every table matches the source, the scratch instance deleted, neither password in history or logs (${STAND_INS})`, async () => {
    const { handle, report, scratch, seen, ms } = await drill();
    console.log(`RDS -> Cloud SQL drill: ${ms} ms`);
    expect({ outcome: report.outcome, reason: report.reason }).toEqual({ outcome: 'passed', reason: undefined });
    expect(report.steps.every((s) => s.status === 'completed')).toBe(true);

    const tables = report.checks.filter((c) => c.name.startsWith('table '));
    expect(tables.map((t) => t.name).sort()).toEqual([
      'table lifeboat.canary',
      ...PUBLIC_TABLES.map((t) => `table public.${t}`),
    ]);
    for (const t of tables)
      expect(t).toMatchObject({ ok: true, detail: expect.stringMatching(/^\d+ rows, checksum matches$/) });
    for (const rows of Object.values(sourceRows)) expect(rows).toBeGreaterThan(0);
    expectRowsMatch(report, sourceRows);
    expect(report.checks.find((c) => c.name === 'recent orders exist')).toMatchObject({ ok: true });
    expect(report.checks.find((c) => c.name === 'canary present')).toMatchObject({ ok: true });
    expect(report.checks.every((c) => c.ok)).toBe(true);

    // The backup in the AWS region's S3 bucket, the copy in the GCP region's GCS bucket, same bytes.
    const backup = report.backup!;
    const copy = report.copies[0]!;
    expect(backup).toMatchObject({ provider: 'aws', region: 'aws-east', store: { kind: 's3', bucket: S3_BUCKET } });
    expect(copy).toMatchObject({
      backupId: backup.backupId,
      region: GCP_REGION,
      sha256: backup.sha256,
      sizeBytes: backup.sizeBytes,
      store: { kind: 'gcs', bucket: GCS_BUCKET, prefix: 'dr/' },
    });
    const inGcs = `dr/${XC.pgDatabase}/${backup.backupId}/`;
    const [files] = await storage.bucket(GCS_BUCKET).getFiles({ prefix: inGcs });
    expect(files.map((f) => f.name).sort()).toEqual([`${inGcs}dump.pgdump`, `${inGcs}manifest.json`]);
    const [dump] = await storage.bucket(GCS_BUCKET).file(`${inGcs}dump.pgdump`).download();
    expect(sha256(dump)).toBe(backup.sha256);

    // The scratch instance was Cloud SQL's, and is gone.
    expect(report.steps.find((s) => s.name === 'create scratch instance')).toMatchObject({
      status: 'completed',
      attempts: 1,
    });
    expect(scratch).toMatch(/^lifeboat-drill-[0-9a-f]{8}$/);
    expect([...seen]).toContain(scratch);
    expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
    await expectGone(scratch);
    await expectNoSecrets(handle);
  });

  test(`a Cloud SQL CREATE operation that fails once is retried by the create-scratch step: the drill passes, the step shows 2 attempts, the scratch instance is deleted (${STAND_INS})`, async () => {
    fake.failNext('CREATE', 'simulated: zone us-east4-a out of capacity');
    const { handle, report, scratch, seen, ms } = await drill();
    console.log(`RDS -> Cloud SQL drill with one failed CREATE: ${ms} ms`);
    expect({ outcome: report.outcome, reason: report.reason }).toEqual({ outcome: 'passed', reason: undefined });
    expect(report.steps.find((s) => s.name === 'create scratch instance')).toMatchObject({
      status: 'completed',
      attempts: 2,
    });
    expectRowsMatch(report, sourceRows);
    expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
    expect([...seen]).toContain(scratch);
    await expectGone(scratch);
    expect((await cloudSqlNames()).filter((n) => n.startsWith('lifeboat-drill-'))).toEqual([]);
    // The injected failure went through the worker: it is in the logs, not swallowed.
    expect(logs.text).toContain('simulated: zone us-east4-a out of capacity');
    await expectNoSecrets(handle);
  });
});
