// A TEST-ONLY Cloud SQL Admin API v1 fake. No emulator exists, so this serves exactly the REST
// routes @google-cloud/sql (REST fallback) calls for Lifeboat, over plain HTTP on 127.0.0.1:
//   GET/POST   /v1/projects/{p}/instances            GET/DELETE/PATCH /v1/projects/{p}/instances/{i}
//              (PATCH: settings.activationPolicy ALWAYS/NEVER and settings.userLabels only)
//   GET/POST   /v1/projects/{p}/instances/{i}/backupRuns   GET/DELETE .../backupRuns/{id}
//   POST       /v1/projects/{p}/instances/{i}/restoreBackup
//   POST       /v1/projects/{p}/instances/{i}/promoteReplica | switchover | failover
//   GET        /v1/projects/{p}/operations/{op}       GET /v1/projects/{p}/operations?instance=i
// Anything else is a 404 naming the route as not faked, so a new call fails loudly, not quietly.
// Instances are real local PostgreSQL clusters; backups are real pg_dump files plus the roles; a read
// replica (insert with masterInstanceName) is a real streaming standby of its primary's cluster.
// What it cannot show: IAM (any bearer token passes, none is checked), networking (every instance is
// 127.0.0.1:portOf(), reported as a PRIVATE address), cross-region latency (a replica in another
// region is as near as any other), Cloud SQL's replication-lag metrics, an HA standby of its own (an
// HA failover restarts the one server and reports the other zone), cascading replicas, PITR,
// cross-region backup locations, real timings. Every instance runs the local PostgreSQL major,
// whatever databaseVersion was asked for (the requested one is reported). As on Cloud SQL, an
// instance's backup runs are deleted with it, and a deleted instance's name cannot be reused.
import { chmodSync, mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { run } from '../../../activities/pg/process';
import { FakeSqlAdmin } from './admin';
import { ApiError, notFound, parseBody } from './wire';

export interface CloudSqlFakeOptions {
  /**
   * Clusters and dump files go here. Made 0755: the postgres OS user must get through it, and through
   * every directory above it (so: under LIFEBOAT_HOME, not a 0700 home directory).
   */
  dir: string;
  /** PostgreSQL bin directory (findPgBin()). */
  pgBin: string;
  /** Operations stay PENDING/RUNNING at least this long after insertion. Default 300. */
  opDelayMs?: number;
}

export interface RecordedRequest {
  method: string;
  /** Decoded path, without the query. */
  path: string;
  query: Record<string, string>;
  /** The parsed JSON body; {} for none or the client's literal "". */
  body: Record<string, unknown>;
}

export interface CloudSqlFake {
  endpoint: { host: string; port: number };
  /** The real port of the instance's PostgreSQL (reported to clients as PRIVATE 127.0.0.1). */
  portOf(project: string, instance: string): number;
  /**
   * The next operation of this type (CREATE, DELETE, BACKUP_VOLUME, DELETE_BACKUP, RESTORE_VOLUME,
   * PROMOTE_REPLICA, SWITCHOVER, FAILOVER, UPDATE) ends DONE with an INTERNAL_ERROR. A failed PROMOTE_REPLICA,
   * SWITCHOVER or FAILOVER changes no roles (a switchover fails after fencing and catching up, and lifts the fence).
   */
  failNext(operationType: string, message: string): void;
  /** The next operation of this type does its work, then stays RUNNING until the returned function is called. */
  holdNext(operationType: string): () => void;
  /** Every request served, in order. */
  readonly requests: RecordedRequest[];
  /** Every operation issued, as the API shows it. */
  operations(): object[];
  /** Stops the HTTP server, waits for operations in flight, removes every cluster it started. */
  close(): Promise<void>;
}

type Handler = (params: string[], request: RecordedRequest) => object;

export async function startCloudSqlFake(options: CloudSqlFakeOptions): Promise<CloudSqlFake> {
  mkdirSync(options.dir, { recursive: true });
  chmodSync(options.dir, 0o755);
  const admin = new FakeSqlAdmin({
    dir: options.dir,
    pgBin: options.pgBin,
    opDelayMs: options.opDelayMs ?? 300,
    localMajor: await localMajor(options.pgBin),
  });
  const routes: Array<[method: string, pattern: RegExp, handler: Handler]> = [
    ['GET', /^\/v1\/projects\/([^/]+)\/instances$/, ([p]) => admin.listInstances(p!)],
    ['POST', /^\/v1\/projects\/([^/]+)\/instances$/, ([p], r) => admin.insertInstance(p!, r.body)],
    ['GET', /^\/v1\/projects\/([^/]+)\/instances\/([^/]+)$/, ([p, i]) => admin.getInstance(p!, i!)],
    ['DELETE', /^\/v1\/projects\/([^/]+)\/instances\/([^/]+)$/, ([p, i]) => admin.deleteInstance(p!, i!)],
    ['PATCH', /^\/v1\/projects\/([^/]+)\/instances\/([^/]+)$/, ([p, i], r) => admin.patchInstance(p!, i!, r.body)],
    [
      'POST',
      /^\/v1\/projects\/([^/]+)\/instances\/([^/]+)\/backupRuns$/,
      ([p, i], r) => admin.insertBackupRun(p!, i!, r.body),
    ],
    [
      'GET',
      /^\/v1\/projects\/([^/]+)\/instances\/([^/]+)\/backupRuns$/,
      ([p, i], r) =>
        admin.listBackupRuns(
          p!,
          i!,
          r.query.maxResults ? Number(r.query.maxResults) : undefined,
          r.query.pageToken || undefined,
        ),
    ],
    [
      'GET',
      /^\/v1\/projects\/([^/]+)\/instances\/([^/]+)\/backupRuns\/([^/]+)$/,
      ([p, i, id]) => admin.getBackupRun(p!, i!, id!),
    ],
    [
      'DELETE',
      /^\/v1\/projects\/([^/]+)\/instances\/([^/]+)\/backupRuns\/([^/]+)$/,
      ([p, i, id]) => admin.deleteBackupRun(p!, i!, id!),
    ],
    [
      'POST',
      /^\/v1\/projects\/([^/]+)\/instances\/([^/]+)\/restoreBackup$/,
      ([p, i], r) => admin.restoreBackup(p!, i!, r.body),
    ],
    [
      'POST',
      /^\/v1\/projects\/([^/]+)\/instances\/([^/]+)\/promoteReplica$/,
      ([p, i], r) => admin.promoteReplica(p!, i!, r.query.failover === 'true'),
    ],
    [
      'POST',
      /^\/v1\/projects\/([^/]+)\/instances\/([^/]+)\/switchover$/,
      ([p, i], r) => admin.switchover(p!, i!, r.query.dbTimeout),
    ],
    ['POST', /^\/v1\/projects\/([^/]+)\/instances\/([^/]+)\/failover$/, ([p, i], r) => admin.failover(p!, i!, r.body)],
    ['GET', /^\/v1\/projects\/([^/]+)\/operations\/([^/]+)$/, ([p, op]) => admin.getOperation(p!, op!)],
    [
      'GET',
      /^\/v1\/projects\/([^/]+)\/operations$/,
      ([p], r) => admin.listOperations(p!, r.query.instance || undefined),
    ],
  ];
  const requests: RecordedRequest[] = [];

  const server = createServer((req, res) => {
    void serve(req, res);
  });
  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const raw = await readBody(req);
      const url = new URL(req.url ?? '/', 'http://fake');
      const method = req.method ?? 'GET';
      const recorded: RecordedRequest = {
        method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        body: {},
      };
      requests.push(recorded);
      recorded.body = parseBody(raw);
      for (const [m, pattern, handler] of routes) {
        const match = m === method ? pattern.exec(url.pathname) : null;
        if (match) return send(res, 200, handler(match.slice(1).map(decodeURIComponent), recorded));
      }
      throw notFound(
        'notFaked',
        `${method} ${url.pathname} is not faked: the Cloud SQL fake serves only the routes Lifeboat calls (test/fakes/cloudsql/server.ts)`,
      );
    } catch (err) {
      const error =
        err instanceof ApiError
          ? err
          : new ApiError(
              500,
              'INTERNAL',
              'internalError',
              `the Cloud SQL fake failed: ${(err as Error).stack ?? String(err)}`,
            );
      send(res, error.httpCode, error.toJson());
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: { host: '127.0.0.1', port },
    portOf: (project, instance) => admin.portOf(project, instance),
    failNext: (type, message) => admin.failNext(type, message),
    holdNext: (type) => admin.holdNext(type),
    requests,
    operations: () => admin.operations(),
    async close() {
      // The client keeps connections alive: without closing them, close() would wait for their timeout.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await admin.close();
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function localMajor(pgBin: string): Promise<number> {
  const version = await run(join(pgBin, 'pg_ctl'), ['--version']);
  const major = /\(PostgreSQL\) (\d+)/.exec(version)?.[1];
  if (!major)
    throw new Error(`could not tell the PostgreSQL version from "${version.trim()}" (${pgBin}/pg_ctl --version)`);
  return Number(major);
}
