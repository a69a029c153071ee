// The failback runbook and the cross-cloud runbook on scripted activities: the order of their steps
// in a planned run, each on the region it acts on.
import { crossCloudInput, failbackInput, parsePlan } from '../../worker/plan';
import type { BackupRef, RunbookReport, TopologyView } from '../../workflows/types';
import { DATABASE, DR, HOME, healthySwitchover, plan, primary, standby } from './fixtures';
import { useRunbookServer, type Call, type Script } from './harness';

const server = useRunbookServer();

const at = (c: Call) => `${c.name}@${c.queue.replace(/^lifeboat-/, '')}`;

/** A replication set failed over to the DR standby, the home server fenced: a failback finds it so and passes. */
function failedOverSet(): Script {
  const healthy = healthySwitchover();
  const failedOver: TopologyView = {
    set: HOME,
    primary: standby,
    standby: null,
    fenced: [primary],
    epoch: 9,
    primarySinceEpoch: 9,
    updatedAt: '2026-01-01T00:00:00.000Z',
    updatedBy: 'test',
  };
  const canary = { id: 50, writtenAt: new Date().toISOString() };
  return {
    ...healthy,
    readTopology: () => failedOver,
    rebuildAsStandby: ({ node }) => ({ method: 'pg_rewind', node }),
    waitUntilCaughtUp: () => ({
      streaming: true,
      lagBytes: 0,
      lagSeconds: 0,
      slotActive: true,
      primaryLsn: '0/2000000',
      replayLsn: '0/2000000',
    }),
    writeCanaryOnNode: () => canary,
    acknowledgedCanaries: () => ({
      newest: { ...canary, database: DATABASE, epoch: 9 },
      term: [{ ...canary, database: DATABASE, epoch: 9 }],
    }),
    findCanaries: () => ({ newest: canary, missing: [] }),
  };
}

test('a failback re-protects the home server, waits for it, then switches back and re-protects the former primary', async () => {
  const script = failedOverSet();
  const { result, calls } = await server().run<RunbookReport>(
    'failback',
    failbackInput(plan, DATABASE, { preApproved: true, triggeredBy: 'test' }),
    { regions: [HOME, DR], script },
  );
  expect(result?.outcome).toBe('passed');
  const order = calls.calls.map(at);
  // Side-by-side pairs start together; the test compares each as a set.
  const sorted = (a: string[]) => [...a].sort();
  expect(sorted(order.slice(0, 2))).toEqual(sorted([`cancelDrills@${DR}`, `readTopology@${DR}`]));
  const rest = order.slice(2);
  // Each step of the runbook's header, in order (notifications and side-by-side partners may fall between).
  const expected = [
    `rebuildAsStandby@${HOME}`, // re-protect the home server as a standby of the DR primary
    `repointTraffic@${DR}`, // record it as the standby
    `waitUntilCaughtUp@${HOME}`,
    `writeCanaryOnNode@${DR}`,
    `fenceNode@${DR}`, // the planned switchover back: fence the DR primary
    `promoteNode@${HOME}`,
    `smokeTest@${HOME}`,
    `rebuildAsStandby@${DR}`, // re-protect the former primary
  ];
  expect(rest.filter((s) => expected.includes(s))).toEqual(expected);
  expect(calls.calls.at(-1)!.input).toMatchObject({ event: 'failover.finished', outcome: 'passed' });
  // The hold and the replay happen between the fence and the promote; nothing is rebuilt before the catch-up.
  const between = rest.slice(rest.indexOf(`fenceNode@${DR}`) + 1, rest.indexOf(`promoteNode@${HOME}`));
  expect(sorted(between)).toEqual(sorted([`repointTraffic@${HOME}`, `waitForReplay@${HOME}`]));
  expect(calls.of('promoteNode')[0]!.input).toMatchObject({ node: primary });
  expect(calls.of('fenceNode')[0]!.input).toMatchObject({ node: standby, mode: 'planned' });
  // Nothing written during the failover was lost: the term's canaries were looked for on the home server.
  expect(
    calls.calls.some(
      (c) =>
        c.name === 'findCanaries' &&
        (c.input as { canaries: unknown[] }).canaries.length === 1 &&
        c.queue === `lifeboat-${HOME}`,
    ),
  ).toBe(true);
}, 30_000);

// The approval a failback waits for times out after the plan's default 15 minutes, in well under a
// second: the home server stays the standby it became, nothing is switched back.
test('a failback whose approval times out after the default 15 minutes switches nothing back: the DR server stays the primary', async () => {
  const input = failbackInput(plan, DATABASE, { preApproved: false, triggeredBy: 'test' });
  expect(input.approval.timeoutSeconds).toBe(900);
  const { result, calls } = await server().run<RunbookReport>('failback', input, {
    regions: [HOME, DR],
    script: failedOverSet(),
  });
  expect(result?.outcome).toBe('failed');
  expect(result?.reason).toBe(
    `approval timed out after 900s; ${DR}/${standby.name} is still the primary, ${HOME}/${primary.name} its standby`,
  );
  expect(calls.names()).toEqual(expect.arrayContaining(['rebuildAsStandby', 'repointTraffic', 'waitUntilCaughtUp']));
  for (const changes of ['fenceNode', 'promoteNode', 'waitForReplay'] as const)
    expect(calls.names()).not.toContain(changes);
  // The only repoint recorded the home server as the DR primary's standby.
  expect(calls.of('repointTraffic').map((c) => (c.input as { next: unknown }).next)).toEqual([
    expect.objectContaining({ primary: standby, standby: primary }),
  ]);
}, 30_000);

const XC_HOME = 'xc-local';
const XC_DR = 'xc-gcp';
const xcPlan = parsePlan(
  `
regions:
  ${XC_HOME}: { provider: local, store: { dir: /nonexistent/xc-store } }
  ${XC_DR}: { provider: gcp, project: runbook-test, gcpRegion: us-east4, scratch: { databaseVersion: POSTGRES_15 }, store: { gcs: { bucket: runbook-test-bucket, prefix: backups/ } } }
databases:
  ${DATABASE}:
    primary: { region: ${XC_HOME}, database: ${DATABASE} }
    dr: { region: ${XC_DR}, instance: dr-instance, credentials: { user: postgres, password: "env:RUNBOOK_TEST_UNUSED_PASSWORD" } }
    objectives: { rpo: 1h, rto: 10m }
    checks:
      - name: orders exist
        sql: select count(*) > 0 from orders
`,
  'cross-cloud runbook-test plan',
);

test('a planned cross-cloud failover fences, backs up after the fence, restores, verifies, then moves the record', async () => {
  const canary = { id: 7, writtenAt: new Date().toISOString() };
  const backup = (region: string): BackupRef => ({
    backupId: 'shop-final',
    database: DATABASE,
    region,
    provider: region === XC_HOME ? 'local' : 'gcp',
    createdAt: new Date().toISOString(),
    sizeBytes: 1000,
    sha256: 'b'.repeat(64),
    location: `store://${region}/shop-final`,
  });
  const version = { serverVersion: '15.18', serverVersionNum: 150018 };
  const script: Script = {
    cancelDrills: () => ({ cancelled: [] }),
    readRecoveryRecord: () => null,
    preflightServer: () => version as never,
    preflight: () => ({ ...version, tables: 2, sizeBytes: 1000 }),
    notify: () => ({ sent: false }),
    writeCanary: () => canary,
    fenceDatabase: () => ({ confirmed: true, how: 'scripted: read-only' }) as never,
    unfenceDatabase: () => ({ existed: true }) as never,
    createBackup: () => backup(XC_HOME),
    verifyBackup: () => ({ sha256: 'b'.repeat(64), tables: 2, newestCanary: canary }),
    copyBackupToRegion: () => backup(XC_DR),
    restoreForRecovery: () => ({ setAside: null }) as never,
    verifyRecovered: () =>
      ({
        tables: [{ name: 'public.orders', ok: true, detail: 'checksum matches' }],
        checks: [],
        newestCanary: canary,
      }) as never,
    recordRecovery: ({ primary: node, fenced }) => ({
      set: DATABASE,
      primary: node,
      standby: null,
      fenced,
      epoch: 1,
      primarySinceEpoch: 1,
      updatedAt: new Date().toISOString(),
      updatedBy: 'test',
    }),
  };
  const input = crossCloudInput(xcPlan, DATABASE, {
    direction: 'failover',
    mode: 'planned',
    preApproved: true,
    triggeredBy: 'test',
  });
  const { result, calls } = await server().run<RunbookReport>('crossCloudFailover', input, {
    regions: [XC_HOME, XC_DR],
    script,
  });
  expect(result?.reason ?? null).toBeNull();
  expect(result?.outcome).toBe('passed');
  expect(result?.rpoSeconds).toBe(0);
  const order = calls.calls.map(at).filter((s) => !s.startsWith('notify@'));
  expect(order).toEqual([
    `cancelDrills@${XC_DR}`,
    `readRecoveryRecord@${XC_DR}`,
    `preflightServer@${XC_DR}`,
    `preflight@${XC_HOME}`,
    `writeCanary@${XC_HOME}`,
    `fenceDatabase@${XC_HOME}`,
    `createBackup@${XC_HOME}`,
    `verifyBackup@${XC_HOME}`,
    `copyBackupToRegion@${XC_DR}`,
    `verifyBackup@${XC_DR}`,
    `restoreForRecovery@${XC_DR}`,
    `verifyRecovered@${XC_DR}`,
    `recordRecovery@${XC_DR}`,
    `writeCanary@${XC_DR}`,
  ]);
  // The final backup is portable (it crosses clouds) and the record names the DR instance.
  expect(calls.of('createBackup')[0]!.input).toMatchObject({ portable: true });
  expect(calls.of('recordRecovery')[0]!.input).toMatchObject({
    primary: { region: XC_DR },
    fenced: [{ region: XC_HOME }],
  });
  // Nothing undone: the run passed the point of no return.
  expect(calls.names()).not.toContain('unfenceDatabase');
}, 30_000);
