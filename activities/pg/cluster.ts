// A PostgreSQL cluster that Lifeboat runs itself: a local region's server, a streaming standby, or a
// drill's scratch instance. Layout under its root:
//   data/ (0700, the server's)  run/ (socket, log, the replication passfile)  state.json  pgpass (0600)
//   FENCED (present while the node is a fenced former primary: its data directory then holds a
//   standby.signal, so whoever starts it, with pg_ctl or anything else, gets a server in recovery
//   that refuses every write)
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { run, serverOsUser, CommandFailed } from './process';
import { passfileLine, passwordOfPassfileLine, withClient, type PgConnection } from './sql';
import { processAlive } from './tool-env';
import { writeFileAtomic } from '../private-files';

export interface ClusterState {
  name: string;
  port: number;
  /** Scratch instances trade durability for speed: they live for one drill. */
  disposable: boolean;
  /** Set while this cluster is a streaming standby: whom it follows, through which slot. */
  replication?: { primaryPort: number; slot: string; applicationName: string };
}

export interface ControlData {
  /** e.g. 'shut down', 'shut down in recovery', 'in production', 'in archive recovery'. */
  state: string;
  /** The last checkpoint's start (after a clean shutdown: the shutdown checkpoint). */
  checkpointLsn: string;
  timeline: number;
}

export class LocalCluster {
  readonly dataDir: string;
  readonly runDir: string;
  readonly stateFile: string;
  readonly pgpassFile: string;

  constructor(
    readonly root: string,
    private readonly pgBin: string,
  ) {
    this.pgBinDir = pgBin;
    this.dataDir = join(root, 'data');
    this.runDir = join(root, 'run');
    this.stateFile = join(root, 'state.json');
    this.pgpassFile = join(root, 'pgpass');
    this.fenceFile = join(root, 'FENCED');
    this.promoteRequestFile = join(root, 'PROMOTE_REQUESTED');
    this.replicationPassfile = join(this.runDir, 'replication.pgpass');
  }

  readonly fenceFile: string;
  /** Present once a promote of this node was requested, until it is made a standby again. */
  readonly promoteRequestFile: string;
  /** Where this cluster's server tools live (pg_basebackup, pg_rewind use the same version). */
  readonly pgBinDir: string;
  /** Credentials the server itself uses to reach its primary; readable by the server's OS user only. */
  readonly replicationPassfile: string;

  /** The state is written atomically: its presence marks the cluster initialised (isInitialized). */
  writeState(state: ClusterState): void {
    writeFileAtomic(this.stateFile, JSON.stringify(state, null, 2) + '\n');
  }

  isFenced(): boolean {
    return existsSync(this.fenceFile);
  }

  /**
   * Puts standby.signal in the data directory: whoever starts this server next, by any means, gets
   * it in recovery, where PostgreSQL refuses every write (no setting a client can change lifts it).
   */
  holdInRecovery(): void {
    if (!existsSync(this.dataDir)) return;
    const signal = join(this.dataDir, 'standby.signal');
    if (existsSync(signal)) return;
    writeFileSync(signal, '');
    const user = serverOsUser();
    if (user) chownSync(signal, user.uid, user.gid);
  }

  /** Lifts holdInRecovery (the server must be stopped for it to matter). */
  releaseFromRecovery(): void {
    rmSync(join(this.dataDir, 'standby.signal'), { force: true });
  }

  /** What pg_controldata says of a stopped (or running) cluster: its state, last checkpoint, timeline. */
  async controlData(): Promise<ControlData> {
    const out = await run(join(this.pgBin, 'pg_controldata'), ['-D', this.dataDir], {
      asUser: serverOsUser() ?? undefined,
      cwd: this.root,
      env: { PATH: process.env.PATH, LC_ALL: 'C' },
    });
    const field = (name: string): string => {
      const line = out.split('\n').find((l) => l.startsWith(`${name}:`));
      if (!line) throw new Error(`pg_controldata of ${this.dataDir} has no "${name}" line`);
      return line.slice(name.length + 1).trim();
    };
    return {
      state: field('Database cluster state'),
      checkpointLsn: field('Latest checkpoint location'),
      timeline: Number(field("Latest checkpoint's TimeLineID")),
    };
  }

  /** True once initdb has finished and the state is written. */
  isInitialized(): boolean {
    return existsSync(join(this.dataDir, 'PG_VERSION')) && existsSync(this.stateFile) && existsSync(this.pgpassFile);
  }

  state(): ClusterState {
    try {
      return JSON.parse(readFileSync(this.stateFile, 'utf8')) as ClusterState;
    } catch (err) {
      throw new Error(`no cluster state at ${this.stateFile}: ${(err as Error).message}`);
    }
  }

  /** Creates the cluster if it is not there, starts it if it is not running. Safe to repeat. */
  async ensureRunning(wanted: ClusterState, signal?: AbortSignal): Promise<ClusterState> {
    if (!this.isInitialized()) await this.init(wanted, signal);
    if (!(await this.isRunning())) await this.start(signal);
    return this.state();
  }

  /**
   * An empty data directory and a run directory, both 0700 and the server's OS user's: what a
   * half-made earlier attempt left is thrown away (initdb and the copy both want an empty directory).
   */
  private emptyDirs(): ReturnType<typeof serverOsUser> {
    const user = serverOsUser();
    rmSync(this.dataDir, { recursive: true, force: true });
    mkdirSync(this.root, { recursive: true });
    for (const dir of [this.dataDir, this.runDir]) {
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o700);
      if (user) chownSync(dir, user.uid, user.gid);
    }
    return user;
  }

  async init(wanted: ClusterState, signal?: AbortSignal): Promise<void> {
    const user = this.emptyDirs();
    const password = randomBytes(24).toString('base64url');
    const pwfile = join(this.runDir, 'initdb.pw');
    writeFileSync(pwfile, password + '\n', { mode: 0o600 });
    if (user) chownSync(pwfile, user.uid, user.gid);
    try {
      await run(
        join(this.pgBin, 'initdb'),
        [
          '-D',
          this.dataDir,
          '-U',
          'postgres',
          '--pwfile',
          pwfile,
          '-A',
          'scram-sha-256',
          '-E',
          'UTF8',
          '--locale=C.UTF-8',
          ...(wanted.disposable ? ['--no-sync'] : []),
        ],
        { asUser: user ?? undefined, cwd: this.root, signal },
      );
    } finally {
      rmSync(pwfile, { force: true });
    }
    // pg_rewind's crash recovery of a node that died runs a single-user server, which sees none of the
    // command-line settings below: without this line it records wal_log_hints=off in pg_control and
    // pg_rewind then refuses the node. The same on every node, so pg_rewind copying it is harmless.
    if (!wanted.disposable) appendFileSync(join(this.dataDir, 'postgresql.conf'), '\nwal_log_hints = on\n');
    writeFileSync(this.pgpassFile, passfileLine(wanted.port, password), { mode: 0o600 });
    this.writeState(wanted);
  }

  /**
   * A disposable cluster made by copying an initialised, stopped one (a template) instead of running
   * initdb: a copy takes a fraction of initdb's time and CPU. The copy keeps the template's password
   * until ownPassword() gives it one of its own, once started. `background` copies at the lowest CPU
   * priority (nice 19), for a copy nobody waits on that should not slow anything that is.
   */
  async initFromCopy(
    template: LocalCluster,
    wanted: ClusterState,
    signal?: AbortSignal,
    options: { background?: boolean } = {},
  ): Promise<void> {
    if (!template.isInitialized()) throw new Error(`template cluster ${template.root} is not initialised`);
    const user = this.emptyDirs();
    const copy = ['cp', '-a', `${template.dataDir}/.`, this.dataDir];
    const [command, ...args] = options.background ? ['nice', '-n', '19', ...copy] : copy;
    await run(command!, args, { asUser: user ?? undefined, cwd: this.root, signal });
    const password = passwordOfPassfileLine(readFileSync(template.pgpassFile, 'utf8'));
    writeFileSync(this.pgpassFile, passfileLine(wanted.port, password), { mode: 0o600 });
    this.writeState(wanted);
  }

  /**
   * Moves a stopped, copied cluster made elsewhere (a spare) to this root and gives it this state.
   * False when there was none to take (another caller took it first): the rename is the claim.
   */
  adopt(prepared: LocalCluster, wanted: ClusterState): boolean {
    mkdirSync(dirname(this.root), { recursive: true });
    try {
      renameSync(prepared.root, this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    const password = passwordOfPassfileLine(readFileSync(this.pgpassFile, 'utf8'));
    writeFileSync(this.pgpassFile, passfileLine(wanted.port, password), { mode: 0o600 });
    this.writeState(wanted);
    return true;
  }

  /** Replaces the password a copied cluster shares with its template by a fresh one (running server). */
  async ownPassword(): Promise<void> {
    const password = randomBytes(24).toString('base64url'); // no quote can occur in it
    await withClient(this.connection('postgres'), (client) =>
      client.query(`alter role postgres password '${password}'`),
    );
    writeFileSync(this.pgpassFile, passfileLine(this.state().port, password), { mode: 0o600 });
  }

  async start(signal?: AbortSignal): Promise<void> {
    const { port, disposable, replication } = this.state();
    // Ports and settings go on the command line, never into the data directory's config:
    // pg_rewind copies postgresql.conf from its source, which would carry another node's port.
    const settings = [
      `-p ${port}`,
      `-k ${this.runDir}`,
      '-c listen_addresses=127.0.0.1',
      // A scratch instance holds a throwaway copy for one drill: no durability, no WAL beyond the
      // minimum (so pg_restore's bulk loads skip it), nothing to replicate.
      ...(disposable
        ? [
            '-c fsync=off',
            '-c synchronous_commit=off',
            '-c full_page_writes=off',
            '-c wal_level=minimal',
            '-c max_wal_senders=0',
            '-c wal_init_zero=off',
          ]
        : // wal_log_hints lets pg_rewind turn a former primary into a standby without a full copy.
          // wal_keep_size keeps the WAL pg_rewind reads back to the last common checkpoint.
          [
            '-c wal_level=replica',
            '-c max_wal_senders=10',
            '-c max_replication_slots=10',
            '-c wal_log_hints=on',
            '-c hot_standby=on',
            '-c wal_keep_size=256MB',
          ]),
      ...(replication
        ? [
            // No secret here (argv is visible to every user): the password comes from a passfile.
            // pg_ctl hands these to a shell: double quotes keep the conninfo one argument.
            `-c "primary_conninfo=host=127.0.0.1 port=${replication.primaryPort} user=postgres passfile=${this.replicationPassfile} application_name=${replication.applicationName}"`,
            `-c primary_slot_name=${replication.slot}`,
          ]
        : []),
    ];
    // A fenced former primary never comes back writable, whoever starts it: in recovery.
    if (this.isFenced()) this.holdInRecovery();
    this.clearZombieLocks();
    try {
      await run(
        join(this.pgBin, 'pg_ctl'),
        [
          '-D',
          this.dataDir,
          '-l',
          join(this.runDir, 'postgres.log'),
          '-w',
          '-t',
          '60',
          '-o',
          settings.join(' '),
          'start',
        ],
        { asUser: serverOsUser() ?? undefined, cwd: this.root, signal },
      );
    } catch (err) {
      throw new Error(`could not start PostgreSQL in ${this.dataDir} on port ${port}: ${this.logTail(err)}`);
    }
  }

  /**
   * Removes the lock files of a killed postmaster that is still a zombie. PostgreSQL clears the lock
   * files of a dead postmaster by itself, but a zombie's pid still answers kill(pid, 0): the server
   * (and pg_rewind's single-user recovery) then refuses to start, "Is another postmaster (PID n)
   * running", until the zombie's parent reaps it, which a container's PID 1 may never do. A live
   * process's locks are left alone; so is the shared-memory interlock, which still guards against
   * the killed postmaster's backends if any are left.
   */
  clearZombieLocks(): void {
    const locks = [join(this.dataDir, 'postmaster.pid')];
    if (existsSync(this.runDir))
      locks.push(
        ...readdirSync(this.runDir)
          .filter((f) => /^\.s\.PGSQL\.\d+\.lock$/.test(f))
          .map((f) => join(this.runDir, f)),
      );
    for (const lock of locks) {
      if (!postmasterIsZombie(lock)) continue;
      rmSync(lock, { force: true });
      // The socket a socket lock guards: a new server would fail to bind it.
      if (lock.endsWith('.lock') && lock.startsWith(this.runDir))
        rmSync(lock.slice(0, -'.lock'.length), { force: true });
    }
  }

  async isRunning(): Promise<boolean> {
    if (!existsSync(join(this.dataDir, 'postmaster.pid'))) return false;
    // A killed postmaster stays a zombie until its parent (often PID 1) reaps it, and pg_ctl counts a
    // zombie as running: a fence would then fail "server does not shut down" until the reaping.
    if (postmasterIsZombie(join(this.dataDir, 'postmaster.pid'))) return false;
    try {
      await run(join(this.pgBin, 'pg_ctl'), ['-D', this.dataDir, 'status'], {
        asUser: serverOsUser() ?? undefined,
        cwd: this.root,
      });
      return true;
    } catch (err) {
      if (err instanceof CommandFailed && err.exitCode === 3) return false;
      throw err;
    }
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!(await this.isRunning())) return;
    // pg_ctl sends the signal; the wait is ours: pg_ctl -w looks every 100 ms, this every 10 ms, by
    // the same test (the lock file gone, or its process).
    await run(join(this.pgBin, 'pg_ctl'), ['-D', this.dataDir, '-m', mode, '-W', 'stop'], {
      asUser: serverOsUser() ?? undefined,
      cwd: this.root,
    });
    const lockFile = join(this.dataDir, 'postmaster.pid');
    const deadline = Date.now() + 60_000;
    while (postmasterRunning(lockFile)) {
      if (Date.now() > deadline)
        throw new Error(`PostgreSQL in ${this.dataDir} did not stop within 60 s of a ${mode} shutdown`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /**
   * Stops the server at once and moves its directory into `trashDir`: one rename, after which its
   * name is free and nothing can start it again; the caller deletes it when nobody is waiting. The
   * directory it was moved to, under a name that starts with this process's pid; null when there was
   * no cluster.
   */
  async discard(trashDir: string): Promise<string | null> {
    if (!existsSync(this.root)) return null;
    if (existsSync(this.dataDir)) await this.stop('immediate');
    mkdirSync(trashDir, { recursive: true });
    const moved = join(trashDir, `${process.pid}-${randomBytes(4).toString('hex')}`);
    renameSync(this.root, moved);
    return moved;
  }

  /** Stops the server and deletes everything under the root. Safe to repeat. */
  async destroy(): Promise<void> {
    if (existsSync(this.dataDir)) await this.stop('immediate');
    rmSync(this.root, { recursive: true, force: true });
  }

  /** Connection details, password included: for activity code only, never for a workflow. */
  connection(database: string): PgConnection {
    const password = passwordOfPassfileLine(readFileSync(this.pgpassFile, 'utf8'));
    return {
      host: '127.0.0.1',
      port: this.state().port,
      user: 'postgres',
      password,
      database,
      passfile: this.pgpassFile,
    };
  }

  private logTail(err: unknown): string {
    const log = join(this.runDir, 'postgres.log');
    const tail = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
    return `${(err as Error).message}${tail ? ` | server log: ${tail}` : ''}`;
  }
}

/** Whether the lock file names a live (not zombie) process: pg_ctl's own test of a stopped server. */
function postmasterRunning(lockFile: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(lockFile, 'utf8').split('\n')[0]);
  } catch {
    return false; // no lock file: stopped
  }
  if (!Number.isInteger(pid) || pid <= 0) return true; // being written: not stopped yet
  return !postmasterIsZombie(lockFile) && processAlive(pid);
}

/** Whether the lock file's process is dead but not yet reaped (Linux /proc; elsewhere: not known, false). */
export function postmasterIsZombie(lockFile: string): boolean {
  try {
    const pid = Number(readFileSync(lockFile, 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return false;
    // /proc/<pid>/stat: "pid (comm) state ...": the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}
