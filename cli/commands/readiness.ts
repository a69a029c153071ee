// `lifeboat readiness <db>`: is the database recoverable now (backup age, DR copy, standby, drill recency).
import { readinessInput } from '../../worker/plan';
import { expectArgs } from '../args';
import { loadPlan, whoAmI, type CommandContext } from '../context';
import { runOnPrimary } from '../run-runbook';

export async function readiness({ env, args, sub }: CommandContext): Promise<number> {
  expectArgs(args, 2, 'lifeboat readiness <db> [-f plan] [--json]');
  const input = readinessInput(loadPlan(env, args.plan), sub!, { triggeredBy: whoAmI() });
  return runOnPrimary(
    env,
    args,
    'readiness',
    input,
    `Readiness check of ${input.database}: backups, copy in ${input.dr.name}${input.replicaSet ? ', standby' : ''}, drill recency`,
  );
}
