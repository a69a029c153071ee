// A planned switchover whose promote step fails: is the switchover undone (the old primary unfenced,
// traffic restored to it)? Only when no promote request can have reached the standby. pg_promote goes
// on after its wait times out and an RDS promote is asynchronous, so a standby still in recovery when
// the runbook looks may be a primary a moment later: undoing then would make two writable primaries.
// The provider records each request before it sends it and reports it as `promoteRequested`.
//
// The runbook runs for real (Temporal, the workflow bundle, the activities); the provider under the
// activities is a scripted stand-in that records what was asked of it. Only the canary write needs a
// database: a real one on the test stack's local-a server.
import type { Client } from '@temporalio/client';
import { LocalProvider } from '../../activities/providers/local';
import type { FenceResult, NodeStatus } from '../../activities/providers/provider';
import { withClient } from '../../activities/pg/sql';
import { verdict } from '../../activities/errors';
import {
  ErrorType,
  type FailoverInput,
  type NodeRef,
  type RunbookReport,
  type TopologyView,
} from '../../workflows/types';
import { startTopologyRunbook } from '../support/replica-set';
import { client, env, local, startWorker, type RunningWorker } from '../support/stack';
import { CAUGHT_UP_LAG } from '../support/t2-drill';
import { findPgBin } from '../../activities/pg/binaries';
import { runbookReport } from '../../workflows/runbook-failure';

const DB = 'promote_undo';
const home: NodeRef = { region: 'pu-a', name: 'server' };
const standby: NodeRef = { region: 'pu-b', name: 'standby-of-pu-a' };
let temporal: Client;

const input: FailoverInput = {
  database: 'promote-undo',
  pgDatabase: DB,
  mode: 'planned',
  replicaSet: { set: 'pu-a', home: { name: 'pu-a', provider: 'local' }, dr: { name: 'pu-b', provider: 'local' } },
  objectives: { rpoSeconds: 60, rtoSeconds: 600 },
  checks: [],
  approval: { preApproved: true, timeoutSeconds: 60 },
  planDigest: 'f'.repeat(64),
  triggeredBy: 'test',
};

/**
 * A LocalProvider whose replication calls are scripted: the promote fails after (or before) its
 * request was recorded; every call that changes something is logged.
 */
class ScriptedProvider extends LocalProvider {
  calls: string[] = [];
  promoteRequested = false;
  private topologyRecord: TopologyView = {
    set: 'pu-a',
    primary: home,
    standby,
    fenced: [],
    epoch: 1,
    primarySinceEpoch: 1,
    updatedAt: new Date().toISOString(),
    updatedBy: 'test',
  };
  constructor(private readonly requestReachesStandby: boolean) {
    super({ home: env().home, pgBin: findPgBin(env().pgBin) });
  }
  override async topology(): Promise<TopologyView> {
    return this.topologyRecord;
  }
  override async repoint(
    _set: unknown,
    next: Pick<TopologyView, 'primary' | 'standby' | 'fenced'>,
    expectedEpoch: number,
  ): Promise<TopologyView> {
    this.calls.push(`repoint primary=${next.primary?.name ?? 'none'}`);
    this.topologyRecord = { ...this.topologyRecord, ...next, epoch: expectedEpoch + 1 };
    return this.topologyRecord;
  }
  override async nodeStatus(node: NodeRef): Promise<NodeStatus> {
    const primary = node.region === home.region;
    return {
      running: true,
      reachable: true,
      inRecovery: !primary,
      writable: primary,
      fenced: false,
      lsn: '0/1000000',
      streaming: primary ? null : true,
      promoteRequested: primary ? false : this.promoteRequested,
      detail: primary ? 'primary, writable' : 'standby, streaming',
    };
  }
  override async replicationLag() {
    return { ...CAUGHT_UP_LAG };
  }
  override async connectNode(_node: NodeRef, database: string) {
    return local().regionCluster('local-a').connection(database);
  }
  override async fence(node: NodeRef): Promise<FenceResult> {
    this.calls.push(`fence ${node.name}`);
    return { confirmed: true, how: 'scripted', finalLsn: '0/1000000', canFollow: true };
  }
  override async unfence(node: NodeRef): Promise<void> {
    this.calls.push(`unfence ${node.name}`);
  }
  override async waitForReplay(): Promise<string> {
    return '0/1000000';
  }
  override async promote(node: NodeRef): Promise<{ lsn: string; alreadyPrimary: boolean }> {
    this.calls.push(`promote ${node.name}`);
    // As pg_promote(true, 60) returning false: the request was made, and the wait ran out.
    if (this.requestReachesStandby) this.promoteRequested = true;
    throw verdict(ErrorType.ProviderRejected, `promote of ${node.name} did not finish in time`);
  }
}

async function failoverWith(provider: ScriptedProvider): Promise<RunbookReport> {
  const worker: RunningWorker = await startWorker({ regions: ['pu-a', 'pu-b'], providers: { local: provider } });
  try {
    const handle = await startTopologyRunbook(temporal, 'failover', input);
    return await runbookReport(handle);
  } finally {
    await worker.stop();
  }
}

beforeAll(async () => {
  temporal = await client();
  await withClient(local().regionCluster('local-a').connection('postgres'), async (c) => {
    const exists = await c.query('select 1 from pg_database where datname = $1', [DB]);
    if (!exists.rowCount) await c.query(`create database ${DB}`);
  });
}, 60_000);

afterAll(async () => {
  await temporal?.connection.close();
  await withClient(local().regionCluster('local-a').connection('postgres'), (c) =>
    c.query(`drop database if exists ${DB}`),
  ).catch(() => undefined);
});

test('a promote that failed after its request was recorded is never undone: the old primary stays fenced, traffic held, the report says why', async () => {
  const provider = new ScriptedProvider(true);
  const report = await failoverWith(provider);
  expect(report.outcome).toBe('failed');
  expect(report.reason).toContain('did not finish in time');
  expect(provider.calls).toEqual(['fence server', 'repoint primary=none', 'promote standby-of-pu-a']);
  expect(report.cleanup).toEqual([
    {
      name: 'undo of the switchover skipped',
      ok: false,
      detail: expect.stringMatching(
        /^pu-b\/standby-of-pu-a may have been promoted \(standby, streaming; a promote was requested\): pu-a\/server stays fenced and traffic held/,
      ),
    },
  ]);
}, 120_000);

test('a promote that failed before any request reached the standby is undone: traffic restored, then the old primary unfenced', async () => {
  const provider = new ScriptedProvider(false);
  const report = await failoverWith(provider);
  expect(report.outcome).toBe('failed');
  expect(provider.calls).toEqual([
    'fence server',
    'repoint primary=none',
    'promote standby-of-pu-a',
    'repoint primary=server',
    'unfence server',
  ]);
  expect(report.cleanup.map((c) => [c.name, c.ok])).toEqual([
    ['restore traffic to pu-a/server', true],
    ['unfence pu-a/server', true],
  ]);
}, 120_000);
