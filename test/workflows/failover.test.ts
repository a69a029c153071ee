// The Failover and Failback runbooks against a real Temporal dev server and real PostgreSQL streaming
// replication, on a replication set of this file's own (fo-a -> fo-b, database shop; the drill tests'
// local-a/local-b set is never touched). The canary writer runs through the set's traffic proxy the
// whole time, so every runbook works against live, acknowledged writes. After every runbook exactly
// one node of the set accepts writes, the one the topology record names; between runbooks a sampler
// watches for two writable primaries at any moment.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError, WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { CanaryLedger } from '../../activities/canary-ledger';
import { withClient, writeCanary } from '../../activities/pg/sql';
import { failoverInput } from '../../worker/plan';
import { approveFailoverUpdate } from '../../workflows/messages';
import type { Progress } from '../../workflows/steps';
import type { Approval, RunbookReport } from '../../workflows/types';
import { lifeboat } from '../support/cli';
import {
  canariesInCopy,
  canaryAtEpoch,
  createReplicaSet,
  drillWaitingOnLock,
  expectAtHome,
  expectOneWritablePrimary,
  expectPassed,
  label,
  lockId,
  missingCanaries,
  planText,
  runFailback,
  runFailover,
  same,
  sleep,
  startDrill,
  startTopologyRunbook,
  topologyOf,
  topologyReport,
  waitForStandbyToCatchUp,
  waitForStep,
  watchWritable,
  type ReplicaSetFixture,
} from '../support/replica-set';
import { client, env, local, LogCapture, parsePlan, startWorker, type RunningWorker } from '../support/stack';
import { reportOfFailure } from '../../workflows/runbook-failure';

const DB = 'shop';

let fx: ReplicaSetFixture;
let temporal: Client;
let worker: RunningWorker;
let sampler: ReturnType<typeof watchWritable>;
const workerLog = new LogCapture();

beforeAll(async () => {
  fx = await createReplicaSet({ home: 'fo-a', dr: 'fo-b', database: DB });
  temporal = await client();
  worker = await startWorker({ regions: ['fo-a', 'fo-b'], capture: workerLog });
  sampler = watchWritable(fx);
}, 180_000);

afterAll(async () => {
  // For a post-mortem: what the worker and the canary writer logged.
  const logDir = process.env.LIFEBOAT_TEST_LOG_DIR;
  if (logDir) {
    mkdirSync(logDir, { recursive: true });
    writeFileSync(join(logDir, 'failover-worker.log'), workerLog.text);
    if (fx) writeFileSync(join(logDir, 'failover-traffic.log'), fx.trafficLog.text);
  }
  await sampler?.stop();
  await worker?.stop();
  await temporal?.connection.close();
  await fx?.close();
});

// Each test starts from the set at home. When an earlier test failed half-way (its failure stands),
// the set is brought home first, so one failure does not fail every test after it.
beforeEach(async () => {
  const lock = temporal.workflow.getHandle(lockId(DB));
  const running = await lock.describe().then(
    (d) => d.status.name === 'RUNNING',
    () => false,
  );
  if (running) {
    console.warn(`an earlier test left ${lockId(DB)} running: cancelling it`);
    await lock.cancel();
    await lock.result().catch(() => undefined);
  }
  const t = topologyOf(fx);
  if (same(t.primary, fx.home) && same(t.standby, fx.standby) && t.fenced.length === 0) return;
  console.warn(`an earlier test left ${fx.set.set} away from home (primary ${label(t.primary)}): failing back first`);
  await runFailback(temporal, fx, { discardDivergent: true });
}, 180_000);

// ---- helpers: one runbook each, and the checks every runbook is held to ----

/** A failover that waits at the approval gate (for up to `timeoutSeconds`). */
async function failoverAwaitingApproval(timeoutSeconds: number) {
  const input = failoverInput(fx.plan, DB, {
    mode: 'planned',
    preApproved: false,
    triggeredBy: 'test',
    approvalTimeoutSeconds: timeoutSeconds,
  });
  return startTopologyRunbook(temporal, 'failover', input);
}

const check = (report: RunbookReport, name: string) => report.checks.find((c) => c.name === name);

/** The message of the validator's rejection of an approval. */
async function rejection(update: Promise<unknown>): Promise<string> {
  const error = await update.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (error as WorkflowUpdateFailedError).cause as ApplicationFailure;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect(cause.type).toBe('LifeboatInvalidInput');
  return cause.message;
}

/** The set untouched since `before`: same record, primary writable, standby streaming from it. */
async function expectNothingChanged(before: ReturnType<typeof topologyOf>): Promise<void> {
  expect(topologyOf(fx)).toEqual(before);
  expect(await local().nodeStatus(fx.home)).toMatchObject({ reachable: true, writable: true, fenced: false });
  expect(await local().nodeStatus(fx.standby)).toMatchObject({ reachable: true, inRecovery: true, streaming: true });
  expect(await local().replicationLag(fx.home, fx.standby)).toMatchObject({ streaming: true, slotActive: true });
}

function postmasterPid(node: typeof fx.home): number {
  const pid = Number(readFileSync(join(local().nodeCluster(node).dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no postmaster pid for ${node.region}/${node.name}`);
  return pid;
}

/** How a run ended: its status, and the report's outcome or the failure's type. */
async function endOf(
  handle: WorkflowHandle,
): Promise<{ status: string; failure?: string; outcome?: string; reason?: string }> {
  const ended = await handle.result().then(
    (report: RunbookReport) => ({ report }),
    (error: unknown) => {
      // A runbook that failed is a Failed workflow carrying its report.
      const failed = reportOfFailure(error);
      return failed ? { report: failed } : { error };
    },
  );
  const status = (await handle.describe()).status.name;
  if ('report' in ended && ended.report) return { status, outcome: ended.report.outcome, reason: ended.report.reason };
  return {
    status,
    failure: ended.error instanceof WorkflowFailedError ? ended.error.cause?.name : String(ended.error),
  };
}

/** A drill pre-empted by a planned failover: how the drill ended, what the failover reported, and back home. */
async function failOverUnderDrill(
  drill: WorkflowHandle,
): Promise<{ drill: Awaited<ReturnType<typeof endOf>>; failover: RunbookReport }> {
  try {
    const failover = await runFailover(temporal, fx, 'planned');
    const ended = await endOf(drill);
    expectPassed(await runFailback(temporal, fx));
    return { drill: ended, failover };
  } finally {
    await drill.cancel().catch(() => undefined);
  }
}

// ---- the runbooks ----

/** Pairs of a planned switchover's steps that run side by side (SWITCHOVER_SIDE_BY_SIDE). */
const SIDE_BY_SIDE = [
  ['cancel drills', 'read topology'],
  ['preflight', 'canary write'],
  ['hold traffic', 'wait for replay'],
  ['smoke tests', 'canaries on the new primary'],
] as const;

function startOf(report: RunbookReport, step: string): string | undefined {
  return report.steps.find((s) => s.name === step)?.startedAt;
}

test('planned switchover to fo-b and failback to fo-a: RPO 0, the old primary demoted to a standby that refuses every write, every acknowledged canary kept', async () => {
  const before = expectAtHome(fx);
  await canaryAtEpoch(DB, before.epoch);
  // A second login with write privileges, made before the switchover: the fence must hold for it too.
  await withClient(await local().connectNode(fx.home, DB), async (c) => {
    await c.query(
      `do $$ begin if not exists (select from pg_roles where rolname = 'fo_app') then create role fo_app login password 'fo-app-pw'; end if; end $$`,
    );
    await c.query(
      'grant insert, select on all tables in schema lifeboat to fo_app; grant usage on schema lifeboat to fo_app; grant usage on all sequences in schema lifeboat to fo_app',
    );
  });

  const failover = await runFailover(temporal, fx, 'planned');
  expectPassed(failover);
  expect(failover.rpoSeconds).toBe(0);
  expect(failover.rtoSeconds).toBeGreaterThan(0);
  expect(failover.failover?.fence).toEqual({ confirmed: true, how: expect.stringMatching(/^demoted: clean shutdown/) });
  expect(failover.failover?.walGapBytes).toBe(0);
  // The write outage (fence to repoint) is part of the RTO, which adds what comes before and after.
  expect(failover.failover?.writeOutageSeconds).toBeGreaterThan(0);
  expect(failover.failover!.writeOutageSeconds!).toBeLessThan(failover.rtoSeconds!);
  // Steps that do not depend on each other start in the same workflow task (same workflow clock).
  for (const [a, b] of SIDE_BY_SIDE)
    expect({ step: b, startedAt: startOf(failover, b) }).toEqual({
      step: b,
      startedAt: startOf(failover, a) ?? `${a} missing`,
    });
  expect(check(failover, 'write on the new primary')).toMatchObject({ ok: true });
  expect(check(failover, 'no acknowledged write lost')).toMatchObject({ ok: true });
  expect(check(failover, 'orders exist')).toMatchObject({ ok: true });
  // The demoted primary follows the new one as it was: no pg_rewind, no copy.
  expect(check(failover, 're-protect former primary')).toEqual({
    name: 're-protect former primary',
    ok: true,
    detail: 'fo-a/server follows fo-b/standby-of-fo-a as it was (clean demote: nothing to rewind)',
  });
  const failedOver = topologyOf(fx);
  expect(failedOver).toMatchObject({ primary: fx.standby, standby: fx.home, fenced: [] });
  expect(failedOver.epoch).toBeGreaterThan(before.epoch);
  expect(failover.failover?.topology).toEqual(failedOver);

  // The old primary is up as a streaming standby of the new one, and refuses a write by any means:
  // a fresh session, one that turns default_transaction_read_only off, BEGIN READ WRITE, another login.
  expect(await local().nodeStatus(fx.home)).toMatchObject({
    reachable: true,
    inRecovery: true,
    streaming: true,
    writable: false,
  });
  const demoted = await local().connectNode(fx.home, DB);
  const token = () => `test/fenced-write/${Date.now()}`;
  await expect(withClient(demoted, (c) => writeCanary(c, token()))).rejects.toThrow(/read-only transaction/);
  await expect(
    withClient(demoted, async (c) => {
      await c.query('set default_transaction_read_only = off');
      await writeCanary(c, token());
    }),
  ).rejects.toThrow(/read-only transaction|recovery/);
  await expect(
    withClient(demoted, async (c) => {
      await c.query('begin read write');
      await c.query(`insert into lifeboat.canary (token) values ($1)`, [token()]);
      await c.query('commit');
    }),
  ).rejects.toThrow(/cannot set transaction read-write mode during recovery/);
  await expect(
    withClient({ ...demoted, user: 'fo_app', password: 'fo-app-pw', passfile: undefined }, (c) =>
      writeCanary(c, token()),
    ),
  ).rejects.toThrow(/read-only transaction/);
  // The canary writer followed the traffic pointer to the promoted standby.
  await canaryAtEpoch(DB, failedOver.primarySinceEpoch);

  const failback = await runFailback(temporal, fx);
  expectPassed(failback);
  expect(failback.rpoSeconds).toBe(0);
  expect(check(failback, 're-protect home server')?.detail).toBe(
    'fo-a/server was already a streaming standby of fo-b/standby-of-fo-a',
  );
  expect(check(failback, 're-protect former primary')?.detail).toBe(
    'fo-b/standby-of-fo-a follows fo-a/server as it was (clean demote: nothing to rewind)',
  );
  expect(check(failback, 'writes of the failover term kept')?.detail).toMatch(
    /^all [1-9]\d* canaries acknowledged by fo-b\/standby-of-fo-a are on fo-a\/server$/,
  );
  const home = expectAtHome(fx);
  expect(failback.failover?.topology).toEqual(home);
  await canaryAtEpoch(DB, home.primarySinceEpoch);

  // Every canary the writer saw acknowledged, before, during and after both switches, is on the
  // final primary, and the standby has replayed all of it.
  const acknowledged = new CanaryLedger(env().home).entries(DB);
  expect(new Set(acknowledged.map((e) => e.epoch)).size).toBeGreaterThanOrEqual(3); // fo-a, fo-b, fo-a again
  expect(await missingCanaries(fx.home, DB, acknowledged)).toEqual([]);
  await waitForStandbyToCatchUp(fx.home, fx.standby, DB);
  expect(await missingCanaries(fx.standby, DB, acknowledged)).toEqual([]);
  expect(await local().nodeStatus(fx.standby)).toMatchObject({ inRecovery: true, streaming: true, fenced: false });
}, 180_000);

test('unplanned failover after SIGKILL of the primary: standby promoted and written to, RPO measured; failback re-protects the crashed server', async () => {
  const before = expectAtHome(fx);
  await canaryAtEpoch(DB, before.epoch);
  process.kill(postmasterPid(fx.home), 'SIGKILL');

  const failover = await runFailover(temporal, fx, 'unplanned');
  expectPassed(failover);
  expect(typeof failover.rpoSeconds).toBe('number');
  expect(failover.rpoSeconds).toBeLessThanOrEqual(failover.objectives.rpoSeconds);
  const fence = failover.failover?.fence;
  expect(fence).toMatchObject({ confirmed: expect.any(Boolean), how: expect.stringMatching(/\S/) });
  const oldTerm = new CanaryLedger(env().home)
    .entries(DB)
    .filter((e) => e.epoch === before.epoch && e.writtenAt <= failover.startedAt);
  const lost = await missingCanaries(fx.standby, DB, oldTerm);
  console.log(
    `unplanned failover of ${DB} after SIGKILL of fo-a/server: measured RPO ${failover.rpoSeconds}s (${lost.length} of ${oldTerm.length} acknowledged canaries missing on the promoted standby), ` +
      `RTO ${failover.rtoSeconds?.toFixed(1)}s; fence ${fence?.confirmed ? 'confirmed' : 'NOT confirmed'} (${fence?.how})`,
  );
  expect(check(failover, 'write on the new primary')).toMatchObject({
    ok: true,
    detail: expect.stringMatching(/^canary #\d+ committed$/),
  });
  expect(check(failover, 'orders exist')).toMatchObject({ ok: true });
  const failedOver = topologyOf(fx);
  expect(failedOver).toMatchObject({ primary: fx.standby, standby: null, fenced: [fx.home] });
  expect(await local().nodeStatus(fx.home)).toMatchObject({ reachable: false, writable: false, fenced: true });
  await canaryAtEpoch(DB, failedOver.primarySinceEpoch);

  // The writer may have had a write acknowledged that the standby never received: then the crashed
  // server diverged, the failback refuses to discard it unasked, and is run again on the operator's word.
  let failback = await runFailback(temporal, fx);
  if (failback.outcome === 'failed' && failback.reason?.startsWith('LifeboatDivergentWrites: ')) {
    console.log(
      `failback after the crash refused (${lost.length} canaries were lost): ${failback.reason.slice(0, 300)}`,
    );
    failback = await runFailback(temporal, fx, { discardDivergent: true });
    expect(failback.failover?.discardedDivergence).toMatchObject({ node: 'fo-a/server', by: 'test' });
  }
  expectPassed(failback);
  const reprotect = check(failback, 're-protect home server')?.detail;
  // Seen rarely: "already a streaming standby", when a first attempt rebuilt the node, then failed
  // (and its retry found it streaming). The failure then carries the step and what the worker logged.
  if (!/^fo-a\/server rebuilt with (pg_rewind|pg_basebackup)(;|$)/.test(reprotect ?? '')) {
    const step = failback.steps.find((s) => s.name === 're-protect home server');
    const logged = workerLog.text
      .split('\n')
      .filter((line) => line.includes('"rebuildAsStandby"') && /"level":(40|50)/.test(line));
    throw new Error(
      `re-protect home server: ${reprotect}\nstep: ${JSON.stringify(step)}\nworker warnings and errors of rebuildAsStandby:\n${logged.join('\n')}`,
    );
  }
  console.log(`failback after the crash: ${reprotect}; RTO ${failback.rtoSeconds?.toFixed(1)}s`);
  expect(check(failback, 'writes of the failover term kept')).toMatchObject({ ok: true });
  const home = expectAtHome(fx);
  await canaryAtEpoch(DB, home.primarySinceEpoch);
  await waitForStandbyToCatchUp(fx.home, fx.standby, DB);
  expect(await local().nodeStatus(fx.standby)).toMatchObject({ inRecovery: true, streaming: true });
}, 240_000);

test('unplanned failover of a primary that dies while its standby lags: the lost writes are measured as the RPO; failback refuses to discard them unasked, then keeps a copy of the node that holds them', async () => {
  const before = expectAtHome(fx);
  await waitForStandbyToCatchUp(fx.home, fx.standby, DB);
  // Freeze the WAL sender: the primary goes on acknowledging canary writes its standby never receives.
  const walSender = await withClient(await local().connectNode(fx.home, 'postgres'), async (c) => {
    const { rows } = await c.query<{ pid: number }>('select pid from pg_stat_replication');
    expect(rows).toHaveLength(1);
    return rows[0]!.pid;
  });
  // (A write acknowledged just before the freeze may not have been sent yet: the margin allows for it.)
  const frozenAt = new Date(Date.now() - 500).toISOString();
  process.kill(walSender, 'SIGSTOP');
  await sleep(2_000);
  const ledger = new CanaryLedger(env().home);
  expect(ledger.entries(DB).filter((e) => e.writtenAt > frozenAt).length).toBeGreaterThan(5);
  process.kill(postmasterPid(fx.home), 'SIGKILL');
  process.kill(walSender, 'SIGKILL'); // a stopped process would hold the dead server's shared memory

  const failover = await runFailover(temporal, fx, 'unplanned');
  expectPassed(failover);
  // What the writer had acknowledged under the old primary and the promoted standby lacks: lost.
  const oldTerm = ledger.entries(DB).filter((e) => e.epoch === before.epoch && e.writtenAt <= failover.startedAt);
  const lost = await missingCanaries(fx.standby, DB, oldTerm);
  expect(lost.length).toBeGreaterThan(5);
  expect(lost.filter((e) => e.writtenAt <= frozenAt)).toEqual([]); // nothing from before the freeze
  // The RPO from data: the newest acknowledged canary against the newest the new primary kept of them.
  const newestLost = lost.at(-1)!;
  const newestKept = oldTerm.filter((e) => !lost.some((l) => l.id === e.id && l.writtenAt === e.writtenAt)).at(-1)!;
  expect(newestLost).toEqual({ id: oldTerm.at(-1)!.id, writtenAt: oldTerm.at(-1)!.writtenAt });
  const dataLoss = (Date.parse(newestLost.writtenAt) - Date.parse(newestKept.writtenAt)) / 1000;
  console.log(
    `unplanned failover with the standby 2 s behind: ${lost.length} acknowledged canaries lost (${dataLoss}s of writes); report says RPO ${failover.rpoSeconds}s`,
  );
  expect(failover.rpoSeconds).toBeCloseTo(dataLoss, 2);
  expect(check(failover, 'data loss within the RPO objective')).toMatchObject({
    ok: true,
    detail: expect.stringContaining(`#${newestLost.id}`),
  });

  // The crashed server holds acknowledged writes nobody else has: a failback must not discard them
  // unasked. It stops, names them, and changes nothing.
  const beforeRefusal = topologyOf(fx);
  const refused = await runFailback(temporal, fx);
  expect(refused.outcome).toBe('failed');
  expect(refused.reason).toMatch(
    /^LifeboatDivergentWrites: fo-a\/server committed \d+ transactions after the fork at [0-9A-F]+\/[0-9A-F]+ on timeline \d+ \(WAL [0-9A-F/]+\.\.[0-9A-F/]+\): xid \d+ at /,
  );
  expect(Number(/committed (\d+) transactions/.exec(refused.reason!)![1])).toBeGreaterThanOrEqual(lost.length);
  expect(refused.reason).toContain('--discard-divergent');
  expect(topologyOf(fx)).toEqual(beforeRefusal);
  expect(await local().nodeStatus(fx.home)).toMatchObject({ running: false, fenced: true });
  const refusedByCli = await lifeboat(['failback', DB, '-f', fx.planFile, '--yes']);
  expect(refusedByCli.code).toBe(1);
  expect(refusedByCli.stdout + refusedByCli.stderr).toMatch(/committed \d+ transactions after the fork/);

  // On the operator's word they are discarded, a copy of the node kept first: the report says where
  // and who decided, and the copy holds the writes.
  const failback = await runFailback(temporal, fx, { discardDivergent: true });
  expectPassed(failback);
  expectAtHome(fx);
  const discarded = failback.failover?.discardedDivergence;
  expect(discarded).toMatchObject({
    node: 'fo-a/server',
    by: 'test',
    preservedAt: expect.stringContaining(join(env().home, 'preserved')),
  });
  expect(check(failback, 're-protect home server')?.detail).toContain(
    `a copy of the node was kept at ${discarded!.preservedAt}`,
  );
  // The rebuilt server has the new history only: the writes only it had are gone, not merged back.
  expect(await missingCanaries(fx.home, DB, lost)).toEqual(lost);
  expect(await canariesInCopy(discarded!.preservedAt, DB, lost)).toEqual(lost.map((e) => e.id));
  await waitForStandbyToCatchUp(fx.home, fx.standby, DB);
}, 300_000);

test('an approval that times out changes nothing: same topology record, primary writable, standby streaming', async () => {
  const before = expectAtHome(fx);
  const report = await topologyReport(fx, await failoverAwaitingApproval(2));
  expect(report.outcome).toBe('failed');
  expect(report.reason).toBe('approval timed out after 2s; nothing was changed');
  expect(report.failover?.approval).toBeNull();
  expect(report.steps.map((s) => s.name)).toEqual([
    'cancel drills',
    'read topology',
    'preflight',
    'canary write',
    'approval',
  ]);
  expect(report.cleanup).toEqual([]);
  await expectNothingChanged(before);
}, 60_000);

test('the approval validator rejects a wrong database, a stale plan and a missing approver, then accepts the right approval', async () => {
  expectAtHome(fx);
  const handle = await failoverAwaitingApproval(120);
  await waitForStep(handle, 'failoverProgress', 'approval');
  const approve = (overrides: Partial<Approval>) =>
    handle.executeUpdate(approveFailoverUpdate, {
      args: [
        { database: DB, planDigest: fx.plan.digest, approvedBy: 'test:on-call', reason: 'test approval', ...overrides },
      ],
    });

  expect(await rejection(approve({ database: 'orders' }))).toBe(
    'approval names database "orders"; this run is a failover of shop',
  );
  const edited = parsePlan(planText('fo-a', 'fo-b', DB) + '# rpo reviewed\n', 'edited plan').digest;
  expect(edited).not.toBe(fx.plan.digest);
  expect(await rejection(approve({ planDigest: edited }))).toBe(
    `stale plan: the approval was made against plan ${edited.slice(0, 12)}, this run uses ${fx.plan.digest.slice(0, 12)}; re-read the plan and approve again`,
  );
  expect(await rejection(approve({ approvedBy: '' }))).toBe('approvedBy is required: who approves');
  // Rejected approvals leave the runbook waiting, nothing done.
  expect((await handle.query<Progress>('failoverProgress')).running).toEqual(['approval']);

  expect(await approve({})).toEqual({ accepted: true, workflowId: lockId(DB) });
  const report = await topologyReport(fx, handle);
  expectPassed(report);
  expect(report.failover?.approval).toEqual({
    database: DB,
    planDigest: fx.plan.digest,
    approvedBy: 'test:on-call',
    reason: 'test approval',
  });
  expect(topologyOf(fx)).toMatchObject({ primary: fx.standby });

  expectPassed(await runFailback(temporal, fx));
  expectAtHome(fx);
}, 180_000);

test('a second failover or failback of the same database is refused (exit 2, naming the running one) while a failover waits', async () => {
  const before = expectAtHome(fx);
  const first = await failoverAwaitingApproval(120);
  await waitForStep(first, 'failoverProgress', 'approval');

  for (const runbook of ['failover', 'failback']) {
    const second = await lifeboat([runbook, DB, '-f', fx.planFile, '--yes']);
    expect({ code: second.code, stderr: second.stderr }).toEqual({
      code: 2,
      stderr: expect.stringContaining(
        `a failover or failback of ${DB} is already running (${lockId(DB)}); only one may run per database`,
      ),
    });
  }
  // The first is untouched by the refused attempts: still waiting for its approval.
  const { runId } = await first.describe();
  expect(runId).toBe(first.firstExecutionRunId);
  expect((await first.query<Progress>('failoverProgress')).running).toEqual(['approval']);

  await first.cancel();
  expect(await endOf(first)).toEqual({ status: 'CANCELLED', failure: 'CancelledFailure' });
  await expectOneWritablePrimary(fx);
  await expectNothingChanged(before);
}, 120_000);

test('a failover cancels a running drill of the same database; the drill tears its scratch instance down and the failover passes', async () => {
  expectAtHome(fx);
  // Ballast, so that the drill's restore into its scratch instance lasts long enough to be cut short.
  await withClient(await local().connectNode(fx.home, DB), (c) =>
    c.query(
      `create table if not exists drill_ballast as select g as id, md5(g::text) as a, md5((g * 7)::text) as b from generate_series(1, 300000) as g`,
    ),
  );
  try {
    const drill = await startDrill(temporal, fx);
    await waitForStep(drill, 'drillProgress', 'restore', 90_000);
    expect(await local().listScratch(fx.set.dr)).toHaveLength(1);

    const { drill: ended, failover } = await failOverUnderDrill(drill);
    expect(ended).toEqual({ status: 'CANCELLED', failure: 'CancelledFailure' });
    expect(await local().listScratch(fx.set.dr)).toEqual([]);
    expectPassed(failover);
    expect(failover.steps[0]).toMatchObject({ name: 'cancel drills', status: 'completed' });
    expectAtHome(fx);
  } finally {
    await withClient(await local().connectNode(topologyOf(fx).primary ?? fx.home, DB), (c) =>
      c.query('drop table if exists drill_ballast'),
    ).catch(() => undefined);
  }
}, 240_000);

test('a drill pre-empted while its backup waits on the primary ends cancelled too, not failed', async () => {
  expectAtHome(fx);
  // An application transaction holds a lock the drill's pg_dump waits for: the failover's fence
  // ends every session on the primary, the drill's backup among them.
  const { drill, release } = await drillWaitingOnLock(temporal, fx);
  try {
    const { drill: ended, failover } = await failOverUnderDrill(drill);
    expectPassed(failover);
    expect(await local().listScratch(fx.set.dr)).toEqual([]);
    // Pre-empted is not failed: the audit trail must not record a drill failure no data caused.
    expect(ended).toEqual({ status: 'CANCELLED', failure: 'CancelledFailure' });
  } finally {
    await release();
  }
}, 240_000);

test('never two writable primaries at any moment sampled while the runbooks above ran', async () => {
  const { samples, violations } = await sampler.stop();
  expect(violations).toEqual([]);
  expect(samples).toBeGreaterThan(20);
});
