// The emulators the cloud tests start (moto_server, fake-gcs-server): where scripts/setup.sh
// installs them, where they log, and the wait until one answers.
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The path of `name` in the repository's `dir` (`.tools/bin`, `.venv/bin`), where
 * `bash scripts/setup.sh <setupFlag>` installs it; throws with the fix when it is not there.
 */
export function installedTool(dir: string, name: string, setupFlag: string): string {
  const path = join(__dirname, '..', '..', dir, name);
  if (!existsSync(path)) {
    throw new Error(
      `${name} is missing (expected ${path}): run \`bash scripts/test.sh\`, or \`bash scripts/setup.sh ${setupFlag}\` then jest`,
    );
  }
  return path;
}

/** Where an emulator logs: LIFEBOAT_HOME, or without it a new temporary directory named `lifeboat-<name>-…`. */
export function emulatorLogDir(name: string): string {
  const home = process.env.LIFEBOAT_HOME;
  if (!home) return mkdtempSync(join(tmpdir(), `lifeboat-${name}-`));
  mkdirSync(home, { recursive: true });
  return home;
}

/**
 * Waits until `probe` gets any HTTP answer (a refused connection means not yet); throws with the end
 * of `log` when the emulator `what` exits first or has not answered within `seconds` (then kills it).
 */
export async function waitUntilAnswering(
  child: ChildProcess,
  what: string,
  probe: string,
  log: string,
  seconds: number,
): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!(await answers(probe))) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `${what} exited (${child.exitCode ?? child.signalCode}) before it answered; ${log} ends with:\n${tail(log)}`,
      );
    }
    if (Date.now() > deadline) {
      child.kill();
      throw new Error(`${what} did not answer HTTP within ${seconds}s; ${log} ends with:\n${tail(log)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

function tail(file: string, lines = 20): string {
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}
