// The canary writer: a steady trickle of timestamped canary rows through the traffic proxy, like
// an application's writes. Each write the primary acknowledges is appended to the canary ledger,
// and only then counted: the ledger is what an unplanned failover's RPO is measured against, so it
// must never hold a write the primary did not acknowledge. Failures (primary down, the proxy
// refusing mid-switch) are expected during a failover: logged without flooding, retried next tick.
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { Logger } from 'pino';
import type { CanaryLedger } from '../../activities/canary-ledger';
import { writeCanary, type PgConnection } from '../../activities/pg/sql';
import type { TopologyStore } from '../../activities/topology';

export interface CanaryWriterOptions {
  /** The replication set the database lives in: its topology epoch is recorded with every write. */
  set: string;
  /** The PostgreSQL database written to; also the ledger's key. */
  database: string;
  intervalMs: number;
  /** Where to connect: the set's traffic proxy, never a node directly. Called on every (re)connect. */
  connect: () => PgConnection;
  ledger: CanaryLedger;
  topology: TopologyStore;
  logger: Logger;
  /** Connect and statement timeout, so a dead primary does not stall the writer. */
  timeoutMs?: number;
}

export interface CanaryWriter {
  /** Stops after the write in flight (if any) is acknowledged and recorded, or fails. Safe to repeat. */
  stop(): Promise<void>;
  /** Writes acknowledged and appended to the ledger. */
  written(): number;
  /** Attempts that did not end in a ledger entry. */
  failed(): number;
}

/** While writes keep failing, a warning at most this often; the rest at debug. */
const WARN_EVERY_MS = 30_000;

export function startCanaryWriter(options: CanaryWriterOptions): CanaryWriter {
  const { set, database, intervalMs, ledger, topology } = options;
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) {
    throw new Error(`canary writer interval ${intervalMs} ms for ${database} is not a positive number of milliseconds`);
  }
  ledger.path(database); // throws now on a database name the ledger cannot key
  topology.path(set); // and on a set name that is not a plain name
  const timeoutMs = options.timeoutMs ?? 2_000;
  const logger = options.logger.child({ component: 'canary-writer', set, db: database });
  // A token must never repeat: writeCanary treats a known token as a retry and returns the old row.
  const tokenPrefix = `writer:${process.pid}:${randomBytes(4).toString('hex')}`;

  let seq = 0;
  let writtenCount = 0;
  let failedCount = 0;
  let streak = 0;
  let streakSince = 0;
  let lastWarnAt = 0;
  let client: Client | null = null;
  let clientEpoch: number | null = null;
  let stopped = false;
  let wake: (() => void) | null = null;

  const drop = (): void => {
    const c = client;
    client = null;
    clientEpoch = null;
    if (c) void c.end().catch(() => undefined);
  };

  const open = async (epoch: number): Promise<Client> => {
    const conn = options.connect();
    const c = new Client({
      host: conn.host,
      port: conn.port,
      user: conn.user,
      password: conn.password,
      database: conn.database,
      application_name: 'lifeboat-canary',
      connectionTimeoutMillis: timeoutMs,
      statement_timeout: timeoutMs,
      // The client-side limit catches a server that stopped answering; a little later than the
      // server's own, so a live server reports its timeout itself.
      query_timeout: timeoutMs + 1_000,
      keepAlive: true,
    });
    // An idle connection cut by the proxy or a dying server surfaces here, not in a query.
    c.on('error', (err) => {
      logger.debug({ err }, 'canary connection lost');
      if (client === c) drop();
    });
    try {
      await c.connect();
    } catch (err) {
      void c.end().catch(() => undefined);
      throw err;
    }
    client = c;
    clientEpoch = epoch;
    return c;
  };

  const failure = (err: unknown, msg: string): void => {
    failedCount++;
    const now = Date.now();
    if (streak++ === 0) streakSince = now;
    const fields = { err, failures: streak, failingForMs: now - streakSince };
    if (streak === 1 || now - lastWarnAt >= WARN_EVERY_MS) {
      lastWarnAt = now;
      logger.warn(
        fields,
        streak === 1 ? `${msg}; retrying every ${intervalMs} ms` : `${msg}; still failing after ${streak} attempts`,
      );
    } else {
      logger.debug(fields, msg);
    }
  };

  const tick = async (): Promise<void> => {
    let epoch: number;
    try {
      const topo = topology.read(set);
      if (!topo) return failure(null, `no topology record for ${set}: nothing to attribute a canary to`);
      epoch = topo.epoch;
    } catch (err) {
      return failure(err, `cannot read the topology record of ${set}`);
    }
    // A connection from an earlier epoch may still lead to a former primary (the proxy cuts it
    // within its poll interval): reconnect, and let the proxy pick this epoch's primary.
    if (client && clientEpoch !== epoch) drop();
    let canary;
    try {
      const c = client ?? (await open(epoch));
      canary = await writeCanary(c, `${tokenPrefix}:${++seq}`);
    } catch (err) {
      drop();
      return failure(err, `canary write to ${database} failed`);
    }
    try {
      ledger.append({ ...canary, database, epoch });
    } catch (err) {
      return failure(
        err,
        `canary ${canary.id} in ${database} was acknowledged but could not be appended to the ledger`,
      );
    }
    writtenCount++;
    if (streak > 0) {
      logger.info(
        { failures: streak, failedForMs: Date.now() - streakSince, epoch },
        `canary writes to ${database} resumed after ${streak} failed attempts`,
      );
      streak = 0;
    }
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      wake = done;
    });

  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      await tick();
      if (stopped) break;
      await sleep(Math.max(0, intervalMs - (Date.now() - started)));
    }
  })()
    .catch((err: unknown) => logger.error({ err }, 'canary writer stopped on an unexpected error'))
    .finally(drop);

  logger.info({ intervalMs }, `canary writer for ${database} started`);
  return {
    written: () => writtenCount,
    failed: () => failedCount,
    stop: async () => {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}
