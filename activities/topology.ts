// The topology record: which node of a replication set is the primary right now. It is the one
// place clients resolve the current primary from (the traffic proxy and `lifeboat status` read it;
// failover and failback runbooks write it), so it is written atomically and carries an epoch that
// only ever grows: a reader that sees epoch N+1 knows everything attached under epoch N is stale.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** A node: one PostgreSQL server, by the region it runs in and its name there. */
export interface NodeRef {
  region: string;
  name: string;
}

export interface Topology {
  /** The replication set, named after its home region (the plan's primary region). */
  set: string;
  /** Where writes go. null while a switch is in progress: nobody is to write anywhere. */
  primary: NodeRef | null;
  standby: NodeRef | null;
  /** Former primaries that must not take writes until rebuilt as standbys. */
  fenced: NodeRef[];
  epoch: number;
  updatedAt: string;
  updatedBy: string;
}

export const sameNode = (a: NodeRef | null | undefined, b: NodeRef | null | undefined): boolean =>
  Boolean(a && b && a.region === b.region && a.name === b.name);

export const nodeLabel = (n: NodeRef | null | undefined): string => (n ? `${n.region}/${n.name}` : '(none)');

export class TopologyStore {
  constructor(private readonly home: string) {}

  path(set: string): string {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(set)) throw new Error(`replication set name ${JSON.stringify(set)} is not a plain lowercase name`);
    return join(this.home, 'topology', `${set}.json`);
  }

  read(set: string): Topology | null {
    const file = this.path(set);
    if (!existsSync(file)) return null;
    return JSON.parse(readFileSync(file, 'utf8')) as Topology;
  }

  /** Writes the next state atomically (temp file, fsync, rename); the epoch is bumped here. */
  write(next: Omit<Topology, 'epoch' | 'updatedAt'>, previousEpoch: number): Topology {
    const current = this.read(next.set);
    if (current && current.epoch !== previousEpoch) {
      throw new Error(`topology of ${next.set} changed under us: epoch is ${current.epoch}, expected ${previousEpoch}`);
    }
    const record: Topology = { ...next, epoch: previousEpoch + 1, updatedAt: new Date().toISOString() };
    const file = this.path(next.set);
    mkdirSync(join(this.home, 'topology'), { recursive: true });
    const tmp = `${file}.tmp`;
    const fd = openSync(tmp, 'w', 0o644);
    try {
      writeSync(fd, JSON.stringify(record, null, 2) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    return record;
  }
}
