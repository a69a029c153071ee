// Where the PostgreSQL server and client tools live.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const DEBIAN_ROOT = '/usr/lib/postgresql';

/**
 * The bin directory holding initdb, pg_ctl, pg_dump and pg_restore: $LIFEBOAT_PG_BIN when set,
 * else the newest Debian install. Throws a message that says what to install when there is none.
 */
export function findPgBin(explicit?: string): string {
  if (explicit) {
    if (!existsSync(join(explicit, 'initdb'))) {
      throw new Error(`LIFEBOAT_PG_BIN=${explicit} has no initdb in it; expected a PostgreSQL 15+ bin directory`);
    }
    return explicit;
  }
  const versions = existsSync(DEBIAN_ROOT)
    ? readdirSync(DEBIAN_ROOT)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(DEBIAN_ROOT, v, 'bin', 'initdb')))
        .map(Number)
        .sort((a, b) => b - a)
    : [];
  const newest = versions[0];
  if (newest === undefined) {
    throw new Error(
      `No PostgreSQL server binaries found under ${DEBIAN_ROOT}/<version>/bin. ` +
        'Install them (Debian: apt-get install postgresql) or set LIFEBOAT_PG_BIN to a PostgreSQL 15+ bin directory.',
    );
  }
  if (newest < 15) throw new Error(`PostgreSQL ${newest} found; Lifeboat needs 15 or newer`);
  return join(DEBIAN_ROOT, String(newest), 'bin');
}
