// A TEST-ONLY stand-in for the RDS data plane, which moto does not have: moto's instances are
// records without a PostgreSQL behind them. This maps RDS instances to local PostgreSQL databases and
// mirrors the data at the control-plane calls that would move it in AWS:
//   CreateDBSnapshot  -> pg_dump of the source instance's database into a file for that snapshot
//   CopyDBSnapshot    -> a copy of that file under the target region
//   RestoreDBInstance -> a fresh database on a local server, pg_restore of the snapshot's file
//   DeleteDBInstance  -> that database dropped
//   PromoteReadReplica           -> pg_promote of the local standby the replica stands for
//   CreateDBInstanceReadReplica  -> the region's local server rebuilt as a streaming standby (pg_rewind)
// What it cannot show: RDS's own snapshot consistency, restore timings, TLS, networking. The tests
// that use it say so in their names.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AwsDataPlane } from '../../activities/providers/aws-data-plane';
import type { LocalProvider } from '../../activities/providers/local';
import { run } from '../../activities/pg/process';
import { libpqEnv, quoteIdent, withClient, type PgConnection } from '../../activities/pg/sql';
import type { NodeRef } from '../../workflows/types';
import { createLogger } from '../../worker/logger';

const silentLogger = createLogger('silent');

export interface StandInOptions {
  local: LocalProvider;
  pgBin: string;
  /** Where snapshot files are kept. */
  dir: string;
  /** `<awsRegion>/<instance>` of each existing instance -> the local node (and database) it stands for. */
  sources: Record<string, { node: NodeRef; database?: string }>;
  /** The local server restored instances become databases on. */
  restoreNode: NodeRef;
  /** Replication tests: the one local server per AWS region that new read replicas stand on. */
  serverOf?: Record<string, NodeRef>;
}

export class LocalRdsDataPlane implements AwsDataPlane {
  /** Every control-plane event seen, in order, for assertions. */
  readonly events: string[] = [];
  /** Runs on a restored database before the provider sees it (tests that must fail tamper here). */
  afterRestore?: (conn: PgConnection) => Promise<void>;
  private readonly restored = new Map<string, string>();

  constructor(private readonly options: StandInOptions) {}

  async connect(awsRegion: string, instance: string, database: string): Promise<PgConnection> {
    const source = this.options.sources[`${awsRegion}/${instance}`];
    if (source) return this.options.local.connectNode(source.node, source.database ?? database);
    const restored = this.restored.get(`${awsRegion}/${instance}`);
    if (restored) return this.options.local.connectNode(this.options.restoreNode, restored);
    throw new Error(
      `test stand-in: no local database stands for RDS instance ${awsRegion}/${instance} (database ${database})`,
    );
  }

  async snapshotCreated(awsRegion: string, instance: string, snapshot: string): Promise<void> {
    this.events.push(`snapshot ${awsRegion}/${snapshot} of ${instance}`);
    const file = this.file(awsRegion, snapshot);
    if (existsSync(file)) return;
    const conn = await this.connect(awsRegion, instance, '');
    await run(join(this.options.pgBin, 'pg_dump'), ['--format=custom', '--file', file, conn.database], {
      env: libpqEnv(conn),
    });
  }

  async snapshotCopied(fromArn: string, awsRegion: string, snapshot: string): Promise<void> {
    this.events.push(`copy ${fromArn} -> ${awsRegion}/${snapshot}`);
    const [, , , fromRegion, , , fromSnapshot] = fromArn.split(':');
    copyFileSync(this.file(fromRegion!, fromSnapshot!), this.file(awsRegion, snapshot));
  }

  async instanceRestored(awsRegion: string, snapshot: string, instance: string): Promise<void> {
    this.events.push(`restore ${awsRegion}/${snapshot} -> ${instance}`);
    const database = `rds_${instance.replace(/-/g, '_')}`;
    const admin = await this.options.local.connectNode(this.options.restoreNode, 'postgres');
    await withClient(admin, async (c) => {
      await c.query(`drop database if exists ${quoteIdent(database)} with (force)`);
      await c.query(`create database ${quoteIdent(database)}`);
    });
    const target = await this.options.local.connectNode(this.options.restoreNode, database);
    await run(
      join(this.options.pgBin, 'pg_restore'),
      ['--exit-on-error', '--no-owner', '--dbname', database, this.file(awsRegion, snapshot)],
      { env: libpqEnv(target) },
    );
    this.restored.set(`${awsRegion}/${instance}`, database);
    await this.afterRestore?.(target);
  }

  async instanceDeleted(awsRegion: string, instance: string): Promise<void> {
    this.events.push(`delete ${awsRegion}/${instance}`);
    const database = this.restored.get(`${awsRegion}/${instance}`);
    if (!database) return;
    const admin = await this.options.local.connectNode(this.options.restoreNode, 'postgres');
    await withClient(admin, (c) => c.query(`drop database if exists ${quoteIdent(database)} with (force)`));
    this.restored.delete(`${awsRegion}/${instance}`);
  }

  async instancePromoted(awsRegion: string, instance: string): Promise<void> {
    this.events.push(`promote ${awsRegion}/${instance}`);
    await this.options.local.promote(this.nodeOf(awsRegion, instance));
  }

  async replicaCreated(awsRegion: string, instance: string, sourceRegion: string, source: string): Promise<void> {
    this.events.push(`replica ${awsRegion}/${instance} of ${sourceRegion}/${source}`);
    const server = this.options.serverOf?.[awsRegion];
    if (!server) throw new Error(`test stand-in: no local server stands for read replicas in ${awsRegion}`);
    const io = { heartbeat: () => undefined, signal: new AbortController().signal, logger: silentLogger };
    await this.options.local.rebuildAsStandby(server, this.nodeOf(sourceRegion, source), io);
    this.options.sources[`${awsRegion}/${instance}`] = { node: server };
  }

  /** Another instance or cluster that stands on a local database. */
  addSource(key: string, source: { node: NodeRef; database?: string }): void {
    this.options.sources[key] = source;
  }

  private nodeOf(awsRegion: string, instance: string): NodeRef {
    const source = this.options.sources[`${awsRegion}/${instance}`];
    if (!source) throw new Error(`test stand-in: no local server stands for RDS instance ${awsRegion}/${instance}`);
    return source.node;
  }

  /** Restored instances whose database still exists, for leak checks. */
  liveRestores(): string[] {
    return [...this.restored.keys()];
  }

  private file(awsRegion: string, snapshot: string): string {
    const dir = join(this.options.dir, awsRegion);
    mkdirSync(dir, { recursive: true });
    return join(dir, `${snapshot}.pgdump`);
  }
}
