import { rmSync } from 'node:fs';
import { loadEnv } from '../../worker/env';
import { buildProviders } from '../../worker/main';
import { DEMO_REGIONS } from '../../scripts/dev/stack';

export default async function globalTeardown(): Promise<void> {
  const env = loadEnv();
  const local = buildProviders(env).local;
  for (const region of DEMO_REGIONS) await local.regionCluster(region).stop('immediate').catch(() => undefined);
  const pid = Number(process.env.LIFEBOAT_TEST_TEMPORAL_PID);
  if (pid) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  if (!process.env.LIFEBOAT_TEST_KEEP_HOME) rmSync(env.home, { recursive: true, force: true });
}
