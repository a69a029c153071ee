// `lifeboat status <db>`: where the primary is, replication, and the last runs (services/status.ts).
import { expectArgs } from '../args';
import { loadPlan, type CommandContext } from '../context';

export async function status({ env, args, sub }: CommandContext): Promise<number> {
  expectArgs(args, 2, 'lifeboat status <db> [-f plan] [--json]');
  return (await import('../../services/status')).status(env, loadPlan(env, args.plan), sub!, args.json);
}
