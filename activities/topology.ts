// The topology record: which node of a replication set is the primary right now. It is the one
// place clients resolve the current primary from (the traffic proxy and `lifeboat status` read it;
// failover and failback runbooks write it), so it is written atomically and carries an epoch that
// only ever grows: a reader that sees epoch N+1 knows everything attached under epoch N is stale.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorType, type NodeRef, type TopologyView } from '../workflows/types';
import { verdict } from './errors';
import { privateDir, writeFileAtomic } from './private-files';

export type { NodeRef };

/**
 * The record. `primary` is null while a switch is in progress: nobody is to write anywhere.
 * `fenced` lists former primaries that must not take writes until rebuilt as standbys.
 */
export type Topology = TopologyView;

export class TopologyConflictError extends Error {
  override name = 'TopologyConflictError';
}

export const sameNode = (a: NodeRef | null | undefined, b: NodeRef | null | undefined): boolean =>
  Boolean(a && b && a.region === b.region && a.name === b.name);

export const nodeLabel = (n: NodeRef | null | undefined): string => (n ? `${n.region}/${n.name}` : '(none)');

export class TopologyStore {
  constructor(private readonly home: string) {}

  path(set: string): string {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(set))
      throw new Error(`replication set name ${JSON.stringify(set)} is not a plain lowercase name`);
    return join(this.home, 'topology', `${set}.json`);
  }

  read(set: string): Topology | null {
    const file = this.path(set);
    if (!existsSync(file)) return null;
    return JSON.parse(readFileSync(file, 'utf8')) as Topology;
  }

  /** Writes the next state atomically (a temp file of its own, fsync, rename, fsync of the directory); the epoch is bumped here. */
  write(next: Omit<Topology, 'epoch' | 'updatedAt' | 'primarySinceEpoch'>, previousEpoch: number): Topology {
    const current = this.read(next.set);
    if ((current?.epoch ?? 0) !== previousEpoch) {
      throw new TopologyConflictError(
        `topology of ${next.set} changed under us: epoch is ${current?.epoch ?? 0}, expected ${previousEpoch}`,
      );
    }
    const epoch = previousEpoch + 1;
    const primarySinceEpoch = current && sameNode(current.primary, next.primary) ? current.primarySinceEpoch : epoch;
    const record: Topology = { ...next, epoch, primarySinceEpoch, updatedAt: new Date().toISOString() };
    const file = this.path(next.set);
    privateDir(join(this.home, 'topology'));
    writeFileAtomic(file, JSON.stringify(record, null, 2) + '\n');
    return record;
  }

  /** Moves the pointer to `next`; a retry of a write that already landed returns the record as is. */
  repoint(
    set: string,
    next: Pick<Topology, 'primary' | 'standby' | 'fenced'>,
    expectedEpoch: number,
    by: string,
  ): Topology {
    const current = this.read(set);
    const fencedKey = (nodes: NodeRef[]) => nodes.map(nodeLabel).sort().join(',');
    if (
      current &&
      sameOrBothNull(current.primary, next.primary) &&
      sameOrBothNull(current.standby, next.standby) &&
      fencedKey(current.fenced) === fencedKey(next.fenced)
    ) {
      return current;
    }
    try {
      return this.write({ set, ...next, updatedBy: by }, expectedEpoch);
    } catch (err) {
      if (err instanceof TopologyConflictError)
        throw verdict(
          ErrorType.TopologyConflict,
          `${err.message}: another runbook changed the topology; re-read it and start again`,
        );
      throw err;
    }
  }
}

function sameOrBothNull(a: NodeRef | null, b: NodeRef | null): boolean {
  return (a === null && b === null) || sameNode(a, b);
}
