// fake-gcs-server: the Cloud Storage stand-in the GCS object-store tests run against. Plain HTTP on
// 127.0.0.1, objects in memory, no IAM and no credentials; buckets must be created before use.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const STARTUP_SECONDS = 30;

export interface FakeGcsServer {
  pid: number;
  /** The value for STORAGE_EMULATOR_HOST: the Node library takes it as the JSON API's root. */
  emulatorHost: string;
}

/** Where scripts/setup.sh --with-gcs-emulator installs it; throws with the fix when it is not there. */
export function fakeGcsServerPath(): string {
  const path = join(__dirname, '..', '..', '.tools', 'bin', 'fake-gcs-server');
  if (!existsSync(path)) {
    throw new Error(
      `fake-gcs-server is missing (expected ${path}): run \`bash scripts/test.sh\`, or \`bash scripts/setup.sh --with-gcs-emulator\` then jest`,
    );
  }
  return path;
}

export async function startFakeGcs(port: number): Promise<FakeGcsServer> {
  const log = join(logDir(), 'fake-gcs-server.log');
  const out = openSync(log, 'a');
  const origin = `http://127.0.0.1:${port}`;
  // -external-url: resumable upload sessions are addressed by the Location the server hands out.
  const args = [
    '-scheme',
    'http',
    '-host',
    '127.0.0.1',
    '-port',
    String(port),
    '-backend',
    'memory',
    '-external-url',
    origin,
    '-log-level',
    'warn',
  ];
  const child = spawn(fakeGcsServerPath(), args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  const deadline = Date.now() + STARTUP_SECONDS * 1000;
  while (!(await answers(origin))) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `fake-gcs-server on port ${port} exited (${child.exitCode ?? child.signalCode}) before it answered; ${log} ends with:\n${tail(log)}`,
      );
    }
    if (Date.now() > deadline) {
      child.kill();
      throw new Error(
        `fake-gcs-server on port ${port} did not answer HTTP within ${STARTUP_SECONDS}s; ${log} ends with:\n${tail(log)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { pid: child.pid!, emulatorHost: `${origin}/storage/v1` };
}

function logDir(): string {
  const home = process.env.LIFEBOAT_HOME;
  if (!home) return mkdtempSync(join(tmpdir(), 'lifeboat-fake-gcs-'));
  mkdirSync(home, { recursive: true });
  return home;
}

/** Any HTTP answer means the server is up; a refused connection means not yet. */
async function answers(origin: string): Promise<boolean> {
  try {
    await fetch(`${origin}/storage/v1/b`, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

function tail(file: string, lines = 20): string {
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}
