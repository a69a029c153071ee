// `lifeboat failback <db>`: the primary role back to the home region after a failover.
import { crossCloudInput, failbackInput, recoversByRestore } from '../../worker/plan';
import { topologyLockId } from '../../workflows/types';
import { expectArgs } from '../args';
import { loadPlan, whoAmI, type CommandContext } from '../context';
import { runRunbook, startCrossCloud } from '../run-runbook';

export async function failback({ env, args, sub }: CommandContext): Promise<number> {
  expectArgs(args, 2, 'lifeboat failback <db> [-f plan] [--yes] [--discard-divergent] [--json]');
  const plan = loadPlan(env, args.plan);
  if (recoversByRestore(plan, sub!)) {
    return startCrossCloud(
      env,
      args,
      crossCloudInput(plan, sub!, {
        direction: 'failback',
        mode: 'planned',
        preApproved: args.yes,
        triggeredBy: whoAmI(),
      }),
    );
  }
  const input = failbackInput(plan, sub!, {
    preApproved: args.yes,
    triggeredBy: whoAmI(),
    discardDivergent: args.discardDivergent,
  });
  return runRunbook(env, args, {
    runbook: 'failback',
    database: input.database,
    input,
    provider: input.replicaSet.home.provider,
    summary: `Failback of ${input.database} to ${input.replicaSet.home.name}`,
    workflowId: topologyLockId(input.database),
    awaitsApproval: !args.yes,
  });
}
