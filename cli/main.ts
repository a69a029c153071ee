// The `lifeboat` command line. Exit codes: 0 the runbook succeeded; 1 it ran and failed;
// 2 bad input or usage, with a message that names the field, the value and what is expected.
// The commands are in commands/, one file each; this file parses, dispatches and maps errors to exit codes.
// Only light modules here: each command loads what it needs (commands/index.ts), so that the
// commands that need no Temporal SDK (plan validate, --help) start in little more than Node's own time.
import { CodecConfigError } from '../worker/codec-settings';
import { loadEnv } from '../worker/env';
import { parseArgs } from './args';
import { COMMANDS } from './commands';
import { USAGE, UsageError } from './usage';

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  // Asked-for help is the answer, not a mistake: stdout and exit 0, before anything can fail.
  if (args.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const [command, sub] = args.positional;
  const env = loadEnv();
  const say = (line: string) => process.stderr.write(line + '\n');
  // The worker SDK and the dev stack load only in the commands that need them: starting a drill
  // should not pay for bundling machinery it never uses.
  const load = command === undefined ? undefined : COMMANDS.get(command);
  if (!load) throw new UsageError(command ? `unknown command ${command}` : '');
  const run = await load();
  return run({ env, args, sub, say });
}

/**
 * Whether it is a bad plan or codec setting (exit 2 with its message). The plan module (zod, yaml)
 * loads here only on this path: a PlanError can only come from a command that loaded it already.
 */
async function isBadInput(err: unknown): Promise<boolean> {
  return err instanceof CodecConfigError || err instanceof (await import('../worker/plan')).PlanError;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  async (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message ? `lifeboat: ${err.message}\n\n` : ''}${USAGE}\n`);
      process.exit(2);
    }
    if (await isBadInput(err)) {
      process.stderr.write(`lifeboat: ${(err as Error).message}\n`);
      process.exit(2);
    }
    process.stderr.write(`lifeboat: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
