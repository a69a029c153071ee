// `lifeboat schedule apply | list | pause | unpause | trigger`: Temporal Schedules that match the
// plan's schedule: blocks (services/schedule.ts).
import { expectArgs } from '../args';
import { connectTemporal, loadPlan, whoAmI, type CommandContext } from '../context';
import { UsageError } from '../usage';

export async function schedule({ env, args, sub, say }: CommandContext): Promise<number> {
  const schedules = await import('../../services/schedule');
  if (sub === 'apply') {
    expectArgs(args, 2, 'lifeboat schedule apply [-f plan] [--json]');
    const plan = loadPlan(env, args.plan);
    schedules.desiredSchedules(plan); // bad input is found before the server is called
    const client = await connectTemporal();
    if (!client) return 1;
    const result = await schedules.applySchedules(client, plan);
    if (args.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else {
      for (const [what, ids] of Object.entries(result))
        for (const id of ids as string[]) process.stdout.write(`${what.padEnd(9)} ${id}\n`);
      say(
        `schedules match ${plan.source}: ${result.created.length} created, ${result.updated.length} updated, ${result.unchanged.length} unchanged, ${result.deleted.length} deleted`,
      );
    }
    return 0;
  }
  if (sub === 'list') {
    expectArgs(args, 2, 'lifeboat schedule list [--json]');
    const client = await connectTemporal();
    if (!client) return 1;
    const rows = await schedules.listSchedules(client);
    if (args.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    else if (rows.length === 0)
      say('no Lifeboat schedules; add schedule: blocks to the plan and run `lifeboat schedule apply -f plan`');
    else
      for (const r of rows)
        process.stdout.write(
          `${r.scheduleId.padEnd(36)} ${r.paused ? 'paused ' : 'active '} next ${r.nextRuns[0] ?? '-'}${r.note ? `  (${r.note})` : ''}\n`,
        );
    return 0;
  }
  if (sub === 'pause' || sub === 'unpause' || sub === 'trigger') {
    expectArgs(args, 3, `lifeboat schedule ${sub} <schedule-id> [--reason text]`);
    const client = await connectTemporal();
    if (!client) return 1;
    const id = args.positional[2]!;
    try {
      await schedules.actOnSchedule(client, sub, id, `${sub}d by ${whoAmI()}${args.reason ? `: ${args.reason}` : ''}`);
    } catch (err) {
      if (err instanceof schedules.ScheduleMissing) throw new UsageError(err.message);
      throw err;
    }
    say(`${id}: ${sub === 'trigger' ? 'triggered' : `${sub}d`}`);
    return 0;
  }
  throw new UsageError('expected: lifeboat schedule apply | list | pause | unpause | trigger');
}
