// `lifeboat approve <workflow-id>`: approves a waiting failover or failback; the runbook's validator
// rejects a wrong database or a stale plan.
import { connectClient } from '../../worker/temporal';
import { DatabaseAttr } from '../../workflows/search-attributes';
import { expectArgs } from '../args';
import { loadPlan, whoAmI, type CommandContext } from '../context';

export async function approve({ env, args, sub }: CommandContext): Promise<number> {
  expectArgs(args, 2, 'lifeboat approve <workflow-id> [-f plan] [--reason text]');
  const workflowId = sub!;
  const plan = loadPlan(env, args.plan);
  const client = await connectClient();
  const handle = client.workflow.getHandle(workflowId);
  let database: string | undefined;
  try {
    database = (await handle.describe()).typedSearchAttributes.get(DatabaseAttr);
  } catch (err) {
    process.stderr.write(`lifeboat: no workflow ${workflowId}: ${(err as Error).message}\n`);
    return 2;
  }
  if (!database) {
    process.stderr.write(`lifeboat: ${workflowId} is not a Lifeboat runbook (no LifeboatDatabase attribute)\n`);
    return 2;
  }
  try {
    // Loaded here: it brings @temporalio/workflow, which no other command needs (~25 ms at start-up).
    const { approveFailoverUpdate } = await import('../../workflows/messages');
    await handle.executeUpdate(approveFailoverUpdate, {
      args: [
        {
          database,
          planDigest: plan.digest,
          approvedBy: whoAmI(),
          reason: args.reason ?? 'approved from the command line',
        },
      ],
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause;
    process.stderr.write(`lifeboat: approval rejected: ${cause?.message ?? (err as Error).message}\n`);
    return 2;
  }
  process.stderr.write(`approved ${workflowId} (${database}) as ${whoAmI()}\n`);
  return 0;
}
