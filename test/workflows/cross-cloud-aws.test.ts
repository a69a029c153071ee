// A cross-cloud drill from AWS to a local region, through portable backups: pg_dump of the "RDS"
// database into an S3 bucket, a streamed, checksummed copy into the DR region's directory store, a
// pg_restore into a local scratch instance, every table checked against the manifest.
//
// What is real: the Temporal runbooks and workers, RDS's control plane and S3's API as moto_server
// serves them (no IAM, no real durability), the local PostgreSQL servers, pg_dump and pg_restore.
// What is not: moto has no RDS data plane, so the instance's database is a local one reached through
// the test-only stand-in (test/fakes/rds-data-plane.ts), logged into with the instance's master
// password; every test name says so.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { DescribeDBInstancesCommand, DescribeDBSnapshotsCommand } from '@aws-sdk/client-rds';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { findPgBin } from '../../activities/pg/binaries';
import { withClient } from '../../activities/pg/sql';
import { PortableBackups } from '../../activities/portable/portable-backups';
import { PART_SIZE } from '../../activities/portable/s3-store';
import { backupInput, drillInput, type LoadedPlan } from '../../worker/plan';
import { runTag } from '../../workflows/shared-steps';
import type { BackupRef, DrillInput, RunbookReport } from '../../workflows/types';
import { EAST, rds } from '../support/aws-drill';
import { silentIo } from '../support/activity-context';
import { rdsProvider, runRunbook, sha256, workflowIds } from '../support/cloud-stack';
import { env, historyText, local, LogCapture, startWorker, type RunningWorker } from '../support/stack';
import { passedDrillSteps } from '../support/t2-drill';
import {
  setUpCrossCloudAwsDrill,
  sourceRowCounts,
  SOURCE_SERVER,
  tearDownCrossCloudAwsDrill,
  type CrossCloudAwsOptions,
  type CrossCloudAwsSetup,
} from '../support/xc-aws-drill';
import { runbookReport } from '../../workflows/runbook-failure';

const XC: CrossCloudAwsOptions = {
  database: 'orders',
  instance: 'orders-rds',
  pgDatabase: 'xc_aws_orders',
  user: 'lifeboat',
  passwordVar: 'LIFEBOAT_TEST_XC_RDS_PASSWORD',
  password: 'xc-Rds-secret-9c41d:e7',
  bucket: `lifeboat-xc-aws-${process.pid}`,
  drRegion: 'local-b',
  // Past one 8 MiB part: the upload to S3 is multipart, the copy streams several parts.
  blobBytes: 12 << 20,
};
const PREFIX = 'lifeboat/';
const TABLES = [
  'lifeboat.canary',
  'public.blobs',
  'public.customers',
  'public.order_items',
  'public.orders',
  'public.payments',
  'public.products',
];

const workflowId = workflowIds('xc-aws');

describe('cross-cloud drill from AWS RDS to a local region (moto S3 + test-only RDS data plane: no IAM, no real RDS)', () => {
  let setup: CrossCloudAwsSetup;
  let plan: LoadedPlan;
  let worker: RunningWorker;
  const logs = new LogCapture();
  /** Every run this file starts, for the leak check. */
  const runs: Array<WorkflowHandle> = [];
  let passed: { report: RunbookReport; scratch: string; sourceRows: Record<string, number> };

  async function start(runbook: 'drill' | 'backup', input: unknown) {
    const { handle, report } = await runRunbook(runbook, input, workflowId(runbook));
    runs.push(handle);
    return { handle, report, scratch: `drill-${runTag((await handle.describe()).runId)}` };
  }
  const drill = (overrides: Partial<DrillInput> = {}) =>
    start('drill', {
      ...drillInput(plan, XC.database, { fromLatestBackup: false, triggeredBy: 'test' }),
      ...overrides,
    });
  const drRegion = () => ({ name: XC.drRegion, provider: 'local' as const });
  const s3Keys = async (under: string) =>
    ((await setup.s3.send(new ListObjectsV2Command({ Bucket: XC.bucket, Prefix: `${PREFIX}${under}` }))).Contents ?? [])
      .map((o) => o.Key!)
      .sort();
  const s3Bytes = async (key: string) =>
    Buffer.from(
      await (await setup.s3.send(new GetObjectCommand({ Bucket: XC.bucket, Key: key }))).Body!.transformToByteArray(),
    );

  beforeAll(async () => {
    setup = await setUpCrossCloudAwsDrill(XC);
    plan = setup.plan;
    worker = await startWorker({
      regions: ['aws-east', XC.drRegion],
      capture: logs,
      providers: {
        aws: rdsProvider(setup.dataPlane),
      },
    });
    const sourceRows = await sourceRowCounts(XC.pgDatabase, [
      'blobs',
      'customers',
      'order_items',
      'orders',
      'payments',
      'products',
    ]);
    const { report, scratch } = await drill();
    passed = { report, scratch, sourceRows };
  });

  afterAll(async () => {
    await worker?.stop();
    setup?.s3.destroy();
    await tearDownCrossCloudAwsDrill(XC);
  });

  test('a drill passes (data from the test-only stand-in): pg_dump into S3 (moto), verified, streamed and checksummed into the DR directory store, restored into a local scratch instance, every table verified, scratch torn down', async () => {
    const { report, scratch, sourceRows } = passed;
    expect(report.reason).toBeUndefined();
    expect(report.outcome).toBe('passed');
    expect(report.steps.map((s) => s.name)).toEqual(passedDrillSteps(XC.drRegion, `tear down ${scratch}`));
    expect(report.steps.every((s) => s.status === 'completed')).toBe(true);

    // Every table of the source, with its seeded rows, restored and checksummed against the manifest.
    const tables = report.checks.filter((c) => c.name.startsWith('table '));
    expect(tables.map((t) => t.name).sort()).toEqual(TABLES.map((t) => `table ${t}`));
    for (const t of tables)
      expect(t).toMatchObject({ ok: true, detail: expect.stringMatching(/^\d+ rows, checksum matches$/) });
    for (const [table, rows] of Object.entries(sourceRows)) {
      expect(rows).toBeGreaterThan(0);
      expect(report.checks.find((c) => c.name === `table ${table}`)!.detail).toBe(`${rows} rows, checksum matches`);
    }
    expect(report.checks.find((c) => c.name === 'recent orders exist')).toMatchObject({ ok: true });
    expect(report.checks.find((c) => c.name === 'every order has its customer')).toMatchObject({ ok: true });
    expect(report.checks.find((c) => c.name === 'canary present')).toMatchObject({ ok: true });
    expect(report.rpoSeconds).toBe(0);

    // The backup is in the AWS region's bucket, the copy in the DR region's directory, byte for byte.
    const backup = report.backup!;
    const copy = report.copies[0]!;
    expect(backup.store).toEqual({ kind: 's3', bucket: XC.bucket, prefix: PREFIX, awsRegion: EAST });
    expect(copy.store).toEqual({ kind: 'dir', path: setup.storeDir });
    expect(backup).toMatchObject({
      provider: 'aws',
      region: 'aws-east',
      database: XC.pgDatabase,
      location: `s3://${XC.bucket}/lifeboat/${XC.pgDatabase}/${backup.backupId}/dump.pgdump`,
    });
    expect(copy).toMatchObject({
      backupId: backup.backupId,
      sha256: backup.sha256,
      sizeBytes: backup.sizeBytes,
      region: XC.drRegion,
    });
    const inBucket = `${PREFIX}${XC.pgDatabase}/${backup.backupId}/`;
    expect(await s3Keys(`${XC.pgDatabase}/${backup.backupId}/`)).toEqual([
      `${inBucket}dump.pgdump`,
      `${inBucket}manifest.json`,
    ]);
    const dumpInS3 = await s3Bytes(`${inBucket}dump.pgdump`);
    expect(dumpInS3.length).toBe(backup.sizeBytes);
    // Larger than one part, so it went up as a multipart upload: the ETag ends in its part count.
    expect(backup.sizeBytes).toBeGreaterThan(PART_SIZE);
    const head = await setup.s3.send(new HeadObjectCommand({ Bucket: XC.bucket, Key: `${inBucket}dump.pgdump` }));
    expect(head.ETag).toMatch(new RegExp(`-${Math.ceil(backup.sizeBytes / PART_SIZE)}"$`));
    expect(sha256(dumpInS3)).toBe(backup.sha256);
    expect(dumpInS3.subarray(0, 5).toString()).toBe('PGDMP'); // pg_dump's custom format
    const copyDir = join(setup.storeDir, XC.pgDatabase, backup.backupId);
    expect(readdirSync(copyDir).sort()).toEqual(['dump.pgdump', 'manifest.json']);
    expect(sha256(readFileSync(join(copyDir, 'dump.pgdump')))).toBe(backup.sha256);
    expect(readFileSync(join(copyDir, 'manifest.json'), 'utf8')).toBe(
      (await s3Bytes(`${inBucket}manifest.json`)).toString('utf8'),
    );
    const manifest = JSON.parse(readFileSync(join(copyDir, 'manifest.json'), 'utf8')) as {
      provider: string;
      sourceRegion: string;
      sha256: string;
    };
    expect(manifest).toMatchObject({ provider: 'aws', sourceRegion: 'aws-east', sha256: backup.sha256 });

    // A portable drill takes no RDS snapshot and restores no RDS instance.
    expect(
      (await rds(EAST).send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual' }))).DBSnapshots ?? [],
    ).toEqual([]);
    expect(
      ((await rds(EAST).send(new DescribeDBInstancesCommand({}))).DBInstances ?? []).map((i) => i.DBInstanceIdentifier),
    ).toEqual([XC.instance]);
    expect(setup.standIn.events).toEqual([]);

    // The scratch instance was local, and is gone.
    expect(report.cleanup).toEqual([{ name: `tear down ${scratch}`, ok: true, detail: 'deleted' }]);
    expect(await local().listScratch(drRegion())).not.toContain(scratch);
    expect(existsSync(join(env().home, 'regions', XC.drRegion, 'scratch', scratch))).toBe(false);
  });

  test('a drill from the latest backup fails with LifeboatBackupChecksumMismatch when the DR copy in the directory store was overwritten after the Backup runbook, and still tears its scratch down (moto S3 + test-only RDS data plane)', async () => {
    const { report: backedUp } = await start('backup', backupInput(plan, XC.database, { triggeredBy: 'test' }));
    expect(backedUp.reason).toBeUndefined();
    expect(backedUp.outcome).toBe('passed');
    const made = backedUp.backup!;
    expect(made.store?.kind).toBe('s3');
    expect(backedUp.copies[0]!.store?.kind).toBe('dir');
    // keep: 1 in the plan: the first drill's backup is pruned from both stores, this one stays.
    expect(backedUp.checks.find((c) => c.name === 'retention aws-east')).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/^kept 1, deleted [1-9]/),
    });
    expect(backedUp.checks.find((c) => c.name === `retention ${XC.drRegion}`)).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/^kept 1, deleted [1-9]/),
    });
    expect(await s3Keys(XC.pgDatabase)).toEqual([
      `${PREFIX}${XC.pgDatabase}/${made.backupId}/dump.pgdump`,
      `${PREFIX}${XC.pgDatabase}/${made.backupId}/manifest.json`,
    ]);

    // Same size, different bytes: only the checksum can tell.
    const dumpFile = join(setup.storeDir, XC.pgDatabase, made.backupId, 'dump.pgdump');
    const bytes = readFileSync(dumpFile);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0xff;
    writeFileSync(dumpFile, bytes);

    const { report, scratch } = await drill({ fromLatestBackup: true });
    expect(report.outcome).toBe('failed');
    expect(report.reason).toContain('LifeboatBackupChecksumMismatch');
    expect(report.reason).toContain(made.sha256);
    expect(report.backup?.backupId).toBe(made.backupId);
    expect(report.copies[0]!.store).toEqual({ kind: 'dir', path: setup.storeDir });
    const steps = new Map(report.steps.map((s) => [s.name, s]));
    expect(steps.get('find latest backup')?.status).toBe('completed');
    expect(steps.get('verify copy')).toMatchObject({ status: 'failed', attempts: 1 });
    expect(steps.has('restore')).toBe(false);
    expect(report.cleanup).toEqual([{ name: `tear down ${scratch}`, ok: true, detail: 'deleted' }]);
    expect(await local().listScratch(drRegion())).not.toContain(scratch);
  });

  test('a dump overwritten in the S3 bucket after its backup (PutObject, same size) fails verification against its manifest (the portable-backup code the verifyBackup activity runs, called directly against moto S3)', async () => {
    const portable = new PortableBackups({
      pgBin: findPgBin(env().pgBin),
      workDir: join(env().home, 'xc-aws-staging'),
    });
    const [newest] = await portable.list(
      { name: 'aws-east', provider: 'aws', store: { kind: 's3', bucket: XC.bucket, prefix: PREFIX, awsRegion: EAST } },
      XC.pgDatabase,
    );
    expect(newest).toBeDefined();
    const ref: BackupRef = newest!;
    await expect(portable.verify(ref, silentIo)).resolves.toMatchObject({ sha256: ref.sha256 });

    const key = `${PREFIX}${XC.pgDatabase}/${ref.backupId}/dump.pgdump`;
    const bytes = await s3Bytes(key);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await setup.s3.send(new PutObjectCommand({ Bucket: XC.bucket, Key: key, Body: bytes }));

    await expect(portable.verify(ref, silentIo)).rejects.toMatchObject({
      type: 'LifeboatBackupChecksumMismatch',
      nonRetryable: true,
      message: expect.stringContaining(`expected ${ref.sha256} (${ref.sizeBytes} bytes)`),
    });
  });

  test('the RDS master password (env:, used for real by the stand-in login) never appears in workflow history, the worker logs or the reports (moto S3 + test-only RDS data plane)', async () => {
    // The secret was in use: the drill's canary table was created by the master login.
    const owner = await withClient(
      await local().connectNode(SOURCE_SERVER, XC.pgDatabase),
      async (c) =>
        (
          await c.query<{ owner: string }>(
            `select tableowner as owner from pg_tables where schemaname = 'lifeboat' and tablename = 'canary'`,
          )
        ).rows[0]?.owner,
    );
    expect(owner).toBe(XC.user);
    expect(runs.length).toBeGreaterThanOrEqual(3);
    for (const handle of runs) {
      const history = historyText(await handle.fetchHistory());
      expect(history).toContain(`env:${XC.passwordVar}`);
      expect(history).not.toContain(XC.password);
      expect(JSON.stringify(await runbookReport(handle))).not.toContain(XC.password);
    }
    expect(logs.text.length).toBeGreaterThan(0);
    expect(logs.text).not.toContain(XC.password);
    // Nor in what the stores hold.
    for (const key of await s3Keys('')) expect((await s3Bytes(key)).includes(XC.password)).toBe(false);
  });
});
