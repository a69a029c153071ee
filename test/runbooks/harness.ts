// Runbooks against scripted activities: the real workflow code (the same bundle the worker runs) on
// Temporal's time-skipping test server, with one mock worker per region task queue whose activities
// are a table of functions (activity name -> function). Every call is recorded: name, queue, input,
// when it started and finished, how it ended. No PostgreSQL, no cloud, seconds per run.
//
// The test server (Java, io.temporal:temporal-test-server) comes from Maven Central:
// `scripts/setup.sh --with-test-server` copies it into .tools, scripts/dev/temporal-test-server runs
// it (@temporalio/testing would download it from temporal.download, out of reach here). Time skips
// only while run() waits for the result once `during` is done: a run left to itself jumps over its
// timers (a 15-minute approval timeout, a retry's backoff) in milliseconds. The tests that cancel a
// run while it runs use the dev server instead (ServerKind says why).
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import { childEnv } from '../../activities/pg/process';
import { portOpen, temporalCli } from '../../scripts/dev/stack';
import { loadEnv } from '../../worker/env';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { regionTaskQueue, RUNBOOK_TASK_QUEUE } from '../../workflows/types';
import { reportOfFailure } from '../../workflows/runbook-failure';
import { freePort } from '../support/ports';
import { workflowBundle } from '../support/stack';
import { version as workflowSdkVersion } from '@temporalio/workflow/package.json';

export type ActivityName = keyof Activities;
type Input<K extends ActivityName> = Parameters<Activities[K]>[0];
/** What the real activity returns inside its `{ value, attempt }` envelope (activities/instrument.ts). */
type Value<K extends ActivityName> = Awaited<ReturnType<Activities[K]>> extends { value: infer V } ? V : never;

/**
 * One scripted activity: gets the input, the call's record and the run's log (to wait for another
 * call), returns the value (the harness adds the envelope).
 */
export type Mock<K extends ActivityName> = (input: Input<K>, call: Call, log: CallLog) => Value<K> | Promise<Value<K>>;
export type Script = { [K in ActivityName]?: Mock<K> };

export interface Call {
  name: ActivityName;
  queue: string;
  input: unknown;
  /** Milliseconds since the run started (wall clock). */
  startedAt: number;
  finishedAt?: number;
  outcome?: 'completed' | 'failed' | 'cancelled';
}

interface RunOptions {
  regions: string[];
  script: Script;
  workflowId?: string;
  during?: (handle: WorkflowHandle, calls: CallLog) => Promise<void>;
}

interface RunResult<R> {
  result: R | undefined;
  error: unknown;
  calls: CallLog;
  handle: WorkflowHandle;
}

/**
 * Where the runbooks run. 'time-skipping': Temporal's test server, whose time jumps over the run's
 * timers once nothing else can happen. 'dev': the Temporal dev server (the `temporal` CLI), the
 * real server's code, in real time: for the tests that cancel a run while it runs. The test server
 * mishandles a cancel that races an activity finishing (a runbook cancelled while the step beside the
 * cancelled one completes): it refuses the workflow's cancel of the finished activity
 * ("ACTIVITY_UNKNOWN for scheduledEventId=9"), times the workflow task out and the run never ends.
 */
export type ServerKind = 'time-skipping' | 'dev';

/** A Temporal server of its own (in memory), started once per test file. */
export class RunbookServer {
  private constructor(
    readonly client: Client,
    private readonly connection: NativeConnection,
    private readonly shutdown: () => Promise<void>,
  ) {}

  static async start(kind: ServerKind): Promise<RunbookServer> {
    quietRuntime();
    return kind === 'dev' ? RunbookServer.startDevServer() : RunbookServer.startTestServer();
  }

  /** The time-skipping test server (scripts/dev/temporal-test-server), Lifeboat's search attributes registered. */
  static async startTestServer(): Promise<RunbookServer> {
    const root = join(__dirname, '..', '..');
    if (!existsSync(join(root, '.tools', 'temporal-test-server', 'lib')))
      throw new Error('the time-skipping test server is not installed: run scripts/setup.sh --with-test-server');
    // The SDK gives the server 5 s to listen (fixed in sdk-core); the JVM takes 1.5 to 3 s here, even
    // at a load of 20 on 2 cores, but not when another server starts beside it: hence one at a time.
    const env = await TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: join(root, 'scripts', 'dev', 'temporal-test-server') } },
    }).catch((err: unknown) => {
      throw new Error(
        `the time-skipping test server did not start (after a timeout its JVM may be left running: sdk-core does not kill it): ${err}`,
      );
    });
    // The runbooks upsert Lifeboat's search attributes, which the test server refuses until they are
    // registered. (It lacks ListSearchAttributes, which scripts/dev/stack.ts's registration asks first.)
    const { INDEXED_VALUE_TYPE_DOUBLE, INDEXED_VALUE_TYPE_KEYWORD } = temporal.api.enums.v1.IndexedValueType;
    await env.connection.operatorService.addSearchAttributes({
      namespace: 'default',
      searchAttributes: Object.fromEntries(
        ALL_SEARCH_ATTRIBUTES.map((a) => [
          a.name,
          a.type === 'DOUBLE' ? INDEXED_VALUE_TYPE_DOUBLE : INDEXED_VALUE_TYPE_KEYWORD,
        ]),
      ),
    });
    return new RunbookServer(env.client, env.nativeConnection, () => env.teardown());
  }

  /** The dev server, in memory, with Lifeboat's search attributes. */
  static async startDevServer(): Promise<RunbookServer> {
    const port = await freePort();
    const args = [
      'server',
      'start-dev',
      '--headless',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--log-level',
      'error',
      ...ALL_SEARCH_ATTRIBUTES.flatMap((a) => [
        '--search-attribute',
        `${a.name}=${a.type === 'DOUBLE' ? 'Double' : 'Keyword'}`,
      ]),
    ];
    const child = spawn(temporalCli(loadEnv()), args, { stdio: 'ignore', env: childEnv({ HOME: process.env.HOME }) });
    const address = `127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    while (!(await portOpen(port))) {
      if (child.exitCode !== null)
        throw new Error(`the Temporal dev server exited with ${child.exitCode} before it listened on ${address}`);
      if (Date.now() > deadline) throw new Error(`the Temporal dev server did not listen on ${address} within 30 s`);
      await sleep(100);
    }
    const client = new Client({ connection: await Connection.connect({ address }) });
    const connection = await NativeConnection.connect({ address });
    // The port opens before the default namespace is served.
    while (
      !(await client.workflowService.describeNamespace({ namespace: 'default' }).then(
        () => true,
        () => false,
      ))
    )
      await sleep(100);
    return new RunbookServer(client, connection, async () => {
      await client.connection.close().catch(() => undefined);
      await connection.close().catch(() => undefined);
      child.kill('SIGTERM');
    });
  }

  /** Workers kept between runs (starting and draining them takes longer than a scripted run). */
  private workers: { regions: string; names: Set<string>; stop: () => Promise<void> } | undefined;
  /** The run the mock workers serve now: its script, its log, its workflow ID. */
  private current: { workflowId: string; script: Script; log: CallLog } | undefined;
  /** Settles when the last run() has returned. */
  private settled: Promise<void> = Promise.resolve();

  async stop(): Promise<void> {
    // A run left going by a test that timed out is ended first: a wait for its result must not
    // outlive the connection (the closed channel would throw into the next test file).
    const left = this.current;
    if (left)
      await this.client.workflow
        .getHandle(left.workflowId)
        .terminate('the test file ended')
        .catch(() => undefined);
    await this.settled;
    await this.workers?.stop();
    await this.shutdown();
  }

  /**
   * Runs one runbook to its end against the script: a workflow worker on the runbook queue and a
   * mock activity worker on each region's queue. `during` gets the handle as soon as it started;
   * time skips only once it is done (while it runs, the run's timers take their real time).
   */
  run<R = unknown>(workflowType: string, input: unknown, options: RunOptions): Promise<RunResult<R>> {
    const running = this.runToEnd<R>(workflowType, input, options);
    this.settled = running.then(
      () => undefined,
      () => undefined,
    );
    return running;
  }

  private async runToEnd<R>(workflowType: string, input: unknown, options: RunOptions): Promise<RunResult<R>> {
    await this.workersFor(options.regions, Object.keys(options.script));
    const calls = new CallLog();
    const workflowId =
      options.workflowId ?? `runbook-test/${workflowType}/${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    this.current = { workflowId, script: options.script, log: calls };
    try {
      const handle = await this.client.workflow.start(workflowType, {
        taskQueue: RUNBOOK_TASK_QUEUE,
        workflowId,
        args: [input],
      });
      await options.during?.(handle, calls);
      let result: R | undefined;
      let error: unknown;
      try {
        result = (await handle.result()) as R;
      } catch (err) {
        // A runbook that failed ends as a Failed workflow with its report: the report is the result,
        // and `error` says how the workflow ended.
        result = reportOfFailure(err) as R | undefined;
        error = err;
      }
      return { result, error, calls, handle };
    } finally {
      this.current = undefined;
    }
  }

  /** Workers for these regions serving at least these activity names: the running ones, or new ones. */
  private async workersFor(regions: string[], names: string[]): Promise<void> {
    const key = [...regions].sort().join(',');
    if (this.workers && this.workers.regions === key && names.every((n) => this.workers!.names.has(n))) return;
    const all = new Set([...(this.workers?.regions === key ? this.workers.names : []), ...names]);
    await this.workers?.stop();
    this.workers = undefined;
    const activities = Object.fromEntries(
      [...all].map((name) => [name, (input: unknown) => this.serve(name as ActivityName, input)]),
    );
    const workers = [
      await Worker.create({
        connection: this.connection,
        taskQueue: RUNBOOK_TASK_QUEUE,
        workflowBundle: await cachedBundle(),
      }),
      ...(await Promise.all(
        regions.map((region) =>
          Worker.create({
            connection: this.connection,
            taskQueue: regionTaskQueue(region),
            activities,
            // Cancellation reaches an activity in a heartbeat's answer: heartbeats go out at once here.
            maxHeartbeatThrottleInterval: '100ms',
            defaultHeartbeatThrottleInterval: '100ms',
          }),
        ),
      )),
    ];
    const running = workers.map((w) => w.run());
    this.workers = {
      regions: key,
      names: all,
      stop: async () => {
        workers.forEach((w) => w.shutdown());
        await Promise.all(running);
      },
    };
  }

  /** One activity call: the current run's mock, recorded; a call of another run or an unscripted name fails. */
  private async serve(name: ActivityName, input: unknown): Promise<unknown> {
    const ctx = Context.current();
    const run = this.current;
    if (!run || run.workflowId !== ctx.info.workflowExecution?.workflowId) {
      throw ApplicationFailure.nonRetryable(
        `${name} called by ${ctx.info.workflowExecution?.workflowId}, which is not the run under test`,
        'NotUnderTest',
      );
    }
    const call = run.log.start(name, ctx.info.taskQueue, input);
    try {
      const mock = run.script[name] as ((input: unknown, call: Call, log: CallLog) => unknown) | undefined;
      if (!mock) throw ApplicationFailure.nonRetryable(`the test's script has no ${name}`, 'NotScripted');
      const value = await mock(input, call, run.log);
      run.log.finish(call, 'completed');
      return { value, attempt: ctx.info.attempt };
    } catch (err) {
      run.log.finish(call, ctx.cancellationSignal.aborted ? 'cancelled' : 'failed');
      throw err;
    }
  }
}

/** A server for the test file: started before its tests, stopped after them. */
export function useRunbookServer(kind: ServerKind = 'time-skipping'): () => RunbookServer {
  let server: RunbookServer | undefined;
  beforeAll(async () => {
    server = await RunbookServer.start(kind);
  }, 60_000);
  afterAll(() => server?.stop());
  return () => {
    if (!server) throw new Error('the runbook server did not start (see the beforeAll failure)');
    return server;
  };
}

let runtimeInstalled = false;
/** The SDK's own log: errors only (worker state changes would drown the test output). */
function quietRuntime(): void {
  if (runtimeInstalled) return;
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // Already installed by another file in this process: keep that one.
  }
  runtimeInstalled = true;
}

/**
 * The workflow bundle, built once for all the runbook test files: kept in the temp directory under
 * a hash of workflows/ (runbooks import only their own folder, the SDK and types) and the SDK's version.
 */
async function cachedBundle(): Promise<{ code: string }> {
  const dir = join(__dirname, '..', '..', 'workflows');
  const hash = createHash('sha256').update(workflowSdkVersion);
  // Recursive: the runbook kit may live in a folder of its own under workflows/.
  for (const file of (readdirSync(dir, { recursive: true }) as string[]).sort()) {
    const path = join(dir, file);
    if (statSync(path).isFile()) hash.update(file).update(readFileSync(path));
  }
  const path = join(tmpdir(), `lifeboat-runbook-bundle-${hash.digest('hex').slice(0, 16)}.js`);
  if (existsSync(path)) return { code: readFileSync(path, 'utf8') };
  const bundle = await workflowBundle();
  writeFileSync(`${path}.${process.pid}`, bundle.code);
  renameSync(`${path}.${process.pid}`, path);
  return bundle;
}

/** The calls a run made, in the order they started. */
export class CallLog {
  private readonly t0 = Date.now();
  readonly calls: Call[] = [];
  private waiters: Array<() => void> = [];

  start(name: ActivityName, queue: string, input: unknown): Call {
    const call: Call = { name, queue, input, startedAt: Date.now() - this.t0 };
    this.calls.push(call);
    this.waiters.splice(0).forEach((w) => w());
    return call;
  }

  finish(call: Call, outcome: NonNullable<Call['outcome']>): void {
    call.finishedAt = Date.now() - this.t0;
    call.outcome = outcome;
  }

  names(): string[] {
    return this.calls.map((c) => c.name);
  }

  /** The calls of one activity, in order. */
  of(name: ActivityName): Call[] {
    return this.calls.filter((c) => c.name === name);
  }

  /** Resolves once a call of `name` has started (the first one, or the nth). */
  async started(name: ActivityName, nth = 1, timeoutMs = 20_000): Promise<Call> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.of(name)[nth - 1];
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(`no call #${nth} of ${name} within ${timeoutMs} ms; calls so far: ${this.names().join(', ')}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }
}

/** Whether two calls ran at the same time (each started before the other finished). */
export function overlapped(a: Call, b: Call): boolean {
  return a.startedAt < (b.finishedAt ?? Infinity) && b.startedAt < (a.finishedAt ?? Infinity);
}

/** A scripted activity that never finishes on its own: it heartbeats until the runbook cancels it. */
export async function untilCancelled(): Promise<never> {
  const ctx = Context.current();
  for (;;) {
    ctx.heartbeat();
    await Promise.race([ctx.cancelled, ctx.sleep(100)]);
  }
}

/** A scripted activity that takes a while, so that what runs beside it can be seen to. */
export const slow =
  <T>(ms: number, value: T) =>
  async (): Promise<T> => {
    await Context.current().sleep(ms);
    return value;
  };

/**
 * A scripted activity that finishes 50 ms after `partner` has started too (or after a second): two
 * steps that run side by side overlap however slow the machine, and two that run one after the
 * other never do.
 */
export const besides =
  <T>(partner: ActivityName, value: T) =>
  async (_input: unknown, _call: Call, log: CallLog): Promise<T> => {
    await log.started(partner, 1, 1000).catch(() => undefined);
    // A moment more, so that the overlap shows in millisecond times.
    await sleep(50);
    return value;
  };

/** A failure as a verdict: not retried (ErrorType names are in workflows/types.ts). */
export function verdictFailure(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, type);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
