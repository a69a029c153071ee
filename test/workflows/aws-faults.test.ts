// AWS throttling and 5xx answers must come back to Temporal, not be absorbed by an SDK retry loop:
// a retry Temporal makes is one more activity attempt in history, with the failure that caused it,
// where an operator can see it; one the SDK makes is invisible. A fault proxy in front of moto
// answers chosen RDS calls with Throttling or ServiceUnavailable before they reach moto, and counts
// every request, so these tests can tie each injected fault to exactly one activity retry.
// As in aws-moto.test.ts, moto has no data plane: the data comes from the test-only stand-in.
import { DescribeDBInstancesCommand, DescribeDBSnapshotsCommand } from '@aws-sdk/client-rds';
import type { WorkflowHandle } from '@temporalio/client';
import { TAG } from '../../activities/providers/aws';
import { drillInput, type LoadedPlan } from '../../worker/plan';
import type { LocalRdsDataPlane } from '../fakes/rds-data-plane';
// Assertions go straight to moto (rds()): the proxy counts only what the worker sent.
import { EAST, moto, rds, setUpAwsDrill, WEST } from '../support/aws-drill';
import { startFaultProxy, type FaultProxy, type FaultRule } from '../support/fault-proxy';
import { rdsProvider, runRunbook, workflowIds } from '../support/cloud-stack';
import { startWorker, type RunningWorker } from '../support/stack';

/** The drills' source: an RDS instance in us-east-1, its data a seeded database on local-a. */
const SOURCE = {
  name: 'aws-faults',
  instance: 'faults-prod',
  pgDatabase: 'aws_faults',
  passwordVar: 'LIFEBOAT_TEST_RDS_FAULTS_PASSWORD',
  password: 'rds-Faults-value-3c81d',
};
const workflowId = workflowIds('aws-faults');

/** Each activity the run scheduled, with the attempt that finished it and the failure before it. */
async function activityAttempts(
  handle: WorkflowHandle,
): Promise<{ activity: string; attempt: number; lastFailure: string }[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = new Map(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType!.name!]),
  );
  // Temporal writes one ActivityTaskStarted per scheduled activity, when it finishes: its attempt is
  // the number of tries, its lastFailure what made the previous one fail.
  return events
    .map((e) => e.activityTaskStartedEventAttributes)
    .filter((a) => a !== null && a !== undefined)
    .map((a) => ({
      activity: scheduled.get(String(a.scheduledEventId))!,
      attempt: a.attempt!,
      lastFailure: a.lastFailure?.message ?? '',
    }));
}

/**
 * The fault pattern of the random-rate test: any seed must pass; this one is what CI runs. It must
 * also inject at least 3 faults with today's call pattern (checked below): when the provider makes
 * fewer calls (it caches endpoints now), pick another seed that does.
 */
const SEED = 3;

describe('AWS throttling and 5xx retried by Temporal, not the SDK (faults injected by a proxy in front of moto; moto has no data plane: data mirrored by the test-only stand-in)', () => {
  let plan: LoadedPlan;
  let dataPlane: LocalRdsDataPlane;

  beforeAll(async () => {
    ({ plan, dataPlane } = await setUpAwsDrill(SOURCE));
  });

  /** A worker whose AWS calls all pass through a fault proxy with these rules, for one drill. */
  async function drillThrough(rules: FaultRule[], seed?: number) {
    const proxy: FaultProxy = await startFaultProxy(moto(), rules, { seed });
    let worker: RunningWorker | undefined;
    try {
      worker = await startWorker({
        regions: ['aws-east', 'aws-west'],
        providers: { aws: rdsProvider(dataPlane, { endpoint: proxy.endpoint }) },
      });
      const input = drillInput(plan, 'orders', { fromLatestBackup: false, triggeredBy: 'test' });
      const { handle, report } = await runRunbook('drill', input, workflowId('drill'));
      return { proxy, report, attempts: await activityAttempts(handle) };
    } finally {
      await worker?.stop();
      await proxy.close();
    }
  }

  test('a drill passes although the first CreateDBSnapshot and CopyDBSnapshot are throttled and the first RestoreDBInstanceFromDBSnapshot answers 503: each fault is one more activity attempt in history', async () => {
    const { proxy, report, attempts } = await drillThrough([
      { action: 'CreateDBSnapshot', fault: 'throttling', first: 1 },
      { action: 'CopyDBSnapshot', fault: 'throttling', first: 1 },
      { action: 'RestoreDBInstanceFromDBSnapshot', fault: 'unavailable', first: 1 },
    ]);
    expect(report.reason).toBeUndefined();
    expect(report.outcome).toBe('passed');
    const step = (name: string) => report.steps.find((s) => s.name === name);
    expect(step('backup')).toMatchObject({ status: 'completed', attempts: 2 });
    expect(step('copy to aws-west')).toMatchObject({ status: 'completed', attempts: 2 });
    expect(step('restore')).toMatchObject({ status: 'completed', attempts: 2 });

    // History shows the retries, and why: the first attempt's failure is the injected answer.
    const of = (activity: string) => attempts.filter((a) => a.activity === activity);
    expect(of('createBackup')).toEqual([
      {
        activity: 'createBackup',
        attempt: 2,
        lastFailure: expect.stringMatching(/^CreateDBSnapshot .*: Throttling \(HTTP 400\): Rate exceeded/),
      },
    ]);
    expect(of('copyBackupToRegion')).toEqual([
      {
        activity: 'copyBackupToRegion',
        attempt: 2,
        lastFailure: expect.stringMatching(/^CopyDBSnapshot .*: Throttling \(HTTP 400\): Rate exceeded/),
      },
    ]);
    expect(of('restoreBackup')).toEqual([
      {
        activity: 'restoreBackup',
        attempt: 2,
        lastFailure: expect.stringMatching(/^RestoreDBInstanceFromDBSnapshot .*: ServiceUnavailable \(HTTP 503\)/),
      },
    ]);

    // One fault per rule, and one request per activity attempt for each faulted call: the SDK sent
    // the throttled call once and gave up, it did not try again inside the attempt.
    expect(proxy.injected).toEqual({ CreateDBSnapshot: 1, CopyDBSnapshot: 1, RestoreDBInstanceFromDBSnapshot: 1 });
    expect(proxy.counts).toMatchObject({ CreateDBSnapshot: 2, CopyDBSnapshot: 2, RestoreDBInstanceFromDBSnapshot: 2 });
    // Nothing else was retried: the extra attempts in the whole run are exactly the injected faults.
    expect(attempts.reduce((n, a) => n + a.attempt - 1, 0)).toBe(3);
  });

  // A fault in a call that starts or changes something fails its activity attempt (Temporal retries
  // it, in history); a fault in the describe polls of a long wait is reported in the heartbeat and
  // polled through, so a copy or restore that polls for hours is not failed by one throttled answer.
  test('at a seeded 10% fault rate on every RDS call (half Throttling, half 503), a drill passes: faults are activity retries or polled through, each create call lands once, no scratch instance is left, one snapshot per region', async () => {
    const { proxy, report, attempts } = await drillThrough(
      [
        { action: '*', fault: 'throttling', rate: 0.05 },
        { action: '*', fault: 'unavailable', rate: 0.05 },
      ],
      SEED,
    );
    expect(report.reason).toBeUndefined();
    expect(report.outcome).toBe('passed');
    expect(report.cleanup).toEqual([expect.objectContaining({ ok: true, detail: 'deleted' })]);

    // Each fault cost at most one activity attempt; some cost one (visible retries), the rest were
    // polled through inside waits.
    const faults = Object.values(proxy.injected).reduce((a, b) => a + b, 0);
    const retries = attempts.reduce((n, a) => n + a.attempt - 1, 0);
    expect(faults).toBeGreaterThanOrEqual(3);
    expect(retries).toBeGreaterThanOrEqual(1);
    expect(retries).toBeLessThanOrEqual(faults);

    // Retries adopt what an earlier attempt made: each call that creates something reached moto once.
    const landed = (action: string) => (proxy.counts[action] ?? 0) - (proxy.injected[action] ?? 0);
    for (const action of ['CreateDBSnapshot', 'CopyDBSnapshot', 'RestoreDBInstanceFromDBSnapshot', 'DeleteDBInstance'])
      expect([action, landed(action)]).toEqual([action, 1]);

    const west = (await rds(WEST).send(new DescribeDBInstancesCommand({}))).DBInstances ?? [];
    expect(west.map((i) => i.DBInstanceIdentifier).filter((id) => id!.startsWith('lifeboat-drill-'))).toEqual([]);
    const backupId = report.backup!.backupId;
    for (const region of [EAST, WEST]) {
      const snapshots =
        (await rds(region).send(new DescribeDBSnapshotsCommand({ SnapshotType: 'manual' }))).DBSnapshots ?? [];
      const ours = snapshots.filter((s) => s.TagList?.some((t) => t.Key === TAG.backupId && t.Value === backupId));
      expect([region, ours.length]).toEqual([region, 1]);
    }
  });
});
