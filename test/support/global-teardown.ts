import { existsSync, readFileSync, rmSync } from 'node:fs';
import { loadEnv } from '../../worker/env';
import { buildProviders } from '../../worker/main';
import { DEMO_REGIONS } from '../../scripts/dev/stack';
import { runningWatchdog, temporalPidFile } from './temporal-watchdog';

export default async function globalTeardown(): Promise<void> {
  const env = loadEnv();
  const watchdog = runningWatchdog();
  await watchdog?.stop();
  const local = buildProviders(env).local;
  for (const region of DEMO_REGIONS)
    await local
      .regionCluster(region)
      .stop('immediate')
      .catch(() => undefined);
  // A chaos test that restarted the server (test/chaos/harness.ts), or the watchdog after a death,
  // wrote the new one's pid here: the first pid may belong to another process by now.
  const restarted = temporalPidFile(env.home);
  stop(existsSync(restarted) ? readFileSync(restarted, 'utf8').trim() : process.env.LIFEBOAT_TEST_TEMPORAL_PID);
  stop(process.env.LIFEBOAT_TEST_MOTO_PID);
  stop(process.env.LIFEBOAT_TEST_FAKE_GCS_PID);
  // Retried: a worker may still be copying a spare scratch instance in there (in the background,
  // activities/providers/local.ts replenishSpare), which a single pass could race with.
  if (!process.env.LIFEBOAT_TEST_KEEP_HOME)
    rmSync(env.home, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  // Said again at the end, where a reader of the run's log looks first.
  const deaths = watchdog?.deaths ?? [];
  if (deaths.length > 0) {
    const lines = deaths.map((d) => `  ${d.at}: pid ${d.pid}, ${d.how}`);
    console.error(
      `\n!! test stack: the Temporal dev server died ${deaths.length} time(s) during this run, not on purpose (restarted each time):\n${lines.join('\n')}`,
    );
    if (process.env.LIFEBOAT_TEST_STRICT_TEMPORAL === '1')
      throw new Error('the Temporal dev server died during the run (LIFEBOAT_TEST_STRICT_TEMPORAL=1)');
  }
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
