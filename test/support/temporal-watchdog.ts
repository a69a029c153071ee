// The test run's Temporal dev server, watched. Every test file shares one server (global-setup.ts):
// if it dies, every later file fails at "connection refused" and the log says nothing of why. The
// watchdog notices within seconds, prints why (exit code or signal, the server's last log lines,
// free disk and memory), and starts it again on the same ports and SQLite file, as the chaos harness
// does on purpose, so that the rest of the run still tests Lifeboat. Each death is counted, printed
// again at the end of the run (global-teardown.ts), and fails the run under LIFEBOAT_TEST_STRICT_TEMPORAL=1.
import { existsSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { freemem, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import type { LifeboatEnv } from '../../worker/env';
import { portOpen, startTemporal, type StackPorts } from '../../scripts/dev/stack';

/** Present while the chaos harness has the server down on purpose (test/chaos/harness.ts restartTemporal). */
export const deliberateOutageFile = (home: string): string => join(home, 'temporal', 'deliberately-down');
/** The pid of the server now serving; read by the chaos harness and the global teardown. */
export const temporalPidFile = (home: string): string => join(home, 'temporal', 'test-server.pid');

export interface TemporalDeath {
  at: string;
  pid: number;
  how: string;
}

export interface TemporalWatchdog {
  deaths: TemporalDeath[];
  /** For startTemporal's onExit: how a server this process started ended. */
  exited(pid: number, code: number | null, signal: NodeJS.Signals | null): void;
  /** Starts checking, the server being `pid` (until the pid file names another). */
  watch(pid: number): void;
  /** Stops checking, after a last check (a death just before the end of the run is still told). */
  stop(): Promise<void>;
}

const CHECK_MS = 2_000;
/** A deliberate outage longer than this is not deliberate any more (a chaos test that died mid-restart). */
const DELIBERATE_LIMIT_MS = 120_000;

/** Where the global setup leaves its watchdog for the global teardown (both run in jest's main process). */
const RUNNING = Symbol.for('lifeboat.test.temporalWatchdog');
export const runningWatchdog = (): TemporalWatchdog | undefined =>
  (globalThis as { [RUNNING]?: TemporalWatchdog })[RUNNING];

/** A watchdog for the server on `ports`; pass its `exited` to startTemporal, then call watch(pid). */
export function temporalWatchdog(env: LifeboatEnv, ports: StackPorts): TemporalWatchdog {
  let firstPid = 0;
  let timer: NodeJS.Timeout | undefined;
  const exits = new Map<number, string>();
  const exited = (pid: number, code: number | null, signal: NodeJS.Signals | null): void =>
    void exits.set(pid, describeExit(code, signal));
  const deaths: TemporalDeath[] = [];
  let busy = false;
  let closedChecks = 0;

  const check = async (final = false): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      if (deliberatelyDown(env.home)) return void (closedChecks = 0);
      if (await portOpen(ports.temporal)) return void (closedChecks = 0);
      // Two checks in a row, 2 s apart: a server busy for a moment is not a dead one.
      if (++closedChecks < 2 && !final) return;
      closedChecks = 0;
      const pid = currentPid(env.home, firstPid);
      const death: TemporalDeath = {
        at: new Date().toISOString(),
        pid,
        how:
          exits.get(pid) ??
          (alive(pid)
            ? 'alive, but its port is closed'
            : 'gone (exit status not seen: a server the chaos harness started)'),
      };
      deaths.push(death);
      console.error(
        [
          `\n!! test stack: the Temporal dev server (pid ${pid}, port ${ports.temporal}) stopped answering at ${death.at}: ${death.how}.`,
          `!! ${machineState(env.home)}`,
          `!! its log (${serverLog(env.home)}) ends:`,
          ...logTail(env.home).map((l) => `!!   ${l}`),
          final
            ? '!! (the run is over: not started again)'
            : '!! starting it again on the same ports and SQLite file; tests in flight may fail.',
        ].join('\n'),
      );
      if (final) return;
      try {
        const started = await startTemporal(env, ports, () => undefined, { onExit: exited });
        writeFileSync(temporalPidFile(env.home), `${started.pid}\n`);
        console.error(`!! test stack: the Temporal dev server is back (pid ${started.pid}).`);
      } catch (err) {
        console.error(`!! test stack: could not start the Temporal dev server again: ${(err as Error).message}`);
      }
    } finally {
      busy = false;
    }
  };
  const watchdog: TemporalWatchdog = {
    deaths,
    exited,
    watch: (pid) => {
      firstPid = pid;
      timer = setInterval(() => void check(), CHECK_MS);
      timer.unref();
    },
    stop: async () => {
      clearInterval(timer);
      while (busy) await new Promise((r) => setTimeout(r, 100));
      if (timer) await check(true);
    },
  };
  (globalThis as { [RUNNING]?: TemporalWatchdog })[RUNNING] = watchdog;
  return watchdog;
}

function deliberatelyDown(home: string): boolean {
  const file = deliberateOutageFile(home);
  if (!existsSync(file)) return false;
  const since = Number(readFileSync(file, 'utf8').trim());
  return Date.now() - since < DELIBERATE_LIMIT_MS;
}

function currentPid(home: string, firstPid: number): number {
  const file = temporalPidFile(home);
  return existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) || firstPid : firstPid;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exited with code ${code}`;
}

const serverLog = (home: string): string => join(home, 'temporal', 'server.log');

function logTail(home: string): string[] {
  try {
    return readFileSync(serverLog(home), 'utf8').trimEnd().split('\n').slice(-30);
  } catch (err) {
    return [`(unreadable: ${(err as Error).message})`];
  }
}

/** Free disk under the test home, free memory and the load: the usual outside causes of a dead server. */
export function machineState(home: string): string {
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
  let disk = 'unknown';
  try {
    const fs = statfsSync(home);
    disk = `${gib(fs.bavail * fs.bsize)} of ${gib(fs.blocks * fs.bsize)}`;
  } catch {
    // leave it unknown
  }
  return `free disk under ${home}: ${disk}; free memory ${gib(freemem())} of ${gib(totalmem())}; load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`;
}
