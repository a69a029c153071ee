// The Drill and Backup runbooks on the AWS provider, against moto_server's real HTTP API (RDS, KMS,
// EC2 in two regions). moto has no data plane: snapshot contents and restored databases come from
// the test-only stand-in in test/fakes/rds-data-plane.ts (pg_dump/pg_restore on local PostgreSQL),
// which every test name here says. What is real: every RDS call, its identifiers, tags, KMS keys,
// subnet groups and errors as moto serves them; Lifeboat's manifest capture and table-by-table check.
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { CreateDBInstanceCommand, CreateDBSnapshotCommand, DescribeDBInstancesCommand, DescribeDBSnapshotsCommand, RDSClient } from '@aws-sdk/client-rds';
import { AwsProvider, snapshotIdFor } from '../../activities/providers/aws';
import { withClient } from '../../activities/pg/sql';
import { findPgBin } from '../../activities/pg/binaries';
import { seedDemo } from '../../scripts/dev/seed';
import { backupInput, drillInput, loadPlanFile, type LoadedPlan } from '../../worker/plan';
import { RUNBOOK_TASK_QUEUE, type DrillInput, type RunbookReport } from '../../workflows/types';
import { LocalRdsDataPlane } from '../fakes/rds-data-plane';
import { awsTestFixture, motoClientConfig, resetMoto, type AwsTestFixture } from '../support/moto';
import { client, env, historyText, local, LogCapture, startWorker, type RunningWorker } from '../support/stack';

const EAST = 'us-east-1';
const WEST = 'us-west-2';
const SOURCE_INSTANCE = 'orders-prod';
const PG_DATABASE = 'aws_orders';
const PASSWORD_VAR = 'LIFEBOAT_TEST_RDS_PASSWORD';
const PASSWORD = 'rds-Secret-value-7f3a9';

const endpoint = () => process.env.AWS_ENDPOINT_URL!;
const rds = (region: string) => new RDSClient(motoClientConfig(endpoint(), region));
let seq = 0;
const workflowId = (what: string) => `test/aws/${what}/${Date.now()}-${seq++}`;

function writePlan(east: AwsTestFixture, west: AwsTestFixture): LoadedPlan {
  const file = join(env().home, 'aws-plan.yaml');
  const scratch = (f: AwsTestFixture) => `{ subnetGroup: ${f.subnetGroup}, securityGroups: [${f.securityGroupId}] }`;
  writeFileSync(
    file,
    `regions:
  aws-east: { provider: aws, awsRegion: ${EAST}, kmsKeyId: "${east.kmsKeyArn}", scratch: ${scratch(east)} }
  aws-west: { provider: aws, awsRegion: ${WEST}, kmsKeyId: "${west.kmsKeyArn}", scratch: ${scratch(west)} }
databases:
  orders:
    primary: { region: aws-east, database: ${PG_DATABASE}, instance: ${SOURCE_INSTANCE}, credentials: { user: lifeboat, password: "env:${PASSWORD_VAR}" } }
    dr: { region: aws-west }
    objectives: { rpo: 1h, rto: 1h }
    retention: { keep: 1 }
    checks:
      - name: recent orders exist
        sql: select count(*) > 0 from orders
`,
  );
  return loadPlanFile(file);
}

describe('AWS provider against moto (no data plane in moto: data mirrored by the test-only pg_dump/pg_restore stand-in)', () => {
  let plan: LoadedPlan;
  let dataPlane: LocalRdsDataPlane;
  let worker: RunningWorker;
  const logs = new LogCapture();

  beforeAll(async () => {
    process.env[PASSWORD_VAR] = PASSWORD;
    await resetMoto(endpoint());
    const [east, west] = await Promise.all([awsTestFixture(endpoint(), EAST), awsTestFixture(endpoint(), WEST)]);
    await rds(EAST).send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: SOURCE_INSTANCE,
        Engine: 'postgres',
        EngineVersion: '16.3',
        DBInstanceClass: 'db.t4g.micro',
        MasterUsername: 'lifeboat',
        MasterUserPassword: PASSWORD,
        DBSubnetGroupName: east.subnetGroup,
        StorageEncrypted: true,
        KmsKeyId: east.kmsKeyArn,
        AllocatedStorage: 20,
      }),
    );
    plan = writePlan(east, west);
    // The source instance's data: a database of its own on local-a, so the local tests' `orders` is untouched.
    const server = { region: 'local-a', name: 'server' };
    await withClient(await local().connectNode(server, 'postgres'), async (c) => {
      await c.query(`drop database if exists ${PG_DATABASE} with (force)`);
      await c.query(`create database ${PG_DATABASE}`);
    });
    await withClient(await local().connectNode(server, PG_DATABASE), (c) => seedDemo(c, 0.05));
    dataPlane = new LocalRdsDataPlane({
      local: local(),
      pgBin: findPgBin(env().pgBin),
      dir: join(env().home, 'rds-stand-in'),
      sources: { [`${EAST}/${SOURCE_INSTANCE}`]: { node: server, database: PG_DATABASE } },
      restoreNode: { region: 'local-b', name: 'server' },
    });
    worker = await startWorker({
      regions: ['aws-east', 'aws-west'],
      capture: logs,
      providers: { aws: new AwsProvider({ secrets: process.env, pollMs: 50, testOnlyDataPlane: dataPlane }) },
    });
  });

  afterAll(async () => {
    await worker?.stop();
  });

  async function drill(overrides: Partial<DrillInput> = {}) {
    const input = { ...drillInput(plan, 'orders', { fromLatestBackup: false, triggeredBy: 'test' }), ...overrides };
    const handle = await (await client()).workflow.start('drill', { taskQueue: RUNBOOK_TASK_QUEUE, workflowId: workflowId('drill'), args: [input] });
    return { handle, report: (await handle.result()) as RunbookReport };
  }

  test('a drill passes (data from the test-only stand-in): snapshot, KMS re-encrypted copy in the DR region, private scratch restore, every table verified, scratch deleted', async () => {
    const { handle, report } = await drill();
    expect(report.reason).toBeUndefined();
    expect(report.outcome).toBe('passed');
    const tables = report.checks.filter((c) => c.name.startsWith('table '));
    expect(tables.length).toBeGreaterThanOrEqual(6);
    for (const t of tables) expect(t).toMatchObject({ ok: true, detail: expect.stringMatching(/rows, checksum matches$/) });
    expect(report.checks.find((c) => c.name === 'recent orders exist')).toMatchObject({ ok: true });
    expect(report.checks.find((c) => c.name === 'canary present')).toMatchObject({ ok: true });

    // The backup is a Lifeboat-tagged snapshot in us-east-1; the copy sits in us-west-2 under the west key.
    const snapshotId = snapshotIdFor(report.backup!.backupId);
    const [source] = (await rds(EAST).send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: snapshotId }))).DBSnapshots!;
    expect(source!.TagList).toEqual(expect.arrayContaining([{ Key: 'lifeboat:backup-id', Value: report.backup!.backupId }, { Key: 'lifeboat:created-by', Value: handle.workflowId }]));
    const [copy] = (await rds(WEST).send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: snapshotId }))).DBSnapshots!;
    const westKey = plan.plan.regions['aws-west']!;
    expect(copy!.KmsKeyId).toBe(westKey.provider === 'aws' ? westKey.kmsKeyId : 'none');
    expect(report.copies[0]!.location).toBe(copy!.DBSnapshotArn);

    // The scratch instance was restored (the stand-in saw it) and is gone again.
    expect(dataPlane.events).toContain(`restore ${WEST}/${snapshotId} -> lifeboat-drill-${(await handle.describe()).runId.slice(0, 8)}`);
    expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
    const west = (await rds(WEST).send(new DescribeDBInstancesCommand({}))).DBInstances ?? [];
    expect(west.filter((i) => i.DBInstanceIdentifier!.startsWith('lifeboat-drill-'))).toEqual([]);
    expect(dataPlane.liveRestores()).toEqual([]);

    // The password went in by reference: not in history, not in the logs, not in the report.
    const history = historyText(await handle.fetchHistory());
    expect(history).toContain(`env:${PASSWORD_VAR}`);
    expect(history).not.toContain(PASSWORD);
    expect(logs.text).not.toContain(PASSWORD);
    expect(JSON.stringify(report)).not.toContain(PASSWORD);
  });

  test('a drill fails when the restored data differs (tampered by the test-only stand-in) and still deletes its scratch instance', async () => {
    dataPlane.afterRestore = (conn) => withClient(conn, (c) => c.query('update orders set total_cents = total_cents + 1 where id = (select min(id) from orders)')).then(() => undefined);
    try {
      const { report } = await drill();
      expect(report.outcome).toBe('failed');
      expect(report.checks.find((c) => c.name === 'table public.orders')).toMatchObject({ ok: false, detail: expect.stringContaining('checksum differs') });
      expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);
      expect(dataPlane.liveRestores()).toEqual([]);
    } finally {
      dataPlane.afterRestore = undefined;
    }
  });

  test('the backup runbook keeps the newest Lifeboat snapshot per region and never touches a snapshot Lifeboat did not make', async () => {
    await rds(EAST).send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: SOURCE_INSTANCE, DBSnapshotIdentifier: 'someone-elses-snapshot' }));
    const c = await client();
    const input = backupInput(plan, 'orders', { triggeredBy: 'test' });
    const report = (await c.workflow.execute('backup', { taskQueue: RUNBOOK_TASK_QUEUE, workflowId: workflowId('backup'), args: [input] })) as RunbookReport;
    expect(report.outcome).toBe('passed');
    const ids = async (region: string) =>
      ((await rds(region).send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual' }))).DBSnapshots ?? []).map((s) => s.DBSnapshotIdentifier).sort();
    // keep: 1 in the plan: the drills' earlier snapshots are pruned, this run's stays; the foreign one stays.
    expect(await ids(EAST)).toEqual(['someone-elses-snapshot', snapshotIdFor(report.backup!.backupId)].sort());
    expect(await ids(WEST)).toEqual([snapshotIdFor(report.backup!.backupId)]);
  });
});
