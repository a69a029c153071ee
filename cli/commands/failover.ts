// `lifeboat failover <db>`: a planned switchover, an unplanned failover or a zonal (regional HA)
// failover; across clouds, a restore of a portable backup (workflows/cross-cloud.ts).
import { crossCloudInput, failoverInput, PlanError, recoversByRestore } from '../../worker/plan';
import { topologyLockId } from '../../workflows/types';
import { expectArgs } from '../args';
import { loadPlan, whoAmI, type CommandContext } from '../context';
import { runRunbook, startCrossCloud } from '../run-runbook';

export async function failover({ env, args, sub }: CommandContext): Promise<number> {
  expectArgs(args, 2, 'lifeboat failover <db> [-f plan] [--planned | --unplanned | --zonal] [--yes] [--json]');
  const mode = args.mode ?? 'planned';
  const plan = loadPlan(env, args.plan);
  if (recoversByRestore(plan, sub!)) {
    if (mode === 'zonal')
      throw new PlanError(`--zonal is a platform HA failover within one region; ${sub} recovers across clouds`);
    return startCrossCloud(
      env,
      args,
      crossCloudInput(plan, sub!, { direction: 'failover', mode, preApproved: args.yes, triggeredBy: whoAmI() }),
    );
  }
  const input = failoverInput(plan, sub!, { mode, preApproved: args.yes, triggeredBy: whoAmI() });
  return runRunbook(env, args, {
    runbook: 'failover',
    database: input.database,
    input,
    provider: input.replicaSet.home.provider,
    summary:
      mode === 'zonal'
        ? `Zonal (regional HA) failover of ${input.database} in ${input.replicaSet.home.name}`
        : `${mode === 'planned' ? 'Planned switchover' : 'Unplanned failover'} of ${input.database} to ${input.replicaSet.dr.name}`,
    // One failover or failback per database at a time: the ID is the lock.
    workflowId: topologyLockId(input.database),
    awaitsApproval: !args.yes,
  });
}
