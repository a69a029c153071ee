// `lifeboat backups list <db>`: the backups of a database in its primary and DR regions, newest first.
import { join } from 'node:path';
import { findPgBin } from '../../activities/pg/binaries';
import { databaseOf, planRegions, recoversByRestore } from '../../worker/plan';
import { formatBytes } from '../../services/evidence/terminal';
import { loadPlan, type CommandContext } from '../context';
import { UsageError } from '../usage';

export async function backups({ env, args, sub, say }: CommandContext): Promise<number> {
  if (sub === 'list' && args.positional.length > 3)
    throw new UsageError(
      `unexpected argument ${args.positional[3]}; expected: lifeboat backups list <db> [-f plan] [--json]`,
    );
  if (sub !== 'list' || args.positional.length !== 3)
    throw new UsageError('expected: lifeboat backups list <db> [-f plan] [--json]');
  const plan = loadPlan(env, args.plan);
  const name = args.positional[2]!;
  const db = databaseOf(plan, name);
  const providers = (await import('../../worker/main')).buildProviders(env);
  // Across clouds, the backups that matter are the portable ones in each region's store.
  const portable = recoversByRestore(plan, name)
    ? new (await import('../../activities/portable/portable-backups')).PortableBackups({
        pgBin: findPgBin(env.pgBin),
        workDir: join(env.home, 'restore-staging'),
      })
    : null;
  const rows = [];
  for (const region of planRegions(plan).filter((r) => r.name === db.primary.region || r.name === db.dr.region)) {
    const refs = portable
      ? await portable.list(region, db.primary.database)
      : await providers[region.provider].listBackups(region, db.primary.database);
    for (const ref of refs) {
      rows.push({
        id: ref.backupId,
        region: ref.region,
        time: ref.createdAt,
        sizeBytes: ref.sizeBytes,
        sha256: ref.sha256,
        path: ref.location,
      });
    }
  }
  rows.sort((a, b) => b.time.localeCompare(a.time));
  if (args.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
  else if (rows.length === 0) say(`no backups of ${name}; make one with: lifeboat backup ${name}`);
  else
    for (const r of rows)
      process.stdout.write(
        `${r.time}  ${r.region.padEnd(10)} ${r.id.padEnd(44)} ${formatBytes(r.sizeBytes).padStart(10)}  ${r.sha256.slice(0, 16)}…\n`,
      );
  return 0;
}
