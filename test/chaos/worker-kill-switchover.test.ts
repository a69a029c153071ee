// Chaos: planned failover, unplanned failover and failback of a replication set of this file's own
// (chaos-a -> chaos-b, the canary writer on through the traffic proxy), with the worker process
// killed (SIGKILL, `lifeboat worker -f plan`) at a step boundary and a new one started at once.
// Every run must pass and leave the topology it promises; a sampler checks throughout that no two
// nodes take writes at once; a switchover (planned failover, failback) must keep every canary
// acknowledged during the run; no server may be made twice and no pg_rewind/pg_basebackup left.
// Runs chain: a failover's set is what the next failback starts from.
// Reduced (default): planned failover killed mid "promote standby" (the point of no return), failback
// killed mid "re-protect home server" (pg_rewind), unplanned failover killed mid "fence primary"
// (its deadline: a fence not confirmed in time is recorded and the standby promoted anyway).
// LIFEBOAT_CHAOS=full: every step boundary of each, in the order baseline runs took them.
import { sharedFixture } from '../support/wf-shared-fixture';
import { killPoints } from '../support/wf-kill-points';
import { boundaryLabel, FULL, killWorker, noDisruption, runCases, SwitchoverBench, type Boundary } from './harness';

const bench = sharedFixture((temporal) => SwitchoverBench.create(temporal, 'chaos-a', 'chaos-b', 'chaosstock'));

const timeout = FULL ? 7_200_000 : 300_000;
const label = (b: Boundary | null): string => (b ? boundaryLabel(b) : 'none');
const disruption = (b: Boundary | null) => (b ? killWorker(b) : noDisruption);

test(
  `planned failover and failback: the worker process SIGKILLed at ${FULL ? 'every step boundary of each' : '"promote standby" (failover) and "re-protect home server" (failback)'}; each run passes, nothing acknowledged is lost, never two writable primaries`,
  async () => {
    expect(bench().atHome).toBe(true);
    const failoverAt = await killPoints(['promote standby'], () => bench().run('failover', 'planned', noDisruption));
    const failbackAt = await killPoints(['re-protect home server'], () =>
      bench().run('failback', 'planned', noDisruption),
    );
    // One leg: a failover (killed at the i-th failover boundary, if any) and the failback after it.
    const legs = Array.from(
      { length: Math.max(failoverAt.length, failbackAt.length) },
      (_, i) => [failoverAt[i] ?? null, failbackAt[i] ?? null] as const,
    );
    const failures = await runCases(
      legs,
      async ([fo, fb]) => {
        await bench().run('failover', 'planned', disruption(fo));
        await bench().run('failback', 'planned', disruption(fb));
      },
      ([fo, fb]) => `failover at ${label(fo)}, failback at ${label(fb)}`,
      () => bench().repair(),
    );
    expect(failures).toEqual([]);
    expect(bench().atHome).toBe(true);
  },
  timeout,
);

test(
  `unplanned failover: the worker process SIGKILLed at ${FULL ? 'every step boundary' : '"fence primary"'}; it passes with the RPO reported, never two writable primaries, and a failback brings the set home`,
  async () => {
    expect(bench().atHome).toBe(true);
    const unplannedAt = await killPoints(['fence primary'], async () => {
      const baseline = await bench().run('failover', 'unplanned', noDisruption);
      await bench().run('failback', 'planned', noDisruption);
      return baseline;
    });
    const failures = await runCases(
      unplannedAt,
      async (at) => {
        await bench().run('failover', 'unplanned', killWorker(at));
        await bench().run('failback', 'planned', noDisruption);
      },
      (at) => `unplanned failover at ${boundaryLabel(at)}`,
      () => bench().repair(),
    );
    expect(failures).toEqual([]);
    expect(bench().atHome).toBe(true);
  },
  timeout,
);
