// What every provider does the same way, whatever its platform: the topology record under
// LIFEBOAT_HOME is Lifeboat's own file, and waiting for a standby's replay is asked over SQL.
import {
  ErrorType,
  type NodeRef,
  type RegionSpec,
  type ReplicaSetSpec,
  type TopologyView,
} from '../../workflows/types';
import { verdict } from '../errors';
import { StandbyStalled, waitForReplayOver, type NodeStatus } from '../pg/replication';
import type { PgConnection } from '../pg/sql';
import { TopologyStore } from '../topology';
import type { ActivityIo } from './provider';

/** A node that does not run (or cannot be described): the status fields but `detail` and what a caller adds. */
export const NOT_RUNNING: Omit<NodeStatus, 'detail'> = {
  running: false,
  reachable: false,
  inRecovery: null,
  writable: false,
  fenced: false,
  lsn: null,
  streaming: null,
};

export abstract class ProviderBase {
  readonly topologies: TopologyStore;

  constructor(home: string) {
    this.topologies = new TopologyStore(home);
  }

  async repoint(
    set: ReplicaSetSpec,
    next: Pick<TopologyView, 'primary' | 'standby' | 'fenced'>,
    expectedEpoch: number,
    by: string,
  ): Promise<TopologyView> {
    return this.topologies.repoint(set.set, next, expectedEpoch, by);
  }

  /** A managed set's first topology record, as its platform (`platform`: RDS, Cloud SQL) describes it. */
  protected firstTopology(set: ReplicaSetSpec, primary: NodeRef, standby: NodeRef, platform: string): TopologyView {
    return this.topologies.write(
      { set: set.set, primary, standby, fenced: [], updatedBy: `lifeboat: first read from ${platform}` },
      0,
    );
  }

  /**
   * Waits until the standby reached through `connect` (`what` names it) has replayed `lsn`,
   * heartbeating its replay position. A standby that stalled is StandbyNotReady: waiting longer will not help.
   */
  protected async waitForReplayOver(
    connect: () => PgConnection | Promise<PgConnection>,
    what: string,
    lsn: string,
    io: ActivityIo,
  ): Promise<string> {
    try {
      return await waitForReplayOver(
        connect,
        what,
        lsn,
        (replay) => io.heartbeat({ phase: 'replay', replay, target: lsn }),
        io.signal,
      );
    } catch (err) {
      if (err instanceof StandbyStalled) throw verdict(ErrorType.StandbyNotReady, err.message);
      throw err;
    }
  }
}

/**
 * The instance names of a managed replication set (RDS, Cloud SQL), which the plan must give:
 * `instances` says what they are on the platform.
 */
export function managedNodeNames(set: ReplicaSetSpec, instances: string): { home: string; dr: string } {
  if (!set.nodes)
    throw verdict(
      ErrorType.NoStandby,
      `replication set ${set.set} names no ${instances}: set primary.instance and dr.replica in the plan`,
    );
  return set.nodes;
}

/** A managed set's node in `region`, whose platform API is at `location` (an AWS region, a GCP project). */
export function managedNode(
  set: ReplicaSetSpec,
  region: RegionSpec,
  name: string,
  location: string,
  globalCluster?: string,
): NodeRef {
  return {
    region: region.name,
    name,
    location,
    ...(globalCluster && { globalCluster }),
    ...(set.credentials && { credentials: set.credentials }),
  };
}
