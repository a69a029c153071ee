import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadEnv } from '../../worker/env';
import { buildProviders } from '../../worker/main';
import { DEMO_REGIONS } from '../../scripts/dev/stack';

export default async function globalTeardown(): Promise<void> {
  const env = loadEnv();
  const local = buildProviders(env).local;
  for (const region of DEMO_REGIONS) await local.regionCluster(region).stop('immediate').catch(() => undefined);
  // A chaos test that restarted the server killed the first one and wrote the new one's pid here
  // (test/chaos/harness.ts): the first pid may belong to another process by now.
  const restarted = join(env.home, 'temporal', 'test-server.pid');
  stop(existsSync(restarted) ? readFileSync(restarted, 'utf8').trim() : process.env.LIFEBOAT_TEST_TEMPORAL_PID);
  stop(process.env.LIFEBOAT_TEST_MOTO_PID);
  stop(process.env.LIFEBOAT_TEST_FAKE_GCS_PID);
  if (!process.env.LIFEBOAT_TEST_KEEP_HOME) rmSync(env.home, { recursive: true, force: true });
}

/** Stops a server the global setup started, by the pid it left in the environment. */
function stop(pidVar: string | undefined): void {
  const pid = Number(pidVar);
  if (!pid) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
}
