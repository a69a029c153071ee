// DB snapshots (RDS instances) and DB cluster snapshots (Aurora) behind one shape, so the AWS
// provider's backup, copy, list and delete read the same for both. The kind travels in the ARN
// (`:snapshot:` or `:cluster-snapshot:`), so a backup reference alone says which API to use.
import {
  CopyDBClusterSnapshotCommand,
  CopyDBSnapshotCommand,
  CreateDBClusterSnapshotCommand,
  CreateDBSnapshotCommand,
  DeleteDBClusterSnapshotCommand,
  DeleteDBSnapshotCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  type DBClusterSnapshot,
  type DBSnapshot,
  type RDSClient,
  type Tag,
} from '@aws-sdk/client-rds';
import { awsFailure } from './aws-errors';

export type SnapshotKind = 'instance' | 'cluster';

export interface SnapshotView {
  kind: SnapshotKind;
  id: string;
  arn: string;
  status: string;
  tags: Tag[];
  createdAt: Date | undefined;
  sizeGiB: number;
  kmsKeyId: string | undefined;
  engine: string | undefined;
  engineVersion: string | undefined;
  percent: number | undefined;
}

export function kindOfArn(arn: string): SnapshotKind {
  return arn.includes(':cluster-snapshot:') ? 'cluster' : 'instance';
}

/** The fields both kinds of snapshot carry under the same names. */
function common(s: DBSnapshot | DBClusterSnapshot): Omit<SnapshotView, 'kind' | 'id' | 'arn'> {
  return {
    status: s.Status ?? 'unknown',
    tags: s.TagList ?? [],
    createdAt: s.SnapshotCreateTime,
    sizeGiB: s.AllocatedStorage ?? 0,
    kmsKeyId: s.KmsKeyId,
    engine: s.Engine,
    engineVersion: s.EngineVersion,
    percent: s.PercentProgress,
  };
}

function ofInstance(s: DBSnapshot): SnapshotView {
  return { kind: 'instance', id: s.DBSnapshotIdentifier!, arn: s.DBSnapshotArn!, ...common(s) };
}

function ofCluster(s: DBClusterSnapshot): SnapshotView {
  return { kind: 'cluster', id: s.DBClusterSnapshotIdentifier!, arn: s.DBClusterSnapshotArn!, ...common(s) };
}

const notFound = (err: unknown) => /^DB(Cluster)?SnapshotNotFound/.test((err as { name?: string }).name ?? '');
const alreadyExists = (err: unknown) =>
  /^DB(Cluster)?SnapshotAlreadyExists/.test((err as { name?: string }).name ?? '');

export async function describeSnapshot(rds: RDSClient, kind: SnapshotKind, id: string): Promise<SnapshotView | null> {
  try {
    if (kind === 'instance') {
      const s = (await rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: id }))).DBSnapshots?.[0];
      return s ? ofInstance(s) : null;
    }
    const s = (await rds.send(new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: id })))
      .DBClusterSnapshots?.[0];
    return s ? ofCluster(s) : null;
  } catch (err) {
    if (notFound(err)) return null;
    throw awsFailure(err, `Describe${kind === 'instance' ? 'DBSnapshots' : 'DBClusterSnapshots'} ${id}`);
  }
}

/** Every manual snapshot of both kinds in the client's region, page by page. */
export async function listManualSnapshots(rds: RDSClient, awsRegion: string): Promise<SnapshotView[]> {
  const all: SnapshotView[] = [];
  let call = `DescribeDBSnapshots in ${awsRegion}`;
  try {
    let marker: string | undefined;
    do {
      const page = await rds.send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual', Marker: marker }));
      all.push(...(page.DBSnapshots ?? []).map(ofInstance));
      marker = page.Marker;
    } while (marker);
    call = `DescribeDBClusterSnapshots in ${awsRegion}`;
    do {
      const page = await rds.send(new DescribeDBClusterSnapshotsCommand({ SnapshotType: 'manual', Marker: marker }));
      all.push(...(page.DBClusterSnapshots ?? []).map(ofCluster));
      marker = page.Marker;
    } while (marker);
  } catch (err) {
    throw awsFailure(err, call);
  }
  return all;
}

/** Asks for a snapshot; one that already exists (an earlier attempt's call landed) is not an error. */
export async function createSnapshot(
  rds: RDSClient,
  kind: SnapshotKind,
  source: string,
  id: string,
  tags: Tag[],
): Promise<void> {
  try {
    if (kind === 'instance')
      await rds.send(
        new CreateDBSnapshotCommand({ DBInstanceIdentifier: source, DBSnapshotIdentifier: id, Tags: tags }),
      );
    else
      await rds.send(
        new CreateDBClusterSnapshotCommand({
          DBClusterIdentifier: source,
          DBClusterSnapshotIdentifier: id,
          Tags: tags,
        }),
      );
  } catch (err) {
    if (!alreadyExists(err))
      throw awsFailure(err, `Create${kind === 'instance' ? 'DBSnapshot' : 'DBClusterSnapshot'} ${id} of ${source}`);
  }
}

/**
 * Copies by source ARN into the client's region, re-encrypted with `kmsKeyId`; the SDK signs the
 * cross-region request from the ARN's region. Tags are set, not copied: the copy stands on its own.
 */
export async function copySnapshot(
  rds: RDSClient,
  kind: SnapshotKind,
  sourceArn: string,
  id: string,
  kmsKeyId: string | undefined,
  tags: Tag[],
): Promise<void> {
  const key = kmsKeyId ? { KmsKeyId: kmsKeyId } : {};
  try {
    if (kind === 'instance')
      await rds.send(
        new CopyDBSnapshotCommand({
          SourceDBSnapshotIdentifier: sourceArn,
          TargetDBSnapshotIdentifier: id,
          Tags: tags,
          ...key,
        }),
      );
    else
      await rds.send(
        new CopyDBClusterSnapshotCommand({
          SourceDBClusterSnapshotIdentifier: sourceArn,
          TargetDBClusterSnapshotIdentifier: id,
          Tags: tags,
          ...key,
        }),
      );
  } catch (err) {
    if (!alreadyExists(err))
      throw awsFailure(err, `Copy${kind === 'instance' ? 'DBSnapshot' : 'DBClusterSnapshot'} ${sourceArn} to ${id}`);
  }
}

export async function deleteSnapshot(rds: RDSClient, kind: SnapshotKind, id: string): Promise<void> {
  try {
    if (kind === 'instance') await rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: id }));
    else await rds.send(new DeleteDBClusterSnapshotCommand({ DBClusterSnapshotIdentifier: id }));
  } catch (err) {
    if (!notFound(err))
      throw awsFailure(err, `Delete${kind === 'instance' ? 'DBSnapshot' : 'DBClusterSnapshot'} ${id}`);
  }
}
