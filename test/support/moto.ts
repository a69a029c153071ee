// moto_server: the AWS API stand-in the AWS provider tests run against. One process serves every
// region, with each region's resources apart, all in memory: a reset gives a test a clean account.
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  KMSClient,
  NotFoundException,
} from '@aws-sdk/client-kms';
import {
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeAvailabilityZonesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
  type Subnet,
} from '@aws-sdk/client-ec2';
import {
  CreateDBInstanceCommand,
  CreateDBSubnetGroupCommand,
  DBSubnetGroupNotFoundFault,
  DescribeDBSubnetGroupsCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { stopProcess } from './cli';
import { emulatorLogDir, installedTool, waitUntilAnswering } from './t2-tools';

/** The name of every scratch resource the fixture makes: a second call finds them by it. */
export const SCRATCH_NAME = 'lifeboat-scratch';
const VPC_CIDR = '10.42.0.0/16';
const STARTUP_SECONDS = 30;

export interface MotoServer {
  pid: number;
  endpoint: string;
  /** SIGTERM, then SIGKILL if it has not gone within 10 s. Safe to repeat. */
  stop(): Promise<void>;
}

export interface AwsTestFixture {
  kmsKeyArn: string;
  subnetGroup: string;
  securityGroupId: string;
}

/** Where scripts/setup.sh --with-moto installs it; throws with the fix when it is not there. */
export function motoServerPath(): string {
  return installedTool('.venv/bin', 'moto_server', '--with-moto');
}

/**
 * A moto_server on `port`, logging to `log` (default: LIFEBOAT_HOME/moto-server.log). Detached by
 * default: the test stack's outlives the global setup that starts it; a benchmark's is not, so that
 * Ctrl-C stops it with the benchmark.
 */
export async function startMoto(port: number, options: { log?: string; detached?: boolean } = {}): Promise<MotoServer> {
  const log = options.log ?? join(emulatorLogDir('moto'), 'moto-server.log');
  const detached = options.detached ?? true;
  const out = openSync(log, 'a');
  const child = spawn(motoServerPath(), ['-H', '127.0.0.1', '-p', String(port)], {
    detached,
    stdio: ['ignore', out, out],
  });
  if (detached) child.unref();
  const endpoint = `http://127.0.0.1:${port}`;
  await waitUntilAnswering(child, `moto_server on port ${port}`, `${endpoint}/moto-api/`, log, STARTUP_SECONDS);
  return { pid: child.pid!, endpoint, stop: () => stopProcess(child, 10_000) };
}

export async function resetMoto(endpoint: string): Promise<void> {
  const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
  if (!res.ok) throw new Error(`resetting moto at ${endpoint} answered HTTP ${res.status}; expected 200`);
}

/** Client options that reach moto and fail at once instead of retrying a mistake. */
export function motoClientConfig(endpoint: string, region: string) {
  return { endpoint, region, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, maxAttempts: 1 };
}

export const EAST = 'us-east-1';
export const WEST = 'us-west-2';

/**
 * A plan's two AWS regions on moto, `<prefix>-east` (us-east-1) and `<prefix>-west` (us-west-2), with
 * their fixtures' scratch networking.
 */
export function awsPlanRegions(east: AwsTestFixture, west: AwsTestFixture, prefix = 'aws'): string {
  const scratch = (f: AwsTestFixture) => `{ subnetGroup: ${f.subnetGroup}, securityGroups: [${f.securityGroupId}] }`;
  return `regions:
  ${prefix}-east: { provider: aws, awsRegion: ${EAST}, kmsKeyId: "${east.kmsKeyArn}", scratch: ${scratch(east)} }
  ${prefix}-west: { provider: aws, awsRegion: ${WEST}, kmsKeyId: "${west.kmsKeyArn}", scratch: ${scratch(west)} }
`;
}

/** One database of such a plan (a `databases:` entry): an RDS instance in aws-east, its DR copies in aws-west. */
export function awsPlanDatabase(
  key: string,
  options: { pgDatabase: string; instance: string; passwordVar: string },
): string {
  return `  ${key}:
    primary: { region: aws-east, database: ${options.pgDatabase}, instance: ${options.instance}, credentials: { user: lifeboat, password: "env:${options.passwordVar}" } }
    dr: { region: aws-west }
    objectives: { rpo: 1h, rto: 1h }
    retention: { keep: 1 }
    checks:
      - name: recent orders exist
        sql: select count(*) > 0 from orders
`;
}

/** The RDS instance a drill test (or the fleet benchmark) restores from: PostgreSQL 16, encrypted with the fixture's key. */
export function createInstanceCommand(
  identifier: string,
  password: string,
  fixture: AwsTestFixture,
): CreateDBInstanceCommand {
  return new CreateDBInstanceCommand({
    DBInstanceIdentifier: identifier,
    Engine: 'postgres',
    EngineVersion: '16.3',
    DBInstanceClass: 'db.t4g.micro',
    MasterUsername: 'lifeboat',
    MasterUserPassword: password,
    DBSubnetGroupName: fixture.subnetGroup,
    StorageEncrypted: true,
    KmsKeyId: fixture.kmsKeyArn,
    AllocatedStorage: 20,
  });
}

/**
 * What an RDS restore in one region needs around it: a KMS key, a DB subnet group over two
 * availability zones, a security group. Finds what an earlier call made, so tests may call it freely.
 */
export async function awsTestFixture(endpoint: string, awsRegion: string): Promise<AwsTestFixture> {
  const config = motoClientConfig(endpoint, awsRegion);
  const ec2 = new EC2Client(config);
  const kms = new KMSClient(config);
  const rds = new RDSClient(config);
  try {
    const vpcId = await scratchVpc(ec2);
    const subnetIds = await scratchSubnets(ec2, vpcId, awsRegion);
    return {
      kmsKeyArn: await scratchKey(kms),
      subnetGroup: await scratchSubnetGroup(rds, subnetIds),
      securityGroupId: await scratchSecurityGroup(ec2, vpcId),
    };
  } finally {
    for (const client of [ec2, kms, rds]) client.destroy();
  }
}

async function scratchKey(kms: KMSClient): Promise<string> {
  const alias = `alias/${SCRATCH_NAME}`;
  try {
    const found = await kms.send(new DescribeKeyCommand({ KeyId: alias }));
    return found.KeyMetadata!.Arn!;
  } catch (err) {
    if (!(err instanceof NotFoundException)) throw err;
  }
  const created = await kms.send(new CreateKeyCommand({ Description: 'Lifeboat test scratch key' }));
  await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: created.KeyMetadata!.KeyId! }));
  return created.KeyMetadata!.Arn!;
}

async function scratchVpc(ec2: EC2Client): Promise<string> {
  const found = await ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: 'tag:Name', Values: [SCRATCH_NAME] }] }));
  const existing = found.Vpcs?.[0]?.VpcId;
  if (existing) return existing;
  const created = await ec2.send(
    new CreateVpcCommand({
      CidrBlock: VPC_CIDR,
      TagSpecifications: [{ ResourceType: 'vpc', Tags: [{ Key: 'Name', Value: SCRATCH_NAME }] }],
    }),
  );
  return created.Vpc!.VpcId!;
}

/** One subnet in each of the region's first two availability zones: RDS wants at least two. */
async function scratchSubnets(ec2: EC2Client, vpcId: string, awsRegion: string): Promise<string[]> {
  const zones = await ec2.send(new DescribeAvailabilityZonesCommand({}));
  const names = (zones.AvailabilityZones ?? [])
    .map((z) => z.ZoneName!)
    .sort()
    .slice(0, 2);
  if (names.length < 2)
    throw new Error(`moto lists ${names.length} availability zones for ${awsRegion}; expected at least 2`);
  const found = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }));
  const existing = found.Subnets ?? [];
  const ids: string[] = [];
  for (const [i, zone] of names.entries()) {
    const subnet =
      existing.find((s) => s.AvailabilityZone === zone) ?? (await createSubnet(ec2, vpcId, zone, `10.42.${i}.0/24`));
    ids.push(subnet.SubnetId!);
  }
  return ids;
}

async function createSubnet(ec2: EC2Client, vpcId: string, zone: string, cidr: string): Promise<Subnet> {
  const created = await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, AvailabilityZone: zone, CidrBlock: cidr }));
  return created.Subnet!;
}

async function scratchSubnetGroup(rds: RDSClient, subnetIds: string[]): Promise<string> {
  try {
    await rds.send(new DescribeDBSubnetGroupsCommand({ DBSubnetGroupName: SCRATCH_NAME }));
    return SCRATCH_NAME;
  } catch (err) {
    if (!(err instanceof DBSubnetGroupNotFoundFault)) throw err;
  }
  await rds.send(
    new CreateDBSubnetGroupCommand({
      DBSubnetGroupName: SCRATCH_NAME,
      DBSubnetGroupDescription: 'Lifeboat test scratch',
      SubnetIds: subnetIds,
    }),
  );
  return SCRATCH_NAME;
}

async function scratchSecurityGroup(ec2: EC2Client, vpcId: string): Promise<string> {
  const filters = [
    { Name: 'group-name', Values: [SCRATCH_NAME] },
    { Name: 'vpc-id', Values: [vpcId] },
  ];
  const found = await ec2.send(new DescribeSecurityGroupsCommand({ Filters: filters }));
  const existing = found.SecurityGroups?.[0]?.GroupId;
  if (existing) return existing;
  const created = await ec2.send(
    new CreateSecurityGroupCommand({ GroupName: SCRATCH_NAME, Description: 'Lifeboat test scratch', VpcId: vpcId }),
  );
  return created.GroupId!;
}
