// Aurora global databases, for the AWS provider. A replication set is a global cluster with a writer
// cluster in the home region and a secondary cluster in the DR region. Aurora moves the writer itself:
//   planned   -> SwitchoverGlobalCluster (waits for the secondary to catch up: no data loss)
//   unplanned -> FailoverGlobalCluster with AllowDataLoss (the writer's region may be dark)
// and a former writer rejoins as a secondary on its own, so failback needs no rebuild.
// moto implements neither call (HTTP 500): the tests exercise them at the SDK level (a stub server).
import {
  DescribeDBClustersCommand,
  DescribeGlobalClustersCommand,
  FailoverGlobalClusterCommand,
  SwitchoverGlobalClusterCommand,
  type DBCluster,
  type GlobalCluster,
  type RDSClient,
} from '@aws-sdk/client-rds';
import type { Client } from 'pg';
import { ErrorType } from '../../workflows/types';
import { verdict } from '../errors';
import { awsFailure } from './aws-errors';
import { managedStatus, sqlFenceState } from './managed-fence';
import type { NodeStatus, ReplicationLag } from './provider';

/** What a fence on Aurora hands the replay wait: the switchover itself waits for the secondary. */
export const AURORA_REPLAY_MARKER = 'aurora-global-switchover';

export function clusterIdOfArn(arn: string): string {
  return arn.slice(arn.lastIndexOf(':') + 1);
}

export async function describeCluster(rds: RDSClient, clusterId: string): Promise<DBCluster | null> {
  try {
    return (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: clusterId }))).DBClusters?.[0] ?? null;
  } catch (err) {
    if ((err as { name?: string }).name?.startsWith('DBClusterNotFound')) return null;
    throw awsFailure(err, `DescribeDBClusters ${clusterId}`);
  }
}

export async function describeGlobalCluster(rds: RDSClient, globalCluster: string): Promise<GlobalCluster> {
  const out = await rds
    .send(new DescribeGlobalClustersCommand({ GlobalClusterIdentifier: globalCluster }))
    .catch((err: unknown) => {
      throw awsFailure(err, `DescribeGlobalClusters ${globalCluster}`);
    });
  // Filter by the identifier too: some endpoints (moto) ignore the parameter and list them all.
  const found = out.GlobalClusters?.find((g) => g.GlobalClusterIdentifier === globalCluster);
  if (!found) throw verdict(ErrorType.NoStandby, `no Aurora global database ${globalCluster}`);
  return found;
}

/** The writer member's cluster ARN, or null while Aurora is between writers. */
export function writerArn(global: GlobalCluster): string | null {
  return global.GlobalClusterMembers?.find((m) => m.IsWriter)?.DBClusterArn ?? null;
}

/** A member by name and region: cluster names are unique only within a region. */
export function memberArn(global: GlobalCluster, clusterId: string, awsRegion: string): string | null {
  return (
    global.GlobalClusterMembers?.map((m) => m.DBClusterArn ?? '').find(
      (arn) => clusterIdOfArn(arn) === clusterId && arn.split(':')[3] === awsRegion,
    ) ?? null
  );
}

/**
 * Asks Aurora to make `targetArn` the writer. Planned never allows data loss; unplanned does, as
 * the only way forward when the writer's region is gone. A switch already under way is not an error.
 */
export async function moveGlobalWriter(
  rds: RDSClient,
  globalCluster: string,
  targetArn: string,
  mode: 'planned' | 'unplanned',
): Promise<'switchover' | 'failover'> {
  try {
    if (mode === 'planned') {
      await rds.send(
        new SwitchoverGlobalClusterCommand({
          GlobalClusterIdentifier: globalCluster,
          TargetDbClusterIdentifier: targetArn,
        }),
      );
      return 'switchover';
    }
    await rds.send(
      new FailoverGlobalClusterCommand({
        GlobalClusterIdentifier: globalCluster,
        TargetDbClusterIdentifier: targetArn,
        AllowDataLoss: true,
      }),
    );
    return 'failover';
  } catch (err) {
    if ((err as { name?: string }).name?.startsWith('InvalidGlobalClusterState'))
      return mode === 'planned' ? 'switchover' : 'failover';
    throw awsFailure(
      err,
      `${mode === 'planned' ? 'SwitchoverGlobalCluster' : 'FailoverGlobalCluster'} ${globalCluster} to ${targetArn}`,
    );
  }
}

/**
 * Role and writability over SQL; Aurora has no WAL positions or WAL receiver to report. Writable is
 * tested (a rolled-back BEGIN READ WRITE, and under Lifeboat's fence a role that can still log in).
 */
export async function auroraStatus(client: Client, member: { writer: boolean }): Promise<NodeStatus> {
  const state = await sqlFenceState(client);
  const base: NodeStatus = {
    running: true,
    reachable: true,
    inRecovery: state.inRecovery,
    writable: false,
    fenced: false,
    lsn: null,
    streaming: state.inRecovery ? !member.writer : null,
    detail: 'Aurora global secondary',
  };
  const status = managedStatus(base, state);
  return state.inRecovery
    ? status
    : { ...status, detail: `Aurora global writer: ${status.detail.replace(/^primary, /, '')}` };
}

/**
 * Lag of a secondary region from the writer's `aurora_global_db_status()`. Aurora reports time, not
 * bytes: a secondary within a second of the writer counts as caught up (lagBytes 0).
 */
export async function auroraLag(writer: Client, secondaryRegion: string): Promise<ReplicationLag | null> {
  const { rows } = await writer
    .query<{ ms: string | null }>(
      `select durability_lag_in_msec::text as ms from aurora_global_db_status() where aws_region = $1`,
      [secondaryRegion],
    )
    .catch((err: { code?: string }) => {
      if (err.code === '42883') return { rows: null }; // not Aurora: the caller measures WAL instead
      throw err;
    });
  if (rows === null) return null;
  const ms = rows[0]?.ms;
  if (ms === undefined || ms === null)
    return { streaming: false, lagBytes: null, lagSeconds: null, slotActive: null, primaryLsn: null, replayLsn: null };
  const seconds = Number(ms) / 1000;
  return {
    streaming: true,
    lagBytes: seconds <= 1 ? 0 : null,
    lagSeconds: seconds,
    slotActive: null,
    primaryLsn: null,
    replayLsn: null,
  };
}
