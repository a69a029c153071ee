// `lifeboat plan validate`: loads the plan as every command does, and says what it holds.
import { loadPlan, plural, type CommandContext } from '../context';
import { UsageError } from '../usage';

export async function plan({ env, args, sub, say }: CommandContext): Promise<number> {
  if (sub !== 'validate') throw new UsageError('expected: lifeboat plan validate [-f plan]');
  // A stray argument is most often the plan path without -f: refuse it rather than validate the demo plan.
  if (args.positional.length > 2)
    throw new UsageError(`unexpected argument ${args.positional[2]}; expected: lifeboat plan validate [-f plan]`);
  const plan = loadPlan(env, args.plan);
  say(
    `${plan.source}: valid (${plural(Object.keys(plan.plan.databases).length, 'database')}, ${plural(Object.keys(plan.plan.regions).length, 'region')}, sha256 ${plan.digest.slice(0, 12)})`,
  );
  return 0;
}
