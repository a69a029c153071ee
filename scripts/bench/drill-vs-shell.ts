// Benchmark: what a full Lifeboat drill costs over the same proof done by hand in shell.
//
//   npm run bench -- [--size-mb N] [--runs N] [--warmup N] [--drop]
//
//   --size-mb N   size of the benchmark database, as pg_database_size, in MiB (default 100)
//   --runs N      rounds to time, each a drill and both baselines (default 1; 3 when the first round
//                 takes under a minute, since small sizes are noisy and cheap to repeat). Each run is
//                 printed, then the median (the headline) and the best (the cost without interference).
//   --warmup N    untimed rounds first (default 1): the first drill after `lifeboat dev up` restarted
//                 the worker runs in a cold process (code not yet optimised, the workflow bundle's
//                 first activation), which a long-running worker does not pay on each scheduled drill
//   --drop        drop the benchmark database at the end (it is kept by default: seeding a large
//                 one takes longer than the benchmark itself)
//
// Needs a build (npm run build) and the dev stack; it runs `lifeboat dev up` when the stack is down.
//
// It never touches the demo database: it seeds its own, bench_orders in local-a, with the demo
// schema and data (scripts/dev/seed.ts) at the scale that reaches the wanted size, and reuses it
// when it is within 15% of that size. The drill runs through the real product, as a user would
// (`lifeboat drill -f <plan> --json` in a child process); the baselines are scripts/bench/baseline.sh,
// pg_dump -> cp -> sha256sum -> createdb -> pg_restore -> a check -> dropdb, twice:
//   counts-only shell  the check is count(*) per table (--verify counts): less than the drill proves;
//   same-proof shell   each table's rows and content digest, read in the dump's snapshot on the source
//                      and again on the restored copy, compared (--verify checksums): the drill's proof.
// Each round runs the three in turn, the order reversed every other round, each from the same quiet
// state (no torn-down scratch instance being deleted or spare being copied in the background, both
// servers checkpointed, the kernel's dirty pages written back). The ratios are the drill's
// median over each baseline's; on a shared machine whose load changes from round to round, the
// median of each round's own ratio (a round's three sides run back to back) is printed
// beside them. The drill is timed twice: as a person runs it (the CLI process, start
// to exit) and as a schedule runs it (the workflow's own start to report, no CLI process).
// Figures, not asserts: it exits 1 only when a drill does not pass (or a baseline fails).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalCluster } from '../../activities/pg/cluster';
import { findPgBin } from '../../activities/pg/binaries';
import { dumpCompression } from '../../activities/portable/logical-dump';
import { quoteIdent, serverVersion, withClient } from '../../activities/pg/sql';
import { loadEnv, type LifeboatEnv } from '../../worker/env';
import { buildProviders } from '../../worker/main';
import type { RegionSpec, RunbookReport } from '../../workflows/types';
import { DEMO_REGIONS } from '../dev/stack';
import { seedDemo } from '../dev/seed';
import { scratchHousekeeping } from '../../test/support/scratch-housekeeping';
import { localPlanText } from '../../test/support/wf-local-plan';
import {
  announced,
  ensureStack,
  historyLengths,
  inAlternatingOrder,
  machineLines,
  median,
  MIB,
  parseFlags,
  parseScriptOutput,
  phaseTable,
  type Phases,
  positiveOption,
  runbookPhases,
  runMain,
  runRunbook,
  runScript,
  say,
  scriptPhases,
  type StepTime,
  summaryRows,
  table,
  UsageError,
} from './common';

const BENCH_DB = 'bench_orders';
/** Plan keys allow lowercase letters, digits and dashes only, so the key differs from the database. */
const PLAN_KEY = 'bench-orders';
const [PRIMARY_REGION, DR_REGION] = DEMO_REGIONS;
const SIZE_TOLERANCE = 0.15;
const SEED_TOLERANCE = 0.05;
const MIN_SCALE = 0.05;
const QUICK_ROUND_SECONDS = 60;

interface Options {
  sizeMb: number;
  /** null: decide from how long the first round takes. */
  runs: number | null;
  warmup: number;
  drop: boolean;
}

interface DrillRun {
  wallSeconds: number;
  report: RunbookReport;
}

/** What baseline.sh checks after the restore (its --verify). */
type Verify = 'counts' | 'checksums';

interface BaselineRun {
  wallSeconds: number;
  steps: StepTime[];
  dumpBytes: number;
  rows: Array<{ table: string; rows: number }>;
}

/** One round: the drill, the counts-only shell and the same-proof shell, on the same database. */
interface Round {
  drill: DrillRun;
  counts: BaselineRun;
  checksums: BaselineRun;
}

function parseOptions(argv: string[]): Options {
  const options: Options = { sizeMb: 100, runs: null, warmup: 1, drop: false };
  parseFlags(argv, {
    '--size-mb': (value, flag) => (options.sizeMb = positiveOption(flag, value(), false)),
    '--runs': (value, flag) => (options.runs = positiveOption(flag, value(), true)),
    '--warmup': (value) => {
      const rounds = value();
      if (!rounds || !/^\d+$/.test(rounds))
        throw new UsageError(`--warmup ${rounds ?? ''}: expected a whole number of rounds (0 for none)`);
      options.warmup = Number(rounds);
    },
    '--drop': () => (options.drop = true),
  });
  return options;
}

// ---------------------------------------------------------------------------------------------
// The benchmark database

async function databaseBytes(cluster: LocalCluster, database: string): Promise<number | null> {
  return withClient(cluster.connection('postgres'), async (client) => {
    const { rows } = await client.query<{ bytes: string | null }>(
      'select pg_database_size(datname) as bytes from pg_database where datname = $1',
      [database],
    );
    return rows[0]?.bytes ? Number(rows[0].bytes) : null;
  });
}

async function hasDemoSchema(cluster: LocalCluster): Promise<boolean> {
  return withClient(cluster.connection(BENCH_DB), async (client) => {
    const { rows } = await client.query<{ present: boolean }>(
      `select to_regclass('public.order_items') is not null as present`,
    );
    return rows[0]?.present === true;
  });
}

async function recreateDatabase(cluster: LocalCluster): Promise<void> {
  await withClient(cluster.connection('postgres'), async (client) => {
    await client.query(`drop database if exists ${quoteIdent(BENCH_DB)} with (force)`);
    await client.query(`create database ${quoteIdent(BENCH_DB)}`);
  });
}

/** Seeds a fresh bench database at `scale`; returns its size in bytes. */
async function seedAt(cluster: LocalCluster, scale: number): Promise<number> {
  await recreateDatabase(cluster);
  const started = Date.now();
  await withClient(cluster.connection(BENCH_DB), (client) => seedDemo(client, scale));
  const bytes = (await databaseBytes(cluster, BENCH_DB))!;
  say(
    `seeded ${BENCH_DB} at scale ${scale.toFixed(2)}: ${(bytes / MIB).toFixed(1)} MiB in ${((Date.now() - started) / 1000).toFixed(1)}s`,
  );
  return bytes;
}

const within = (bytes: number, target: number, tolerance: number) => Math.abs(bytes - target) <= tolerance * target;

/**
 * A bench database of about `targetBytes`. An existing one within SIZE_TOLERANCE is reused; a new
 * one aims closer (SEED_TOLERANCE), since the next runs will reuse it. Size grows almost linearly
 * with the scale, so each new seed extrapolates along the line through the last two sizes measured
 * (the first through the empty database and a probe at scale 1).
 */
async function ensureBenchDatabase(cluster: LocalCluster, targetBytes: number): Promise<number> {
  const existing = await databaseBytes(cluster, BENCH_DB);
  if (existing !== null && within(existing, targetBytes, SIZE_TOLERANCE) && (await hasDemoSchema(cluster))) {
    say(
      `reusing ${BENCH_DB}: ${(existing / MIB).toFixed(1)} MiB is within ${SIZE_TOLERANCE * 100}% of ${(targetBytes / MIB).toFixed(0)} MiB`,
    );
    return existing;
  }
  await recreateDatabase(cluster);
  const points = [{ scale: 0, bytes: (await databaseBytes(cluster, BENCH_DB))! }];
  points.push({ scale: 1, bytes: await seedAt(cluster, 1) });
  for (let attempt = 0; attempt < 3 && !within(points.at(-1)!.bytes, targetBytes, SEED_TOLERANCE); attempt++) {
    const [a, b] = points.slice(-2) as [{ scale: number; bytes: number }, { scale: number; bytes: number }];
    const perScale = (b.bytes - a.bytes) / (b.scale - a.scale);
    // The demo data has a floor (500 products, an empty database's catalog), so tiny targets stop
    // at a small positive scale: once there, seeding again would only measure the same size.
    const scale = Math.max(MIN_SCALE, b.scale + (targetBytes - b.bytes) / perScale);
    if (!Number.isFinite(scale) || scale === b.scale) break;
    points.push({ scale, bytes: await seedAt(cluster, scale) });
  }
  const bytes = points.at(-1)!.bytes;
  if (!within(bytes, targetBytes, SIZE_TOLERANCE))
    say(`note: ${BENCH_DB} is ${(bytes / MIB).toFixed(1)} MiB, not within ${SIZE_TOLERANCE * 100}% of the target`);
  return bytes;
}

async function dropBenchDatabase(cluster: LocalCluster): Promise<void> {
  await withClient(cluster.connection('postgres'), (client) =>
    client.query(`drop database if exists ${quoteIdent(BENCH_DB)} with (force)`),
  );
  say(`dropped ${BENCH_DB}`);
}

// ---------------------------------------------------------------------------------------------
// The two contenders

/** The demo plan, pointed at the bench database, with one cheap check (the data checks are not what is measured). */
function writePlan(dir: string): string {
  const file = join(dir, 'bench-plan.yaml');
  const plan = localPlanText([
    {
      key: PLAN_KEY,
      database: BENCH_DB,
      home: PRIMARY_REGION,
      dr: DR_REGION,
      objectives: { rpo: '15m', rto: '30m' },
      checks: [{ name: 'recent orders exist', sql: 'select count(*) > 0 from orders' }],
    },
  ]);
  writeFileSync(file, `# Written by scripts/bench/drill-vs-shell.ts for one benchmark; deleted when it ends.\n${plan}`);
  return file;
}

async function runBaseline(
  env: LifeboatEnv,
  primary: LocalCluster,
  dr: LocalCluster,
  compression: string,
  workdir: string,
  verify: Verify,
): Promise<BaselineRun> {
  const args = [
    '--db',
    BENCH_DB,
    '--host',
    '127.0.0.1',
    '--src-port',
    String(primary.state().port),
    '--dst-port',
    String(dr.state().port),
    '--src-passfile',
    primary.pgpassFile,
    '--dst-passfile',
    dr.pgpassFile,
    '--compress',
    compression,
    '--jobs',
    '2',
    '--verify',
    verify,
    '--bin',
    findPgBin(env.pgBin),
    '--workdir',
    workdir,
  ];
  const result = await runScript(env, 'baseline.sh', args);
  return { wallSeconds: result.seconds, ...parseBaselineOutput(result.stdout) };
}

/** baseline.sh prints tab-separated `step`, `rows` and `dump_bytes` lines; see its header. */
function parseBaselineOutput(stdout: string): Omit<BaselineRun, 'wallSeconds'> {
  const { steps, lines } = parseScriptOutput(stdout);
  const parsed: Omit<BaselineRun, 'wallSeconds'> = { steps, dumpBytes: 0, rows: [] };
  for (const [kind, a, b] of lines) {
    if (kind === 'rows') parsed.rows.push({ table: a!, rows: Number(b) });
    else if (kind === 'dump_bytes') parsed.dumpBytes = Number(a);
  }
  return parsed;
}

/** The drill's own backups of the bench database (the dump in the primary, the copy in DR): ours to remove. */
async function deleteBenchBackups(env: LifeboatEnv): Promise<number> {
  const provider = buildProviders(env).local;
  let deleted = 0;
  for (const name of DEMO_REGIONS) {
    const region: RegionSpec = { name, provider: 'local' };
    for (const ref of await provider.listBackups(region, BENCH_DB)) {
      await provider.deleteBackup(ref);
      deleted++;
    }
  }
  return deleted;
}

// ---------------------------------------------------------------------------------------------
// Reporting

/** The two baselines, as the tables name them. */
const BASELINES: Array<[Verify, string]> = [
  ['counts', 'counts-only shell'],
  ['checksums', 'same-proof shell'],
];

function summaryTable(dbBytes: number, rounds: Round[]): string {
  const mib = (n: number) => (n / MIB).toFixed(1);
  const row = (label: string, [dump, drill, counts, checksums, rto, workflow]: number[]) => [
    label,
    mib(dbBytes),
    mib(dump!),
    drill!.toFixed(2),
    counts!.toFixed(2),
    (drill! / counts!).toFixed(2),
    checksums!.toFixed(2),
    (drill! / checksums!).toFixed(2),
    rto!.toFixed(2),
    workflow!.toFixed(2),
    (workflow! / checksums!).toFixed(2),
  ];
  const values = (r: Round) => [
    r.drill.report.backup?.sizeBytes ?? 0,
    r.drill.wallSeconds,
    r.counts.wallSeconds,
    r.checksums.wallSeconds,
    r.drill.report.rtoSeconds!,
    workflowSeconds(r.drill.report),
  ];
  return table(
    [
      '',
      'db MiB',
      'dump MiB',
      'drill s',
      'counts-only shell s',
      'ratio vs counts-only shell',
      'same-proof shell s',
      'ratio vs same-proof shell',
      'drill rtoSeconds',
      'drill workflow s',
      'workflow ratio vs same-proof shell',
    ],
    summaryRows(rounds.map(values), row),
  );
}

/** The median of each round's own ratios: the sides of one round ran under the same load. */
function pairedRatios(rounds: Round[]): string {
  const of = (f: (r: Round) => number) => median(rounds.map(f)).toFixed(2);
  return (
    `median of the rounds' own ratios: drill via CLI / same-proof shell ${of((r) => r.drill.wallSeconds / r.checksums.wallSeconds)}, ` +
    `as scheduled / same-proof shell ${of((r) => workflowSeconds(r.drill.report) / r.checksums.wallSeconds)}, ` +
    `via CLI / counts-only shell ${of((r) => r.drill.wallSeconds / r.counts.wallSeconds)}`
  );
}

/**
 * The drill as a scheduled one runs it: from the workflow's start to its report, by the workflow's
 * clock. No CLI process starts it or waits for it (a Temporal Schedule does), so node's start-up,
 * loading @temporalio/client and printing the report are not in it; everything the runbook does is.
 */
function workflowSeconds(report: RunbookReport): number {
  return (Date.parse(report.finishedAt) - Date.parse(report.startedAt)) / 1000;
}

function drillPhases({ report, wallSeconds }: DrillRun): Phases {
  // The teardown step is named after the run's scratch instance; one name lines the runs up.
  return runbookPhases(report, wallSeconds, (s) => s.name.replace(/^tear down .*/, 'tear down scratch instance'));
}

function baselinePhases(run: BaselineRun): Phases {
  return scriptPhases(run.steps, '(bash, between steps)', ['wall', run.wallSeconds]);
}

// ---------------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  const loadBefore = loadavg();
  const env = loadEnv();
  await ensureStack(env);
  const provider = buildProviders(env).local;
  const primary = provider.regionCluster(PRIMARY_REGION);
  const dr = provider.regionCluster(DR_REGION);
  const pgBin = findPgBin(env.pgBin);

  const dbBytes = await ensureBenchDatabase(primary, options.sizeMb * MIB);
  const compression = dumpCompression((await withClient(primary.connection('postgres'), (c) => serverVersion(c))).num);
  const planDir = mkdtempSync(join(tmpdir(), 'lifeboat-bench-'));
  // The baselines' dump and copy sit under LIFEBOAT_HOME, on the same disk as the drill's backups:
  // a tmpfs /tmp would otherwise hand the baselines a head start.
  mkdirSync(env.home, { recursive: true });
  const workdir = mkdtempSync(join(env.home, 'bench-baseline-'));

  const rounds: Round[] = [];
  try {
    const planFile = writePlan(planDir);
    await ensureStack(env, planFile); // the stack's worker serves the bench plan while it runs
    for (let i = 0; i < options.warmup; i++) {
      await timeRound(env, planFile, primary, dr, compression, workdir, i, `warm-up ${i + 1} (not timed)`);
    }
    for (let i = 0; i < (options.runs ?? 1); i++) {
      rounds.push(await timeRound(env, planFile, primary, dr, compression, workdir, i, `run ${i + 1}`));
      const first = rounds[0]!;
      const roundSeconds = first.drill.wallSeconds + first.counts.wallSeconds + first.checksums.wallSeconds;
      if (options.runs === null && i === 0 && roundSeconds < QUICK_ROUND_SECONDS) options.runs = 3;
    }
  } finally {
    await ensureStack(env).catch((err: unknown) =>
      say(`could not put the stack's worker back on the demo plan: ${(err as Error).message}; run \`lifeboat dev up\``),
    );
    rmSync(planDir, { recursive: true, force: true });
    rmSync(workdir, { recursive: true, force: true });
    const deleted = await deleteBenchBackups(env);
    if (deleted) say(`deleted the drills' ${deleted} backup files of ${BENCH_DB} (dumps and DR copies)`);
    if (options.drop) await dropBenchDatabase(primary);
    else say(`kept ${BENCH_DB} in ${PRIMARY_REGION} for the next run (--drop removes it)`);
  }

  const histories = await historyLengths(
    rounds.map((r) => ({ workflowId: r.drill.report.workflowId, runId: r.drill.report.runId })),
  );
  const events = histories.map((h) => h.events);
  const baselineRows = rounds[0]!.counts.rows;
  const pgVersion = (await withClient(primary.connection('postgres'), (client) => serverVersion(client))).version;
  const out = [
    '',
    ...machineLines(pgVersion, pgBin, loadBefore),
    `database    ${BENCH_DB} in ${PRIMARY_REGION} -> ${DR_REGION}: ${baselineRows.reduce((n, r) => n + r.rows, 0)} rows in ${baselineRows.length} tables; ` +
      `pg_dump --compress=${compression}, pg_restore --jobs=2`,
    '',
    summaryTable(dbBytes, rounds),
    ...(rounds.length > 1 ? ['', pairedRatios(rounds)] : []),
    '',
    phaseTable(
      'drill step (seconds)',
      rounds.map((r) => drillPhases(r.drill)),
    ),
    ...BASELINES.flatMap(([verify, name]) => [
      '',
      phaseTable(
        `${name} step (seconds)`,
        rounds.map((r) => baselinePhases(r[verify])),
      ),
    ]),
    '',
    `drill workflows: ${rounds.map((r) => r.drill.report.workflowId).join(', ')}`,
    events.length
      ? `drill history: ${Math.min(...events)}-${Math.max(...events)} events, ${(median(histories.map((h) => h.bytes)) / 1024).toFixed(1)} KiB (median)`
      : 'drill history: could not be read',
    '',
  ];
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

/**
 * Before each side, untimed: the machine is brought to the same quiet state, so that no side pays
 * for the one before it.
 * - The worker's background job after each drill's teardown is done: the torn-down scratch instance
 *   deleted, then the DR region's next spare copied. Every drill starts as a scheduled drill would,
 *   with the spare its predecessor left (the first round's is made here).
 * - Both servers checkpoint and the kernel writes back its dirty pages: a shell's pg_restore into
 *   the DR server leaves ~100 MB per 100 MiB of data to be written, and a seed leaves more; the
 *   drill's scratch instance is deleted with its dirty pages. Whoever ran next paid for that
 *   write-back.
 */
async function settled(env: LifeboatEnv, clusters: LocalCluster[]): Promise<void> {
  await spareSettled(env);
  for (const cluster of clusters)
    await withClient(cluster.connection('postgres'), (client) => client.query('checkpoint'));
  spawnSync('sync');
  const deadline = Date.now() + 60_000;
  while (dirtyMiB() > 16 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
}

/** Dirty and under-write-back page cache, in MiB (0 where /proc/meminfo is not there). */
function dirtyMiB(): number {
  if (!existsSync('/proc/meminfo')) return 0;
  const kib = readFileSync('/proc/meminfo', 'utf8')
    .split('\n')
    .filter((line) => /^(Dirty|Writeback):/.test(line))
    .reduce((sum, line) => sum + Number(line.replace(/\D+/g, ' ').trim().split(' ')[0] ?? 0), 0);
  return kib / 1024;
}

async function spareSettled(env: LifeboatEnv): Promise<void> {
  const provider = buildProviders(env).local;
  const deadline = Date.now() + 120_000;
  for (;;) {
    while (scratchHousekeeping(env.home, DR_REGION).busy) {
      if (Date.now() > deadline)
        throw new Error(
          `the worker was still deleting a scratch instance or making a spare under ${env.home} after 2 minutes`,
        );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (scratchHousekeeping(env.home, DR_REGION).spareReady) return;
    await provider.replenishSpare(DR_REGION);
  }
}

/**
 * One drill and both baselines on the same database. The order reverses between rounds so that no
 * side always gets the page cache another one warmed.
 */
async function timeRound(
  env: LifeboatEnv,
  planFile: string,
  primary: LocalCluster,
  dr: LocalCluster,
  compression: string,
  workdir: string,
  index: number,
  label: string,
): Promise<Round> {
  const drill = announced(
    `${label}: drill`,
    async () => {
      await settled(env, [primary, dr]);
      return runRunbook(env, ['drill', PLAN_KEY, '-f', planFile, '--json']);
    },
    (run) =>
      `${label}: drill passed in ${run.wallSeconds.toFixed(2)}s (rtoSeconds ${run.report.rtoSeconds?.toFixed(2)})`,
  );
  const [counts, checksums] = BASELINES.map(([verify, name]) =>
    announced(
      `${label}: ${name}`,
      async () => {
        await settled(env, [primary, dr]);
        return runBaseline(env, primary, dr, compression, workdir, verify);
      },
      (run) => `${label}: ${name} done in ${run.wallSeconds.toFixed(2)}s`,
    ),
  );
  const [d, c, s] = await inAlternatingOrder<[DrillRun, BaselineRun, BaselineRun]>(index, [drill, counts!, checksums!]);
  return { drill: d, counts: c, checksums: s };
}

runMain(main, 'npm run bench -- [--size-mb N] [--runs N] [--warmup N] [--drop]');
