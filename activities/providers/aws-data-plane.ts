// The AWS provider's data plane: where a server's data is reached, and what the control plane's
// calls do to that data. On AWS it is RDS itself (rdsDataPlane): connections go to the server's
// endpoint over verified TLS, and a snapshot, copy, restore or promotion moves the data with no help.
// Another data plane comes in through AwsProviderConfig.dataPlane (the composition root): moto, the
// AWS stand-in the tests use, has none, so they pass one that serves local PostgreSQL and mirrors
// what each call would move (test/fakes/rds-data-plane.ts).
import { readFileSync } from 'node:fs';
import type { PgConnection } from '../pg/sql';

/** A server as RDS describes it, with the login to use on it. */
export interface RdsEndpoint {
  kind: 'instance' | 'cluster';
  address?: string;
  port?: number;
  /** RDS's status of the server, for the error when it has no endpoint yet. */
  status?: string;
  user: string;
  password: string;
}

export interface AwsDataPlane {
  connect(awsRegion: string, id: string, database: string, endpoint: RdsEndpoint): Promise<PgConnection>;
  snapshotCreated(awsRegion: string, instance: string, snapshot: string): Promise<void>;
  snapshotCopied(fromArn: string, awsRegion: string, snapshot: string): Promise<void>;
  instanceRestored(awsRegion: string, snapshot: string, instance: string): Promise<void>;
  instanceDeleted(awsRegion: string, instance: string): Promise<void>;
  instancePromoted(awsRegion: string, instance: string): Promise<void>;
  replicaCreated(awsRegion: string, instance: string, sourceRegion: string, source: string): Promise<void>;
}

/** RDS's own data plane; `caFile` is the PEM bundle its server certificates chain to (TLS is always verified). */
export function rdsDataPlane(caFile?: string): AwsDataPlane {
  const movedByRds = () => Promise.resolve();
  return {
    connect(awsRegion, id, database, { kind, address, port, status, user, password }) {
      if (!address || !port)
        return Promise.reject(new Error(`${kind} ${id} in ${awsRegion} has no endpoint yet (status ${status})`));
      return Promise.resolve({
        host: address,
        port,
        user,
        password,
        database,
        ssl: { ca: caFile ? readFileSync(caFile, 'utf8') : undefined },
      });
    },
    snapshotCreated: movedByRds,
    snapshotCopied: movedByRds,
    instanceRestored: movedByRds,
    instanceDeleted: movedByRds,
    instancePromoted: movedByRds,
    replicaCreated: movedByRds,
  };
}
