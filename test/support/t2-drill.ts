// What the drill and failover tests expect of the runbooks in more than one file.
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The steps of a drill that passed, in order: its DR copy in `drRegion`, the last step tears down `tearDown`. */
export function passedDrillSteps(drRegion: string, tearDown: unknown): unknown[] {
  return [
    'preflight',
    'canary write',
    'create scratch instance',
    'backup',
    'verify backup',
    `copy to ${drRegion}`,
    'verify copy',
    'restore',
    'verify data',
    tearDown,
  ];
}

/** A standby caught up with its primary: streaming, no lag, both at the same LSN. */
export const CAUGHT_UP_LAG = {
  streaming: true,
  lagBytes: 0,
  lagSeconds: 0,
  slotActive: true,
  primaryLsn: '0/1000000',
  replayLsn: '0/1000000',
};

/** A fresh directory for marker files, writable by anyone: the server runs programs as the postgres OS user. */
export function markerDirectory(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lifeboat-marker-'));
  chmodSync(dir, 0o777);
  return dir;
}

/**
 * SQL for a hostile table: function `fn` touches the file `marker` (a program the server runs) each
 * time it is evaluated, and table `table`'s CHECK constraint calls it, so loading rows as a superuser
 * runs the program.
 */
export function markerTableSql(fn: string, table: string, marker: string): string {
  return `
    create function ${fn}(v int) returns boolean language plpgsql as $f$
    begin
      copy (select 1) to program 'touch ${marker}; cat > /dev/null';
      return v is not null;
    end $f$;
    create table ${table} (id int primary key, v int check (${fn}(v)));`;
}
