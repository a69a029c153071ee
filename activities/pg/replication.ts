// Physical streaming replication between clusters Lifeboat runs: make a standby (pg_rewind when the
// node has history, else pg_basebackup), read a node's role and lag, fence, wait for replay, promote.
import { chownSync, chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../private-files';
import type { Client } from 'pg';
import type { LocalCluster } from './cluster';
import { describeDivergence, discardsWrites, divergenceFrom, type Divergence } from './divergence';
import { lsnAfter } from './lsn';
import { run, serverOsUser } from './process';
import { passfileLine, withClient, type PgConnection } from './sql';

export interface NodeStatus {
  running: boolean;
  reachable: boolean;
  inRecovery: boolean | null;
  /** Would accept a write from a new session: not in recovery and not read-only by default. */
  writable: boolean;
  fenced: boolean;
  /** The primary's current WAL position, or a standby's replay position. */
  lsn: string | null;
  /** Standby only: is its WAL receiver streaming? */
  streaming: boolean | null;
  /**
   * May a promotion of this node have been requested and accepted? A runbook never unfences the old
   * primary while this is true. Local: a request recorded (PROMOTE_REQUESTED, written before
   * pg_promote is sent) since the node last became a standby. RDS: the lifeboat:promote-requested tag
   * (written before PromoteReadReplica) or the instance is no read replica any more. Cloud SQL: a
   * promoteReplica or switchover operation of it still in flight, or it is no replica any more.
   * Absent where a provider cannot tell: treat as "maybe".
   */
  promoteRequested?: boolean;
  detail: string;
}

export interface ReplicationLag {
  streaming: boolean;
  lagBytes: number | null;
  lagSeconds: number | null;
  slotActive: boolean | null;
  primaryLsn: string | null;
  replayLsn: string | null;
}

const QUICK = { connectTimeoutMs: 3000 };

/** A short-timeout connection for status probes: a dead node must answer "unreachable" fast. */
async function probe<T>(conn: PgConnection, use: Parameters<typeof withClient<T>>[1]): Promise<T> {
  return withClient({ ...conn, connectTimeoutMs: QUICK.connectTimeoutMs }, use);
}

export async function nodeStatus(cluster: LocalCluster): Promise<NodeStatus> {
  const fenced = cluster.isFenced();
  const promoteRequested = existsSync(cluster.promoteRequestFile);
  if (!cluster.isInitialized()) return { ...UNREACHABLE, fenced, promoteRequested, detail: 'not created' };
  if (!(await cluster.isRunning())) return { ...UNREACHABLE, fenced, promoteRequested, detail: 'stopped' };
  return { ...(await statusOver(cluster.connection('postgres'), fenced)), promoteRequested };
}

const UNREACHABLE = { running: false, reachable: false, inRecovery: null, writable: false, lsn: null, streaming: null };

/**
 * A running server's role, writability and WAL position, asked over SQL (any provider's server).
 * Writable is tested, not read from a setting: a session that can open a READ WRITE transaction can
 * write, whatever `default_transaction_read_only` says (any client can turn that off for itself).
 */
export async function statusOver(conn: PgConnection, fenced: boolean): Promise<NodeStatus> {
  try {
    return await probe(conn, async (client) => {
      const { rows } = await client.query<{ rec: boolean; lsn: string | null; receiver: string | null }>(`
        select pg_is_in_recovery() as rec,
               case when pg_is_in_recovery() then pg_last_wal_replay_lsn()::text else pg_current_wal_lsn()::text end as lsn,
               (select status from pg_stat_wal_receiver limit 1) as receiver`);
      const r = rows[0]!;
      const writable = r.rec ? false : await acceptsReadWrite(client);
      return {
        running: true,
        reachable: true,
        inRecovery: r.rec,
        writable,
        fenced,
        lsn: r.lsn,
        streaming: r.rec ? r.receiver === 'streaming' : null,
        detail: r.rec
          ? `standby, ${r.receiver ?? 'not receiving'}`
          : writable
            ? 'primary, writable'
            : 'primary, refuses read-write transactions',
      };
    });
  } catch (err) {
    return { ...UNREACHABLE, running: true, fenced, detail: `running but unreachable: ${(err as Error).message}` };
  }
}

/**
 * Whether this session can open a read-write transaction: BEGIN READ WRITE, read back what the
 * transaction really is, roll back. Nothing is written. A server in recovery refuses the BEGIN.
 */
export async function acceptsReadWrite(client: Client): Promise<boolean> {
  try {
    await client.query('begin read write');
  } catch {
    return false;
  }
  try {
    const { rows } = await client.query<{ ro: string }>(`select current_setting('transaction_read_only') as ro`);
    return rows[0]?.ro === 'off';
  } finally {
    await client.query('rollback');
  }
}

/** How far a standby trails its primary, from both ends. */
export async function replicationLag(
  primary: LocalCluster,
  standby: LocalCluster,
  applicationName: string,
): Promise<ReplicationLag> {
  return lagOver(primary.connection('postgres'), standby.connection('postgres'), applicationName);
}

/**
 * The same over SQL alone. Without an application name (a managed replica Lifeboat did not name),
 * the lag is the WAL distance and streaming is the standby's receiver status.
 */
export async function lagOver(
  primaryConn: PgConnection,
  standbyConn: PgConnection,
  applicationName: string | null,
): Promise<ReplicationLag> {
  const replayLsn = await probe(standbyConn, async (c) => {
    const { rows } = await c.query<{ lsn: string | null; receiver: string | null }>(
      `select pg_last_wal_replay_lsn()::text as lsn, (select status from pg_stat_wal_receiver limit 1) as receiver`,
    );
    return rows[0] ?? { lsn: null, receiver: null };
  });
  return probe(primaryConn, async (c) => {
    const { rows } = await c.query<{
      current: string;
      bytes: string | null;
      secs: number | null;
      active: boolean | null;
      state: string | null;
    }>(
      `select pg_current_wal_lsn()::text as current,
              pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::text as bytes,
              (select extract(epoch from coalesce(replay_lag, interval '0'))::float8 from pg_stat_replication where application_name = $2 limit 1) as secs,
              (select active from pg_replication_slots where slot_name = $3) as active,
              (select state from pg_stat_replication where application_name = $2 limit 1) as state`,
      [replayLsn.lsn ?? '0/0', applicationName, applicationName && slotName(applicationName)],
    );
    const r = rows[0]!;
    const lagBytes = replayLsn.lsn === null || r.bytes === null ? null : Math.max(0, Number(r.bytes));
    return {
      streaming: (applicationName === null || r.state === 'streaming') && replayLsn.receiver === 'streaming',
      lagBytes,
      // replay_lag goes stale when the primary is idle: with nothing left to replay, the lag is zero.
      lagSeconds: lagBytes === 0 ? 0 : r.secs,
      slotActive: r.active,
      primaryLsn: r.current,
      replayLsn: replayLsn.lsn,
    };
  });
}

export function slotName(applicationName: string): string {
  return applicationName.replace(/[^a-z0-9_]/g, '_');
}

/**
 * Makes `standby` a streaming replica of `primary` and starts it. A node that has data of its own (a
 * former primary) is rewound with pg_rewind; if that fails, or there is nothing yet, a fresh
 * pg_basebackup is taken. Safe to repeat: a node already streaming from this primary is left alone.
 */
export async function makeStandby(
  standby: LocalCluster,
  primary: LocalCluster,
  options: {
    name: string;
    port: number;
    applicationName: string;
    pgBin: string;
    signal?: AbortSignal;
    log?: (line: string) => void;
    /**
     * Called before anything is rewound or copied over when the node committed transactions after
     * the fork (or its WAL could not be read): throw to refuse, or keep a copy and return to go on.
     */
    onDivergence?: (divergence: Divergence) => Promise<void>;
  },
): Promise<StandbyMethod> {
  const primaryPort = primary.state().port;
  const slot = slotName(options.applicationName);
  // Whatever was requested of the node as a primary-to-be is over once it follows a primary again.
  rmSync(standby.promoteRequestFile, { force: true });
  if (standby.isInitialized() && standby.state().replication?.primaryPort === primaryPort && !standby.isFenced()) {
    const started =
      (await standby.isRunning()) ||
      (await standby.start(options.signal).then(
        () => true,
        () => false,
      ));
    if (started && (await waitUntilStreaming(standby, 10_000)) === null) return 'already';
    // A standby that will not start, or does not stream from this primary, is rebuilt below.
  }
  const user = serverOsUser();
  const primaryConn = primary.connection('postgres');
  await withClient(primaryConn, (c) =>
    c.query(
      `select pg_create_physical_replication_slot($1, true) where not exists (select 1 from pg_replication_slots where slot_name = $1)`,
      [slot],
    ),
  );

  for (const dir of [standby.root, standby.runDir]) mkdirSync(dir, { recursive: true });
  chmodSync(standby.runDir, 0o700);
  if (user) chownSync(standby.runDir, user.uid, user.gid);
  writeFileSync(standby.replicationPassfile, passfileLine(primaryPort, primaryConn.password), { mode: 0o600 });
  if (user) chownSync(standby.replicationPassfile, user.uid, user.gid);
  const sourceConninfo = `host=127.0.0.1 port=${primaryPort} user=postgres dbname=postgres passfile=${standby.replicationPassfile}`;
  const asUser = user ?? undefined;

  let method: StandbyMethod = 'pg_basebackup';
  let rewind = existsSync(join(standby.dataDir, 'PG_VERSION'));
  if (rewind) {
    // A freshly promoted primary records its new timeline in its control file only at the end-of-
    // recovery checkpoint, which runs lazily: before it, pg_rewind sees the old timeline and judges
    // "no rewind required". The pg_rewind docs ask for this checkpoint.
    await withClient(primaryConn, (c) => c.query('checkpoint'));
    if (await standby.isRunning()) await standby.stop('fast');
    // pg_rewind recovers a crashed node in single-user mode first, which a killed postmaster's
    // unreaped pid in the lock file would refuse.
    standby.clearZombieLocks();
    // Writes the node took after the fork exist nowhere else: never rewind them away unasked.
    const divergence = await divergenceFrom(standby, primaryConn).catch((err: Error): Divergence => ({
      timeline: 0,
      forkLsn: null,
      walAfterFork: true,
      cleanlyStopped: false,
      commits: [],
      commitCount: 0,
      unreadable: err.message,
    }));
    if (discardsWrites(divergence)) {
      if (!options.onDivergence) throw new Error(describeDivergence(standby.root, divergence));
      await options.onDivergence(divergence);
    }
    // A clean demote: the node's WAL ends before the fork, so it follows the new timeline as it is.
    if (divergence.forkLsn !== null && !divergence.walAfterFork && divergence.cleanlyStopped) {
      rewind = false;
      method = 'follows';
    }
  }
  if (rewind) {
    // pg_rewind's crash recovery of a killed node runs a single-user server, which refuses to start
    // with the fence's standby.signal in place; the signal is written again right after.
    standby.releaseFromRecovery();
    try {
      await run(
        join(options.pgBin, 'pg_rewind'),
        ['--target-pgdata', standby.dataDir, '--source-server', sourceConninfo],
        {
          asUser,
          cwd: standby.root,
          signal: options.signal,
        },
      );
      method = 'pg_rewind';
    } catch (err) {
      options.log?.(`pg_rewind failed, taking a fresh base backup instead: ${(err as Error).message}`);
    }
  }
  if (method === 'pg_basebackup') await freshBaseBackup(standby, sourceConninfo, slot, asUser, options.signal);
  // standby.signal first, then lift the fence: there is no moment at which the node could start writable.
  writeFileSync(join(standby.dataDir, 'standby.signal'), '');
  if (user) chownSync(join(standby.dataDir, 'standby.signal'), user.uid, user.gid);
  rmSync(standby.fenceFile, { force: true });
  writeFileSync(standby.pgpassFile, passfileLine(options.port, primaryConn.password), { mode: 0o600 });
  standby.writeState({
    name: options.name,
    port: options.port,
    disposable: false,
    replication: { primaryPort, slot, applicationName: options.applicationName },
  });
  const problem = await standby.start(options.signal).then(
    () => waitUntilStreaming(standby, 20_000),
    (err: Error) => err.message,
  );
  if (problem === null) return method;
  if (method === 'pg_basebackup') throw new Error(`${standby.root} was rebuilt from a base backup but ${problem}`);
  // A rewound node can start and still never follow its new primary (pg_rewind can judge "no rewind
  // required" when the old primary's last checkpoint sits exactly at the fork, and the node then asks
  // for a timeline it is not a child of). Nothing of it is worth keeping: rebuild from a fresh copy.
  options.log?.(`the rewound node ${problem}; taking a fresh base backup instead`);
  if (await standby.isRunning()) await standby.stop('immediate');
  await freshBaseBackup(standby, sourceConninfo, slot, asUser, options.signal);
  await standby.start(options.signal);
  const after = await waitUntilStreaming(standby, 20_000);
  if (after !== null) throw new Error(`${standby.root} was rebuilt from a base backup but ${after}`);
  return 'pg_basebackup';
}

/**
 * How a node became a standby: it already was one; it follows as it is (a clean demote, nothing
 * after the fork); rewound; or copied afresh.
 */
export type StandbyMethod = 'already' | 'follows' | 'pg_rewind' | 'pg_basebackup';

/** null once the standby's WAL receiver streams; else what is wrong, after `ms`. */
async function waitUntilStreaming(standby: LocalCluster, ms: number): Promise<string | null> {
  const deadline = Date.now() + ms;
  let last = 'did not start streaming';
  while (Date.now() < deadline) {
    const status = await nodeStatus(standby);
    if (status.inRecovery && status.streaming) return null;
    if (!status.running) return `stopped (${status.detail})`;
    last = `did not start streaming within ${ms / 1000}s (${status.detail})`;
    await new Promise((r) => setTimeout(r, 200));
  }
  return last;
}

async function freshBaseBackup(
  standby: LocalCluster,
  sourceConninfo: string,
  slot: string,
  asUser: ReturnType<typeof serverOsUser> | undefined,
  signal?: AbortSignal,
): Promise<void> {
  const user = serverOsUser();
  rmSync(standby.dataDir, { recursive: true, force: true });
  mkdirSync(standby.dataDir, { recursive: true });
  chmodSync(standby.dataDir, 0o700);
  if (user) chownSync(standby.dataDir, user.uid, user.gid);
  await run(
    join(standby.pgBinDir, 'pg_basebackup'),
    [
      '--dbname',
      sourceConninfo,
      '--pgdata',
      standby.dataDir,
      '--wal-method=stream',
      '--slot',
      slot,
      '--checkpoint=fast',
      '--no-sync',
    ],
    { asUser: asUser ?? undefined, cwd: standby.root, signal, env: { PATH: process.env.PATH } },
  );
  writeFileSync(join(standby.dataDir, 'standby.signal'), '');
  if (user) chownSync(join(standby.dataDir, 'standby.signal'), user.uid, user.gid);
}

/**
 * Stops a primary from taking writes, by any client, by any means. Both modes first put a FENCED
 * marker and a standby.signal in place, so the node only ever starts again in recovery (read-only
 * whatever a session sets), whoever starts it.
 * Planned: a demote as Patroni does it. A clean (fast) shutdown: PostgreSQL ends every session,
 * writes a shutdown checkpoint and, before it exits, streams everything up to it to the standby.
 * `finalLsn` is just past that checkpoint: a standby that has replayed it holds every write the
 * primary took, and the stopped node can follow the standby once it is promoted, without pg_rewind.
 * Unplanned: stopped at once if it still runs.
 * `confirmed` is true only when the server was seen stopped (and, planned, cleanly).
 */
export async function fence(
  cluster: LocalCluster,
  mode: 'planned' | 'unplanned',
): Promise<{ confirmed: boolean; how: string; finalLsn: string | null; canFollow?: boolean }> {
  if (!cluster.isInitialized()) return { confirmed: false, how: `no cluster at ${cluster.root}`, finalLsn: null };
  writeFileSync(cluster.fenceFile, `fenced ${new Date().toISOString()} (${mode})\n`);
  cluster.holdInRecovery();
  const wasRunning = await cluster.isRunning();
  if (mode === 'planned') {
    if (wasRunning) await cluster.stop('fast');
    const stopped = !(await cluster.isRunning());
    const control = stopped ? await cluster.controlData() : null;
    const clean = control !== null && /^shut down/.test(control.state);
    return {
      confirmed: stopped && clean,
      how: !stopped
        ? 'could not stop the server'
        : clean
          ? 'demoted: clean shutdown, its final checkpoint streamed to the standby; restarts only in recovery (standby.signal)'
          : `stopped, but not cleanly (${control?.state ?? 'state unknown'}): the standby may lack its last writes`,
      finalLsn: clean ? lsnAfter(control.checkpointLsn) : null,
      canFollow: clean,
    };
  }
  if (wasRunning) await cluster.stop('immediate');
  const stillRunning = await cluster.isRunning();
  return {
    confirmed: !stillRunning,
    how: stillRunning
      ? 'could not stop the server'
      : wasRunning
        ? 'server stopped (immediate); restarts only in recovery (standby.signal)'
        : 'server was already down; marked so it restarts only in recovery (standby.signal)',
    finalLsn: null,
  };
}

/** How long a standby may neither stream nor make progress before a wait on it gives up. */
export const STALLED_AFTER_MS = 60_000;

/** Polls until the standby has replayed `lsn`; calls `beat` each round (heartbeat and cancellation). */
export async function waitForReplay(
  standby: LocalCluster,
  lsn: string,
  beat: (replayLsn: string | null) => void,
  signal?: AbortSignal,
): Promise<string> {
  return waitForReplayOver(() => standby.connection('postgres'), standby.root, lsn, beat, signal);
}

/** The same over SQL: `connect` is asked again each round, so a node that moves is followed. */
export async function waitForReplayOver(
  connect: () => PgConnection | Promise<PgConnection>,
  what: string,
  lsn: string,
  beat: (replayLsn: string | null) => void,
  signal?: AbortSignal,
): Promise<string> {
  let lastReplay: string | null = null;
  let progressAt = Date.now();
  for (;;) {
    const { caughtUp, replay } = await probe(await connect(), async (c) => {
      const { rows } = await c.query<{ caught_up: boolean; replay: string | null }>(
        `select coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) as caught_up, pg_last_wal_replay_lsn()::text as replay`,
        [lsn],
      );
      return { caughtUp: rows[0]!.caught_up, replay: rows[0]!.replay };
    });
    if (caughtUp) return replay!;
    if (replay !== lastReplay) {
      lastReplay = replay;
      progressAt = Date.now();
    } else if (Date.now() - progressAt > STALLED_AFTER_MS) {
      throw new StandbyStalled(
        `${what} has replayed nothing for ${STALLED_AFTER_MS / 1000}s (at ${replay ?? 'nothing'}, waiting for ${lsn})`,
      );
    }
    beat(replay);
    if (signal?.aborted) throw signal.reason ?? new Error('cancelled');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A standby that stopped following: waiting longer will not help, a rebuild will. */
export class StandbyStalled extends Error {
  override name = 'StandbyStalled';
}

/**
 * Lifts a planned fence: the switchover was abandoned before anything was promoted. The node starts
 * again as the primary it was (a server that was started in recovery meanwhile is restarted).
 */
export async function unfence(cluster: LocalCluster): Promise<void> {
  if (!cluster.isInitialized()) return;
  // A node that is (or was made) a real standby keeps its standby.signal: only a fence's is lifted.
  const realStandby = Boolean(cluster.state().replication);
  if (await cluster.isRunning()) {
    const inRecovery = await withClient(
      cluster.connection('postgres'),
      async (c) => (await c.query<{ rec: boolean }>('select pg_is_in_recovery() as rec')).rows[0]!.rec,
    );
    if (inRecovery && !realStandby) await cluster.stop('fast');
  }
  rmSync(cluster.fenceFile, { force: true });
  if (!realStandby) cluster.releaseFromRecovery();
  if (!(await cluster.isRunning())) await cluster.start();
  // Fences before the demote left this setting behind; nothing should keep the node read-only now.
  await withClient(cluster.connection('postgres'), async (c) => {
    await c.query('alter system reset default_transaction_read_only');
    await c.query('select pg_reload_conf()');
  });
}

/** Promotes a standby (no-op if it already is a primary) and makes it writable and fence-free. */
export async function promote(cluster: LocalCluster): Promise<{ lsn: string; alreadyPrimary: boolean }> {
  const result = await withClient(cluster.connection('postgres'), async (c) => {
    const rec = (await c.query<{ rec: boolean }>('select pg_is_in_recovery() as rec')).rows[0]!.rec;
    if (rec) {
      // Recorded before it is sent: a request that times out below may still take effect, and a
      // runbook that sees this record never undoes the switchover on the assumption it did not.
      writeFileAtomic(cluster.promoteRequestFile, `promote requested ${new Date().toISOString()}\n`);
      const ok = (await c.query<{ ok: boolean }>('select pg_promote(true, 60) as ok')).rows[0]!.ok;
      if (!ok) throw new Error(`pg_promote did not finish within 60s on ${cluster.root}`);
    }
    // A former primary rebuilt by pg_rewind inherits its source's settings: make sure nothing
    // left from a fence keeps the new primary read-only.
    await c.query('alter system reset default_transaction_read_only');
    await c.query('select pg_reload_conf()');
    const lsn = (await c.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
    return { lsn, alreadyPrimary: !rec };
  });
  rmSync(cluster.fenceFile, { force: true });
  const state = cluster.state();
  if (state.replication) {
    delete state.replication;
    cluster.writeState(state);
  }
  return result;
}
