// Child processes for the PostgreSQL tools: run as the right OS user, killed on cancellation,
// failing with the tool's own last words rather than a bare exit code, and given an allow-listed
// environment (childEnv): nothing of the worker's own (Temporal API key, codec keys, webhook URL,
// `env:` passwords, cloud credentials) ever reaches a child, whatever the call site passes.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { pipeline } from 'node:stream/promises';

export interface RunOptions {
  cwd?: string;
  /** What this call sets for its child beyond the inherited allow-list: only names childEnv accepts. */
  env?: NodeJS.ProcessEnv;
  /** Run as this OS user (only possible, and only needed, when we are root). */
  asUser?: OsUser;
  signal?: AbortSignal;
  /** Called with each chunk of stdout when the caller wants the stream (e.g. to hash it). */
  onStdout?: (chunk: Buffer) => void;
}

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

export class CommandFailed extends Error {
  override name = 'CommandFailed';
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${command} exited with ${exitCode ?? 'a signal'}: ${lastLines(stderr)}`);
  }
}

/** Runs a command to completion; resolves with stdout (unless streamed), rejects with CommandFailed. */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = start(command, args, options);
    const out: Buffer[] = [];
    let err = '';
    child.stdout?.on('data', (chunk: Buffer) => (options.onStdout ? options.onStdout(chunk) : out.push(chunk)));
    child.stderr?.on('data', (chunk: Buffer) => {
      err = (err + chunk.toString()).slice(-8000);
    });
    const onAbort = (): void => void child.kill('SIGTERM');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => {
      options.signal?.removeEventListener('abort', onAbort);
      reject(e);
    });
    child.on('close', (code) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (options.signal?.aborted) reject(options.signal.reason ?? new Error(`${command} cancelled`));
      else if (code === 0) resolve(Buffer.concat(out).toString());
      else reject(new CommandFailed(`${baseName(command)} ${args[0] ?? ''}`.trim(), code, err));
    });
  });
}

/**
 * Runs a command with its stdout piped through `sinks` (with backpressure, so a fast producer never
 * piles up in memory). Rejects with CommandFailed if the command fails, or with the stream's error.
 */
export async function runPiped(
  command: string,
  args: string[],
  options: RunOptions,
  ...sinks: [NodeJS.ReadWriteStream | NodeJS.WritableStream, ...Array<NodeJS.ReadWriteStream | NodeJS.WritableStream>]
): Promise<void> {
  const child = start(command, args, options);
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    err = (err + chunk.toString()).slice(-8000);
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const onAbort = (): void => void child.kill('SIGTERM');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await pipeline(child.stdout!, ...(sinks as [NodeJS.WritableStream]));
    const code = await exited;
    if (options.signal?.aborted) throw options.signal.reason ?? new Error(`${command} cancelled`);
    if (code !== 0) throw new CommandFailed(baseName(command), code, err);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/** Starts a command and hands back the child, for callers that pipe its stdout somewhere. */
export function start(command: string, args: string[], options: RunOptions = {}): ChildProcess {
  const spawnOptions: SpawnOptions = {
    cwd: options.cwd,
    env: childEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  };
  if (options.asUser && process.getuid?.() === 0) {
    spawnOptions.uid = options.asUser.uid;
    spawnOptions.gid = options.asUser.gid;
  }
  return spawn(command, args, spawnOptions);
}

/** What a child takes from the worker's environment as it is: the search path, the locale, the time zone. */
const INHERITED = /^(PATH|LANG|LANGUAGE|LC_[A-Z]+|TZ)$/;

/**
 * What a call site may set for its child besides those: libpq's connection settings (never
 * PGPASSWORD: a password goes into a passfile, which /proc/<pid>/environ does not show) and HOME for
 * a tool that reads a per-user config.
 */
const SETTABLE = new Set([
  'PGHOST',
  'PGPORT',
  'PGUSER',
  'PGDATABASE',
  'PGPASSFILE',
  'PGAPPNAME',
  'PGCONNECT_TIMEOUT',
  'PGSSLMODE',
  'PGSSLROOTCERT',
  'HOME',
]);

/**
 * The environment of every child process Lifeboat starts: PATH, the locale (LANG, LANGUAGE, LC_*)
 * and TZ from the worker's environment, plus the call's own `extra` settings. Anything else in
 * `extra` is a programming error and throws (naming the variable, never its value), so a call site
 * that hands over `process.env` fails at once instead of leaking it.
 */
export function childEnv(extra: NodeJS.ProcessEnv = {}, from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(from)) if (INHERITED.test(name) && value !== undefined) env[name] = value;
  for (const [name, value] of Object.entries(extra)) {
    if (!INHERITED.test(name) && !SETTABLE.has(name)) {
      throw new Error(
        `a child process may not be given ${name}: its environment is PATH, the locale, TZ and ${[...SETTABLE].join(', ')} (activities/pg/process.ts)`,
      );
    }
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

let postgresUser: OsUser | null | undefined;

/**
 * The OS user that owns PostgreSQL data directories. PostgreSQL refuses to run as root, so when we
 * are root the server tools run as `postgres`; otherwise they run as whoever we are.
 */
export function serverOsUser(): OsUser | null {
  if (postgresUser !== undefined) return postgresUser;
  if (process.getuid?.() !== 0) return (postgresUser = null);
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { env: childEnv() }).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { env: childEnv() }).toString().trim());
    postgresUser = { name: 'postgres', uid, gid };
  } catch {
    throw new Error(
      'Running as root, but there is no "postgres" OS user to run PostgreSQL as (it refuses to run as root). ' +
        'Install the Debian package postgresql, or run Lifeboat as an ordinary user.',
    );
  }
  return postgresUser;
}

function lastLines(text: string): string {
  // CONTEXT and DETAIL lines of pg_restore/psql can quote row data (`COPY t, line 3: "<row>"`): the
  // message travels into workflow history and logs, so they are left out.
  const lines = text
    .trim()
    .split('\n')
    .filter((line) => line && !/^\s*(CONTEXT|DETAIL|LINE \d+):/.test(line));
  return lines.slice(-3).join(' | ') || '(no output)';
}

function baseName(path: string): string {
  return path.split('/').pop() ?? path;
}
