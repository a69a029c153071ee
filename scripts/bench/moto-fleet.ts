// Benchmark: many AWS drills at once against moto, through one worker process: how long the fleet
// takes, whether every drill passes, and what the worker and the workflow histories cost.
//
//   npm run bench:fleet-moto -- [--drills N] [--scale N] [--poll-ms N] [--fleet-children N] [--no-kinds] [--keep]
//
//   --drills N          drills started at once, one per database (default 200)
//   --scale N           seed scale of each database (scripts/dev/seed.ts; default 0.01, ~700 rows, the
//                       demo data's floor: the figures are the orchestration's, not the data's)
//   --poll-ms N         how often the AWS provider's waits poll moto (default 1000)
//   --fleet-children N  after the fleet: one `fleetDrill` workflow over N databases (default 10; 0: none),
//                       for the history a fleet run adds per database
//   --no-kinds          skip the one backup and one readiness run after the fleet (history per runbook kind)
//   --keep              keep the benchmark's LIFEBOAT_HOME (logs, the Temporal database) and say where
//
// Needs a build (npm run build), moto_server and the Temporal CLI in .venv (`bash scripts/setup.sh
// --with-moto`), and PostgreSQL. It needs no dev stack and never touches it: everything runs under a
// LIFEBOAT_HOME of its own in the temp directory, all stopped and removed at the end:
//   - a Temporal dev server (scripts/dev/stack.ts startTemporal) and a moto_server, on free ports;
//   - two local PostgreSQL servers: fleet-src holds the N databases standing for the N RDS instances
//     (copies of one seeded template), fleet-dr the databases the scratch instances restore into;
//   - in moto: KMS keys, subnet groups and security groups in us-east-1 and us-west-2
//     (test/support/aws-drill.ts awsRegionFixtures), and N RDS instances in us-east-1;
//   - a plan with N databases (db-001 ...), each its own RDS instance, DR in us-west-2;
//   - ONE worker process, scripts/bench/moto-fleet-worker.ts: Lifeboat's worker (the runbook queue,
//     one activity queue per region, 4 activities at a time per queue) with the AWS provider and the
//     test-only data plane of test/fakes/rds-data-plane.ts (moto has no PostgreSQL: snapshots are
//     pg_dump files, restores pg_restore into fleet-dr).
// The N drills are started at once, as `lifeboat drill` starts one (same input, search attributes).
// Measured: wall time from the first start to the last result; passed/failed; the worker's CPU
// seconds during the fleet (its own, and its reaped children's: the stand-in's pg_dump/pg_restore),
// its peak RSS (VmHWM); the Temporal server's and moto's CPU; each drill's history length
// (describe: historyLength). Then, for the README's history figures, one backup and one readiness
// run, and one fleetDrill. Figures, not asserts: it exits 1 only when the setup fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RDSClient } from '@aws-sdk/client-rds';
import type { Client } from '@temporalio/client';
import { findPgBin } from '../../activities/pg/binaries';
import { quoteIdent, serverVersion, withClient } from '../../activities/pg/sql';
import { loadEnv, type LifeboatEnv } from '../../worker/env';
import { buildProviders } from '../../worker/main';
import { backupInput, drillInput, loadPlanFile, readinessInput, type LoadedPlan } from '../../worker/plan';
import { connectClient } from '../../worker/temporal';
import { DatabaseAttr, ProviderAttr, RunbookAttr, TriggeredByAttr } from '../../workflows/search-attributes';
import { RUNBOOK_TASK_QUEUE, type RunbookReport } from '../../workflows/types';
import { startTemporal } from '../dev/stack';
import { seedDemo } from '../dev/seed';
import {
  awsPlanDatabase,
  awsPlanRegions,
  createInstanceCommand,
  EAST,
  motoClientConfig,
  startMoto,
  WEST,
  type AwsTestFixture,
  type MotoServer,
} from '../../test/support/moto';
import { awsRegionFixtures } from '../../test/support/aws-drill';
import { stopProcess } from '../../test/support/cli';
import {
  freePort,
  historyLengths,
  machineLines,
  median,
  MIB,
  numberOption,
  optionsFrom,
  positiveOption,
  processUsage,
  runMain,
  say,
  sleep,
  table,
  type ProcessUsage,
} from './common';
import type { FleetWorkerConfig } from './moto-fleet-worker';
import { runbookReport } from '../../workflows/runbook-failure';

const SRC_REGION = 'fleet-src';
const DR_REGION = 'fleet-dr';
const TEMPLATE_DB = 'fleet_template';
const PASSWORD_VAR = 'LIFEBOAT_BENCH_RDS_PASSWORD';
const BY = 'scripts/bench/moto-fleet.ts';

/** A flag's whole number from `min` to `max`. */
const wholeOption = (
  flag: string,
  raw: string | undefined,
  min: number,
  max: number,
  expected = `a whole number from ${min} to ${max}`,
): number => numberOption(flag, raw, (n) => Number.isInteger(n) && n >= min && n <= max, expected);

const DEFAULTS = { drills: 200, scale: 0.01, pollMs: 1000, fleetChildren: 10, kinds: true, keep: false };
type Options = typeof DEFAULTS;

const parseOptions = (argv: string[]): Options =>
  optionsFrom(argv, DEFAULTS, (options) => ({
    '--drills': (value, flag) => (options.drills = wholeOption(flag, value(), 1, 999)),
    '--scale': (value, flag) => (options.scale = positiveOption(flag, value(), false)),
    '--poll-ms': (value, flag) =>
      (options.pollMs = wholeOption(flag, value(), 10, Infinity, 'a whole number of milliseconds, 10 or more')),
    '--fleet-children': (value, flag) => (options.fleetChildren = wholeOption(flag, value(), 0, 50)),
    '--no-kinds': () => (options.kinds = false),
    '--keep': () => (options.keep = true),
  }));

const key = (i: number) => `db-${String(i + 1).padStart(3, '0')}`;
const pgDatabase = (i: number) => `fleet_${String(i + 1).padStart(3, '0')}`;
const instance = (i: number) => `fleet-${String(i + 1).padStart(3, '0')}`;

// ---------------------------------------------------------------------------------------------
// Setup: servers, databases, moto resources, the plan

/** Undo actions, run newest first at the end whatever happened. */
type Cleanups = Array<{ what: string; run: () => Promise<void> }>;

async function startPostgres(env: LifeboatEnv, cleanups: Cleanups): Promise<void> {
  const local = buildProviders(env).local;
  for (const region of [SRC_REGION, DR_REGION]) {
    const cluster = local.regionCluster(region);
    await cluster.ensureRunning({ name: region, port: await freePort(), disposable: false });
    cleanups.push({ what: `PostgreSQL ${region}`, run: () => cluster.stop('immediate') });
  }
}

/** One seeded template, then N copies of it: each drill has a database (and an RDS instance) of its own. */
async function makeDatabases(env: LifeboatEnv, count: number, scale: number): Promise<number> {
  const cluster = buildProviders(env).local.regionCluster(SRC_REGION);
  const started = Date.now();
  await withClient(cluster.connection('postgres'), (c) => c.query(`create database ${TEMPLATE_DB}`));
  await withClient(cluster.connection(TEMPLATE_DB), (c) => seedDemo(c, scale));
  const bytes = await withClient(cluster.connection('postgres'), async (c) => {
    for (let i = 0; i < count; i++)
      await c.query(`create database ${quoteIdent(pgDatabase(i))} template ${TEMPLATE_DB}`);
    const { rows } = await c.query<{ bytes: string }>('select pg_database_size($1) as bytes', [TEMPLATE_DB]);
    return Number(rows[0]!.bytes);
  });
  say(
    `${count} databases of ${(bytes / MIB).toFixed(1)} MiB each in ${SRC_REGION} (scale ${scale}) in ${((Date.now() - started) / 1000).toFixed(1)}s`,
  );
  return bytes;
}

/** N RDS instances in us-east-1, as setUpAwsDrill (test/support/aws-drill.ts) makes one; 8 requests at a time. */
async function makeInstances(endpoint: string, east: AwsTestFixture, count: number, password: string): Promise<void> {
  const rds = new RDSClient(motoClientConfig(endpoint, EAST));
  const started = Date.now();
  try {
    let next = 0;
    const lane = async () => {
      while (next < count) {
        const i = next++;
        await rds.send(createInstanceCommand(instance(i), password, east));
      }
    };
    await Promise.all(Array.from({ length: 8 }, lane));
  } finally {
    rds.destroy();
  }
  say(`${count} RDS instances in moto (${EAST}) in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

function writePlan(env: LifeboatEnv, count: number, east: AwsTestFixture, west: AwsTestFixture): LoadedPlan {
  const databases = Array.from({ length: count }, (_, i) =>
    awsPlanDatabase(key(i), { pgDatabase: pgDatabase(i), instance: instance(i), passwordVar: PASSWORD_VAR }),
  );
  const file = join(env.home, 'fleet-plan.yaml');
  writeFileSync(
    file,
    `# Written by ${BY}; removed with its LIFEBOAT_HOME.\n${awsPlanRegions(east, west)}databases:\n${databases.join('')}`,
  );
  return loadPlanFile(file);
}

// ---------------------------------------------------------------------------------------------
// The worker

interface FleetWorker {
  child: ChildProcess;
  log: string;
}

async function startFleetWorker(
  env: LifeboatEnv,
  count: number,
  pollMs: number,
  password: string,
): Promise<FleetWorker> {
  const config: FleetWorkerConfig = {
    regions: [
      { name: 'aws-east', provider: 'aws' },
      { name: 'aws-west', provider: 'aws' },
    ],
    pollMs,
    dataPlane: {
      dir: join(env.home, 'rds-stand-in'),
      sources: Object.fromEntries(
        Array.from({ length: count }, (_, i) => [
          `${EAST}/${instance(i)}`,
          { node: { region: SRC_REGION, name: 'server' }, database: pgDatabase(i) },
        ]),
      ),
      restoreNode: { region: DR_REGION, name: 'server' },
    },
  };
  const configFile = join(env.home, 'fleet-worker.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const log = join(env.home, 'fleet-worker.log');
  const out = openSync(log, 'w');
  const script = join(__dirname, 'moto-fleet-worker.js'); // compiled beside this file (npm run build:bench)
  const child = spawn(process.execPath, [script, configFile], {
    cwd: env.projectRoot,
    stdio: ['ignore', out, out],
    env: { ...process.env, [PASSWORD_VAR]: password },
  });
  closeSync(out);
  const deadline = Date.now() + 120_000;
  while (!readFileSync(log, 'utf8').includes('worker ready')) {
    if (child.exitCode !== null)
      throw new Error(`the fleet worker exited with ${child.exitCode} before it was ready; see ${log}`);
    if (Date.now() > deadline) throw new Error(`the fleet worker was not ready within 120s; see ${log}`);
    await sleep(100);
  }
  say(`fleet worker ready (pid ${child.pid}), log ${log}`);
  return { child, log };
}

/** The Temporal dev server runs detached (startTemporal): stopped by its pid. */
async function stopPid(pid: number): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 300 && alive(); i++) await sleep(100);
  if (alive()) process.kill(pid, 'SIGKILL');
}

/** The whole machine's CPU time so far (all cores), busy and total, in clock ticks (/proc/stat). */
function machineCpu(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

// ---------------------------------------------------------------------------------------------
// Runs

interface RunResult {
  workflowId: string;
  runId: string;
  report: RunbookReport | null;
  /** Why it failed: the report's reason, or the workflow's failure. */
  failure: string | null;
  /** Start request to result. */
  seconds: number;
}

/** Starts a runbook as the CLI does (its workflow type, input and search attributes) and waits for its result. */
async function runOne(
  client: Client,
  workflowType: string,
  runbook: string,
  database: string,
  input: unknown,
): Promise<RunResult> {
  const started = Date.now();
  const workflowId = `lifeboat/${database}/${runbook}/bench-${new Date().toISOString()}`;
  const handle = await client.workflow.start(workflowType, {
    taskQueue: RUNBOOK_TASK_QUEUE,
    workflowId,
    args: [input],
    staticSummary: `${BY}: ${runbook} of ${database}`,
    typedSearchAttributes: [
      { key: DatabaseAttr, value: database },
      { key: RunbookAttr, value: runbook },
      { key: ProviderAttr, value: 'aws' },
      { key: TriggeredByAttr, value: BY },
    ],
  });
  try {
    const report = await runbookReport(handle);
    return {
      workflowId,
      runId: handle.firstExecutionRunId,
      report,
      failure: report.outcome === 'passed' ? null : (report.reason ?? 'failed, no reason given'),
      seconds: (Date.now() - started) / 1000,
    };
  } catch (err) {
    const cause = (err as { cause?: Error }).cause ?? (err as Error);
    return {
      workflowId,
      runId: handle.firstExecutionRunId,
      report: null,
      failure: cause.message,
      seconds: (Date.now() - started) / 1000,
    };
  }
}

// ---------------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  const loadBefore = loadavg();
  // A home of its own, reachable by the postgres OS user (the servers run as it when we are root).
  const home = mkdtempSync(join(tmpdir(), 'lifeboat-bench-fleet-'));
  chmodSync(home, 0o755);
  process.env.LIFEBOAT_HOME = home;
  const env = loadEnv();
  const pgBin = findPgBin(env.pgBin);
  const password = `bench-${Math.random().toString(36).slice(2)}`;
  const cleanups: Cleanups = [];
  let worker: FleetWorker | null = null;
  let moto: MotoServer | null = null;

  const out: string[] = [];
  let cleaned: Promise<void> | undefined;
  const cleanup = () =>
    (cleaned ??= (async () => {
      for (const c of cleanups.reverse())
        await c.run().catch((err: Error) => say(`stopping ${c.what} failed: ${err.message}`));
      if (options.keep) say(`kept ${home}`);
      else {
        rmSync(home, { recursive: true, force: true });
        say(`removed ${home}`);
      }
    })());
  // Interrupted, it still stops its servers and removes its home.
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  try {
    const temporal = await startTemporal(env, { temporal: await freePort(), ui: await freePort(), pgBase: 0 }, (line) =>
      say(line),
    );
    cleanups.push({ what: 'the Temporal dev server', run: () => stopPid(temporal.pid) });
    process.env.TEMPORAL_ADDRESS = temporal.address;
    moto = await startMoto(await freePort(), { log: join(home, 'moto-server.log'), detached: false });
    const motoServer = moto;
    cleanups.push({ what: 'moto_server', run: () => motoServer.stop() });
    say(`moto_server on ${moto.endpoint} (pid ${moto.pid})`);
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
    });

    await startPostgres(env, cleanups);
    const pgVersion = (
      await withClient(buildProviders(env).local.regionCluster(SRC_REGION).connection('postgres'), (c) =>
        serverVersion(c),
      )
    ).version;
    const dbBytes = await makeDatabases(env, options.drills, options.scale);
    const { east, west } = await awsRegionFixtures(moto.endpoint);
    await makeInstances(moto.endpoint, east, options.drills, password);
    const plan = writePlan(env, options.drills, east, west);

    worker = await startFleetWorker(env, options.drills, options.pollMs, password);
    const fleetWorker = worker;
    cleanups.push({ what: 'the fleet worker', run: () => stopProcess(fleetWorker.child, 30_000) });
    const workerPid = worker.child.pid!;
    const client = await connectClient();
    cleanups.push({ what: 'the Temporal client', run: () => client.connection.close() });

    // The fleet: every drill started at once.
    const before = {
      worker: processUsage(workerPid)!,
      temporal: processUsage(temporal.pid),
      moto: processUsage(moto.pid),
      machine: machineCpu(),
    };
    say(`starting ${options.drills} drills at once`);
    const started = Date.now();
    let peakRss = before.worker.rssBytes;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, processUsage(workerPid)?.rssBytes ?? 0)), 500);
    let done = 0;
    const results = await Promise.all(
      Array.from({ length: options.drills }, (_, i) =>
        runOne(
          client,
          'drill',
          'drill',
          key(i),
          drillInput(plan, key(i), { fromLatestBackup: false, triggeredBy: BY }),
        ).then((r) => {
          if (++done % 20 === 0 || done === options.drills)
            say(`${done}/${options.drills} drills finished (${((Date.now() - started) / 1000).toFixed(0)}s)`);
          return r;
        }),
      ),
    );
    const wallSeconds = (Date.now() - started) / 1000;
    clearInterval(sampler);
    const after = {
      worker: processUsage(workerPid)!,
      temporal: processUsage(temporal.pid),
      moto: processUsage(moto.pid),
      machine: machineCpu(),
    };
    const drillSizes = await historyLengths(results.map((r) => ({ workflowId: r.workflowId, runId: r.runId })));

    // History per runbook kind: one backup, one readiness check, one fleet drill (after the fleet, untimed).
    const kinds: Array<{ runbook: string; result: RunResult; note: string }> = [];
    if (options.kinds) {
      say('one backup and one readiness check of db-001, for their history length');
      kinds.push({
        runbook: 'backup',
        result: await runOne(client, 'backup', 'backup', key(0), backupInput(plan, key(0), { triggeredBy: BY })),
        note: 'snapshot + copy + retention',
      });
      kinds.push({
        runbook: 'readiness',
        result: await runOne(
          client,
          'readiness',
          'readiness',
          key(0),
          readinessInput(plan, key(0), { triggeredBy: BY }),
        ),
        note: 'no standby in this plan',
      });
    }
    if (options.fleetChildren > 0) {
      const n = Math.min(options.fleetChildren, options.drills);
      say(`one fleetDrill over ${n} databases, for the history a fleet adds per database`);
      const drills = Array.from({ length: n }, (_, i) =>
        drillInput(plan, key(i), { fromLatestBackup: false, triggeredBy: BY }),
      );
      kinds.push({
        runbook: 'fleetDrill',
        result: await runOne(client, 'fleetDrill', 'drill', '(fleet)', {
          drills,
          concurrency: Math.min(n, 50),
          triggeredBy: BY,
        }),
        note: `${n} child drills, all at once`,
      });
    }
    const kindSizes = await historyLengths(
      kinds.map((k) => ({ workflowId: k.result.workflowId, runId: k.result.runId })),
    );
    const final = processUsage(workerPid)!;

    // ---- the tables
    const passed = results.filter((r) => r.failure === null);
    const failed = results.filter((r) => r.failure !== null);
    const cpu = (a: ProcessUsage | null, b: ProcessUsage | null) =>
      a && b ? (b.cpuSeconds - a.cpuSeconds).toFixed(1) : 'n/a';
    const machineBusy =
      (100 * (after.machine.busy - before.machine.busy)) / Math.max(1, after.machine.total - before.machine.total);
    const events = drillSizes.map((s) => s.events);
    const range = (v: number[]) => (v.length ? `${Math.min(...v)} / ${median(v)} / ${Math.max(...v)}` : '-');
    const rtos = passed.map((r) => r.report!.rtoSeconds ?? 0);
    const durations = results.map((r) => r.seconds);
    out.push(
      '',
      ...machineLines(pgVersion, pgBin, loadBefore),
      `fleet       ${options.drills} AWS drills (moto ${EAST} -> ${WEST}), one database and RDS instance each, ${(dbBytes / MIB).toFixed(1)} MiB ` +
        `(seed scale ${options.scale}); one worker, 4 activities at a time per region queue; AWS waits poll every ${options.pollMs} ms`,
      '',
      table(
        ['fleet', 'value'],
        [
          ['drills started at once', String(options.drills)],
          ['passed / failed', `${passed.length} / ${failed.length}`],
          ['wall time, first start to last result', `${wallSeconds.toFixed(1)} s`],
          ['drills per minute', (options.drills / (wallSeconds / 60)).toFixed(1)],
          [
            'per drill, start to result: min / median / max',
            `${Math.min(...durations).toFixed(1)} / ${median(durations).toFixed(1)} / ${Math.max(...durations).toFixed(1)} s`,
          ],
          ['per drill, reported RTO: median', rtos.length ? `${median(rtos).toFixed(1)} s` : '-'],
          ['worker CPU (its own process) during the fleet', `${cpu(before.worker, after.worker)} s`],
          [
            'worker children CPU (stand-in pg_dump/pg_restore)',
            `${(after.worker.childrenCpuSeconds - before.worker.childrenCpuSeconds).toFixed(1)} s`,
          ],
          [
            'worker peak RSS (VmHWM)',
            `${(final.peakRssBytes / MIB).toFixed(0)} MiB (sampled peak during the fleet ${(peakRss / MIB).toFixed(0)} MiB; ${(before.worker.rssBytes / MIB).toFixed(0)} MiB when ready)`,
          ],
          ['Temporal dev server CPU during the fleet', `${cpu(before.temporal, after.temporal)} s`],
          ['moto_server CPU during the fleet', `${cpu(before.moto, after.moto)} s`],
          ['machine CPU busy during the fleet (all cores)', `${machineBusy.toFixed(0)}%`],
          ['history events per drill: min / median / max', range(events)],
          [
            'history size per drill: median',
            drillSizes.length ? `${(median(drillSizes.map((s) => s.bytes)) / 1024).toFixed(1)} KiB` : '-',
          ],
        ],
      ),
      '',
    );
    if (kinds.length) {
      out.push(
        table(
          ['history per runbook kind (AWS on moto)', 'outcome', 'events', 'KiB', 'note'],
          [
            [
              'drill',
              `${passed.length} passed`,
              range(events),
              drillSizes.length ? (median(drillSizes.map((s) => s.bytes)) / 1024).toFixed(1) : '-',
              `the fleet's ${options.drills}`,
            ],
            ...kinds.map((k) => {
              const size = kindSizes.find((s) => s.workflowId === k.result.workflowId);
              return [
                k.runbook,
                k.result.failure ? `failed: ${k.result.failure.slice(0, 60)}` : 'passed',
                size ? String(size.events) : '-',
                size ? (size.bytes / 1024).toFixed(1) : '-',
                k.note,
              ];
            }),
          ],
        ),
        '',
      );
    }
    if (failed.length) {
      const reasons = new Map<string, number>();
      for (const r of failed) reasons.set(r.failure!.slice(0, 200), (reasons.get(r.failure!.slice(0, 200)) ?? 0) + 1);
      out.push('failures:', ...[...reasons].map(([reason, n]) => `  ${n} x ${reason}`), '');
    }
    out.push(`worker log ${worker.log}${options.keep ? '' : ' (removed at the end; --keep keeps it)'}`, '');
  } finally {
    await cleanup();
  }
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

runMain(
  main,
  'npm run bench:fleet-moto -- [--drills N] [--scale N] [--poll-ms N] [--fleet-children N] [--no-kinds] [--keep]',
);
