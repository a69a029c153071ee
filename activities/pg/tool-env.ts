// The environment pg_dump and pg_restore run in against any server, local or managed. The password
// goes into a private passfile (never the command line or the environment, where `ps` and
// /proc/<pid>/environ would show it) and TLS is verified as the Node client verifies it.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { libpqEnv, type PgConnection } from './sql';

/** Debian's bundle of public roots, for managed servers whose certificate chains to one. */
const SYSTEM_ROOTS = '/etc/ssl/certs/ca-certificates.crt';

/** Runs `use` with a libpq environment for `conn`; the temporary files are removed afterwards. */
export async function withToolEnv<T>(conn: PgConnection, use: (env: NodeJS.ProcessEnv) => Promise<T>): Promise<T> {
  if (conn.passfile && !conn.ssl) return use(libpqEnv(conn));
  // The pid in the name lets a later worker remove what a killed one left (sweepToolEnvOrphans).
  const dir = mkdtempSync(join(tmpdir(), `lifeboat-libpq-${process.pid}-`));
  try {
    const passfile = join(dir, 'pgpass');
    writeFileSync(passfile, passfileEntry(conn), { mode: 0o600 });
    const env: NodeJS.ProcessEnv = { ...libpqEnv({ ...conn, passfile }) };
    if (conn.ssl) {
      let root = SYSTEM_ROOTS;
      if (conn.ssl.ca) {
        root = join(dir, 'root.crt');
        writeFileSync(root, conn.ssl.ca, { mode: 0o600 });
      } else if (!existsSync(SYSTEM_ROOTS)) {
        throw new Error(
          `TLS to ${conn.host}:${conn.port} needs a CA bundle and ${SYSTEM_ROOTS} is missing (install ca-certificates)`,
        );
      }
      env.PGSSLROOTCERT = root;
      // verify-ca trusts the CA alone where the certificate does not name the address (Cloud SQL).
      env.PGSSLMODE = conn.ssl.skipHostnameCheck ? 'verify-ca' : 'verify-full';
    }
    return await use(env);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Removes the passfile directories of worker processes that are gone (killed before their cleanup ran). */
export function sweepToolEnvOrphans(): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(tmpdir())) {
    const pid = /^lifeboat-libpq-(\d+)-/.exec(name)?.[1];
    if (pid && !processAlive(Number(pid))) {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}

/** Whether a process of this pid exists on this machine (EPERM: it does, and belongs to someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** One passfile line for exactly this host, port and user; `:` and `\\` escaped as libpq expects. */
export function passfileEntry(conn: Pick<PgConnection, 'host' | 'port' | 'user' | 'password'>): string {
  const esc = (v: string): string => v.replace(/[\\:]/g, (c) => `\\${c}`);
  return `${esc(conn.host)}:${conn.port}:*:${esc(conn.user)}:${esc(conn.password)}\n`;
}
