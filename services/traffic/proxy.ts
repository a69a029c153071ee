// The traffic proxy: one stable address per replication set that always leads to its current
// primary. The topology record is the only authority on where that is. Mid-switch (primary null)
// or with no record at all, new connections are closed at once: nobody writes anywhere. When the
// epoch moves, every connection opened under another epoch is cut, so no client stays attached to
// a former primary.
import { statSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { nodeLabel, type NodeRef, type Topology, type TopologyStore } from '../../activities/topology';

export interface ProxyOptions {
  /** The replication set whose primary this address stands for. */
  set: string;
  /** Port to listen on (127.0.0.1); 0 picks a free one, see TrafficProxy.port. */
  port: number;
  topology: TopologyStore;
  /** Where a node of the set accepts connections. May throw: the client is then refused. */
  resolve: (node: NodeRef) => { host: string; port: number };
  logger: Logger;
  /** How often the topology record is checked for a change (its file's identity and mtime). */
  pollMs?: number;
  /** How long a backend connect may take before the client is closed. */
  connectTimeoutMs?: number;
}

export interface TrafficProxy {
  /** The port actually listened on. */
  port: number;
  /** Stops listening and cuts every connection. Safe to repeat. */
  close(): Promise<void>;
  /** Client connections currently open through the proxy. */
  connections(): number;
}

interface Pair {
  client: Socket;
  backend: Socket;
  /** The epoch and the primary the backend was chosen under. */
  epoch: number;
  primary: string;
}

/** How long a repeated warning stays quiet after it was logged. */
const WARN_EVERY_MS = 10_000;

export async function startProxy(options: ProxyOptions): Promise<TrafficProxy> {
  const { set, topology } = options;
  const pollMs = options.pollMs ?? 100;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
  const logger = options.logger.child({ component: 'traffic-proxy', set });
  const file = topology.path(set); // throws now, at start, on a set name that is not a plain name

  const pairs = new Set<Pair>();
  let fileKey: string | null = null; // identity of the file the cache was read from; '' = no file
  let current: Topology | null = null;
  let closed = false;

  const lastWarned = new Map<string, number>();
  const warnRateLimited = (key: string, fields: object, msg: string): void => {
    const now = Date.now();
    if (now - (lastWarned.get(key) ?? 0) < WARN_EVERY_MS) return logger.debug(fields, msg);
    lastWarned.set(key, now);
    logger.warn(fields, msg);
  };

  const cut = (pair: Pair): void => {
    pair.client.destroy();
    pair.backend.destroy();
  };

  /** Re-reads the record when its file changed; on a new epoch, cuts connections from every other epoch. */
  const refresh = (): void => {
    let key: string;
    try {
      // The store renames a new file into place, so the inode changes on every write; mtime and
      // size are there for editors and tools that rewrite in place.
      const st = statSync(file, { bigint: true });
      key = `${st.ino}:${st.mtimeNs}:${st.size}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        warnRateLimited('stat', { err, file }, 'cannot read the topology record; refusing new connections');
        current = null;
        fileKey = null;
        return;
      }
      key = '';
    }
    if (key === fileKey) return;
    let next: Topology | null;
    try {
      next = key ? topology.read(set) : null;
    } catch (err) {
      // Not remembered as read: the next check tries again.
      warnRateLimited('read', { err, file }, 'cannot read the topology record; refusing new connections');
      current = null;
      fileKey = null;
      return;
    }
    fileKey = key;
    const before = current;
    current = next;
    if (before?.epoch === next?.epoch && nodeLabel(before?.primary) === nodeLabel(next?.primary)) return;

    // With no record there is no epoch: nothing opened earlier may stay. A record rewritten by hand
    // with the same epoch but another primary cuts too.
    const stale = [...pairs].filter((p) => !next || p.epoch !== next.epoch || p.primary !== nodeLabel(next.primary));
    stale.forEach(cut);
    logger.info(
      {
        from: before?.epoch ?? null,
        to: next?.epoch ?? null,
        primary: next ? nodeLabel(next.primary) : null,
        cut: stale.length,
      },
      !next
        ? `topology record of ${set} is gone; refusing new connections, cut ${stale.length}`
        : next.primary
          ? `topology of ${set} is at epoch ${next.epoch}: primary ${nodeLabel(next.primary)}; cut ${stale.length} connections`
          : `topology of ${set} is at epoch ${next.epoch} with no primary (switch in progress); refusing new connections, cut ${stale.length}`,
    );
  };

  const onConnection = (client: Socket): void => {
    client.on('error', (err) => logger.debug({ err }, 'client connection error'));
    if (closed) return void client.destroy();
    refresh();
    const topo = current;
    if (!topo?.primary) {
      warnRateLimited(
        'refuse',
        { epoch: topo?.epoch ?? null },
        topo
          ? `refusing a connection: no primary for ${set} at epoch ${topo.epoch} (switch in progress)`
          : `refusing a connection: no topology record for ${set}`,
      );
      return void client.destroy();
    }
    let target: { host: string; port: number };
    try {
      target = options.resolve(topo.primary);
    } catch (err) {
      warnRateLimited(
        'resolve',
        { err, primary: nodeLabel(topo.primary) },
        `refusing a connection: cannot resolve primary ${nodeLabel(topo.primary)}`,
      );
      return void client.destroy();
    }

    let backend: Socket;
    try {
      backend = connect({ host: target.host, port: target.port }); // throws at once on a port out of range
    } catch (err) {
      warnRateLimited(
        'resolve',
        { err, target },
        `refusing a connection: primary ${nodeLabel(topo.primary)} resolved to ${target.host}:${target.port}`,
      );
      return void client.destroy();
    }
    const pair: Pair = { client, backend, epoch: topo.epoch, primary: nodeLabel(topo.primary) };
    pairs.add(pair);
    const timer = setTimeout(() => {
      warnRateLimited(
        'connect',
        { target },
        `primary ${nodeLabel(topo.primary)} at ${target.host}:${target.port} did not accept within ${connectTimeoutMs} ms`,
      );
      cut(pair);
    }, connectTimeoutMs);
    timer.unref();
    backend.once('connect', () => clearTimeout(timer));
    backend.on('error', (err) => {
      warnRateLimited(
        'backend',
        { err, target },
        `connection to primary ${nodeLabel(topo.primary)} at ${target.host}:${target.port} failed`,
      );
    });
    client.setNoDelay(true);
    backend.setNoDelay(true);
    // Either side ending or failing ends both: a half-open pair would hold a client on nothing.
    const done = (): void => {
      clearTimeout(timer);
      pairs.delete(pair);
      cut(pair);
    };
    client.once('close', done);
    backend.once('close', done);
    client.pipe(backend);
    backend.pipe(client);
  };

  const server: Server = createServer(onConnection);
  server.on('error', (err) => logger.error({ err }, 'traffic proxy server error'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;

  refresh();
  const poll = setInterval(refresh, pollMs);
  poll.unref();
  logger.info({ port }, `traffic proxy for ${set} listening on 127.0.0.1:${port}`);
  if (!current) logger.warn({ file }, `no topology record for ${set} yet; refusing connections until one is written`);

  let closing: Promise<void> | null = null;
  return {
    port,
    connections: () => pairs.size,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        closed = true;
        clearInterval(poll);
        server.close(() => resolve());
        pairs.forEach(cut);
      });
      return closing;
    },
  };
}
