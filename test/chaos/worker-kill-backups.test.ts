// Chaos: the Drill and Backup runbooks with their worker process killed (SIGKILL, a real process:
// `lifeboat worker -f plan`) at a step boundary, one run per boundary, and a new worker process
// started at once. Every run must pass with one backup and one copy under the id the run derives,
// nothing half written, no scratch instance and no pg_dump/pg_restore left running.
// Reduced (default, kept to a few minutes: each kill costs the killed activity's timeout): the drill
// mid-restore (the transfer into the scratch instance just made), the backup right after its copy
// was made (the kill lands in "verify copy"). LIFEBOAT_CHAOS=full: every step the runbook takes, in
// the order a baseline run took them.
import { sharedFixture } from '../support/wf-shared-fixture';
import {
  BackupBench,
  boundariesOf,
  boundary,
  boundaryLabel,
  FULL,
  killWorker,
  noDisruption,
  runCases,
  type Boundary,
} from './harness';

const bench = sharedFixture((temporal) => BackupBench.create(temporal, 'chaos-orders'));

const timeout = FULL ? 3_600_000 : 300_000;

async function boundariesFor(runbook: 'drill' | 'backup', reduced: Boundary[]): Promise<Boundary[]> {
  // Full: a baseline run (itself checked) says which steps the runbook takes today.
  return FULL ? boundariesOf((await bench().run(runbook, noDisruption)).report) : reduced;
}

test(
  `drill: the worker process SIGKILLed at ${FULL ? 'every step boundary' : '"restore" (mid-transfer)'}; a new worker finishes each run: passed, one backup and one copy, no scratch instance or tool left`,
  async () => {
    const cases = await boundariesFor('drill', [boundary('restore')]);
    const failures = await runCases(cases, (at) => bench().run('drill', killWorker(at)), boundaryLabel);
    expect(failures).toEqual([]);
  },
  timeout,
);

test(
  `backup: the worker process SIGKILLed at ${FULL ? 'every step boundary' : '"verify copy" (just after the copy was made)'}; a new worker finishes each run: passed, one backup and one copy, retention kept`,
  async () => {
    const cases = await boundariesFor('backup', [boundary('verify copy')]);
    const failures = await runCases(cases, (at) => bench().run('backup', killWorker(at)), boundaryLabel);
    expect(failures).toEqual([]);
  },
  timeout,
);
