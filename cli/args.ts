// The command line's options: one parser for every command (each command checks which it takes).
import { UsageError } from './usage';

export interface Args {
  positional: string[];
  plan?: string;
  json: boolean;
  fromLatestBackup: boolean;
  help: boolean;
  mode?: 'planned' | 'unplanned' | 'zonal';
  yes: boolean;
  reason?: string;
  /** failback: rebuild a former primary that took writes after the fork anyway, keeping a copy first. */
  discardDivergent?: boolean;
  all?: boolean;
  concurrency?: number;
  /** codec-server: where to listen, and the UI origins allowed to call it. */
  port?: number;
  host?: string;
  origins?: string[];
  /** worker: serve only these regions' queues. */
  regions?: string[];
  /** report: where to write it, and the drill history instead of one run. */
  html?: string;
  md?: string;
  history?: boolean;
  last?: number;
}

export function parseArgs(argv: string[]): Args {
  const args: Args = { positional: [], json: false, fromLatestBackup: false, help: false, yes: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-f' || a === '--file' || a === '--plan') args.plan = optionValue(a, argv[++i], 'a plan file path');
    else if (a === '--json') args.json = true;
    else if (a === '--from-latest-backup') args.fromLatestBackup = true;
    else if (a === '--all') args.all = true;
    else if (a === '--concurrency')
      args.concurrency = wholeNumber(a, argv[++i], 'a number of drills at a time (1-50)', 50);
    else if (a === '--planned' || a === '--unplanned' || a === '--zonal') {
      const mode = a === '--planned' ? 'planned' : a === '--unplanned' ? 'unplanned' : 'zonal';
      if (args.mode && args.mode !== mode)
        throw new UsageError('--planned, --unplanned and --zonal exclude each other');
      args.mode = mode;
    } else if (a === '--yes' || a === '-y') args.yes = true;
    else if (a === '--discard-divergent') args.discardDivergent = true;
    else if (a === '--reason') args.reason = optionValue(a, argv[++i], 'a reason');
    else if (a === '--port') args.port = wholeNumber(a, argv[++i], 'a port number', 65535);
    else if (a === '--host') args.host = optionValue(a, argv[++i], 'an address to listen on');
    else if (a === '--region') (args.regions ??= []).push(optionValue(a, argv[++i], 'a region name of the plan'));
    else if (a === '--origin')
      (args.origins ??= []).push(optionValue(a, argv[++i], 'the Temporal UI origin, e.g. http://localhost:8233'));
    else if (a === '--html') args.html = optionValue(a, argv[++i], 'an output file path, e.g. report.html');
    else if (a === '--md') args.md = optionValue(a, argv[++i], 'an output file path, e.g. report.md');
    else if (a === '--history') args.history = true;
    else if (a === '--last') args.last = wholeNumber(a, argv[++i], 'a number of drills (1-1000)', 1000);
    else if (a === '-h' || a === '--help') args.help = true;
    else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else args.positional.push(a);
  }
  return args;
}

/** `-f --json` means the path was forgotten: taking `--json` as the path would hide that. */
function optionValue(option: string, value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`${option} needs ${what}`);
  if (value.startsWith('-')) throw new UsageError(`${option} needs ${what}, got option ${value}`);
  return value;
}

/** A whole number from 1 to `max` (`what` names it in the usage error). */
function wholeNumber(option: string, value: string | undefined, what: string, max: number): number {
  const text = optionValue(option, value, what);
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max)
    throw new UsageError(`${option} ${text}: expected a whole number from 1 to ${max}`);
  return Number(text);
}

/** Exactly `count` positional arguments (the command and its own), else a usage error naming `what`. */
export function expectArgs(args: Args, count: number, what: string): void {
  const extra = args.positional[count];
  if (extra !== undefined) throw new UsageError(`unexpected argument ${extra}; expected ${what}`);
  if (args.positional.length !== count) throw new UsageError(`expected ${what}`);
}
