// One real stack for the whole test run: a Temporal dev server (in a throwaway SQLite file),
// the two local PostgreSQL regions with a small demo database, all under a temporary LIFEBOAT_HOME,
// moto_server standing in for AWS and fake-gcs-server for Cloud Storage. Test files start their own
// workers against it.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadEnv } from '../../worker/env';
import { startRegions, startTemporal } from '../../scripts/dev/stack';
import { fakeGcsServerPath, startFakeGcs } from './fake-gcs';
import { motoServerPath, startMoto } from './moto';
import { freePort } from './ports';
import { temporalWatchdog } from './temporal-watchdog';

export default async function globalSetup(): Promise<void> {
  // Before starting anything: jest skips the teardown when the setup fails, so servers would leak.
  motoServerPath();
  fakeGcsServerPath();
  buildCli();
  // Under /tmp, not the checkout: the postgres OS user must reach it wherever the clone lives.
  const home = mkdtempSync(join(tmpdir(), 'lifeboat-test-'));
  chmodSync(home, 0o755);
  process.env.LIFEBOAT_HOME = home;
  const env = loadEnv();
  const ports = { temporal: await freePort(), ui: await freePort(), pgBase: 0 };
  const watchdog = temporalWatchdog(env, ports);
  const temporal = await startTemporal(env, ports, () => undefined, { onExit: watchdog.exited });
  watchdog.watch(temporal.pid);
  process.env.TEMPORAL_ADDRESS = temporal.address;
  process.env.LIFEBOAT_TEST_TEMPORAL_PID = String(temporal.pid);
  const pg = [await freePort(), await freePort()];
  await startRegions(env, { ...ports, pgBase: pg[0]! }, () => undefined, 0.2, pg);
  await startAwsStandIn();
  await startGcsStandIn();
}

/** The AWS SDK reads these itself, so code under test reaches moto without a test-only option. */
async function startAwsStandIn(): Promise<void> {
  const moto = await startMoto(await freePort());
  process.env.AWS_ENDPOINT_URL = moto.endpoint;
  process.env.AWS_ACCESS_KEY_ID = 'testing';
  process.env.AWS_SECRET_ACCESS_KEY = 'testing';
  process.env.LIFEBOAT_TEST_MOTO_PID = String(moto.pid);
}

/** @google-cloud/storage reads this itself, and then sends no credentials. */
async function startGcsStandIn(): Promise<void> {
  const gcs = await startFakeGcs(await freePort());
  process.env.STORAGE_EMULATOR_HOST = gcs.emulatorHost;
  process.env.LIFEBOAT_TEST_FAKE_GCS_PID = String(gcs.pid);
}

/**
 * Tests that run the CLI or worker processes run dist/: build it once here (incremental, seconds
 * when nothing changed), so a plain `npx jest` never tests stale code.
 */
function buildCli(): void {
  const root = join(__dirname, '..', '..');
  const build = spawnSync(
    process.execPath,
    [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    { cwd: root, encoding: 'utf8' },
  );
  if (build.status !== 0)
    throw new Error(`the build failed, so the tests would run stale code:\n${build.stdout}${build.stderr}`);
}
