// Benchmark: how long the `lifeboat` command takes to start, against Node's own start.
//
//   npm run bench:cli -- [--runs N] [--warmup N]
//
//   --runs N     timed runs of each command (default 20), after the warm-up
//   --warmup N   untimed runs of each command first (default 2): they fill Node's compile cache
//                (bin/lifeboat sets NODE_COMPILE_CACHE) and the page cache, as any second use would
//
// Needs a build (npm run build); no stack. It runs, in turn, as a user types them:
//   bin/lifeboat plan validate -f scripts/dev/demo-plan.yaml   loads and checks a plan, then exits
//   bin/lifeboat --help                                        prints the usage, then exits
//   node -e 0                                                  Node starting and exiting (the yardstick)
// the order reversed every other run, and prints each command's median CPU (user + system) and wall
// seconds, and the ratio to `node -e 0` as the median of the run-by-run ratios (a drift in the
// machine's speed during the benchmark moves both sides of a pair). The issue asks for plan validate
// at most 2x node -e 0. Each command runs under bash's `time` (bash's own start is outside its
// figures). Figures, not asserts: it exits 1 only when a command fails.
import { spawn } from 'node:child_process';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { inAlternatingOrder, median, parseFlags, positiveOption, runMain, say, table } from './common';

const USAGE = 'npm run bench:cli -- [--runs N] [--warmup N]';
const ROOT = resolve(__dirname, '..', '..', '..');
const LIFEBOAT = join(ROOT, 'bin', 'lifeboat');

interface Side {
  label: string;
  argv: string[];
}

const NODE: Side = { label: 'node -e 0', argv: [process.execPath, '-e', '0'] };
const SIDES: Side[] = [
  { label: 'lifeboat plan validate', argv: [LIFEBOAT, 'plan', 'validate', '-f', 'scripts/dev/demo-plan.yaml'] },
  { label: 'lifeboat --help', argv: [LIFEBOAT, '--help'] },
  NODE,
];

interface Times {
  wall: number;
  cpu: number;
}

/** One run under bash's `time`: its wall and CPU (user + system, the command's and its children's). */
function timed(side: Side): Promise<Times> {
  const script = 'TIMEFORMAT="bench-time %3R %3U %3S"; time "$@" >/dev/null';
  return new Promise((done, fail) => {
    const child = spawn('bash', ['-c', script, 'bench', ...side.argv], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('close', (code) => {
      const figures = /^bench-time (\S+) (\S+) (\S+)$/m.exec(stderr);
      if (code !== 0 || !figures) return fail(new Error(`${side.label} exited with ${code}:\n${stderr}`));
      done({ wall: Number(figures[1]), cpu: Number(figures[2]) + Number(figures[3]) });
    });
  });
}

async function main(argv: string[]): Promise<number> {
  const options = { runs: 20, warmup: 2 };
  parseFlags(argv, {
    '--runs': (value, flag) => (options.runs = positiveOption(flag, value(), true)),
    '--warmup': (value, flag) => (options.warmup = positiveOption(flag, value(), true)),
  });
  const loadBefore = loadavg();
  say(`${options.warmup} warm-up run(s) of each command, then ${options.runs} timed`);
  for (let i = 0; i < options.warmup; i++) for (const side of SIDES) await timed(side);
  const runs: Times[][] = [];
  for (let round = 0; round < options.runs; round++)
    runs.push(
      await inAlternatingOrder(
        round,
        SIDES.map((side) => () => timed(side)),
      ),
    );

  const column = (i: number, pick: (t: Times) => number) => runs.map((run) => pick(run[i]!));
  const ratio = (i: number, pick: (t: Times) => number) =>
    median(runs.map((run) => pick(run[i]!) / pick(run[SIDES.indexOf(NODE)]!)));
  const rows = SIDES.map((side, i) => [
    side.label,
    median(column(i, (t) => t.cpu)).toFixed(3),
    median(column(i, (t) => t.wall)).toFixed(3),
    `${ratio(i, (t) => t.cpu).toFixed(2)}x`,
    `${ratio(i, (t) => t.wall).toFixed(2)}x`,
  ]);
  const load = (l: number[]) => l.map((n) => n.toFixed(2)).join(' ');
  process.stdout.write(
    [
      `CLI start-up, ${options.runs} runs each (medians; ratios: median of the run-by-run ratios to node -e 0)`,
      '',
      table(['command', 'cpu s', 'wall s', 'cpu ratio', 'wall ratio'], rows),
      '',
      `machine     ${availableParallelism()} CPUs (${cpus()[0]?.model.trim() ?? 'unknown model'}), node ${process.version}`,
      `load avg    ${load(loadBefore)} before, ${load(loadavg())} after`,
      `compile cache  ${process.env.NODE_COMPILE_CACHE ?? '(bin/lifeboat default: ~/.cache/lifeboat/node-compile-cache)'}`,
      '',
    ].join('\n'),
  );
  return 0;
}

runMain(main, USAGE);
