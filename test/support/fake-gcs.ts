// fake-gcs-server: the Cloud Storage stand-in the GCS object-store tests run against. Plain HTTP on
// 127.0.0.1, objects in memory, no IAM and no credentials; buckets must be created before use.
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { emulatorLogDir, installedTool, waitUntilAnswering } from './t2-tools';

const STARTUP_SECONDS = 30;

export interface FakeGcsServer {
  pid: number;
  /** The value for STORAGE_EMULATOR_HOST: the Node library takes it as the JSON API's root. */
  emulatorHost: string;
}

/** Where scripts/setup.sh --with-gcs-emulator installs it; throws with the fix when it is not there. */
export function fakeGcsServerPath(): string {
  return installedTool('.tools/bin', 'fake-gcs-server', '--with-gcs-emulator');
}

export async function startFakeGcs(port: number): Promise<FakeGcsServer> {
  const log = join(emulatorLogDir('fake-gcs'), 'fake-gcs-server.log');
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
  await waitUntilAnswering(child, `fake-gcs-server on port ${port}`, `${origin}/storage/v1/b`, log, STARTUP_SECONDS);
  return { pid: child.pid!, emulatorHost: `${origin}/storage/v1` };
}
