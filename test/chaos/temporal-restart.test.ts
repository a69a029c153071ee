// Chaos: the Temporal dev server killed with SIGKILL mid-run and started again on the same port and
// SQLite file (scripts/dev/stack.ts startTemporal), while worker processes (`lifeboat worker -f
// plan`) and the runbook carry on. The runs must finish passed, with the same checks as the worker
// kills (one backup and copy, no scratch left; for switchovers nothing acknowledged lost and never
// two writable primaries), and the worker processes must reconnect by themselves: the SDK worker
// retries its polls while the server is away (a supervisor would restart one that exited; the
// harness would too, and this test fails if it had to).
// Reduced (default): one restart, mid-restore of a drill, 3 s down. LIFEBOAT_CHAOS=full: one restart
// in each runbook: drill, backup (20 s down), planned failover (mid-promote, 20 s down), unplanned
// failover (mid-fence, whose 30 s deadline runs on the server's timers; 20 s down), failback.
import type { Client } from '@temporalio/client';
import { client } from '../support/stack';
import { BackupBench, boundary, FULL, restartTemporalAt, runCases, SwitchoverBench } from './harness';

let temporal: Client;
let backups: BackupBench;
let switchovers: SwitchoverBench | undefined;

beforeAll(async () => {
  temporal = await client();
  backups = await BackupBench.create(temporal, 'chaos-orders');
  if (FULL) switchovers = await SwitchoverBench.create(temporal, 'chaos-r-a', 'chaos-r-b', 'chaosledger');
}, 300_000);

afterAll(async () => {
  await switchovers?.close();
  await backups?.close();
  await temporal?.connection.close();
});

test(
  `the Temporal dev server restarted mid-run (${FULL ? 'once in each runbook' : 'a drill, mid-restore'}): each run finishes passed and the worker processes reconnect by themselves`,
  async () => {
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['drill, mid-restore', () => backups.run('drill', restartTemporalAt(boundary('restore')))],
    ];
    if (FULL) {
      const sw = switchovers!;
      cases.push(
        // Longer outages too: activities finish while the server is away and report when it is back.
        [
          'backup, mid-copy, 20 s down',
          () => backups.run('backup', restartTemporalAt(boundary('copy to local-b'), 20_000)),
        ],
        [
          'planned failover, mid-promote, 20 s down',
          () => sw.run('failover', 'planned', restartTemporalAt(boundary('promote standby'), 20_000)),
        ],
        [
          'failback, mid re-protect',
          () => sw.run('failback', 'planned', restartTemporalAt(boundary('re-protect home server'))),
        ],
        [
          'unplanned failover, mid-fence, 20 s down',
          () => sw.run('failover', 'unplanned', restartTemporalAt(boundary('fence primary'), 20_000)),
        ],
        ['failback after it', () => sw.run('failback', 'planned', restartTemporalAt(boundary('wait until caught up')))],
      );
    }
    const failures = await runCases(
      cases,
      ([, run]) => run(),
      ([name]) => name,
      () => switchovers?.repair() ?? Promise.resolve(),
    );
    expect(failures).toEqual([]);
  },
  FULL ? 1_800_000 : 300_000,
);
