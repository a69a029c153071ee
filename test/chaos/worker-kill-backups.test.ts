// Chaos: the Drill and Backup runbooks with their worker process killed (SIGKILL, a real process:
// `lifeboat worker -f plan`) at a step boundary, one run per boundary, and a new worker process
// started at once. Every run must pass with one backup and one copy under the id the run derives,
// nothing half written, no scratch instance and no pg_dump/pg_restore left running.
// Reduced (default, kept to a few minutes: each kill costs the killed activity's timeout): the drill
// mid-restore (the transfer into the scratch instance just made), the backup right after its copy
// was made (the kill lands in "verify copy"). LIFEBOAT_CHAOS=full: every step the runbook takes, in
// the order a baseline run took them.
import { sharedFixture } from '../support/wf-shared-fixture';
import { killPoints } from '../support/wf-kill-points';
import { BackupBench, boundaryLabel, FULL, killWorker, noDisruption, runCases } from './harness';

const bench = sharedFixture((temporal) => BackupBench.create(temporal, 'chaos-orders'));

const timeout = FULL ? 3_600_000 : 300_000;

test(
  `drill: the worker process SIGKILLed at ${FULL ? 'every step boundary' : '"restore" (mid-transfer)'}; a new worker finishes each run: passed, one backup and one copy, no scratch instance or tool left`,
  async () => {
    const cases = await killPoints(['restore'], () => bench().run('drill', noDisruption));
    const failures = await runCases(cases, (at) => bench().run('drill', killWorker(at)), boundaryLabel);
    expect(failures).toEqual([]);
  },
  timeout,
);

test(
  `backup: the worker process SIGKILLed at ${FULL ? 'every step boundary' : '"verify copy" (just after the copy was made)'}; a new worker finishes each run: passed, one backup and one copy, retention kept`,
  async () => {
    const cases = await killPoints(['verify copy'], () => bench().run('backup', noDisruption));
    const failures = await runCases(cases, (at) => bench().run('backup', killWorker(at)), boundaryLabel);
    expect(failures).toEqual([]);
  },
  timeout,
);
