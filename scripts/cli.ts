// The `lifeboat` command line. Exit codes: 0 the runbook succeeded; 1 it ran and failed;
// 2 bad input or usage, with a message that names the field, the value and what is expected.
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { findPgBin } from '../activities/pg/binaries';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { CodecConfigError } from '../worker/codec';
import { loadEnv, type LifeboatEnv } from '../worker/env';
import { backupInput, crossCloudInput, databaseOf, drillInput, failbackInput, failoverInput, loadPlanFile, readinessInput, PlanError, planRegions, recoversByRestore, type LoadedPlan } from '../worker/plan';
import { connectClient, temporalTarget, uiLink } from '../worker/temporal';
import type { Progress } from '../workflows/steps';
import { DatabaseAttr, ProviderAttr, RunbookAttr, TriggeredByAttr } from '../workflows/search-attributes';
import { ErrorType, RUNBOOK_TASK_QUEUE, topologyLockId, type CrossCloudInput, type RunbookReport } from '../workflows/types';
import { formatBytes, ProgressView, renderReport } from './render';

const USAGE = `usage:
  lifeboat dev up [-f plan] | down | status [--json]   local stack: Temporal dev server, local PG regions, worker (serving the plan)
  lifeboat worker [-f plan] [--region name]...    run a worker (one task queue per region; --region: only those)
  lifeboat plan validate [-f plan]
  lifeboat drill <db> [-f plan] [--from-latest-backup] [--json]
  lifeboat drill --all [-f plan] [--concurrency N] [--json]   every database, as child workflows, N at a time
  lifeboat backup <db> [-f plan] [--json]
  lifeboat backups list <db> [-f plan] [--json]
  lifeboat readiness <db> [-f plan] [--json]       is it recoverable now? backup age, DR copy, standby, drill recency
  lifeboat failover <db> [-f plan] [--planned | --unplanned | --zonal] [--yes] [--json]
  lifeboat approve <workflow-id> [-f plan] [--reason text]
  lifeboat failback <db> [-f plan] [--yes] [--discard-divergent] [--json]
  lifeboat status <db> [-f plan] [--json]
  lifeboat sweep [-f plan] [--json]               delete scratch instances of drills no longer running (terminated ones leave theirs)
  lifeboat schedule apply [-f plan] [--json]       make Temporal Schedules match the plan's schedule: blocks
  lifeboat schedule list [--json]  /  schedule pause | unpause | trigger <schedule-id> [--reason text]
  lifeboat traffic [-f plan]                      the traffic pointer (stable proxy ports) and canary writer
  lifeboat codec-server [--port N] [--host addr] [--origin URL]...   decrypts payloads for the Temporal UI and CLI
  lifeboat report <workflow-id> [--html out.html] [--md out.md]      evidence report of a finished run (Markdown on stdout by default)
  lifeboat report <db> --history [--last N] [--html out.html] [--md out.md]   RTO and RPO of the last N (30) drills against the objectives
Without -f, the built-in demo plan (two local regions, the seeded "orders" database) is used.`;

class UsageError extends Error {}

interface Args {
  positional: string[];
  plan?: string;
  json: boolean;
  fromLatestBackup: boolean;
  help: boolean;
  mode?: 'planned' | 'unplanned' | 'zonal';
  yes: boolean;
  reason?: string;
  /** failback: rebuild a former primary that took writes after the fork anyway, keeping a copy first. */
  discardDivergent?: boolean;
  all?: boolean;
  concurrency?: number;
  /** codec-server: where to listen, and the UI origins allowed to call it. */
  port?: number;
  host?: string;
  origins?: string[];
  /** worker: serve only these regions' queues. */
  regions?: string[];
  /** report: where to write it, and the drill history instead of one run. */
  html?: string;
  md?: string;
  history?: boolean;
  last?: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { positional: [], json: false, fromLatestBackup: false, help: false, yes: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-f' || a === '--file' || a === '--plan') args.plan = optionValue(a, argv[++i], 'a plan file path');
    else if (a === '--json') args.json = true;
    else if (a === '--from-latest-backup') args.fromLatestBackup = true;
    else if (a === '--all') args.all = true;
    else if (a === '--concurrency') {
      const value = optionValue(a, argv[++i], 'a number of drills at a time (1-50)');
      if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 50) throw new UsageError(`--concurrency ${value}: expected a whole number from 1 to 50`);
      args.concurrency = Number(value);
    }
    else if (a === '--planned' || a === '--unplanned' || a === '--zonal') {
      const mode = a === '--planned' ? 'planned' : a === '--unplanned' ? 'unplanned' : 'zonal';
      if (args.mode && args.mode !== mode) throw new UsageError('--planned, --unplanned and --zonal exclude each other');
      args.mode = mode;
    } else if (a === '--yes' || a === '-y') args.yes = true;
    else if (a === '--discard-divergent') args.discardDivergent = true;
    else if (a === '--reason') args.reason = optionValue(a, argv[++i], 'a reason');
    else if (a === '--port') {
      const value = optionValue(a, argv[++i], 'a port number');
      if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) throw new UsageError(`--port ${value}: expected a whole number from 1 to 65535`);
      args.port = Number(value);
    } else if (a === '--host') args.host = optionValue(a, argv[++i], 'an address to listen on');
    else if (a === '--region') (args.regions ??= []).push(optionValue(a, argv[++i], 'a region name of the plan'));
    else if (a === '--origin') (args.origins ??= []).push(optionValue(a, argv[++i], 'the Temporal UI origin, e.g. http://localhost:8233'));
    else if (a === '--html') args.html = optionValue(a, argv[++i], 'an output file path, e.g. report.html');
    else if (a === '--md') args.md = optionValue(a, argv[++i], 'an output file path, e.g. report.md');
    else if (a === '--history') args.history = true;
    else if (a === '--last') {
      const value = optionValue(a, argv[++i], 'a number of drills (1-1000)');
      if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 1000) throw new UsageError(`--last ${value}: expected a whole number from 1 to 1000`);
      args.last = Number(value);
    }
    else if (a === '-h' || a === '--help') args.help = true;
    else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else args.positional.push(a);
  }
  return args;
}

/** `-f --json` means the path was forgotten: taking `--json` as the path would hide that. */
function optionValue(option: string, value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`${option} needs ${what}`);
  if (value.startsWith('-')) throw new UsageError(`${option} needs ${what}, got option ${value}`);
  return value;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function loadPlan(env: LifeboatEnv, file?: string): LoadedPlan {
  return loadPlanFile(file ?? join(env.projectRoot, 'scripts', 'dev', 'demo-plan.yaml'));
}

function expectArgs(args: Args, count: number, what: string): void {
  const extra = args.positional[count];
  if (extra !== undefined) throw new UsageError(`unexpected argument ${extra}; expected ${what}`);
  if (args.positional.length !== count) throw new UsageError(`expected ${what}`);
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  // Asked-for help is the answer, not a mistake: stdout and exit 0, before anything can fail.
  if (args.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const [command, sub] = args.positional;
  const env = loadEnv();
  const say = (line: string) => process.stderr.write(line + '\n');

  // The worker SDK and the dev stack load only for the commands that need them: starting a drill
  // should not pay for bundling machinery it never uses.
  const stack = () => import('./dev/stack');
  const workerMain = () => import('../worker/main');

  switch (command) {
    case 'dev': {
      if (sub === 'up') {
        // With -f, the stack's worker serves that plan (it refuses runs its plan does not yield).
        const plan = args.plan ? loadPlan(env, resolve(args.plan)) : undefined;
        const state = await (await stack()).devUp(env, say, plan && { file: plan.source, digest: plan.digest });
        say(`\nstack up. Temporal UI: ${state.temporal.uiUrl}   next: lifeboat drill orders`);
        return 0;
      }
      if (sub === 'down') return await (await stack()).devDown(env, say), 0;
      if (sub === 'status') {
        const status = await (await stack()).devStatus(env);
        if (args.json) process.stdout.write(JSON.stringify(status, null, 2) + '\n');
        else {
          say(`temporal  ${status.temporal.running ? 'running' : 'stopped'}  ${status.temporal.address}  UI ${status.temporal.uiUrl}`);
          say(`worker    ${status.worker.running ? `running (pid ${status.worker.pid})` : 'stopped'}  log ${status.worker.log}`);
          say(`codec     ${status.codecServer.running ? `running (pid ${status.codecServer.pid})` : 'stopped'}  ${status.codecServer.endpoint}  keys ${status.codecServer.keys ? `${status.codecServer.keys.ids.join(', ')} (${status.codecServer.keys.source})` : 'none: payloads are not encrypted'}`);
          for (const [name, r] of Object.entries(status.regions)) say(`${name.padEnd(9)} ${r.running ? 'running' : 'stopped'}  ${r.url ?? '(not created)'}`);
        }
        return status.temporal.running && status.worker.running && Object.values(status.regions).every((r) => r.running) ? 0 : 1;
      }
      throw new UsageError('expected: lifeboat dev up | down | status [--json]');
    }
    case 'worker': {
      expectArgs(args, 1, 'lifeboat worker [-f plan] [--region name]...');
      const plan = loadPlan(env, args.plan);
      const all = planRegions(plan);
      // A worker placed in one region serves that region's queue (and the runbook queue): with one in
      // the DR region, a failover runs while the primary's region is dark.
      const unknown = (args.regions ?? []).filter((name) => !all.some((r) => r.name === name));
      if (unknown.length) throw new UsageError(`--region ${unknown.join(', ')}: not a region of ${plan.source}; expected one of ${all.map((r) => r.name).join(', ')}`);
      const regions = args.regions ? all.filter((r) => args.regions!.includes(r.name)) : all;
      await (await workerMain()).runWorker({ regions, env, plan });
      return 0;
    }
    case 'plan': {
      if (sub !== 'validate') throw new UsageError('expected: lifeboat plan validate [-f plan]');
      // A stray argument is most often the plan path without -f: refuse it rather than validate the demo plan.
      if (args.positional.length > 2) throw new UsageError(`unexpected argument ${args.positional[2]}; expected: lifeboat plan validate [-f plan]`);
      const plan = loadPlan(env, args.plan);
      say(`${plan.source}: valid (${plural(Object.keys(plan.plan.databases).length, 'database')}, ${plural(Object.keys(plan.plan.regions).length, 'region')}, sha256 ${plan.digest.slice(0, 12)})`);
      return 0;
    }
    case 'drill': {
      if (args.all) {
        expectArgs(args, 1, 'lifeboat drill --all [-f plan] [--concurrency N] [--from-latest-backup] [--json] (no database: --all drills every one)');
        const plan = loadPlan(env, args.plan);
        const drills = Object.keys(plan.plan.databases).map((db) => drillInput(plan, db, { fromLatestBackup: args.fromLatestBackup, triggeredBy: whoAmI() }));
        const input = { drills, concurrency: args.concurrency ?? 4, triggeredBy: whoAmI() };
        return runRunbook(env, args, {
          runbook: 'drill',
          workflowType: 'fleetDrill',
          database: '(fleet)',
          input,
          provider: drills[0]!.primary.region.provider,
          summary: `Fleet drill of ${drills.length} database(s), ${input.concurrency} at a time`,
        });
      }
      if (args.concurrency !== undefined) throw new UsageError('--concurrency goes with --all');
      expectArgs(args, 2, 'lifeboat drill <db> [-f plan] [--from-latest-backup] [--json]');
      const input = drillInput(loadPlan(env, args.plan), sub!, { fromLatestBackup: args.fromLatestBackup, triggeredBy: whoAmI() });
      return runRunbook(env, args, {
        runbook: 'drill',
        database: input.database,
        input,
        provider: input.primary.region.provider,
        summary: `Drill of ${input.database}: ${input.primary.region.name} -> ${input.dr.name}${input.fromLatestBackup ? ' (latest existing backup)' : ''}`,
      });
    }
    case 'backup': {
      expectArgs(args, 2, 'lifeboat backup <db> [-f plan] [--json]');
      const input = backupInput(loadPlan(env, args.plan), sub!, { triggeredBy: whoAmI() });
      return runRunbook(env, args, {
        runbook: 'backup',
        database: input.database,
        input,
        provider: input.primary.region.provider,
        summary: `Backup of ${input.database}: ${input.primary.region.name} + copy to ${input.dr.name}`,
      });
    }
    case 'readiness': {
      expectArgs(args, 2, 'lifeboat readiness <db> [-f plan] [--json]');
      const input = readinessInput(loadPlan(env, args.plan), sub!, { triggeredBy: whoAmI() });
      return runRunbook(env, args, {
        runbook: 'readiness',
        database: input.database,
        input,
        provider: input.primary.region.provider,
        summary: `Readiness check of ${input.database}: backups, copy in ${input.dr.name}${input.replicaSet ? ', standby' : ''}, drill recency`,
      });
    }
    case 'backups': {
      if (sub === 'list' && args.positional.length > 3) throw new UsageError(`unexpected argument ${args.positional[3]}; expected: lifeboat backups list <db> [-f plan] [--json]`);
      if (sub !== 'list' || args.positional.length !== 3) throw new UsageError('expected: lifeboat backups list <db> [-f plan] [--json]');
      const plan = loadPlan(env, args.plan);
      const name = args.positional[2]!;
      const db = databaseOf(plan, name);
      const providers = (await workerMain()).buildProviders(env);
      // Across clouds, the backups that matter are the portable ones in each region's store.
      const portable = recoversByRestore(plan, name) ? new (await import('../activities/portable/portable-backups')).PortableBackups({ pgBin: findPgBin(env.pgBin), workDir: join(env.home, 'restore-staging') }) : null;
      const rows = [];
      for (const region of planRegions(plan).filter((r) => r.name === db.primary.region || r.name === db.dr.region)) {
        const refs = portable ? await portable.list(region, db.primary.database) : await providers[region.provider].listBackups(region, db.primary.database);
        for (const ref of refs) {
          rows.push({ id: ref.backupId, region: ref.region, time: ref.createdAt, sizeBytes: ref.sizeBytes, sha256: ref.sha256, path: ref.location });
        }
      }
      rows.sort((a, b) => b.time.localeCompare(a.time));
      if (args.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
      else if (rows.length === 0) say(`no backups of ${name}; make one with: lifeboat backup ${name}`);
      else for (const r of rows) process.stdout.write(`${r.time}  ${r.region.padEnd(10)} ${r.id.padEnd(44)} ${formatBytes(r.sizeBytes).padStart(10)}  ${r.sha256.slice(0, 16)}…\n`);
      return 0;
    }
    case 'failover': {
      expectArgs(args, 2, 'lifeboat failover <db> [-f plan] [--planned | --unplanned | --zonal] [--yes] [--json]');
      const mode = args.mode ?? 'planned';
      const plan = loadPlan(env, args.plan);
      if (recoversByRestore(plan, sub!)) {
        if (mode === 'zonal') throw new PlanError(`--zonal is a platform HA failover within one region; ${sub} recovers across clouds`);
        return startCrossCloud(env, args, crossCloudInput(plan, sub!, { direction: 'failover', mode, preApproved: args.yes, triggeredBy: whoAmI() }));
      }
      const input = failoverInput(plan, sub!, { mode, preApproved: args.yes, triggeredBy: whoAmI() });
      return runRunbook(env, args, {
        runbook: 'failover',
        database: input.database,
        input,
        provider: input.replicaSet.home.provider,
        summary:
          mode === 'zonal'
            ? `Zonal (regional HA) failover of ${input.database} in ${input.replicaSet.home.name}`
            : `${mode === 'planned' ? 'Planned switchover' : 'Unplanned failover'} of ${input.database} to ${input.replicaSet.dr.name}`,
        // One failover or failback per database at a time: the ID is the lock.
        workflowId: topologyLockId(input.database),
        awaitsApproval: !args.yes,
      });
    }
    case 'failback': {
      expectArgs(args, 2, 'lifeboat failback <db> [-f plan] [--yes] [--discard-divergent] [--json]');
      const plan = loadPlan(env, args.plan);
      if (recoversByRestore(plan, sub!)) {
        return startCrossCloud(env, args, crossCloudInput(plan, sub!, { direction: 'failback', mode: 'planned', preApproved: args.yes, triggeredBy: whoAmI() }));
      }
      const input = failbackInput(plan, sub!, { preApproved: args.yes, triggeredBy: whoAmI(), discardDivergent: args.discardDivergent });
      return runRunbook(env, args, {
        runbook: 'failback',
        database: input.database,
        input,
        provider: input.replicaSet.home.provider,
        summary: `Failback of ${input.database} to ${input.replicaSet.home.name}`,
        workflowId: topologyLockId(input.database),
        awaitsApproval: !args.yes,
      });
    }
    case 'approve': {
      expectArgs(args, 2, 'lifeboat approve <workflow-id> [-f plan] [--reason text]');
      return approve(env, args, sub!);
    }
    case 'status': {
      expectArgs(args, 2, 'lifeboat status <db> [-f plan] [--json]');
      return (await import('./status')).status(env, loadPlan(env, args.plan), sub!, args.json);
    }
    case 'sweep': {
      expectArgs(args, 1, 'lifeboat sweep [-f plan] [--json]');
      return sweep(env, loadPlan(env, args.plan), args.json);
    }
    case 'traffic': {
      const plan = loadPlan(env, args.plan);
      await (await import('./traffic/for-plan')).runTrafficForPlan(env, plan);
      return 0;
    }
    case 'schedule':
      return schedule(env, args, sub);
    case 'codec-server': {
      expectArgs(args, 1, 'lifeboat codec-server [--port N] [--host addr] [--origin URL]...');
      if (!env.codec.keys) {
        throw new CodecConfigError(`no codec keys: set LIFEBOAT_CODEC_KEYS_FILE (or LIFEBOAT_CODEC_KEY), or run \`lifeboat dev up\`, which makes ${env.codec.defaultKeyFile}`);
      }
      const ui = env.uiUrl ? [new URL(env.uiUrl).origin] : ['http://localhost:8233', 'http://127.0.0.1:8233'];
      const { runCodecServer } = await import('./codec-server');
      const logger = (await import('../worker/logger')).createLogger(env.logLevel);
      await runCodecServer({ keys: env.codec.keys, logger, port: args.port ?? env.codec.port, host: args.host, origins: args.origins ?? ui, token: env.codec.serverToken });
      return 0;
    }
    case 'report': {
      expectArgs(args, 2, 'lifeboat report <workflow-id> [--html out.html] [--md out.md], or lifeboat report <db> --history [--last N] [--html out.html] [--md out.md]');
      if (args.last !== undefined && !args.history) throw new UsageError('--last goes with --history');
      const evidence = await import('./evidence/command');
      return evidence.report(env, { subject: sub!, history: args.history ?? false, last: args.last ?? evidence.DEFAULT_LAST, html: args.html, md: args.md });
    }
    default:
      throw new UsageError(command ? `unknown command ${command}` : '');
  }
}

async function schedule(env: LifeboatEnv, args: Args, sub: string | undefined): Promise<number> {
  const say = (line: string) => process.stderr.write(line + '\n');
  const schedules = await import('./schedule');
  const connect = async (): Promise<Client | null> => {
    const target = temporalTarget();
    try {
      return await connectClient(target);
    } catch (err) {
      process.stderr.write(`cannot reach Temporal at ${target.connectionOptions.address}: ${(err as Error).message}\nstart the local stack with \`lifeboat dev up\`, or set TEMPORAL_ADDRESS\n`);
      return null;
    }
  };
  if (sub === 'apply') {
    expectArgs(args, 2, 'lifeboat schedule apply [-f plan] [--json]');
    const plan = loadPlan(env, args.plan);
    schedules.desiredSchedules(plan); // bad input is found before the server is called
    const client = await connect();
    if (!client) return 1;
    const result = await schedules.applySchedules(client, plan);
    if (args.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else {
      for (const [what, ids] of Object.entries(result)) for (const id of ids as string[]) process.stdout.write(`${what.padEnd(9)} ${id}\n`);
      say(`schedules match ${plan.source}: ${result.created.length} created, ${result.updated.length} updated, ${result.unchanged.length} unchanged, ${result.deleted.length} deleted`);
    }
    return 0;
  }
  if (sub === 'list') {
    expectArgs(args, 2, 'lifeboat schedule list [--json]');
    const client = await connect();
    if (!client) return 1;
    const rows = await schedules.listSchedules(client);
    if (args.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    else if (rows.length === 0) say('no Lifeboat schedules; add schedule: blocks to the plan and run `lifeboat schedule apply -f plan`');
    else for (const r of rows) process.stdout.write(`${r.scheduleId.padEnd(36)} ${r.paused ? 'paused ' : 'active '} next ${r.nextRuns[0] ?? '-'}${r.note ? `  (${r.note})` : ''}\n`);
    return 0;
  }
  if (sub === 'pause' || sub === 'unpause' || sub === 'trigger') {
    expectArgs(args, 3, `lifeboat schedule ${sub} <schedule-id> [--reason text]`);
    const client = await connect();
    if (!client) return 1;
    const id = args.positional[2]!;
    try {
      await schedules.actOnSchedule(client, sub, id, `${sub}d by ${whoAmI()}${args.reason ? `: ${args.reason}` : ''}`);
    } catch (err) {
      if (err instanceof schedules.ScheduleMissing) throw new UsageError(err.message);
      throw err;
    }
    say(`${id}: ${sub === 'trigger' ? 'triggered' : `${sub}d`}`);
    return 0;
  }
  throw new UsageError('expected: lifeboat schedule apply | list | pause | unpause | trigger');
}

/**
 * Deletes, in every region of the plan, the scratch instances whose drill is no longer running (the
 * readiness runs do the same for their DR region). Exit 1 when a region could not be listed or a
 * delete failed.
 */
async function sweep(env: LifeboatEnv, plan: LoadedPlan, json: boolean): Promise<number> {
  const target = temporalTarget();
  let client: Client;
  try {
    client = await connectClient(target);
  } catch (err) {
    process.stderr.write(`cannot reach Temporal at ${target.connectionOptions.address}: ${(err as Error).message}\nthe sweep asks Temporal which drills are running; without it nothing is deleted\n`);
    return 1;
  }
  const providers = (await import('../worker/main')).buildProviders(env);
  const { sweepScratch } = await import('../activities/scratch-sweep');
  const outcome = await sweepScratch({ regions: planRegions(plan), provider: (region) => providers[region.provider], client });
  if (json) process.stdout.write(JSON.stringify(outcome, null, 2) + '\n');
  else {
    for (const d of outcome.deleted) process.stdout.write(`deleted  ${d.region}/${d.name}  (drill ${d.drill?.workflowId} ${d.drill?.status.toLowerCase()})\n`);
    for (const k of outcome.kept) process.stdout.write(`kept     ${k.region}/${k.name}  (${k.reason}${k.drill ? `: ${k.drill.workflowId}` : ''})\n`);
    for (const f of outcome.failed) process.stdout.write(`FAILED   ${f.region}/${f.name}  ${f.error}\n`);
    process.stderr.write(`swept ${planRegions(plan).length} region(s): ${outcome.deleted.length} deleted, ${outcome.kept.length} kept, ${outcome.failed.length} failed\n`);
  }
  await client.connection.close();
  return outcome.failed.length ? 1 : 0;
}

/** A database whose DR side is on another cloud moves by restore (workflows/cross-cloud.ts). */
function startCrossCloud(env: LifeboatEnv, args: Args, input: CrossCloudInput): Promise<number> {
  const verb = input.direction === 'failover' ? `${input.mode === 'planned' ? 'Planned' : 'Unplanned'} cross-cloud failover` : 'Cross-cloud failback';
  return runRunbook(env, args, {
    runbook: input.direction,
    workflowType: 'crossCloudFailover',
    database: input.database,
    input,
    provider: input.to.region.provider,
    summary: `${verb} of ${input.database} from ${input.from.region.name} to ${input.to.region.name} (restore of a portable backup)`,
    workflowId: topologyLockId(input.database),
    awaitsApproval: !args.yes,
  });
}

interface RunbookStart {
  runbook: RunbookReport['runbook'];
  /** The workflow type, when it is not named after the runbook. */
  workflowType?: string;
  database: string;
  input: object;
  summary: string;
  provider: string;
  /** Default: a new ID per run. Failover and failback pass the per-database lock ID. */
  workflowId?: string;
  awaitsApproval?: boolean;
}

async function runRunbook(env: LifeboatEnv, args: Args, start: RunbookStart): Promise<number> {
  const { runbook, database, input, summary, provider } = start;
  const target = temporalTarget();
  let client: Client;
  try {
    client = await connectClient(target);
  } catch (err) {
    process.stderr.write(`cannot reach Temporal at ${target.connectionOptions.address}: ${(err as Error).message}\nstart the local stack with \`lifeboat dev up\`, or set TEMPORAL_ADDRESS\n`);
    return 1;
  }
  const workflowId = start.workflowId ?? `lifeboat/${database}/${runbook}/${new Date().toISOString()}`;
  let handle: Awaited<ReturnType<Client['workflow']['start']>>;
  try {
    handle = await client.workflow.start(start.workflowType ?? runbook, {
      taskQueue: RUNBOOK_TASK_QUEUE,
      workflowId,
      args: [input],
      staticSummary: summary,
      typedSearchAttributes: [
        { key: DatabaseAttr, value: database },
        { key: RunbookAttr, value: runbook },
        { key: ProviderAttr, value: provider },
        { key: TriggeredByAttr, value: whoAmI() },
      ],
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      process.stderr.write(
        `lifeboat: a failover or failback of ${database} is already running (${workflowId}); only one may run per database. ` +
          `Follow it in the Temporal UI, approve it with \`lifeboat approve ${workflowId}\`, or wait for it to finish.\n`,
      );
      return 2;
    }
    throw err;
  }
  const link = uiLink(target, handle.workflowId, handle.firstExecutionRunId, env.uiUrl);
  if (!args.json) process.stderr.write(`started ${workflowId}${link ? `\n  ${link}` : ''}\n`);
  if (start.awaitsApproval) process.stderr.write(`waiting for approval: lifeboat approve ${workflowId}   (or start with --yes)\n`);
  if (!(await hasPollers(client, target.namespace))) {
    process.stderr.write(`warning: no worker is polling task queue "${RUNBOOK_TASK_QUEUE}"; the ${runbook} waits until one does (\`lifeboat dev up\` or \`lifeboat worker\`)\n`);
  }
  const view = process.stdout.isTTY && !args.json ? watch(handle, start.workflowType ?? runbook, summary) : null;
  try {
    const report = (await handle.result()) as RunbookReport;
    await view?.stop();
    if (args.json) process.stdout.write(JSON.stringify({ ...report, uiUrl: link }, null, 2) + '\n');
    else process.stdout.write(renderReport(report, link) + '\n');
    return report.outcome === 'passed' ? 0 : 1;
  } catch (err) {
    await view?.stop();
    const cause = err instanceof WorkflowFailedError ? err.cause : err;
    const type = (cause as { type?: string } | undefined)?.type;
    const message = `${runbook} ${workflowId} failed: ${(cause as Error)?.message ?? String(cause)}`;
    if (args.json) process.stdout.write(JSON.stringify({ workflowId, runbook, database, outcome: 'failed', reason: message, uiUrl: link }, null, 2) + '\n');
    process.stderr.write(message + '\n');
    return type === ErrorType.InvalidInput ? 2 : 1;
  }
}

/** Approves a waiting failover or failback; the runbook's validator rejects a wrong database or a stale plan. */
async function approve(env: LifeboatEnv, args: Args, workflowId: string): Promise<number> {
  const plan = loadPlan(env, args.plan);
  const client = await connectClient();
  const handle = client.workflow.getHandle(workflowId);
  let database: string | undefined;
  try {
    database = (await handle.describe()).typedSearchAttributes.get(DatabaseAttr);
  } catch (err) {
    process.stderr.write(`lifeboat: no workflow ${workflowId}: ${(err as Error).message}\n`);
    return 2;
  }
  if (!database) {
    process.stderr.write(`lifeboat: ${workflowId} is not a Lifeboat runbook (no LifeboatDatabase attribute)\n`);
    return 2;
  }
  try {
    // Loaded here: it brings @temporalio/workflow, which no other command needs (~25 ms at start-up).
    const { approveFailoverUpdate } = await import('../workflows/messages');
    await handle.executeUpdate(approveFailoverUpdate, {
      args: [{ database, planDigest: plan.digest, approvedBy: whoAmI(), reason: args.reason ?? 'approved from the command line' }],
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause;
    process.stderr.write(`lifeboat: approval rejected: ${cause?.message ?? (err as Error).message}\n`);
    return 2;
  }
  process.stderr.write(`approved ${workflowId} (${database}) as ${whoAmI()}\n`);
  return 0;
}

async function hasPollers(client: Client, namespace: string): Promise<boolean> {
  try {
    const response = await client.workflowService.describeTaskQueue({
      namespace,
      taskQueue: { name: RUNBOOK_TASK_QUEUE },
      taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    });
    return (response.pollers?.length ?? 0) > 0;
  } catch {
    return true; // cannot tell: say nothing rather than something wrong
  }
}

function watch(handle: WorkflowHandle, workflowType: string, title: string) {
  const view = new ProgressView();
  const started = Date.now();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const progress = await handle.query<Progress>(`${workflowType}Progress`);
        if (!stopped) view.draw(title, progress, (Date.now() - started) / 1000);
      } catch {
        // Not started yet or just finished: the next tick or the report will tell.
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      view.clear();
    },
  };
}

function whoAmI(): string {
  return process.env.LIFEBOAT_TRIGGERED_BY ?? `cli:${userInfo().username}`;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message ? `lifeboat: ${err.message}\n\n` : ''}${USAGE}\n`);
      process.exit(2);
    }
    if (err instanceof PlanError || err instanceof CodecConfigError) {
      process.stderr.write(`lifeboat: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`lifeboat: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
