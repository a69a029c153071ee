// Benchmark: what the v2 content digests (activities/pg/digest.ts) cost over the ones they replace,
// on the demo database, in the same run.
//
//   npm run bench:digest -- [--scale N] [--rounds N] [--keep]
//
//   --scale N    demo data scale (scripts/dev/seed.ts; 1 is about 60,000 rows; default 10)
//   --rounds N   timed rounds (default 5); each reads the whole database once the old way and once
//                the new way, the order reversed every other round, after one untimed warm-up round
//   --keep       leave the throwaway server's directory in place (it is deleted by default)
//
// Needs a build (npm run build) and PostgreSQL's server binaries (as the dev stack does); no dev
// stack, no Temporal: it makes its own throwaway server (initdb under a temporary directory, a free
// port), seeds the demo schema and data at the scale asked, and calls the digest code directly, as a
// manifest is taken (two connections in one repeatable-read snapshot, as logical-dump.ts reads):
//   before v2   each table's hash_record_extended, md5-text where a type has no hash function (the
//               code before v2: activities/pg/sql.ts tableStats without an algorithm)
//   v2          allTableStats: columnPlans, then columns-v2 per table (pinned settings, row security
//               off, the columns whose type does not hash exactly hashed by their text form), then,
//               as a manifest now also records them, the sequences and the large objects
// It prints each round and the median, and the ratio v2 / before (the issue asks for at most 1.10).
// Figures, not asserts: it exits 1 only when something fails.
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from 'pg';
import { findPgBin } from '../../activities/pg/binaries';
import { LocalCluster } from '../../activities/pg/cluster';
import { allTableStats, largeObjectStats, sequenceStats, tableStats } from '../../activities/pg/digest';
import { listTables, serverVersion, withClient, type PgConnection } from '../../activities/pg/sql';
import { seedDemo } from '../dev/seed';
import {
  freePort,
  machineLines,
  median,
  optionsFrom,
  positiveOption,
  runMain,
  say,
  summaryRows,
  table,
} from './common';

const DATABASE = 'bench_digest';
const USAGE = 'npm run bench:digest -- [--scale N] [--rounds N] [--keep]';

const DEFAULTS = { scale: 10, rounds: 5, keep: false };
type Options = typeof DEFAULTS;

const parseOptions = (argv: string[]): Options =>
  optionsFrom(argv, DEFAULTS, (options) => ({
    '--scale': (value, flag) => (options.scale = positiveOption(flag, value(), false)),
    '--rounds': (value, flag) => (options.rounds = positiveOption(flag, value(), true)),
    '--keep': () => (options.keep = true),
  }));

/** Two connections in one repeatable-read snapshot, as dumpWithManifest reads; seconds taken by `read`. */
async function timed(
  conn: PgConnection,
  read: (clients: Client[], tables: string[]) => Promise<unknown>,
): Promise<number> {
  return withClient(conn, (first) =>
    withClient(conn, async (second) => {
      await first.query('begin isolation level repeatable read read only');
      const snapshot = (await first.query<{ id: string }>('select pg_export_snapshot() as id')).rows[0]!.id;
      await second.query('begin isolation level repeatable read read only');
      await second.query(`set transaction snapshot '${snapshot}'`);
      const tables = await listTables(first);
      const started = process.hrtime.bigint();
      await read([first, second], tables);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      for (const c of [first, second]) await c.query('commit');
      return seconds;
    }),
  );
}

/** The digests as taken before v2: hash_record_extended, md5-text for a table whose types have no hash function. */
async function beforeV2(clients: Client[], tables: string[]): Promise<void> {
  const queue = [...tables];
  await Promise.all(
    clients.map(async (client) => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        await client.query('savepoint lifeboat_stats');
        try {
          await tableStats(client, next, 'hash_record_extended');
          await client.query('release savepoint lifeboat_stats');
        } catch (err) {
          if ((err as { code?: string }).code !== '42883') throw err;
          await client.query('rollback to savepoint lifeboat_stats');
          await tableStats(client, next, 'md5-text');
        }
      }
    }),
  );
}

async function v2(clients: Client[], tables: string[]): Promise<void> {
  await allTableStats(clients, tables);
  await sequenceStats(clients[0]!);
  await largeObjectStats(clients[0]!);
}

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  const pgBin = findPgBin(process.env.LIFEBOAT_PG_BIN);
  const root = mkdtempSync(join(tmpdir(), 'lifeboat-bench-digest-'));
  chmodSync(root, 0o755); // the postgres OS user (when run as root) must reach the data directory
  const cluster = new LocalCluster(join(root, 'server'), pgBin);
  const loadBefore = loadavg();
  try {
    say(`initdb and start a throwaway server under ${root}`);
    await cluster.init({ name: 'bench-digest', port: await freePort(), disposable: true });
    await cluster.start();
    await withClient(cluster.connection('postgres'), (c) => c.query(`create database ${DATABASE}`));
    const conn = cluster.connection(DATABASE);
    const seeded = Date.now();
    await withClient(conn, (c) => seedDemo(c, options.scale));
    const { rows, bytes, version, algorithms } = await withClient(conn, async (c) => {
      const stats = await c.query<{ rows: string; bytes: string }>(
        `select (select sum(n_live_tup) from pg_stat_user_tables)::text as rows, pg_database_size(current_database())::text as bytes`,
      );
      await c.query('begin');
      const tables = await allTableStats([c], await listTables(c));
      await c.query('commit');
      const describe = (t: (typeof tables)[number]) =>
        'textColumns' in t ? `${t.table} (by text: ${t.textColumns?.join(', ') || 'none'})` : `${t.table} unreadable`;
      return { ...stats.rows[0]!, version: (await serverVersion(c)).version, algorithms: tables.map(describe) };
    });
    say(
      `seeded the demo data at scale ${options.scale}: ${rows} rows, ${(Number(bytes) / 2 ** 20).toFixed(1)} MiB in ${((Date.now() - seeded) / 1000).toFixed(1)}s`,
    );
    say(`columns-v2: ${algorithms.join('; ')}`);

    say('warm-up round (untimed)');
    await timed(conn, beforeV2);
    await timed(conn, v2);
    const runs: number[][] = [];
    for (let round = 0; round < options.rounds; round++) {
      const sides = round % 2 === 0 ? [beforeV2, v2] : [v2, beforeV2];
      const seconds = new Map<unknown, number>();
      for (const side of sides) seconds.set(side, await timed(conn, side));
      const [before, after] = [seconds.get(beforeV2)!, seconds.get(v2)!];
      say(`round ${round + 1}: before v2 ${before.toFixed(3)}s, v2 ${after.toFixed(3)}s`);
      runs.push([before, after, after / before]);
    }
    const out = summaryRows(runs, (label, [before, after, ratio]) => [
      label,
      before!.toFixed(3),
      after!.toFixed(3),
      ratio!.toFixed(3),
    ]);
    process.stdout.write(
      [
        `Digest cost on the demo database (scale ${options.scale}: ${rows} rows, ${(Number(bytes) / 2 ** 20).toFixed(1)} MiB)`,
        '',
        table(['round', 'before v2 (s)', 'v2 (s)', 'v2 / before'], out),
        '',
        `ratio of medians  ${(median(runs.map((r) => r[1]!)) / median(runs.map((r) => r[0]!))).toFixed(3)}  (the issue asks for at most 1.10)`,
        '',
        ...machineLines(version, pgBin, loadBefore),
        '',
      ].join('\n'),
    );
    return 0;
  } finally {
    await cluster.stop('immediate').catch(() => undefined);
    if (options.keep) say(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
}

runMain(main, USAGE);
