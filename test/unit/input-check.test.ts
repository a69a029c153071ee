// The worker's check of a run's input against its plan (worker/input-check.ts): what the CLI,
// the schedules and fleet drills build passes; anything a hand-made input changes is refused.
import { desiredSchedules } from '../../services/schedule';
import { planMismatches } from '../../worker/input-check';
import {
  backupInput,
  crossCloudInput,
  drillInput,
  failbackInput,
  failoverInput,
  parsePlan,
  readinessInput,
} from '../../worker/plan';
import { topologyLockId } from '../../workflows/types';

const PLAN = parsePlan(
  `regions:
  local-a: { provider: local, store: { dir: /tmp/lifeboat-input-check-a } }
  local-b: { provider: local }
  gcp-east:
    provider: gcp
    project: demo-project
    gcpRegion: us-east4
    scratch: { databaseVersion: POSTGRES_15 }
    store: { gcs: { bucket: demo-bucket, prefix: backups/ } }
databases:
  orders:
    primary: { region: local-a, database: orders }
    dr: { region: local-b, standby: true }
    objectives: { rpo: 15m, rto: 30m }
    checks:
      - name: recent orders exist
        sql: select count(*) > 0 from orders
    schedule: { drill: { every: 24h }, backup: { every: 1h }, readiness: { every: 15m } }
  ledger:
    primary: { region: local-a, database: ledger }
    dr: { region: gcp-east, instance: ledger-dr, credentials: { user: postgres, password: "env:LEDGER_DR_PASSWORD" } }
    objectives: { rpo: 1h, rto: 10m }
    checks:
      - name: entries exist
        sql: select count(*) > 0 from entries
`,
  'input-check.yaml',
);

const run = (workflowType: string, workflowId = `lifeboat/orders/${workflowType}/2026-01-01T00:00:00Z`) => ({
  workflowType,
  workflowId,
});
const by = { triggeredBy: 'cli:alice' };

describe('inputs built from the plan pass', () => {
  test.each([
    ['drill', drillInput(PLAN, 'orders', { fromLatestBackup: false, ...by })],
    ['drill', drillInput(PLAN, 'orders', { fromLatestBackup: true, ...by })],
    ['drill', drillInput(PLAN, 'ledger', { fromLatestBackup: false, ...by })],
    ['backup', backupInput(PLAN, 'orders', by)],
    ['readiness', readinessInput(PLAN, 'orders', by)],
  ])('%s', (type, input) => {
    expect(planMismatches(PLAN, run(type), input)).toEqual([]);
  });

  test('failover (every mode, with and without --yes) and failback (with and without --discard-divergent) under the lock ID', () => {
    for (const mode of ['planned', 'unplanned', 'zonal'] as const) {
      for (const preApproved of [true, false]) {
        expect(
          planMismatches(
            PLAN,
            run('failover', topologyLockId('orders')),
            failoverInput(PLAN, 'orders', { mode, preApproved, ...by }),
          ),
        ).toEqual([]);
      }
    }
    expect(
      planMismatches(
        PLAN,
        run('failback', topologyLockId('orders')),
        failbackInput(PLAN, 'orders', { preApproved: true, ...by }),
      ),
    ).toEqual([]);
    expect(
      planMismatches(
        PLAN,
        run('failback', topologyLockId('orders')),
        failbackInput(PLAN, 'orders', { preApproved: true, discardDivergent: true, ...by }),
      ),
    ).toEqual([]);
  });

  test('a cross-cloud failover and failback under the lock ID', () => {
    for (const direction of ['failover', 'failback'] as const) {
      const input = crossCloudInput(PLAN, 'ledger', { direction, mode: 'planned', preApproved: false, ...by });
      expect(planMismatches(PLAN, run('crossCloudFailover', topologyLockId('ledger')), input)).toEqual([]);
    }
  });

  test("every scheduled run the plan's schedules start", () => {
    const schedules = desiredSchedules(PLAN);
    expect(schedules.map((s) => s.runbook).sort()).toEqual(['backup', 'drill', 'readiness']);
    for (const s of schedules) {
      const action = s.options.action as { workflowType: string; workflowId: string; args: unknown[] };
      expect(
        planMismatches(PLAN, run(action.workflowType, `${action.workflowId}-2026-01-01T00:00:00Z`), action.args[0]),
      ).toEqual([]);
    }
  });

  test("a fleet drill's children (drill inputs from the plan, IDs under the fleet's)", () => {
    for (const db of ['orders', 'ledger']) {
      expect(
        planMismatches(
          PLAN,
          run('drill', `lifeboat/(fleet)/drill/2026-01-01T00:00:00Z/${db}`),
          drillInput(PLAN, db, { fromLatestBackup: false, triggeredBy: 'cli:alice' }),
        ),
      ).toEqual([]);
    }
  });
});

describe('a hand-made input is refused, naming what differs', () => {
  const drill = () => drillInput(PLAN, 'orders', { fromLatestBackup: false, ...by });

  test('a check that is not in the plan (raw SQL)', () => {
    const input = {
      ...drill(),
      checks: [...drill().checks, { name: 'exfiltrate', sql: "select pg_read_file('/etc/passwd') is not null" }],
    };
    const problems = planMismatches(PLAN, run('drill'), input);
    expect(problems).toEqual([
      expect.stringContaining('"exfiltrate" is not the plan\'s (the run has 2 checks, the plan 1)'),
    ]);
    expect(problems.join()).not.toContain('pg_read_file');
  });

  test("a plan check's SQL changed under its own name", () => {
    const input = { ...drill(), checks: [{ name: 'recent orders exist', sql: 'select true' }] };
    expect(planMismatches(PLAN, run('drill'), input)).toEqual([
      expect.stringContaining('"recent orders exist" is not the plan\'s'),
    ]);
  });

  test('a file: credentials reference', () => {
    const input = drillInput(PLAN, 'ledger', { fromLatestBackup: false, ...by });
    const problems = planMismatches(PLAN, run('drill'), {
      ...input,
      drCredentials: { user: 'postgres', password: 'file:/etc/shadow' },
    });
    expect(problems).toEqual(['differs from the plan at drCredentials.password']);
    expect(
      planMismatches(PLAN, run('drill'), {
        ...drill(),
        primary: { ...drill().primary, credentials: { user: 'x', password: 'file:/root/.pgpass' } },
      }),
    ).toEqual(['differs from the plan at primary.credentials']);
  });

  test('another database, region or objective than the plan says', () => {
    expect(planMismatches(PLAN, run('drill'), { ...drill(), database: 'payroll' })).toEqual([
      expect.stringContaining('database "payroll" is not in input-check.yaml'),
    ]);
    expect(
      planMismatches(PLAN, run('drill'), { ...drill(), primary: { ...drill().primary, database: 'postgres' } }),
    ).toEqual(['differs from the plan at primary.database']);
    expect(planMismatches(PLAN, run('drill'), { ...drill(), dr: { name: 'local-a', provider: 'local' } })).toEqual([
      'differs from the plan at dr.name',
    ]);
    expect(
      planMismatches(PLAN, run('drill'), { ...drill(), objectives: { rpoSeconds: 1e9, rtoSeconds: 1800 } }),
    ).toEqual(['differs from the plan at objectives.rpoSeconds']);
  });

  test('an extra field, and a value of the wrong type for an option', () => {
    expect(planMismatches(PLAN, run('drill'), { ...drill(), portable: true })).toEqual([
      'differs from the plan at portable',
    ]);
    expect(planMismatches(PLAN, run('drill'), { ...drill(), fromLatestBackup: 'yes' })).toEqual([
      'differs from the plan at fromLatestBackup',
    ]);
  });

  test('a run built from another version of the plan (stale digest)', () => {
    expect(planMismatches(PLAN, run('drill'), { ...drill(), planDigest: 'f'.repeat(64) })).toEqual([
      expect.stringMatching(
        /^planDigest: the run was built from plan "ffffffffffff", this worker loaded [0-9a-f]{12} \(input-check\.yaml\)/,
      ),
    ]);
  });

  test('approval flags: a changed timeout, a non-boolean pre-approval', () => {
    const failover = failoverInput(PLAN, 'orders', { mode: 'planned', preApproved: false, ...by });
    const lock = run('failover', topologyLockId('orders'));
    expect(planMismatches(PLAN, lock, { ...failover, approval: { preApproved: false, timeoutSeconds: 1 } })).toEqual([
      'differs from the plan at approval.timeoutSeconds',
    ]);
    expect(planMismatches(PLAN, lock, { ...failover, approval: { preApproved: 'true', timeoutSeconds: 900 } })).toEqual(
      ['differs from the plan at approval.preApproved'],
    );
    expect(planMismatches(PLAN, lock, { ...failover, mode: 'sideways' })).toEqual([
      'mode "sideways": expected planned, unplanned, zonal',
    ]);
  });

  test('a failover or failback outside the per-database lock ID', () => {
    const failover = failoverInput(PLAN, 'orders', { mode: 'planned', preApproved: true, ...by });
    expect(planMismatches(PLAN, run('failover', 'by-hand/orders/failover-2'), failover)).toEqual([
      'workflow ID "by-hand/orders/failover-2": a failover of "orders" runs only as lifeboat/orders/failover, the per-database lock (one failover or failback at a time)',
    ]);
    expect(
      planMismatches(PLAN, run('failback', 'x'), failbackInput(PLAN, 'orders', { preApproved: true, ...by }))[0],
    ).toMatch(/^workflow ID "x": a failback of "orders" runs only as lifeboat\/orders\/failover/);
    expect(
      planMismatches(PLAN, run('failover', topologyLockId('ledger')), { ...failover, database: 'ledger' })[0],
    ).toBe('ledger recovers across clouds: its failover is the crossCloudFailover runbook');
  });

  test('a runbook the worker does not know, or an input that is not an object', () => {
    expect(planMismatches(PLAN, run('fleetDrill'), {})).toEqual([
      expect.stringContaining('workflow type "fleetDrill" is not a runbook this worker checks'),
    ]);
    expect(planMismatches(PLAN, run('drill'), 'orders')).toEqual(['the input is not an object']);
    expect(planMismatches(PLAN, run('drill'), { database: 'orders' })).toEqual([
      'database and triggeredBy must be strings',
    ]);
  });

  test('a value from a hand-made input is shown escaped (no terminal control characters)', () => {
    const problems = planMismatches(PLAN, run('drill'), {
      ...drill(),
      checks: [{ name: 'x\u001b[2J\u009b', sql: 'select true' }],
    });
    expect(problems.join()).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(problems.join()).toContain('"x\\u001b[2J\\u009b"');
  });
});
