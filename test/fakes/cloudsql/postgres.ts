// The data plane behind a fake Cloud SQL instance: a real local PostgreSQL cluster (the project's own
// LocalCluster), whose `postgres` role has the instance's root password, and backups that are real
// pg_dump files plus the roles (a Cloud SQL backup carries the instance's users with it). A read
// replica is a real streaming standby of its primary's cluster (activities/pg/replication.ts: a
// physical slot on the primary, pg_basebackup, later pg_rewind when a former primary follows).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from 'pg';
import { LocalCluster } from '../../../activities/pg/cluster';
import { freePort } from '../../../activities/pg/ports';
import { run } from '../../../activities/pg/process';
import { fence, makeStandby, promote, slotName, unfence, waitForReplay } from '../../../activities/pg/replication';
import { libpqEnv, quoteIdent, withClient, type PgConnection } from '../../../activities/pg/sql';

/** One dumped database of a backup. */
export interface DumpedDatabase {
  name: string;
  owner: string;
  file: string;
}

/** A non-system role as it was at backup time; `password` is the stored verifier, never plain text. */
export interface DumpedRole {
  name: string;
  attributes: string[];
  connectionLimit: number;
  password: string | null;
}

export interface DumpedInstance {
  databases: DumpedDatabase[];
  roles: DumpedRole[];
  /** The `postgres` role's password in plain text: the fake needs it to reach a restored instance itself. */
  postgresPassword: string;
}

/** Where the fake's own sessions go: template1 is there on every cluster and never dumped or restored. */
const ADMIN_DB = 'template1';

export class InstanceServer {
  private constructor(
    private readonly cluster: LocalCluster,
    private readonly pgBin: string,
    private password: string,
  ) {}

  /**
   * initdb + start on a free port, then the root password. Without a root password the random one
   * LocalCluster made stays: nobody but the fake gets in, as on Cloud SQL before a password is set.
   */
  static async create(
    root: string,
    pgBin: string,
    name: string,
    rootPassword: string | undefined,
  ): Promise<InstanceServer> {
    const cluster = new LocalCluster(root, pgBin);
    // Not disposable: a Cloud SQL instance can get a read replica at any time without a restart, so
    // every instance runs with replica-level WAL and wal_log_hints (pg_rewind). It costs no time here.
    await cluster.ensureRunning({ name, port: await freePort(), disposable: false });
    const server = new InstanceServer(cluster, pgBin, cluster.connection(ADMIN_DB).password);
    if (rootPassword) await server.setPostgresPassword(rootPassword);
    return server;
  }

  /**
   * A new cluster that streams from `primary` through a physical slot named after `applicationName`.
   * Its postgres password is the primary's: it is a physical copy. A failed attempt leaves neither
   * the cluster nor the slot behind.
   */
  static async createReplica(
    root: string,
    pgBin: string,
    name: string,
    primary: InstanceServer,
    applicationName: string,
  ): Promise<InstanceServer> {
    if (/[:\\]/.test(primary.password)) {
      // activities/pg writes the replication passfile unescaped and reads pgpass back unescaped
      // (LocalCluster.connection), so such a password would break streaming, fence and promote.
      throw new Error(
        `the fake cannot replicate ${name}'s primary: its postgres password holds ':' or '\\', which the replication code's passfiles do not escape`,
      );
    }
    const cluster = new LocalCluster(root, pgBin);
    try {
      await makeStandby(cluster, primary.cluster, { name, port: await freePort(), applicationName, pgBin });
    } catch (err) {
      await cluster.destroy().catch(() => undefined);
      await primary.dropReplicationSlot(applicationName).catch(() => undefined);
      throw err;
    }
    return new InstanceServer(cluster, pgBin, primary.password);
  }

  get port(): number {
    return this.cluster.state().port;
  }

  /** LocalCluster's pgpass keeps the password too, so its own connection() and libpq tools still work. */
  connection(database: string): PgConnection {
    return { ...this.cluster.connection(database), password: this.password };
  }

  async setPostgresPassword(password: string): Promise<void> {
    await this.admin((c) => c.query(`alter role postgres with password ${c.escapeLiteral(password)}`));
    this.password = password;
    writeFileSync(this.cluster.pgpassFile, `127.0.0.1:${this.port}:*:postgres:${pgpassEscape(password)}\n`, {
      mode: 0o600,
    });
  }

  async majorVersion(): Promise<number> {
    const { rows } = await this.admin((c) =>
      c.query<{ n: string }>("select current_setting('server_version_num') as n"),
    );
    return Math.floor(Number(rows[0]!.n) / 10000);
  }

  /** pg_dump --format=custom of every database one can connect to (templates excepted), into `dir`. */
  async dump(dir: string): Promise<DumpedInstance> {
    mkdirSync(dir, { recursive: true });
    const { databases, roles } = await this.admin(async (c) => ({
      databases: (
        await c.query<{ name: string; owner: string }>(
          `select datname as name, pg_get_userbyid(datdba) as owner from pg_database
            where datallowconn and not datistemplate order by datname`,
        )
      ).rows,
      roles: (
        await c.query<DumpedRole>(
          `select rolname as name, rolpassword as password, rolconnlimit as "connectionLimit",
                  array[case when rolsuper then 'superuser' else 'nosuperuser' end,
                        case when rolinherit then 'inherit' else 'noinherit' end,
                        case when rolcreaterole then 'createrole' else 'nocreaterole' end,
                        case when rolcreatedb then 'createdb' else 'nocreatedb' end,
                        case when rolcanlogin then 'login' else 'nologin' end,
                        case when rolreplication then 'replication' else 'noreplication' end,
                        case when rolbypassrls then 'bypassrls' else 'nobypassrls' end] as attributes
             from pg_authid where rolname !~ '^pg_' and rolname <> 'postgres' order by rolname`,
        )
      ).rows,
    }));
    const dumped: DumpedDatabase[] = [];
    for (const [index, db] of databases.entries()) {
      // By position, not by name: a database name may hold any character.
      const file = join(dir, `${index}.pgdump`);
      await run(join(this.pgBin, 'pg_dump'), ['--format=custom', '--file', file], {
        env: libpqEnv(this.connection(db.name)),
      });
      dumped.push({ ...db, file });
    }
    return { databases: dumped, roles, postgresPassword: this.password };
  }

  /**
   * Replaces everything on this instance with the backup's content, as a Cloud SQL restore does:
   * roles first (so ownership restores), then every database dropped (sessions and all) and
   * restored; databases the backup does not have are dropped. `failMidway` stops after the first
   * database is dropped and recreated empty: an interrupted restore leaves such half state.
   */
  async restore(backup: DumpedInstance, failMidway?: string): Promise<void> {
    await this.admin(async (c) => {
      for (const role of backup.roles) await restoreRole(c, role);
    });
    const existing = await this.admin(async (c) =>
      (
        await c.query<{ name: string }>(
          'select datname as name from pg_database where datallowconn and not datistemplate',
        )
      ).rows.map((r) => r.name),
    );
    for (const name of existing.filter((n) => !backup.databases.some((d) => d.name === n))) {
      await this.admin((c) => c.query(`drop database ${quoteIdent(name)} with (force)`));
    }
    for (const db of backup.databases) {
      await this.admin(async (c) => {
        await c.query(`drop database if exists ${quoteIdent(db.name)} with (force)`);
        await c.query(`create database ${quoteIdent(db.name)} with owner ${quoteIdent(db.owner)} template template0`);
      });
      if (failMidway) throw new Error(failMidway);
      await run(join(this.pgBin, 'pg_restore'), ['--exit-on-error', '--dbname', conninfo(db.name), db.file], {
        env: libpqEnv(this.connection(db.name)),
      });
    }
    if (failMidway) throw new Error(failMidway);
    // Last: until here the fake's own sessions still used the old password.
    await this.setPostgresPassword(backup.postgresPassword);
  }

  async destroy(): Promise<void> {
    await this.cluster.destroy();
  }

  // ---- replication: thin wrappers over activities/pg/replication.ts, the code Lifeboat itself runs ----

  async inRecovery(): Promise<boolean> {
    return this.admin(async (c) => (await c.query<{ rec: boolean }>('select pg_is_in_recovery() as rec')).rows[0]!.rec);
  }

  /** Read-only for every new session, client sessions ended; returns the WAL position after the last write. */
  async fence(): Promise<string> {
    const { confirmed, how, finalLsn } = await fence(this.cluster, 'planned');
    if (!confirmed || !finalLsn) throw new Error(`could not make ${this.cluster.root} read-only (${how})`);
    return finalLsn;
  }

  async unfence(): Promise<void> {
    await unfence(this.cluster);
  }

  /** Until this standby has replayed `lsn`; gives up when `signal` aborts. */
  async waitForReplay(lsn: string, signal: AbortSignal): Promise<void> {
    await waitForReplay(this.cluster, lsn, () => undefined, signal);
  }

  async promote(): Promise<void> {
    await promote(this.cluster);
  }

  /** Turns this (former primary) into a streaming standby of `primary`, on its own port: pg_rewind, else a fresh copy. */
  async follow(primary: InstanceServer, name: string, applicationName: string): Promise<void> {
    await makeStandby(this.cluster, primary.cluster, { name, port: this.port, applicationName, pgBin: this.pgBin });
    this.password = primary.password;
  }

  /**
   * Drops the slot a standby that is gone (deleted, promoted) streamed through, so this server stops
   * keeping WAL for it. Its WAL sender may linger a moment after the standby left: it is ended, and
   * the drop retried until the slot is free. The session lifts a fence's read-only default for itself.
   */
  async dropReplicationSlot(applicationName: string): Promise<void> {
    const slot = slotName(applicationName);
    await this.admin(async (c) => {
      await c.query('set default_transaction_read_only = off');
      for (let attempt = 0; ; attempt++) {
        await c.query(
          'select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1 and active_pid is not null',
          [slot],
        );
        try {
          await c.query('select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1', [
            slot,
          ]);
          return;
        } catch (err) {
          // "replication slot ... is active for PID n": the sender has not exited yet.
          if (attempt >= 50) throw err;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    });
  }

  /** Activation policy NEVER: the server shuts down (a clean, fast shutdown) and stays down. */
  async stop(): Promise<void> {
    if (await this.cluster.isRunning()) await this.cluster.stop('fast');
  }

  /** Activation policy ALWAYS again: the server starts on its own port. */
  async start(): Promise<void> {
    if (!(await this.cluster.isRunning())) await this.cluster.start();
  }

  /** What an HA failover does to the server: it goes down and comes back (sessions are ended). */
  async restart(): Promise<void> {
    await this.cluster.stop('fast');
    await this.cluster.start();
  }

  private admin<T>(use: (client: Client) => Promise<T>): Promise<T> {
    return withClient(this.connection(ADMIN_DB), use);
  }
}

/** Creates the role if it is missing, then gives it the backup's attributes and password verifier. */
async function restoreRole(c: Client, role: DumpedRole): Promise<void> {
  const exists = await c.query('select 1 from pg_roles where rolname = $1', [role.name]);
  if (exists.rowCount === 0) await c.query(`create role ${quoteIdent(role.name)}`);
  const password = role.password === null ? 'password null' : `password ${c.escapeLiteral(role.password)}`;
  await c.query(
    `alter role ${quoteIdent(role.name)} with ${role.attributes.join(' ')} connection limit ${role.connectionLimit} ${password}`,
  );
}

/** A libpq passfile field: backslash and colon are escaped. */
function pgpassEscape(value: string): string {
  return value.replace(/[\\:]/g, (ch) => `\\${ch}`);
}

/** `--dbname` is parsed as a conninfo string whenever it holds '=': always pass one, quoted. */
function conninfo(database: string): string {
  return `dbname='${database.replace(/[\\']/g, (ch) => `\\${ch}`)}'`;
}
