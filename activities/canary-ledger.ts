// The canary ledger: every canary write the primary acknowledged, appended and fsynced as it is
// acknowledged. It lives outside the database, so the newest acknowledged canary is still known
// when the primary is gone: that is what an unplanned failover's RPO is measured against.
import { closeSync, existsSync, fchmodSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Canary } from '../workflows/types';
import { privateDir, PRIVATE_FILE } from './private-files';

export interface LedgerEntry extends Canary {
  database: string;
  /** The topology epoch the write was made under. */
  epoch: number;
}

export class CanaryLedger {
  constructor(private readonly home: string) {}

  path(database: string): string {
    if (!/^[A-Za-z_][A-Za-z0-9_$-]*$/.test(database))
      throw new Error(`database name ${JSON.stringify(database)} is not a plain name`);
    return join(this.home, 'canary', `${database}.jsonl`);
  }

  append(entry: LedgerEntry): void {
    const file = this.path(entry.database);
    privateDir(join(this.home, 'canary'));
    // One write(2) of one line in O_APPEND mode: appends from concurrent writers never interleave.
    const fd = openSync(file, 'a', PRIVATE_FILE);
    try {
      fchmodSync(fd, PRIVATE_FILE); // a ledger made before the ledger was private
      writeSync(fd, JSON.stringify(entry) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  entries(database: string): LedgerEntry[] {
    const file = this.path(database);
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.trim())
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as LedgerEntry];
        } catch {
          return []; // a torn last line from a crash mid-append: it was never acknowledged to anyone
        }
      });
  }

  /** The newest canary acknowledged at or before `at` (ISO time), or null. */
  newestBefore(database: string, at: string): LedgerEntry | null {
    let newest: LedgerEntry | null = null;
    for (const e of this.entries(database)) {
      if (
        e.writtenAt <= at &&
        (!newest || e.writtenAt > newest.writtenAt || (e.writtenAt === newest.writtenAt && e.id > newest.id))
      )
        newest = e;
    }
    return newest;
  }
}
