// The drill runbook on scripted activities: a drill cancelled during any step tears its scratch
// instance down (once it may exist), and a drill whose verify finds a bad table fails with the
// reason and still tears down.
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { drillInput } from '../../worker/plan';
import type { BackupRef, DrillInput, RunbookReport, ScratchInstance } from '../../workflows/types';
import { DATABASE, DR, HOME, plan } from './fixtures';
import {
  useRunbookServer,
  slow,
  untilCancelled,
  type ActivityName,
  type Call,
  type CallLog,
  type Script,
} from './harness';

const server = useRunbookServer();
// The tests that cancel a run while it runs: on the dev server (see ServerKind in harness.ts).
const devServer = useRunbookServer('dev');

const regions = [HOME, DR];
const input = (): DrillInput => drillInput(plan, DATABASE, { fromLatestBackup: false, triggeredBy: 'test' });
// Written as the test file loads: the RPO a drill measures from it is seconds, within the objective.
const CANARY = { id: 5, writtenAt: new Date().toISOString() };
const backupIn = (region: string): BackupRef => ({
  backupId: 'shop-backup',
  database: DATABASE,
  region,
  provider: 'local',
  createdAt: '2026-01-01T00:00:01.000Z',
  sizeBytes: 1000,
  sha256: 'a'.repeat(64),
  location: `/backups/${region}/shop-backup`,
  copyChecksSource: true,
});
const table = (name: string, ok = true) => ({
  name,
  ok,
  detail: ok ? '10 rows, checksum matches' : '9 rows, expected 10: checksum differs',
});

/** A drill where everything works; each step takes 100 ms, so a cancel can land in it. */
function healthyDrill(): Script {
  return {
    preflight: slow(100, { serverVersion: '15.18', serverVersionNum: 150018, tables: 2, sizeBytes: 1000 }),
    writeCanary: slow(100, CANARY),
    createScratchInstance: async (scratch: ScratchInstance) => slow(100, scratch)(),
    createBackup: slow(100, backupIn(HOME)),
    verifyBackup: slow(100, { sha256: 'a'.repeat(64), tables: 2, newestCanary: CANARY }),
    copyBackupToRegion: slow(100, backupIn(DR)),
    restoreBackup: slow(100, { restored: 'shop-backup', findings: [] }),
    verifyRestore: slow(100, {
      tables: [table('public.orders'), table('lifeboat.canary')],
      checks: [{ name: 'orders exist', ok: true, detail: 'returned true' }],
      newestCanary: CANARY,
    }) as never,
    dropScratchInstance: () => ({ existed: true }),
    notify: () => ({ sent: false }),
  };
}

test('a drill that passes restores, verifies, then tears its scratch instance down', async () => {
  const { result, error, calls, handle } = await server().run<RunbookReport>('drill', input(), {
    regions,
    script: healthyDrill(),
  });
  expect(error).toBeUndefined();
  expect((await handle.describe()).status.name).toBe('COMPLETED');
  expect(result?.reason ?? null).toBeNull();
  expect(result?.outcome).toBe('passed');
  expect(calls.names().at(-1)).toBe('dropScratchInstance');
  expect(result?.cleanup).toEqual([{ name: expect.stringMatching(/^tear down drill-/), ok: true, detail: 'deleted' }]);
}, 30_000);

// Every step, by activity and queue; before the scratch instance can exist there is nothing to tear down.
const everyStep: Array<{ at: ActivityName; queue: string; tearsDown: boolean }> = [
  { at: 'preflight', queue: HOME, tearsDown: false },
  { at: 'writeCanary', queue: HOME, tearsDown: false },
  { at: 'createScratchInstance', queue: DR, tearsDown: true },
  { at: 'createBackup', queue: HOME, tearsDown: true },
  { at: 'verifyBackup', queue: HOME, tearsDown: true },
  { at: 'copyBackupToRegion', queue: DR, tearsDown: true },
  { at: 'verifyBackup', queue: DR, tearsDown: true },
  { at: 'restoreBackup', queue: DR, tearsDown: true },
  { at: 'verifyRestore', queue: DR, tearsDown: true },
];

test.each(everyStep)(
  'a drill cancelled during $at in $queue ends cancelled; scratch torn down: $tearsDown',
  async ({ at, queue, tearsDown }) => {
    const healthy = healthyDrill();
    const blocked = healthy[at] as (input: unknown, call: Call, log: CallLog) => unknown;
    const script: Script = {
      ...healthy,
      [at]: (input: unknown, call: Call, log: CallLog) =>
        call.queue === `lifeboat-${queue}` ? untilCancelled() : blocked(input, call, log),
    };
    const { error, calls } = await devServer().run('drill', input(), {
      regions,
      script,
      during: async (handle, log) => {
        for (let nth = 1; ; nth++) {
          const call = await log.started(at, nth);
          if (call.queue === `lifeboat-${queue}`) break;
        }
        await handle.cancel();
      },
    });
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    const drops = calls.of('dropScratchInstance');
    expect(drops).toHaveLength(tearsDown ? 1 : 0);
    if (tearsDown) {
      const created = calls.of('createScratchInstance')[0]!;
      expect((drops[0]!.input as { scratch: ScratchInstance }).scratch.name).toBe(
        (created.input as ScratchInstance).name,
      );
      // Torn down after every other call settled: never racing a create still in flight.
      const lastOther = Math.max(...calls.calls.filter((c) => c !== drops[0]).map((c) => c.finishedAt ?? Infinity));
      expect(drops[0]!.startedAt).toBeGreaterThanOrEqual(lastOther);
    }
    // Nothing was restored after the cancel.
    if (
      [
        'preflight',
        'writeCanary',
        'createScratchInstance',
        'createBackup',
        'verifyBackup',
        'copyBackupToRegion',
      ].includes(at)
    )
      expect(calls.names()).not.toContain('verifyRestore');
  },
  30_000,
);

test('a drill whose verify finds a bad table fails with the table and its reason, and still tears down', async () => {
  const script: Script = {
    ...healthyDrill(),
    verifyRestore: slow(100, {
      tables: [table('public.orders', false), table('lifeboat.canary')],
      checks: [{ name: 'orders exist', ok: true, detail: 'returned true' }],
      newestCanary: CANARY,
    }) as never,
  };
  const { result, error, calls, handle } = await server().run<RunbookReport>('drill', input(), { regions, script });
  // A failed drill is a Failed workflow (the UI's status and its Failures filter show it), with the report.
  expect(error).toBeInstanceOf(WorkflowFailedError);
  expect((error as WorkflowFailedError).cause).toMatchObject({ type: 'LifeboatRunbookFailed', nonRetryable: true });
  expect((await handle.describe()).status.name).toBe('FAILED');
  expect(result?.outcome).toBe('failed');
  expect(result?.reason).toContain('table public.orders (9 rows, expected 10: checksum differs)');
  expect(result?.reason).toMatch(/^1 of \d+ data checks failed/);
  expect(result?.rtoSeconds).toBeNull();
  expect(result?.cleanup).toEqual([{ name: expect.stringMatching(/^tear down drill-/), ok: true, detail: 'deleted' }]);
  expect(calls.names().slice(-2)).toEqual(['dropScratchInstance', 'notify']);
  expect(calls.of('notify')[0]!.input).toMatchObject({ event: 'drill.failed', outcome: 'failed' });
}, 30_000);

// A teardown retries with backoff for an hour (workflows/options.ts `teardown`), then gives up so
// the report is not blocked forever: that hour of retries passes in seconds. Last in the file: the
// server's clock stays an hour ahead afterwards.
test('a drill whose teardown keeps failing retries it for an hour, then reports the scratch instance not torn down', async () => {
  const script: Script = {
    ...healthyDrill(),
    dropScratchInstance: () => {
      throw new Error('the platform did not answer');
    },
  };
  const { result, calls } = await server().run<RunbookReport>('drill', input(), { regions, script });
  const drops = calls.of('dropScratchInstance');
  // Backoff 2 s doubling to 1 minute: about 60 tries in the hour, all failed; none after it.
  expect(drops.length).toBeGreaterThan(50);
  expect(drops.every((c) => c.outcome === 'failed')).toBe(true);
  expect(result?.cleanup).toEqual([
    { name: expect.stringMatching(/^tear down drill-/), ok: false, detail: 'Error: the platform did not answer' },
  ]);
  // About an hour of the run's time (the server's clock, skipped ahead): the retries stop when the
  // next one would start past the hour.
  const hours = (Date.parse(result!.finishedAt) - Date.parse(result!.startedAt)) / 3_600_000;
  expect(hours).toBeCloseTo(1, 1);
  expect(calls.names().at(-1)).toBe('notify');
}, 30_000);
