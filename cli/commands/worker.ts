// `lifeboat worker`: a worker serving the plan's region queues (all, or those of --region) and the
// runbook queue.
import { planRegions } from '../../worker/plan';
import { expectArgs } from '../args';
import { loadPlan, type CommandContext } from '../context';
import { UsageError } from '../usage';

export async function worker({ env, args }: CommandContext): Promise<number> {
  expectArgs(args, 1, 'lifeboat worker [-f plan] [--region name]...');
  const plan = loadPlan(env, args.plan);
  const all = planRegions(plan);
  // A worker placed in one region serves that region's queue (and the runbook queue): with one in
  // the DR region, a failover runs while the primary's region is dark.
  const unknown = (args.regions ?? []).filter((name) => !all.some((r) => r.name === name));
  if (unknown.length)
    throw new UsageError(
      `--region ${unknown.join(', ')}: not a region of ${plan.source}; expected one of ${all.map((r) => r.name).join(', ')}`,
    );
  const regions = args.regions ? all.filter((r) => args.regions!.includes(r.name)) : all;
  await (await import('../../worker/main')).runWorker({ regions, env, plan });
  return 0;
}
