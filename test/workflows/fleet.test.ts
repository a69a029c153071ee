// `lifeboat drill --all`: a fleet drill through the compiled CLI, as child Drill workflows with a
// concurrency limit, on real local databases. One drill finds bad data; the others still run, and
// the fleet reports which.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withClient } from '../../activities/pg/sql';
import { seedDemo } from '../../scripts/dev/seed';
import type { FleetDrillResult } from '../../workflows/fleet';
import { loadPlanFile } from '../../worker/plan';
import { lifeboat } from '../support/cli';
import { client, createDatabases, env, local, withWorker } from '../support/stack';
import { localPlanText } from '../support/wf-local-plan';

const DATABASES = ['fleet_a', 'fleet_b', 'fleet_c'];

describe('fleet drill (child workflows, a concurrency limit; real local databases)', () => {
  let plan: string;

  beforeAll(async () => {
    const region = { name: 'local-a', provider: 'local' as const };
    await createDatabases(await local().connect({ region, database: 'postgres' }), DATABASES);
    for (const db of DATABASES)
      await withClient(await local().connect({ region, database: db }), (c) => seedDemo(c, 0.01));
    plan = join(env().home, 'fleet-plan.yaml');
    const databases = DATABASES.map((db) => ({
      key: db.replace('_', '-'),
      database: db,
      home: 'local-a',
      dr: 'local-b',
      objectives: { rpo: '1h', rto: '1h' },
      checks: [{ name: 'orders exist', sql: `select ${db === 'fleet_c' ? 'false' : 'count(*) > 0 from orders'}` }],
    }));
    writeFileSync(plan, localPlanText(databases));
  });

  test('every database is drilled as a child workflow, at most 2 at a time; the one with bad data fails the fleet and the others still pass', async () => {
    // The worker checks each child drill's input against the plan, as `lifeboat worker -f plan` does.
    const run = await withWorker(
      () => lifeboat(['drill', '--all', '-f', plan, '--concurrency', '2', '--json']),
      undefined,
      undefined,
      loadPlanFile(plan),
    );
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as FleetDrillResult;
    expect(report.outcome).toBe('failed');
    expect(report.reason).toBe('1 of 3 drills failed: fleet-c');
    expect(report.drills.map((d) => [d.database, d.outcome])).toEqual([
      ['fleet-a', 'passed'],
      ['fleet-b', 'passed'],
      ['fleet-c', 'failed'],
    ]);
    expect(report.drills.find((d) => d.database === 'fleet-c')?.reason).toContain('orders exist');

    // Each drill is its own workflow, a child of the fleet, with its own report.
    for (const d of report.drills) {
      const described = await (await client()).workflow.getHandle(d.workflowId).describe();
      expect(described.type).toBe('drill');
      expect(described.parentExecution?.workflowId).toBe(report.workflowId);
    }
    // Never more than two at once, from the steps' own times.
    const spans = report.steps.map((s) => [Date.parse(s.startedAt!), Date.parse(s.finishedAt!)] as const);
    for (const [start] of spans)
      expect(spans.filter(([a, b]) => a <= start && start < b).length).toBeLessThanOrEqual(2);
    expect(report.steps).toHaveLength(3);
  });

  test('--concurrency out of range, or without --all, is a usage error', async () => {
    const zero = await lifeboat(['drill', '--all', '-f', plan, '--concurrency', '0']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain('--concurrency 0: expected a whole number from 1 to 50');
    const alone = await lifeboat(['drill', 'fleet-a', '-f', plan, '--concurrency', '2']);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain('--concurrency goes with --all');
  });
});
