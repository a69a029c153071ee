// `lifeboat traffic`: the traffic pointer (stable proxy ports) and the canary writer (services/traffic).
import { loadPlan, type CommandContext } from '../context';

export async function traffic({ env, args }: CommandContext): Promise<number> {
  const plan = loadPlan(env, args.plan);
  await (await import('../../services/traffic/for-plan')).runTrafficForPlan(env, plan);
  return 0;
}
