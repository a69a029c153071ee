// The AWS test fixture against the run's moto_server: what the RDS provider tests will stand on.
// Each region gets its own key, subnet group and security group, and an RDS instance can be placed
// in them.
import {
  CreateDBInstanceCommand,
  DBInstanceNotFoundFault,
  DescribeDBInstancesCommand,
  DescribeDBSubnetGroupsCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { DescribeSecurityGroupsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { awsTestFixture, motoClientConfig, resetMoto, SCRATCH_NAME, type AwsTestFixture } from '../support/moto';

const endpoint = process.env.AWS_ENDPOINT_URL!;
const regions = ['us-east-1', 'us-west-2'] as const;

describe('AWS test fixture on moto', () => {
  const fixtures = new Map<string, AwsTestFixture>();
  const rds = Object.fromEntries(regions.map((r) => [r, new RDSClient(motoClientConfig(endpoint, r))]));
  const ec2 = Object.fromEntries(regions.map((r) => [r, new EC2Client(motoClientConfig(endpoint, r))]));

  beforeAll(async () => {
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await resetMoto(endpoint);
    for (const region of regions) fixtures.set(region, await awsTestFixture(endpoint, region));
  });

  afterAll(() => {
    for (const client of [...Object.values(rds), ...Object.values(ec2)]) client.destroy();
  });

  test.each(regions)(
    'in %s: a KMS key of that region, a subnet group over two zones, a security group',
    async (region) => {
      const fixture = fixtures.get(region)!;
      expect(fixture.kmsKeyArn).toMatch(new RegExp(`^arn:aws:kms:${region}:\\d{12}:key/[-0-9a-f]+$`));
      expect(fixture.subnetGroup).toBe(SCRATCH_NAME);

      const groups = await rds[region]!.send(
        new DescribeDBSubnetGroupsCommand({ DBSubnetGroupName: fixture.subnetGroup }),
      );
      const zones = groups.DBSubnetGroups![0]!.Subnets!.map((s) => s.SubnetAvailabilityZone!.Name!);
      expect(new Set(zones).size).toBe(2);
      for (const zone of zones) expect(zone.startsWith(region)).toBe(true);

      const sg = await ec2[region]!.send(new DescribeSecurityGroupsCommand({ GroupIds: [fixture.securityGroupId] }));
      expect(sg.SecurityGroups![0]!.GroupName).toBe(SCRATCH_NAME);
      expect(sg.SecurityGroups![0]!.VpcId).toBe(groups.DBSubnetGroups![0]!.VpcId);
    },
  );

  test('the two regions do not share a key', () => {
    expect(fixtures.get('us-east-1')!.kmsKeyArn).not.toBe(fixtures.get('us-west-2')!.kmsKeyArn);
  });

  test('a second call finds what the first made', async () => {
    expect(await awsTestFixture(endpoint, 'us-east-1')).toEqual(fixtures.get('us-east-1'));
  });

  test('an RDS instance goes into the fixture subnet group, and only in its own region', async () => {
    const fixture = fixtures.get('us-east-1')!;
    const id = `fixture-${Date.now()}`;
    await rds['us-east-1']!.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: id,
        Engine: 'postgres',
        DBInstanceClass: 'db.t3.micro',
        AllocatedStorage: 20,
        MasterUsername: 'lifeboat',
        MasterUserPassword: 'not-a-secret-1',
        DBSubnetGroupName: fixture.subnetGroup,
        VpcSecurityGroupIds: [fixture.securityGroupId],
        StorageEncrypted: true,
        KmsKeyId: fixture.kmsKeyArn,
      }),
    );

    const described = await rds['us-east-1']!.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
    const instance = described.DBInstances![0]!;
    expect(instance.DBInstanceIdentifier).toBe(id);
    expect(instance.Engine).toBe('postgres');
    expect(instance.DBSubnetGroup?.DBSubnetGroupName).toBe(SCRATCH_NAME);
    expect(instance.DBSubnetGroup?.Subnets).toHaveLength(2);
    expect(instance.VpcSecurityGroups?.map((g) => g.VpcSecurityGroupId)).toEqual([fixture.securityGroupId]);
    expect(instance.KmsKeyId).toBe(fixture.kmsKeyArn);

    await expect(
      rds['us-west-2']!.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id })),
    ).rejects.toBeInstanceOf(DBInstanceNotFoundFault);
  });
});
