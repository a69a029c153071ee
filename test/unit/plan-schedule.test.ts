// The plan's schedule blocks: a cadence is every (a duration) or cron, never both; cron typos and
// out-of-range fields are named; jitter must be shorter than the interval.
import { parsePlan, readinessInput } from '../../worker/plan';
import { planErrorOf } from '../support/plan-errors';
import { desiredSchedules } from '../../services/schedule';
import { ordersPlan } from './helpers';

function plan(schedule: string): string {
  return ordersPlan(`    schedule:\n${schedule}\n`);
}

describe('plan schedule blocks', () => {
  test('every, cron and jitter become a Temporal schedule spec with overlap SKIP and the catch-up window', () => {
    const loaded = parsePlan(
      plan(
        '      drill: { every: 24h, jitter: 30m }\n      backup: { cron: "*/15 * * * 1-5" }\n      catchupWindow: 5m',
      ),
      'plan.yaml',
    );
    const [drill, backup] = desiredSchedules(loaded);
    expect(drill).toMatchObject({
      scheduleId: 'lifeboat/orders/drill',
      options: {
        spec: { intervals: [{ every: 86_400_000 }], jitter: 1_800_000 },
        policies: { catchupWindow: 300_000 },
      },
    });
    expect(backup).toMatchObject({
      scheduleId: 'lifeboat/orders/backup',
      options: { spec: { cronExpressions: ['*/15 * * * 1-5'] } },
    });
    // The digest follows the plan: the same plan gives the same digest, a changed one another.
    expect(
      desiredSchedules(
        parsePlan(
          plan(
            '      drill: { every: 24h, jitter: 30m }\n      backup: { cron: "*/15 * * * 1-5" }\n      catchupWindow: 5m',
          ),
          'plan.yaml',
        ),
      )[0]!.digest,
    ).toBe(drill!.digest);
    expect(desiredSchedules(parsePlan(plan('      drill: { every: 12h }'), 'plan.yaml'))[0]!.digest).not.toBe(
      drill!.digest,
    );
  });

  test('readiness runs on its own schedule; the drill window is the drill interval + jitter + catch-up window unless given', () => {
    const loaded = parsePlan(
      plan('      drill: { every: 24h, jitter: 30m }\n      readiness: { every: 15m }\n      catchupWindow: 10m'),
      'plan.yaml',
    );
    const readiness = desiredSchedules(loaded).find((s) => s.runbook === 'readiness');
    expect(readiness).toMatchObject({
      scheduleId: 'lifeboat/orders/readiness',
      options: { spec: { intervals: [{ every: 900_000 }] }, action: { workflowType: 'readiness' } },
    });
    expect(readinessInput(loaded, 'orders', { triggeredBy: 't' }).drillWindowSeconds).toBe(86_400 + 1_800 + 600);
    const given = parsePlan(plan('      drill: { cron: "0 3 * * *" }\n      drillWindow: 26h'), 'plan.yaml');
    expect(readinessInput(given, 'orders', { triggeredBy: 't' }).drillWindowSeconds).toBe(26 * 3600);
    const cronOnly = parsePlan(plan('      drill: { cron: "0 3 * * *" }'), 'plan.yaml');
    expect(readinessInput(cronOnly, 'orders', { triggeredBy: 't' }).drillWindowSeconds).toBe(7 * 86_400);
  });

  test.each([
    [
      'both every and cron',
      '      drill: { every: 1h, cron: "0 * * * *" }',
      /schedule\.drill: expected exactly one of every \(a duration\) or cron/,
    ],
    ['neither', '      drill: { jitter: 5m }', /schedule\.drill: expected exactly one of every/],
    [
      'a cron typo (four fields)',
      '      backup: { cron: "0 3 * *" }',
      /schedule\.backup\.cron: expected five cron fields/,
    ],
    [
      'a cron hour out of range',
      '      backup: { cron: "0 25 * * *" }',
      /schedule\.backup\.cron: .*each within its range/,
    ],
    ['a zero cron step', '      backup: { cron: "*/0 * * * *" }', /schedule\.backup\.cron: .*each within its range/],
    [
      'jitter as long as the interval',
      '      drill: { every: 1h, jitter: 1h }',
      /schedule\.drill\.jitter: 3600s is not shorter than every/,
    ],
    ['an interval under a minute', '      drill: { every: 30s }', /schedule\.drill\.every: 30s; expected at least 1m/],
    ['a negative interval', '      drill: { every: -5m }', /schedule\.drill\.every: expected a duration/],
    [
      'an unknown key',
      '      drills: { every: 1h }',
      /schedule\.drills: unknown key; expected only drill, backup, readiness, drillWindow, catchupWindow/,
    ],
    [
      'a readiness cron typo',
      '      readiness: { cron: "*/15 * *" }',
      /schedule\.readiness\.cron: expected five cron fields/,
    ],
    ['a negative drill window', '      drillWindow: -1h', /schedule\.drillWindow: expected a duration/],
  ])('refused, naming the field: %s', (_what, schedule, expected) => {
    expect(planErrorOf(plan(schedule))).toMatch(expected);
  });
});
