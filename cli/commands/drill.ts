// `lifeboat drill <db>` and `lifeboat drill --all`: a restore drill of one database, or of every
// database of the plan as child workflows of a fleet drill.
import { drillInput } from '../../worker/plan';
import { expectArgs } from '../args';
import { loadPlan, whoAmI, type CommandContext } from '../context';
import { runOnPrimary, runRunbook } from '../run-runbook';
import { UsageError } from '../usage';

export async function drill({ env, args, sub }: CommandContext): Promise<number> {
  if (args.all) {
    expectArgs(
      args,
      1,
      'lifeboat drill --all [-f plan] [--concurrency N] [--from-latest-backup] [--json] (no database: --all drills every one)',
    );
    const plan = loadPlan(env, args.plan);
    const drills = Object.keys(plan.plan.databases).map((db) =>
      drillInput(plan, db, { fromLatestBackup: args.fromLatestBackup, triggeredBy: whoAmI() }),
    );
    const input = { drills, concurrency: args.concurrency ?? 4, triggeredBy: whoAmI() };
    return runRunbook(env, args, {
      runbook: 'drill',
      workflowType: 'fleetDrill',
      database: '(fleet)',
      input,
      provider: drills[0]!.primary.region.provider,
      summary: `Fleet drill of ${drills.length} database(s), ${input.concurrency} at a time`,
    });
  }
  if (args.concurrency !== undefined) throw new UsageError('--concurrency goes with --all');
  expectArgs(args, 2, 'lifeboat drill <db> [-f plan] [--from-latest-backup] [--json]');
  const input = drillInput(loadPlan(env, args.plan), sub!, {
    fromLatestBackup: args.fromLatestBackup,
    triggeredBy: whoAmI(),
  });
  return runOnPrimary(
    env,
    args,
    'drill',
    input,
    `Drill of ${input.database}: ${input.primary.region.name} -> ${input.dr.name}${input.fromLatestBackup ? ' (latest existing backup)' : ''}`,
  );
}
