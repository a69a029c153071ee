// Did a former primary take writes its successor never saw? Before a former primary is rewound or
// rebuilt as a standby, its WAL is compared with the point where the new primary's timeline forked
// from it: every transaction it committed past that point exists nowhere else, and a rewind would
// discard it. The answer comes from the node's own WAL (pg_waldump), read while it is stopped.
import { join } from 'node:path';
import type { LocalCluster } from './cluster';
import { parseLsn } from './lsn';
import { CommandFailed, run, serverOsUser } from './process';
import { withClient, type PgConnection } from './sql';

export interface Divergence {
  /** The former primary's timeline, and where the new primary's history left it (null: same timeline, no fork). */
  timeline: number;
  forkLsn: string | null;
  /** Whether any WAL record at all follows the fork on the former primary (false: it can follow without pg_rewind). */
  walAfterFork: boolean;
  /** pg_controldata says the node was shut down cleanly (not killed). */
  cleanlyStopped: boolean;
  /** Transactions the former primary committed after the fork, oldest first (at most `LISTED`). */
  commits: Array<{ xid: number; lsn: string; at: string | null }>;
  /** How many there are in all. */
  commitCount: number;
  /** Set when the WAL could not be read to the end: the count above may be short. */
  unreadable: string | null;
}

/** How many divergent transactions are listed by name in a report; the count is always whole. */
export const LISTED = 20;

/** Whether rebuilding the node would throw writes away (or cannot be shown not to). */
export function discardsWrites(d: Divergence): boolean {
  return d.commitCount > 0 || d.unreadable !== null;
}

/** One line for an error or a report: the WAL range and the transactions. */
export function describeDivergence(node: string, d: Divergence): string {
  if (d.unreadable !== null && d.commitCount === 0) {
    return `${node}'s WAL after the fork at ${d.forkLsn} (timeline ${d.timeline}) could not be read (${d.unreadable}), so it cannot be shown to hold no writes`;
  }
  const last = d.commits.at(-1);
  const listed = d.commits.map((c) => `xid ${c.xid}${c.at ? ` at ${c.at}` : ''}`).join(', ');
  return (
    `${node} committed ${d.commitCount} transaction${d.commitCount === 1 ? '' : 's'} after the fork at ${d.forkLsn} on timeline ${d.timeline} ` +
    `(WAL ${d.forkLsn}..${last?.lsn ?? '?'}${d.unreadable ? `; the rest could not be read: ${d.unreadable}` : ''}): ${listed}${d.commitCount > d.commits.length ? ', ...' : ''}`
  );
}

/**
 * Compares a stopped former primary with the new primary it is to follow. `primary` must be a
 * connection that may read the new primary's pg_wal (the admin login of a cluster Lifeboat runs).
 */
export async function divergenceFrom(node: LocalCluster, primary: PgConnection): Promise<Divergence> {
  const control = await node.controlData();
  const { timeline } = control;
  const cleanlyStopped = /^shut down/.test(control.state);
  const forkLsn = await forkPointOf(primary, timeline);
  if (forkLsn === null)
    return {
      timeline,
      forkLsn: null,
      walAfterFork: false,
      cleanlyStopped,
      commits: [],
      commitCount: 0,
      unreadable: null,
    };
  const wal = join(node.dataDir, 'pg_wal');
  const waldump = (extra: string[]) =>
    walRecords(
      join(node.pgBinDir, 'pg_waldump'),
      ['--path', wal, '--timeline', String(timeline), '--start', forkLsn, ...extra],
      node.root,
    );
  const any = await waldump(['--limit', '1']);
  if (any.records.length === 0 && any.unreadable === null)
    return { timeline, forkLsn, walAfterFork: false, cleanlyStopped, commits: [], commitCount: 0, unreadable: null };
  const tx = await waldump(['--rmgr', 'Transaction']);
  const commits = tx.records
    .filter((r) => /^(COMMIT|PREPARE)\b/.test(r.desc))
    .map((r) => ({
      xid: r.xid,
      lsn: r.lsn,
      at: /^COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+)/.exec(r.desc)?.[1] ?? null,
    }));
  return {
    timeline,
    forkLsn,
    walAfterFork: true,
    cleanlyStopped,
    commits: commits.slice(0, LISTED),
    commitCount: commits.length,
    unreadable: tx.unreadable,
  };
}

/**
 * Where the new primary's history left timeline `timeline` (null when the new primary is still on
 * it: there was no fork). A timeline that is not in its history at all forked elsewhere: there is no
 * common point to compare at, so the node is treated as divergent from its very first record.
 */
async function forkPointOf(primary: PgConnection, timeline: number): Promise<string | null> {
  return withClient(primary, async (c) => {
    // A promoted server writes its new timeline into pg_control at its first checkpoint.
    await c.query('checkpoint');
    const current = (await c.query<{ tli: number }>('select timeline_id as tli from pg_control_checkpoint()')).rows[0]!
      .tli;
    if (current === timeline) return null;
    if (current < timeline)
      throw new Error(
        `the node is on timeline ${timeline}, ahead of the new primary's ${current}: it did not fork from it`,
      );
    const file = `pg_wal/${current.toString(16).toUpperCase().padStart(8, '0')}.history`;
    const history = (await c.query<{ text: string }>('select pg_read_file($1) as text', [file])).rows[0]!.text;
    for (const line of history.split('\n')) {
      const [parent, switchpoint] = line.trim().split(/\s+/);
      if (Number(parent) === timeline && switchpoint) return switchpoint;
    }
    throw new Error(
      `timeline ${timeline} is not in the new primary's history (${file}): the node forked from another branch`,
    );
  });
}

interface WalRecord {
  rmgr: string;
  xid: number;
  lsn: string;
  desc: string;
}

/**
 * Runs pg_waldump and parses what it printed. pg_waldump ends with an error at the end of valid WAL
 * (a torn or recycled page, the next segment missing): those are the normal end of a node's WAL.
 * Any other failure is reported as `unreadable`.
 */
async function walRecords(
  bin: string,
  args: string[],
  cwd: string,
): Promise<{ records: WalRecord[]; unreadable: string | null }> {
  const chunks: Buffer[] = [];
  let unreadable: string | null = null;
  try {
    await run(bin, args, {
      asUser: serverOsUser() ?? undefined,
      cwd,
      env: { PATH: process.env.PATH, LC_ALL: 'C' },
      onStdout: (chunk) => chunks.push(chunk),
    });
  } catch (err) {
    if (!(err instanceof CommandFailed)) throw err;
    if (!END_OF_WAL.some((re) => re.test(err.stderr))) unreadable = err.stderr.trim().split('\n').at(-1) ?? err.message;
  }
  const stdout = Buffer.concat(chunks).toString();
  const records: WalRecord[] = [];
  for (const line of stdout.split('\n')) {
    const m =
      /^rmgr: (\S+)\s+len \(rec\/tot\):\s*\d+\/\s*\d+, tx:\s*(\d+), lsn: ([0-9A-F]+\/[0-9A-F]+), prev [0-9A-F/]+, desc: (.*)$/.exec(
        line,
      );
    if (m) records.push({ rmgr: m[1]!, xid: Number(m[2]), lsn: m[3]!, desc: m[4]! });
  }
  records.sort((a, b) => (parseLsn(a.lsn) < parseLsn(b.lsn) ? -1 : 1));
  return { records, unreadable };
}

const END_OF_WAL = [
  /could not find a valid record after/,
  /invalid record length at/,
  /invalid magic number/,
  /record with incorrect prev-link/,
  /unexpected pageaddr/,
  /contrecord is requested by/,
  /invalid resource manager ID/,
  /incorrect resource manager data checksum/,
  /could not find file "[0-9A-F]{24}"/,
  /there is no contrecord flag/,
];
