// `lifeboat dev up | down | status`: the local stack (Temporal dev server, local PostgreSQL regions,
// a worker, the codec server).
import { resolve } from 'node:path';
import { loadPlan, type CommandContext } from '../context';
import { UsageError } from '../usage';

// Loaded only for `dev`: no other command pays for the stack's machinery.
const stack = () => import('../../scripts/dev/stack');

export async function dev({ env, args, sub, say }: CommandContext): Promise<number> {
  if (sub === 'up') {
    // With -f, the stack's worker serves that plan (it refuses runs its plan does not yield).
    const plan = args.plan ? loadPlan(env, resolve(args.plan)) : undefined;
    const state = await (await stack()).devUp(env, say, plan && { file: plan.source, digest: plan.digest });
    say(`\nstack up. Temporal UI: ${state.temporal.uiUrl}   next: lifeboat drill orders`);
    return 0;
  }
  if (sub === 'down') return (await (await stack()).devDown(env, say), 0);
  if (sub === 'status') {
    const status = await (await stack()).devStatus(env);
    if (args.json) process.stdout.write(JSON.stringify(status, null, 2) + '\n');
    else {
      say(
        `temporal  ${status.temporal.running ? 'running' : 'stopped'}  ${status.temporal.address}  UI ${status.temporal.uiUrl}`,
      );
      say(
        `worker    ${status.worker.running ? `running (pid ${status.worker.pid})` : 'stopped'}  log ${status.worker.log}`,
      );
      say(
        `codec     ${status.codecServer.running ? `running (pid ${status.codecServer.pid})` : 'stopped'}  ${status.codecServer.endpoint}  keys ${status.codecServer.keys ? `${status.codecServer.keys.ids.join(', ')} (${status.codecServer.keys.source})` : 'none: payloads are not encrypted'}`,
      );
      for (const [name, r] of Object.entries(status.regions))
        say(`${name.padEnd(9)} ${r.running ? 'running' : 'stopped'}  ${r.url ?? '(not created)'}`);
    }
    return status.temporal.running && status.worker.running && Object.values(status.regions).every((r) => r.running)
      ? 0
      : 1;
  }
  throw new UsageError('expected: lifeboat dev up | down | status [--json]');
}
