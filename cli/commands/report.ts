// `lifeboat report`: the evidence report of one finished run, or the drill history of a database
// (services/evidence).
import { expectArgs } from '../args';
import type { CommandContext } from '../context';
import { UsageError } from '../usage';

export async function report({ env, args, sub }: CommandContext): Promise<number> {
  expectArgs(
    args,
    2,
    'lifeboat report <workflow-id> [--html out.html] [--md out.md], or lifeboat report <db> --history [--last N] [--html out.html] [--md out.md]',
  );
  if (args.last !== undefined && !args.history) throw new UsageError('--last goes with --history');
  const evidence = await import('../../services/evidence/command');
  return evidence.report(env, {
    subject: sub!,
    history: args.history ?? false,
    last: args.last ?? evidence.DEFAULT_LAST,
    html: args.html,
    md: args.md,
  });
}
