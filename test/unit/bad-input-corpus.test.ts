// The bad-input corpus (test/fixtures/bad-input/cases.json): malformed plans and command lines, each
// run through the compiled CLI against the real test Temporal server. Every one must exit 2 with a
// message naming the field or option, print nothing on stdout, and start no workflow: the server's
// workflows and schedules are counted before and after the whole corpus.
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listRuns } from '../../activities/visibility';
import { Client, Connection } from '@temporalio/client';
import { MAX_DATABASES, MAX_PLAN_BYTES, parsePlan } from '../../worker/plan';
import { CLI } from '../support/cli';
import { cliEnv, ordersPlan } from './helpers';

const CORPUS = join(__dirname, '..', 'fixtures', 'bad-input');

interface Case {
  name: string;
  /** A file in the corpus folder, or `@name` for one made below at run time. */
  plan?: string;
  args: string[];
  exit: number;
  stderr: string;
  stderrNot?: string;
  /** The plan itself is valid; only the command refuses it (failover without a standby). */
  planIsValid?: boolean;
}

interface Run {
  label: string;
  c: Case;
  args: string[];
}

interface Result {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

const { cases } = JSON.parse(readFileSync(join(CORPUS, 'cases.json'), 'utf8')) as { cases: Case[] };

const MINIMAL = ordersPlan('    checks:\n');

/** The plans too big, too odd or too binary to check in, made in `dir`; each returns its path. */
const GENERATED: Record<string, (dir: string) => string> = {
  oversized: (dir) => write(dir, 'oversized.yaml', MINIMAL + '#'.repeat(MAX_PLAN_BYTES) + '\n'),
  'ten-thousand-databases': (dir) => {
    const lines = ['regions:', '  a: { provider: local }', '  b: { provider: local }', 'databases:'];
    for (let i = 0; i < 10_000; i++)
      lines.push(
        `  d${String(i).padStart(5, '0')}: { primary: { region: a, database: d }, dr: { region: b }, objectives: { rpo: 1, rto: 1 } }`,
      );
    return write(dir, 'fleet.yaml', lines.join('\n') + '\n');
  },
  // "café" saved as Latin-1: the é is the lone byte 0xE9, on line 10.
  latin1: (dir) =>
    write(
      dir,
      'latin1.yaml',
      Buffer.concat([
        Buffer.from(MINIMAL + '      - name: caf'),
        Buffer.from([0xe9]),
        Buffer.from('\n        sql: select true\n'),
      ]),
    ),
  'raw-control-bytes': (dir) =>
    write(
      dir,
      'control.yaml',
      MINIMAL + '      - name: "ok\u0000\u001b[2K\u001b[32mPASSED"\n        sql: select true\n',
    ),
  fifo: (dir) => {
    const path = join(dir, 'plan.fifo');
    const made = spawnSync('mkfifo', [path]);
    if (made.status !== 0) throw new Error(`mkfifo failed: ${made.stderr}`);
    return path;
  },
  'dev-zero': () => '/dev/zero',
  directory: (dir) => {
    const path = join(dir, 'plan.d');
    mkdirSync(path);
    return path;
  },
  missing: (dir) => join(dir, 'missing.yaml'),
  'symlink-loop': (dir) => {
    const path = join(dir, 'loop.yaml');
    symlinkSync(path, path);
    return path;
  },
  pgpass: (dir) => write(dir, 'pgpass', 'db.internal:5432:orders:lifeboat:hunter2\n'),
};

function write(dir: string, name: string, body: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
}

/** The CLI as a user runs it, with only the test server's address and home from the environment. */
function lifeboat(args: string[], cwd: string): Promise<Result> {
  const env = cliEnv(process.env.TEMPORAL_ADDRESS, process.env.LIFEBOAT_HOME);
  // A started workflow would make the CLI wait for its result: the timeout turns that into a failure.
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd, env, timeout: 30_000, maxBuffer: 4 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, signal: err?.signal ?? null, stdout, stderr });
      },
    );
  });
}

async function pool<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

const runs: Run[] = [];
const validated = new Set<string>();
for (const c of cases) {
  runs.push({ label: `${c.name}: lifeboat ${c.args.join(' ')}`, c, args: c.args });
  // Both doors: the runbook command above, and `plan validate` on the same file (once per file).
  if (c.plan && !c.planIsValid && c.args[0] !== 'plan' && !validated.has(c.plan)) {
    validated.add(c.plan);
    runs.push({ label: `${c.name}: lifeboat plan validate -f {plan}`, c, args: ['plan', 'validate', '-f', '{plan}'] });
  }
}

describe('the bad-input corpus: every case exits 2 naming the field or option, and starts nothing', () => {
  let work: string;
  let client: Client;
  let corpusStart: Date;
  const preexisting = new Set<string>();
  let before: { count: number; schedules: Set<string> };
  const results = new Map<Run, Result>();

  async function scheduleIds(): Promise<Set<string>> {
    const ids = new Set<string>();
    for await (const s of client.schedule.list()) ids.add(s.scheduleId);
    return ids;
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'lifeboat-bad-input-'));
    const paths = new Map<string, string>();
    for (const c of cases) {
      if (!c.plan || paths.has(c.plan)) continue;
      if (c.plan.startsWith('@')) {
        const make = GENERATED[c.plan.slice(1)];
        if (!make) throw new Error(`case "${c.name}": no generator for ${c.plan}`);
        paths.set(c.plan, make(work));
      } else paths.set(c.plan, join(CORPUS, c.plan));
    }

    client = new Client({ connection: await Connection.connect({ address: process.env.TEMPORAL_ADDRESS! }) });
    // Start times on the server have their own clock: a second of slack still excludes earlier test files' runs.
    corpusStart = new Date(Date.now() - 1000);
    before = { count: (await client.workflow.count()).count, schedules: await scheduleIds() };
    // Runs the slack lets in that were there before the corpus ran (the previous test file's last ones).
    for await (const wf of listRuns(client, `StartTime >= '${corpusStart.toISOString()}'`)) preexisting.add(wf.runId);

    await pool(runs, 4, async (run) => {
      const args = run.args.map((a) => (a === '{plan}' ? paths.get(run.c.plan!)! : a));
      results.set(run, await lifeboat(args, work));
    });
  }, 300_000);

  afterAll(async () => {
    // Should a case have started a runbook after all, stop it: a lingering lifeboat/orders/failover
    // run would hold the failover lock against later test files.
    if (client) {
      for await (const wf of client.workflow.list({
        query: `StartTime >= '${corpusStart.toISOString()}' AND ExecutionStatus = 'Running'`,
      })) {
        await client.workflow
          .getHandle(wf.workflowId, wf.runId)
          .terminate('started by the bad-input corpus')
          .catch(() => undefined);
      }
      await client.connection.close();
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the corpus holds at least 40 distinct cases, and every fixture file is one of them', () => {
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    expect(cases.length).toBeGreaterThanOrEqual(40);
    const used = new Set(cases.map((c) => c.plan));
    const files = readdirSync(CORPUS).filter((f) => f.endsWith('.yaml'));
    expect(files.filter((f) => !used.has(f))).toEqual([]);
    const commands = new Set(
      cases.map((c) =>
        c.args[0] === 'drill' && c.args.includes('--all')
          ? 'drill --all'
          : ['backups', 'schedule', 'plan'].includes(c.args[0]!)
            ? `${c.args[0]} ${c.args[1]}`
            : c.args[0],
      ),
    );
    for (const command of [
      'plan validate',
      'drill',
      'drill --all',
      'backup',
      'backups list',
      'readiness',
      'failover',
      'failback',
      'approve',
      'status',
      'schedule apply',
    ]) {
      expect([command, commands.has(command)]).toEqual([command, true]);
    }
  });

  test.each(runs.map((run) => [run.label, run] as const))('%s', (_label, run) => {
    const result = results.get(run)!;
    expect({ code: result.code, signal: result.signal }).toEqual({ code: run.c.exit, signal: null });
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(new RegExp(run.c.stderr));
    if (run.c.stderrNot) expect(result.stderr).not.toMatch(new RegExp(run.c.stderrNot));
    expect(result.stderr).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/); // bad input is answered, not crashed on
    expect(result.stderr).not.toContain('cannot reach Temporal');
  });

  test('no workflow was started and no schedule was made, on the real server', async () => {
    // Visibility trails a start by a moment: give a wrongly started run the time to show.
    await new Promise((r) => setTimeout(r, 1500));
    const started: string[] = [];
    const unrelated: string[] = [];
    for await (const wf of client.workflow.list({ query: `StartTime >= '${corpusStart.toISOString()}'` })) {
      if (preexisting.has(wf.runId)) continue;
      // Runs a schedule from another test file fires, or children of its runs, are not the corpus's.
      const scheduled =
        wf.searchAttributes?.TemporalScheduledById !== undefined ||
        /\/scheduled-/.test(wf.workflowId) ||
        wf.parentExecution !== undefined;
      (scheduled ? unrelated : started).push(`${wf.type} ${wf.workflowId}`);
    }
    expect(started).toEqual([]);
    expect((await client.workflow.count()).count).toBe(before.count + unrelated.length);
    expect([...(await scheduleIds())].filter((id) => !before.schedules.has(id))).toEqual([]);
  });
});

// The refusals above must not reach good plans: the near misses of each stay valid.
describe('near misses of the corpus stay valid plans', () => {
  const withCheck = (name: string, sql: string) =>
    `${MINIMAL}      - name: ${JSON.stringify(name)}\n        sql: ${JSON.stringify(sql)}\n`;
  test.each([
    ['a trailing semicolon', 'select true;'],
    ['a semicolon and a comment after it', 'select true; -- the last statement\n'],
    ['a semicolon inside a string', "select ';' = ';'"],
    ['a semicolon inside a quoted identifier', 'select count(*) >= 0 from "odd;name"'],
    ['a semicolon inside a dollar quote', "select $q$ ; drop $q$ <> ''"],
    ['a semicolon inside a block comment', 'select /* a; b */ true'],
  ])('a check with %s', (_what, sql) => {
    expect(parsePlan(withCheck('fine', sql), 'near.yaml').plan.databases.orders!.checks[0]!.sql).toBe(sql);
  });

  test('check names with letters beyond ASCII, quotes and shell characters (labels never reach a shell)', () => {
    const name = 'café orders: "$(none)" & <all> 注文';
    expect(parsePlan(withCheck(name, 'select true'), 'near.yaml').plan.databases.orders!.checks[0]!.name).toBe(name);
  });

  test.each([['0 3 * * MON-FRI'], ['0 3 ? jan,jul *'], ['0 3 * * 5L'], ['0 3 * * FRI#2']])('cron %p', (cron) => {
    expect(() =>
      parsePlan(`${MINIMAL.replace('    checks:\n', '')}    schedule: { drill: { cron: "${cron}" } }\n`, 'near.yaml'),
    ).not.toThrow();
  });

  test('stores whose names merely contain dots', () => {
    const plan = MINIMAL.replace('    checks:\n', '')
      .replace(
        'local-a: { provider: local }',
        'local-a: { provider: local, store: { s3: { bucket: backups.example.com, prefix: a..b/.c/, awsRegion: us-east-1 } } }',
      )
      .replace('local-b: { provider: local }', 'local-b: { provider: local, store: { dir: /srv/.lifeboat/b..c } }')
      .replace('dr: { region: local-b }', 'dr: { region: local-b, portable: true }');
    expect(() => parsePlan(plan, 'near.yaml')).not.toThrow();
  });

  test(`exactly ${MAX_DATABASES} databases`, () => {
    const lines = ['regions:', '  a: { provider: local }', '  b: { provider: local }', 'databases:'];
    for (let i = 0; i < MAX_DATABASES; i++)
      lines.push(`  d${i}: { primary: { region: a, database: d }, dr: { region: b }, objectives: { rpo: 1, rto: 1 } }`);
    expect(Object.keys(parsePlan(lines.join('\n'), 'fleet.yaml').plan.databases)).toHaveLength(MAX_DATABASES);
  });
});
