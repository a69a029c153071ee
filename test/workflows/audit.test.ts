// The audit queries of docs/operating/audit.md, run as written against the visibility API of the test stack's Temporal
// server, over runs this file makes through the compiled CLI on a replication set of its own (au-a ->
// au-b, database audb): a readiness check that finds problems, a drill a person started, a drill that
// finds bad data, a scheduled drill, a switchover bob starts and alice approves, and bob's --yes failback.
// Each query must return the runs it is meant to and not the ones it is not.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { listRuns } from '../../activities/visibility';
import { ApprovedByAttr } from '../../workflows/search-attributes';
import type { RunbookReport } from '../../workflows/types';
import { lifeboat, type CliResult } from '../support/cli';
import { createReplicaSet, lockId, waitForStep, waitUntil, type ReplicaSetFixture } from '../support/replica-set';
import { client, env, LogCapture, startWorker, type RunningWorker } from '../support/stack';
import { runbookReport } from '../../workflows/runbook-failure';

const DB = 'audb';
let fx: ReplicaSetFixture;
let temporal: Client;
let worker: RunningWorker;
const startedAt = new Date(Date.now() - 1000).toISOString();

/** The docs' audit table: question -> query, as an operator would paste it into the UI. */
function documentedQueries(): Map<string, string> {
  const page = readFileSync(join(__dirname, '..', '..', 'docs', 'operating', 'audit.md'), 'utf8');
  const block = /<!-- audit-queries -->([\s\S]*?)<!-- \/audit-queries -->/.exec(page)?.[1];
  if (!block) throw new Error('docs/operating/audit.md has no <!-- audit-queries --> table');
  const rows = new Map<string, string>();
  for (const line of block.split('\n')) {
    const m = /^\|\s*(.+?)\s*\|\s*`(.+)`\s*\|$/.exec(line.trim());
    if (m) rows.set(m[1]!, m[2]!);
  }
  return rows;
}

/** The docs' examples name orders, alice and a date; here they name this file's runs. */
function localize(query: string): string {
  return query
    .replaceAll("'orders'", `'${DB}'`)
    .replaceAll("'cli:alice'", "'cli:alice-audit'")
    .replace(/'\d{4}-\d\d-\d\dT[\d:]+Z'/, `'${startedAt}'`)
    .replace(/LifeboatRtoSeconds > \d+/, 'LifeboatRtoSeconds > 0');
}

async function idsFor(query: string): Promise<Set<string>> {
  const ids = new Set<string>();
  // Through listRuns (activities/visibility.ts), as Lifeboat itself lists: other test files leave runs
  // sealed with a codec key this client lacks, and the SDK's list would fail decoding their memos.
  for await (const run of listRuns(temporal, localize(query))) ids.add(run.workflowId);
  return ids;
}

const as = (who: string) => ({ LIFEBOAT_TRIGGERED_BY: who });
const reportOf = (r: CliResult): RunbookReport => JSON.parse(r.stdout) as RunbookReport;

const runs: Record<'readiness' | 'drillPassed' | 'drillFailed' | 'scheduledDrill' | 'failover' | 'failback', string> = {
  readiness: '',
  drillPassed: '',
  drillFailed: '',
  scheduledDrill: '',
  failover: '',
  failback: '',
};
let runningDuringApproval = new Set<string>();

beforeAll(async () => {
  fx = await createReplicaSet({ home: 'au-a', dr: 'au-b', database: DB });
  temporal = await client();
  worker = await startWorker({ regions: ['au-a', 'au-b'], capture: new LogCapture() });
  const plan = fx.planFile;
  const badPlan = join(env().home, 'plans', 'au-bad.yaml');
  writeFileSync(
    badPlan,
    readFileSync(plan, 'utf8').replace(
      '    checks:\n',
      '    checks:\n      - name: impossible\n        sql: select false\n',
    ),
  );
  const scheduled = join(env().home, 'plans', 'au-scheduled.yaml');
  writeFileSync(
    scheduled,
    readFileSync(plan, 'utf8').replace('    checks:\n', '    schedule:\n      drill: { every: 24h }\n    checks:\n'),
  );

  runs.readiness = reportOf(await lifeboat(['readiness', DB, '-f', plan, '--json'], as('cli:bob'))).workflowId;
  runs.drillPassed = reportOf(await lifeboat(['drill', DB, '-f', plan, '--json'], as('cli:bob'))).workflowId;
  runs.drillFailed = reportOf(await lifeboat(['drill', DB, '-f', badPlan, '--json'], as('cli:bob'))).workflowId;

  expect((await lifeboat(['schedule', 'apply', '-f', scheduled])).code).toBe(0);
  try {
    expect((await lifeboat(['schedule', 'trigger', `lifeboat/${DB}/drill`])).code).toBe(0);
    await waitUntil('the scheduled drill to finish', 120_000, async () => {
      for await (const run of temporal.workflow.list({
        query: `WorkflowId STARTS_WITH 'lifeboat/${DB}/drill/scheduled' AND ExecutionStatus = 'Completed'`,
      })) {
        runs.scheduledDrill = run.workflowId;
      }
      return runs.scheduledDrill !== '';
    });
  } finally {
    await temporal.schedule
      .getHandle(`lifeboat/${DB}/drill`)
      .delete()
      .catch(() => undefined);
  }

  const failover = lifeboat(['failover', DB, '-f', plan, '--planned', '--json'], as('cli:bob'));
  runs.failover = lockId(DB);
  await waitForStep(temporal.workflow.getHandle(runs.failover), 'failoverProgress', 'approval');
  runningDuringApproval = await idsFor(documentedQueries().get('Is a runbook of orders running now?')!);
  const approved = await lifeboat(
    ['approve', runs.failover, '-f', plan, '--reason', 'quarterly switchover rehearsal'],
    as('cli:alice-audit'),
  );
  expect(approved.code).toBe(0);
  expect(reportOf(await failover).outcome).toBe('passed');
  const failback = reportOf(await lifeboat(['failback', DB, '-f', plan, '--yes', '--json'], as('cli:bob')));
  expect(failback.outcome).toBe('passed');
  runs.failback = failback.workflowId;
  // Both used the lock ID: runs are told apart by run ID below where it matters.
}, 600_000);

afterAll(async () => {
  await worker?.stop();
  await fx?.close();
});

const cases: Array<{ question: string; includes: Array<keyof typeof runs>; excludes: Array<keyof typeof runs> }> = [
  {
    question: 'When did we last prove orders restores?',
    includes: ['drillPassed', 'scheduledDrill'],
    excludes: ['drillFailed', 'readiness'],
  },
  { question: 'Which drills found a problem?', includes: ['drillFailed'], excludes: ['drillPassed', 'scheduledDrill'] },
  {
    question: 'Which drills took longer than the RTO objective (30 min)?',
    includes: ['drillPassed'],
    excludes: ['drillFailed', 'readiness'],
  },
  { question: 'Every failover and failback of orders', includes: ['failover'], excludes: ['drillPassed', 'readiness'] },
  { question: 'What did alice approve?', includes: ['failover'], excludes: ['drillPassed'] },
  {
    question: 'What did people start by hand?',
    includes: ['drillPassed', 'drillFailed', 'readiness'],
    excludes: ['scheduledDrill'],
  },
  { question: 'What did the schedules start?', includes: ['scheduledDrill'], excludes: ['drillPassed', 'readiness'] },
  {
    question: 'When was orders found not ready to recover?',
    includes: ['readiness'],
    excludes: ['drillFailed', 'drillPassed'],
  },
  {
    question: 'Everything since a date (the last audit)',
    includes: ['drillPassed', 'readiness', 'scheduledDrill'],
    excludes: [],
  },
];

test('the docs list exactly the audit questions this test checks', () => {
  expect([...documentedQueries().keys()].sort()).toEqual(
    [...cases.map((c) => c.question), 'Is a runbook of orders running now?'].sort(),
  );
});

test.each(cases)('documented audit query: $question', async ({ question, includes, excludes }) => {
  const query = documentedQueries().get(question);
  expect(query).toBeDefined();
  const ids = await idsFor(query!);
  for (const run of includes) expect({ run, found: ids.has(runs[run]) }).toEqual({ run, found: true });
  for (const run of excludes) expect({ run, found: ids.has(runs[run]) }).toEqual({ run, found: false });
});

test('documented audit query: Is a runbook of orders running now? (asked while the failover waited for approval)', () => {
  expect(runningDuringApproval.has(runs.failover)).toBe(true);
  expect(runningDuringApproval.has(runs.drillPassed)).toBe(false);
});

test('the approval is on the run: who approved as a search attribute, who and why in the report', async () => {
  // The lock ID names both the failover and the failback: the failover is the earlier of the two runs.
  const versions = [];
  for await (const run of temporal.workflow.list({ query: `WorkflowId = '${lockId(DB)}'` })) versions.push(run);
  versions.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  const [failover, failback] = versions;
  expect(failover!.typedSearchAttributes.get(ApprovedByAttr)).toBe('cli:alice-audit');
  expect(failback!.typedSearchAttributes.get(ApprovedByAttr)).toBe('cli:bob');
  const report = await runbookReport(temporal.workflow.getHandle(lockId(DB), failover!.runId));
  expect(report.failover?.approval).toMatchObject({
    approvedBy: 'cli:alice-audit',
    reason: 'quarterly switchover rehearsal',
  });
  expect(report.steps.find((s) => s.name === 'approval')?.detail).toBe(
    'approved by cli:alice-audit: quarterly switchover rehearsal',
  );
  expect(report.runbookVersion).toMatch(/^lifeboat@\d+\.\d+\.\d+(\+g[0-9a-f]{12}(-dirty)?)?$/);
});
