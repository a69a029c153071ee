// Aurora global database failover at the SDK level. moto answers SwitchoverGlobalCluster and
// FailoverGlobalCluster with an HTML HTTP 500 (the last test shows it), so the AWS provider runs
// here against test/support/rds-stub.ts: a small server that speaks the RDS Query protocol and moves
// the writer the way Aurora does. What is real: the provider, the AWS SDK's signing, serialising and
// parsing, and the SQL step after the move (on the stack's local-a server). What is not: Aurora.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { FailoverGlobalClusterCommand, RDSClient, SwitchoverGlobalClusterCommand } from '@aws-sdk/client-rds';
import { withClient, type PgConnection } from '../../activities/pg/sql';
import { AwsProvider } from '../../activities/providers/aws';
import type { AwsDataPlane } from '../../activities/providers/aws-data-plane';
import { AURORA_REPLAY_MARKER } from '../../activities/providers/aws-aurora';
import type { ActivityIo } from '../../activities/providers/provider';
import { createLogger } from '../../worker/logger';
import type { NodeRef, ReplicaSetSpec } from '../../workflows/types';
import { RdsStub } from '../support/rds-stub';
import { env, local } from '../support/stack';
import { motoClientConfig } from '../support/moto';

// Captured at load, before the tests point the SDK at the stub: the last test asks moto itself.
const motoEndpoint = process.env.AWS_ENDPOINT_URL;

const credentials = { user: 'u', password: 'env:PW' };
const west: NodeRef = {
  region: 'aws-west',
  name: 'apg-west',
  location: 'us-west-2',
  globalCluster: 'apg-global',
  credentials,
};
const east: NodeRef = {
  region: 'aws-east',
  name: 'apg-east',
  location: 'us-east-1',
  globalCluster: 'apg-global',
  credentials,
};
const set: ReplicaSetSpec = {
  set: 'aurora-home',
  home: { name: 'aws-east', provider: 'aws', settings: { awsRegion: 'us-east-1' } },
  dr: { name: 'aws-west', provider: 'aws', settings: { awsRegion: 'us-west-2' } },
  nodes: { home: 'apg-east', dr: 'apg-west' },
  globalCluster: 'apg-global',
  credentials,
};

/** A database on local-a that the promoted writer "replayed" the old writer's fence into. */
const FENCED_DB = 'lifeboat_aurora_sdk_fence';

interface Heartbeat {
  phase?: string;
  status?: string;
}

/**
 * The promote, rejoin and status paths loop until Aurora says so: the deadline turns a stub that
 * never flips (or a provider that never stops polling) into a failure in seconds, not a hang.
 */
function activityIo(heartbeats: Heartbeat[] = [], deadlineMs = 5_000): ActivityIo {
  return {
    heartbeat: (d) => heartbeats.push((d ?? {}) as Heartbeat),
    signal: AbortSignal.timeout(deadlineMs),
    logger: createLogger('silent'),
  };
}

/** Only `connect` has a job here: the control plane is the stub, the SQL goes to local-a. */
class LocalAuroraDataPlane implements AwsDataPlane {
  readonly connects: { awsRegion: string; cluster: string; database: string; writerThen: string }[] = [];
  readonly promoted: string[] = [];
  constructor(private readonly stub: RdsStub) {}
  async connect(awsRegion: string, cluster: string, database: string): Promise<PgConnection> {
    this.connects.push({ awsRegion, cluster, database, writerThen: this.stub.writer });
    return local().connectNode({ region: 'local-a', name: 'server' }, 'postgres');
  }
  async instancePromoted(awsRegion: string, cluster: string): Promise<void> {
    // Aurora moves the data itself; recorded only.
    this.promoted.push(`${awsRegion}/${cluster}`);
  }
  snapshotCreated(): Promise<void> {
    throw new Error('not used by the Aurora tests');
  }
  snapshotCopied(): Promise<void> {
    throw new Error('not used by the Aurora tests');
  }
  instanceRestored(): Promise<void> {
    throw new Error('not used by the Aurora tests');
  }
  instanceDeleted(): Promise<void> {
    throw new Error('not used by the Aurora tests');
  }
  replicaCreated(): Promise<void> {
    throw new Error('not used by the Aurora tests');
  }
}

const localA = () => local().connectNode({ region: 'local-a', name: 'server' }, 'postgres');

async function fenceFlagOf(database: string): Promise<boolean> {
  return withClient(await localA(), async (c) => {
    const { rows } = await c.query<{ on: boolean }>(
      `select exists (select 1 from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase
                       where s.setrole = 0 and d.datname = $1 and 'default_transaction_read_only=on' = any(s.setconfig)) as on`,
      [database],
    );
    return rows[0]!.on;
  });
}

describe('Aurora global database failover, SDK level: moto lacks SwitchoverGlobalCluster/FailoverGlobalCluster, so a stub RDS server answers', () => {
  let stub: RdsStub;
  let dataPlane: LocalAuroraDataPlane;
  let provider: AwsProvider;
  // A home of its own per provider: topology() records the set there and would read it back next time.
  // Under the run's LIFEBOAT_HOME, which the global teardown removes.
  const newProvider = () =>
    new AwsProvider({
      home: mkdtempSync(join(env().home, 'aurora-sdk-')),
      secrets: { PW: 'x' },
      pollMs: 10,
      dataPlane,
    });

  beforeAll(async () => {
    await withClient(await localA(), async (c) => {
      await c.query(`drop database if exists ${FENCED_DB}`);
      await c.query(`create database ${FENCED_DB}`);
    });
  });

  afterAll(async () => {
    await withClient(await localA(), (c) => c.query(`drop database if exists ${FENCED_DB}`));
  });

  beforeEach(async () => {
    stub = await RdsStub.start();
    // The SDK reads this itself: the provider code under test takes no endpoint option.
    process.env.AWS_ENDPOINT_URL = stub.endpoint;
    dataPlane = new LocalAuroraDataPlane(stub);
    provider = newProvider();
  });

  afterEach(async () => {
    // Assigning undefined would store the string "undefined".
    if (motoEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL;
    else process.env.AWS_ENDPOINT_URL = motoEndpoint;
    await stub.close();
  });

  test('SDK level (moto lacks SwitchoverGlobalCluster/FailoverGlobalCluster): planned promote sends one SwitchoverGlobalCluster to the secondary ARN, polls until it is the writer, then lifts the fence', async () => {
    stub.describesPerMove = 2;
    await withClient(await localA(), (c) =>
      c.query(`alter database ${FENCED_DB} set default_transaction_read_only = on`),
    );
    const heartbeats: Heartbeat[] = [];

    const result = await provider.promote(west, activityIo(heartbeats), 'planned');

    expect(result).toEqual({ lsn: AURORA_REPLAY_MARKER, alreadyPrimary: false });
    const switchovers = stub.callsOf('SwitchoverGlobalCluster');
    expect(switchovers).toHaveLength(1);
    expect(switchovers[0]!.params).toMatchObject({
      GlobalClusterIdentifier: 'apg-global',
      TargetDbClusterIdentifier: 'arn:aws:rds:us-west-2:123456789012:cluster:apg-west',
    });
    expect(switchovers[0]!.params).not.toHaveProperty('AllowDataLoss');
    expect(switchovers[0]!.status).toBe(200);
    expect(stub.callsOf('FailoverGlobalCluster')).toHaveLength(0);
    expect(stub.writer).toBe('apg-west');
    // It waited through the two 'switching-over' answers, heartbeating each.
    expect(heartbeats.filter((h) => h.status === 'switching-over')).toHaveLength(2);
    // The SQL step ran on the new writer only once Aurora reported it as the writer.
    expect(dataPlane.connects.length).toBeGreaterThan(0);
    expect(dataPlane.connects.at(-1)).toEqual({
      awsRegion: 'us-west-2',
      cluster: 'apg-west',
      database: 'postgres',
      writerThen: 'apg-west',
    });
    expect(await fenceFlagOf(FENCED_DB)).toBe(false);
  });

  test('SDK level (moto lacks SwitchoverGlobalCluster/FailoverGlobalCluster): unplanned promote sends FailoverGlobalCluster with AllowDataLoss, from the target region, and no switchover', async () => {
    stub.describesPerMove = 1;

    const result = await provider.promote(west, activityIo(), 'unplanned');

    expect(result.alreadyPrimary).toBe(false);
    const failovers = stub.callsOf('FailoverGlobalCluster');
    expect(failovers).toHaveLength(1);
    expect(failovers[0]!.params).toMatchObject({
      GlobalClusterIdentifier: 'apg-global',
      TargetDbClusterIdentifier: stub.arn('apg-west'),
      AllowDataLoss: 'true',
    });
    // The home region may be dark: nothing of the move may depend on reaching it.
    expect(stub.calls.filter((c) => c.awsRegion !== 'us-west-2')).toEqual([]);
    expect(stub.callsOf('SwitchoverGlobalCluster')).toHaveLength(0);
    expect(stub.writer).toBe('apg-west');
  });

  test.each(['planned', 'unplanned'] as const)(
    'SDK level (moto lacks SwitchoverGlobalCluster/FailoverGlobalCluster): %s promote of the cluster that is already the writer sends neither call (a retry of a move that landed)',
    async (mode) => {
      stub.setWriter('apg-west');

      const result = await provider.promote(west, activityIo(), mode);

      expect(result).toEqual({ lsn: AURORA_REPLAY_MARKER, alreadyPrimary: true });
      expect(stub.callsOf('SwitchoverGlobalCluster')).toHaveLength(0);
      expect(stub.callsOf('FailoverGlobalCluster')).toHaveLength(0);
      expect(dataPlane.promoted).toEqual([]);
    },
  );

  test('SDK level (moto lacks SwitchoverGlobalCluster/FailoverGlobalCluster): a switchover already under way (InvalidGlobalClusterStateFault) is waited for, not failed', async () => {
    // An earlier attempt's request landed; its answer was lost.
    stub.beginMove('apg-west', 'switchover', 3);

    const result = await provider.promote(west, activityIo(), 'planned');

    expect(result.alreadyPrimary).toBe(false);
    expect(stub.callsOf('SwitchoverGlobalCluster').map((c) => c.status)).toEqual([400]);
    expect(stub.writer).toBe('apg-west');
    expect(dataPlane.connects.at(-1)?.writerThen).toBe('apg-west');
  });

  test('SDK level (moto lacks SwitchoverGlobalCluster/FailoverGlobalCluster): topology() names the writer cluster primary and the secondary standby, from DescribeGlobalClusters', async () => {
    const view = await provider.topology(set);
    expect(view.primary).toEqual({
      region: 'aws-east',
      name: 'apg-east',
      location: 'us-east-1',
      globalCluster: 'apg-global',
      credentials,
    });
    expect(view.standby).toEqual({
      region: 'aws-west',
      name: 'apg-west',
      location: 'us-west-2',
      globalCluster: 'apg-global',
      credentials,
    });
    expect(stub.callsOf('DescribeGlobalClusters')[0]?.params.GlobalClusterIdentifier).toBe('apg-global');

    // A set first read after Aurora moved the writer (by hand, say) follows Aurora, not the plan.
    stub.setWriter('apg-west');
    const moved = await newProvider().topology(set);
    expect(moved.primary?.name).toBe('apg-west');
    expect(moved.standby?.name).toBe('apg-east');
  });

  test('SDK level (moto lacks SwitchoverGlobalCluster/FailoverGlobalCluster): topology() of a set whose DR cluster is not a member is a NoStandby verdict', async () => {
    await expect(provider.topology({ ...set, nodes: { home: 'apg-east', dr: 'apg-south' } })).rejects.toMatchObject({
      type: 'LifeboatNoStandby',
      nonRetryable: true,
      message: expect.stringContaining('apg-south'),
    });
  });

  test('SDK level (moto lacks SwitchoverGlobalCluster/FailoverGlobalCluster): rebuildAsStandby of the former writer after a switchover returns at once, the same node, rejoined', async () => {
    await provider.promote(west, activityIo(), 'planned');
    const describesBefore = stub.callsOf('DescribeGlobalClusters').length;

    const rebuilt = await provider.rebuildAsStandby(east, west, activityIo(), set);

    expect(rebuilt.node).toEqual(east);
    expect(rebuilt.method).toMatch(/rejoined/);
    expect(stub.callsOf('DescribeGlobalClusters').length - describesBefore).toBe(1);
    expect(stub.calls.filter((c) => !c.action.startsWith('Describe'))).toHaveLength(1);
  });

  test('SDK level (moto lacks SwitchoverGlobalCluster/FailoverGlobalCluster): rebuildAsStandby while the switch is still under way waits for the former writer to become a secondary', async () => {
    stub.beginMove('apg-west', 'switchover', 3);

    const rebuilt = await provider.rebuildAsStandby(east, west, activityIo(), set);

    expect(rebuilt.method).toMatch(/rejoined/);
    expect(stub.writer).toBe('apg-west');
    expect(stub.callsOf('DescribeGlobalClusters').length).toBe(4);
  });

  test('SDK level (moto lacks SwitchoverGlobalCluster/FailoverGlobalCluster): nodeStatus looks the cluster up in its own region; a missing cluster is not running', async () => {
    const status = await provider.nodeStatus(west);
    expect(status).toMatchObject({ running: true, reachable: true });
    expect(stub.callsOf('DescribeDBClusters').map((c) => [c.awsRegion, c.params.DBClusterIdentifier])).toContainEqual([
      'us-west-2',
      'apg-west',
    ]);

    const gone = await provider.nodeStatus({ ...west, name: 'apg-gone' });
    expect(gone).toMatchObject({ running: false, reachable: false, detail: 'no Aurora cluster apg-gone in us-west-2' });
  });

  test('SDK level (moto lacks SwitchoverGlobalCluster/FailoverGlobalCluster): AccessDenied (403) on SwitchoverGlobalCluster is a non-retryable AccessDenied verdict', async () => {
    stub.failNext('SwitchoverGlobalCluster', {
      status: 403,
      code: 'AccessDenied',
      message:
        'User: arn:aws:iam::123456789012:user/lifeboat is not authorized to perform: rds:SwitchoverGlobalCluster',
    });

    const err = await provider.promote(west, activityIo(), 'planned').then(
      () => null,
      (e: unknown) => e as { type?: string; nonRetryable?: boolean; message: string },
    );

    expect(err).toMatchObject({ type: 'LifeboatAccessDenied', nonRetryable: true });
    expect(err!.message).toMatch(
      /SwitchoverGlobalCluster apg-global to arn:aws:rds:us-west-2:123456789012:cluster:apg-west: AccessDenied \(HTTP 403\)/,
    );
    expect(stub.writer).toBe('apg-east');
  });

  test('SDK level (moto lacks SwitchoverGlobalCluster/FailoverGlobalCluster): an HTTP 500 on SwitchoverGlobalCluster (what moto answers) is left to the retry policy', async () => {
    stub.failNext('SwitchoverGlobalCluster', { status: 500, code: 'Internal Server Error', html: true });

    const err = await provider.promote(west, activityIo(), 'planned').then(
      () => null,
      (e: unknown) => e as { type?: string; nonRetryable?: boolean; message: string },
    );

    expect(err).toBeInstanceOf(Error);
    expect(err!.nonRetryable).not.toBe(true);
    expect(err!.message).toMatch(
      /^SwitchoverGlobalCluster apg-global to arn:aws:rds:us-west-2:123456789012:cluster:apg-west: .*HTTP 500/,
    );
    expect(stub.writer).toBe('apg-east');
  });

  test('SDK level (moto lacks SwitchoverGlobalCluster/FailoverGlobalCluster): a switchover Aurora refuses while idle (InvalidGlobalClusterStateFault, nothing under way) fails the attempt for a retry, not polling until the timeout', async () => {
    stub.failNext('SwitchoverGlobalCluster', {
      status: 400,
      code: 'InvalidGlobalClusterStateFault',
      message: 'Global cluster apg-global is upgrading.',
    });

    const err = await provider.promote(west, activityIo(), 'planned').then(
      () => null,
      (e: unknown) => e as { nonRetryable?: boolean; message: string },
    );

    // Not the test deadline's TimeoutError: the provider noticed by itself.
    expect(err?.message).toMatch(/apg-global is available with .*apg-east as its writer/);
    expect(err?.nonRetryable).not.toBe(true);
    expect(stub.writer).toBe('apg-east');
  });

  test('SDK level (moto lacks SwitchoverGlobalCluster/FailoverGlobalCluster): member clusters of the same name in both regions are told apart by region', async () => {
    await stub.close();
    stub = await RdsStub.start({
      globalCluster: 'apg-global',
      clusters: [
        { id: 'orders', awsRegion: 'us-east-1' },
        { id: 'orders', awsRegion: 'us-west-2' },
      ],
      writer: { id: 'orders', awsRegion: 'us-east-1' },
    });
    process.env.AWS_ENDPOINT_URL = stub.endpoint;
    dataPlane = new LocalAuroraDataPlane(stub);

    const view = await newProvider().topology({ ...set, nodes: { home: 'orders', dr: 'orders' } });
    expect([view.primary?.location, view.standby?.location]).toEqual(['us-east-1', 'us-west-2']);

    const result = await newProvider().promote({ ...west, name: 'orders' }, activityIo(), 'planned');
    expect(result.alreadyPrimary).toBe(false);
    expect(stub.callsOf('SwitchoverGlobalCluster').map((c) => c.params.TargetDbClusterIdentifier)).toEqual([
      stub.arn('orders', 'us-west-2'),
    ]);
    expect(stub.writerArn).toBe(stub.arn('orders', 'us-west-2'));
  });
});

describe('the gap itself: moto does not implement SwitchoverGlobalCluster/FailoverGlobalCluster (why the tests above use a stub)', () => {
  test.each([
    [
      'SwitchoverGlobalCluster',
      () =>
        new SwitchoverGlobalClusterCommand({
          GlobalClusterIdentifier: 'apg-global',
          TargetDbClusterIdentifier: 'arn:aws:rds:us-west-2:123456789012:cluster:apg-west',
        }),
    ],
    [
      'FailoverGlobalCluster',
      () =>
        new FailoverGlobalClusterCommand({
          GlobalClusterIdentifier: 'apg-global',
          TargetDbClusterIdentifier: 'arn:aws:rds:us-west-2:123456789012:cluster:apg-west',
          AllowDataLoss: true,
        }),
    ],
  ] as const)('moto does not implement %s: it answers HTTP 500', async (_name, command) => {
    expect(motoEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const rds = new RDSClient(motoClientConfig(motoEndpoint!, 'us-west-2'));
    try {
      const err = await rds.send(command()).then(
        () => null,
        (e: unknown) => e as { $metadata?: { httpStatusCode?: number } },
      );
      expect(err?.$metadata?.httpStatusCode).toBe(500);
    } finally {
      rds.destroy();
    }
  });
});
