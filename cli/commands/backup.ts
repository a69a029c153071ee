// `lifeboat backup <db>`: a backup in the primary's region and its copy to the DR region.
import { backupInput } from '../../worker/plan';
import { expectArgs } from '../args';
import { loadPlan, whoAmI, type CommandContext } from '../context';
import { runOnPrimary } from '../run-runbook';

export async function backup({ env, args, sub }: CommandContext): Promise<number> {
  expectArgs(args, 2, 'lifeboat backup <db> [-f plan] [--json]');
  const input = backupInput(loadPlan(env, args.plan), sub!, { triggeredBy: whoAmI() });
  return runOnPrimary(
    env,
    args,
    'backup',
    input,
    `Backup of ${input.database}: ${input.primary.region.name} + copy to ${input.dr.name}`,
  );
}
