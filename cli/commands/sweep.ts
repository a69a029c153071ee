// `lifeboat sweep`: deletes, in every region of the plan, the scratch instances whose drill is no
// longer running (the readiness runs do the same for their DR region). Exit 1 when a region could not
// be listed or a delete failed.
import { planRegions } from '../../worker/plan';
import { expectArgs } from '../args';
import { connectTemporal, loadPlan, type CommandContext } from '../context';

export async function sweep({ env, args }: CommandContext): Promise<number> {
  expectArgs(args, 1, 'lifeboat sweep [-f plan] [--json]');
  const plan = loadPlan(env, args.plan);
  const json = args.json;
  const client = await connectTemporal({
    then: 'the sweep asks Temporal which drills are running; without it nothing is deleted',
  });
  if (!client) return 1;
  const providers = (await import('../../worker/main')).buildProviders(env);
  const { sweepScratch } = await import('../../activities/scratch-sweep');
  const outcome = await sweepScratch({
    regions: planRegions(plan),
    provider: (region) => providers[region.provider],
    client,
  });
  if (json) process.stdout.write(JSON.stringify(outcome, null, 2) + '\n');
  else {
    for (const d of outcome.deleted)
      process.stdout.write(
        `deleted  ${d.region}/${d.name}  (drill ${d.drill?.workflowId} ${d.drill?.status.toLowerCase()})\n`,
      );
    for (const k of outcome.kept)
      process.stdout.write(
        `kept     ${k.region}/${k.name}  (${k.reason}${k.drill ? `: ${k.drill.workflowId}` : ''})\n`,
      );
    for (const f of outcome.failed) process.stdout.write(`FAILED   ${f.region}/${f.name}  ${f.error}\n`);
    process.stderr.write(
      `swept ${planRegions(plan).length} region(s): ${outcome.deleted.length} deleted, ${outcome.kept.length} kept, ${outcome.failed.length} failed\n`,
    );
  }
  await client.connection.close();
  return outcome.failed.length ? 1 : 0;
}
