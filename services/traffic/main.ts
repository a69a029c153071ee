// Traffic for the local stack: per replication set, a proxy at a stable address that leads to the
// set's current primary, and per database a canary writer going through it. Installs nothing
// global (no signal handlers, no process exit): the caller owns the process and calls close().
import type { Logger } from 'pino';
import { CanaryLedger } from '../../activities/canary-ledger';
import { findPgBin } from '../../activities/pg/binaries';
import { LocalProvider } from '../../activities/providers/local';
import { nodeLabel, TopologyStore, type NodeRef } from '../../activities/topology';
import type { LifeboatEnv } from '../../worker/env';
import { startCanaryWriter, type CanaryWriter } from './canary-writer';
import { startProxy, type TrafficProxy } from './proxy';

export interface TrafficSet {
  /** The replication set (its topology record's name). */
  set: string;
  /** The proxy's port on 127.0.0.1; 0 picks a free one (see Traffic.status). */
  port: number;
  /** PostgreSQL databases to write canaries to; each name is also its ledger's key. */
  databases: string[];
  /** The node whose credentials the writers use: every node of a set shares them (physical copies). */
  credentialsFrom: NodeRef;
}

export interface TrafficOptions {
  env: LifeboatEnv;
  sets: TrafficSet[];
  /** Time between canary writes, per database (default 1000). */
  intervalMs?: number;
  logger: Logger;
}

export interface TrafficStatus {
  set: string;
  port: number;
  connections: number;
  writers: Array<{ database: string; written: number; failed: number }>;
}

export interface Traffic {
  /** Stops the writers (each after its write in flight), then the proxies. Safe to repeat. */
  close(): Promise<void>;
  status(): TrafficStatus[];
}

export async function runTraffic(options: TrafficOptions): Promise<Traffic> {
  const { env, sets, logger } = options;
  const intervalMs = options.intervalMs ?? 1_000;
  checkSets(sets);
  const provider = new LocalProvider({ home: env.home, pgBin: findPgBin(env.pgBin) });
  const topology = new TopologyStore(env.home);
  const ledger = new CanaryLedger(env.home);

  const started: Array<{
    spec: TrafficSet;
    proxy: TrafficProxy;
    writers: Array<{ database: string; writer: CanaryWriter }>;
  }> = [];
  const close = async (): Promise<void> => {
    await Promise.all(started.flatMap((s) => s.writers.map((w) => w.writer.stop())));
    await Promise.all(started.map((s) => s.proxy.close()));
  };

  try {
    for (const spec of sets) {
      // Read once, here: a missing node fails the start with its own message, not every reconnect.
      const credentials = new Map(
        spec.databases.map((database) => {
          try {
            return [database, provider.nodeCluster(spec.credentialsFrom).connection(database)] as const;
          } catch (err) {
            throw new Error(
              `cannot read credentials for ${spec.set} from node ${nodeLabel(spec.credentialsFrom)}: ${(err as Error).message}`,
            );
          }
        }),
      );
      const proxy = await startProxy({
        set: spec.set,
        port: spec.port,
        topology,
        resolve: (node) => ({ host: '127.0.0.1', port: provider.nodeCluster(node).state().port }),
        logger,
      });
      const entry = { spec, proxy, writers: [] as Array<{ database: string; writer: CanaryWriter }> };
      started.push(entry);
      for (const [database, conn] of credentials) {
        const writer = startCanaryWriter({
          set: spec.set,
          database,
          intervalMs,
          connect: () => ({ ...conn, host: '127.0.0.1', port: proxy.port }),
          ledger,
          topology,
          logger,
        });
        entry.writers.push({ database, writer });
      }
    }
  } catch (err) {
    await close();
    throw err;
  }

  let closing: Promise<void> | null = null;
  return {
    close: () => (closing ??= close()),
    status: () =>
      started.map(({ spec, proxy, writers }) => ({
        set: spec.set,
        port: proxy.port,
        connections: proxy.connections(),
        writers: writers.map(({ database, writer }) => ({
          database,
          written: writer.written(),
          failed: writer.failed(),
        })),
      })),
  };
}

/** Two proxies cannot share a port, and two writers cannot share a ledger (it is keyed by database name). */
function checkSets(sets: TrafficSet[]): void {
  const seen = { set: new Set<string>(), port: new Set<number>(), database: new Set<string>() };
  for (const s of sets) {
    if (seen.set.has(s.set))
      throw new Error(`replication set ${JSON.stringify(s.set)} is listed twice; expected each set once`);
    seen.set.add(s.set);
    if (!Number.isInteger(s.port) || s.port < 0 || s.port > 65535) {
      throw new Error(`traffic port ${s.port} for ${s.set} is not a port; expected a whole number from 0 to 65535`);
    }
    if (s.port !== 0 && seen.port.has(s.port))
      throw new Error(`traffic port ${s.port} is given to two sets; expected one port per set`);
    seen.port.add(s.port);
    for (const db of s.databases) {
      if (seen.database.has(db)) {
        throw new Error(
          `database ${JSON.stringify(db)} is listed twice (${s.set}); the canary ledger is keyed by database name, so each may appear once`,
        );
      }
      seen.database.add(db);
    }
  }
}
