// The command line is a stable contract (DESIGN.md, "The command line"): bad input or usage exits 2 with
// a message naming the field, the value and what is expected. These run the compiled CLI with
// TEMPORAL_ADDRESS pointing at a closed port, so nothing here can reach a real server.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CLI } from '../support/cli';
import { cliEnv, ordersPlan } from './helpers';

const ROOT = resolve(__dirname, '..', '..');
const DEMO_PLAN = join(ROOT, 'scripts', 'dev', 'demo-plan.yaml');

let home: string;
let work: string;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function lifeboat(...args: string[]): Run {
  const env = cliEnv('127.0.0.1:1', home);
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: work, env, encoding: 'utf8', timeout: 60_000 });
  if (result.error) throw result.error; // e.g. the timeout: the CLI must answer bad input at once
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Bad input or usage: exit 2, nothing on stdout, a message on stderr, no stack trace. */
function expectUsageError(run: Run, ...fragments: Array<string | RegExp>): void {
  expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 2, stderr: expect.any(String) });
  expect(run.stdout).toBe('');
  expect(run.stderr.length).toBeGreaterThan(0);
  expect(run.stderr).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/); // no stack trace for bad input
  expect(run.stderr).not.toContain('cannot reach Temporal');
  for (const fragment of fragments) {
    if (typeof fragment === 'string') expect(run.stderr).toContain(fragment);
    else expect(run.stderr).toMatch(fragment);
  }
}

const INVALID_PLAN = `regions:
  local-a: { provider: azure }
  local-b: { provider: local }
databases:
  orders:
    primary: { region: local-a, database: orders }
    dr: { region: local-b }
    objectives: { rpo: 15x, rto: 30m }
`;

const TWO_DATABASES = ordersPlan(`  billing:
    primary: { region: local-b, database: billing }
    dr: { region: local-a }
    objectives: { rpo: 1m, rto: 1h }
`);

let invalidPlan: string;
let twoDatabases: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'lifeboat-cli-test-'));
  home = join(work, 'home');
  mkdirSync(home);
  invalidPlan = join(work, 'invalid.yaml');
  writeFileSync(invalidPlan, INVALID_PLAN);
  twoDatabases = join(work, 'two.yaml');
  writeFileSync(twoDatabases, TWO_DATABASES);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('lifeboat: bad usage exits 2 with a helpful message', () => {
  test('no arguments prints the usage', () => {
    expectUsageError(lifeboat(), 'usage:', 'lifeboat drill <db>', 'lifeboat plan validate');
  });

  test('an unknown command is named, with the usage', () => {
    expectUsageError(lifeboat('frobnicate'), 'lifeboat: unknown command frobnicate', 'usage:');
  });

  test('drill without a database says what is expected', () => {
    expectUsageError(lifeboat('drill'), 'expected lifeboat drill <db>', 'usage:');
  });

  test('drill with too many databases says what is expected', () => {
    expectUsageError(lifeboat('drill', 'orders', 'billing'), 'expected lifeboat drill <db>');
  });

  test('drill of a database not in the plan names it and the known databases', () => {
    const run = lifeboat('drill', 'nosuchdb');
    expectUsageError(run, 'database "nosuchdb" is not in', 'demo-plan.yaml', 'expected one of orders');
  });

  test("drill of a database not in a given plan lists that plan's databases", () => {
    expectUsageError(
      lifeboat('drill', 'nosuchdb', '-f', twoDatabases),
      `database "nosuchdb" is not in ${twoDatabases}; expected one of orders, billing`,
    );
  });

  test('backup and backups list of an unknown database are usage errors too', () => {
    expectUsageError(lifeboat('backup', 'nosuchdb'), 'database "nosuchdb"', 'expected one of orders');
    expectUsageError(
      lifeboat('backups', 'list', 'nosuchdb', '--json'),
      'database "nosuchdb"',
      'expected one of orders',
    );
  });

  test('a plan file that does not exist is named', () => {
    expectUsageError(
      lifeboat('drill', 'orders', '-f', '/nonexistent.yaml'),
      'plan file /nonexistent.yaml: cannot be read',
      'expected a path to a YAML plan',
    );
  });

  test('an invalid plan is refused before anything runs, naming the fields, values and expectations', () => {
    for (const run of [
      lifeboat('plan', 'validate', '-f', invalidPlan),
      lifeboat('drill', 'orders', '-f', invalidPlan),
    ]) {
      expectUsageError(
        run,
        `${invalidPlan}: invalid plan`,
        /regions\.local-a\.provider: .*expected provider "local", "aws" or "gcp".*"azure"/,
        /databases\.orders\.objectives\.rpo: expected a duration.*"15x"/,
      );
    }
  });

  test('an unknown option is named, with the usage', () => {
    expectUsageError(lifeboat('drill', 'orders', '--bogus'), 'lifeboat: unknown option --bogus', 'usage:');
  });

  test('-f without a path says a path is needed', () => {
    expectUsageError(lifeboat('plan', 'validate', '-f'), '-f needs a plan file path');
  });

  // Taking `--json` as the plan path would end in a confusing "cannot be read" for a file named --json.
  test('an option given where -f expects a path is named', () => {
    expectUsageError(
      lifeboat('drill', 'orders', '-f', '--json'),
      'lifeboat: -f needs a plan file path, got option --json',
      'usage:',
    );
    expectUsageError(lifeboat('plan', 'validate', '--plan', '-h'), '--plan needs a plan file path, got option -h');
  });

  test('plan validate with a stray argument (the path without -f) names it instead of validating the demo plan', () => {
    expectUsageError(
      lifeboat('plan', 'validate', twoDatabases),
      `lifeboat: unexpected argument ${twoDatabases}; expected: lifeboat plan validate [-f plan]`,
    );
  });

  test('plan without validate, and an unknown dev subcommand, say what is expected', () => {
    expectUsageError(lifeboat('plan'), 'expected: lifeboat plan validate');
    expectUsageError(lifeboat('plan', 'check'), 'expected: lifeboat plan validate');
    expectUsageError(lifeboat('dev', 'frobnicate'), 'expected: lifeboat dev up | down | status');
  });

  // Holds whether or not failover/failback exist yet: without a database they are usage errors either way.
  test.each([['failover'], ['failback']])('%s without a database is a usage error naming the command', (command) => {
    expectUsageError(lifeboat(command), `lifeboat ${command}`);
  });

  test('the failover modes exclude each other', () => {
    expectUsageError(
      lifeboat('failover', 'orders', '--zonal', '--planned'),
      '--planned, --unplanned and --zonal exclude each other',
    );
  });

  // A lookup through `plan.databases[name]` used to find Object.prototype members: a TypeError, exit 1.
  test('--zonal on a database that recovers across clouds is a usage error, before Temporal is called', () => {
    const plan = join(work, 'xc.yaml');
    writeFileSync(
      plan,
      `regions:
  local-a: { provider: local, store: { dir: /srv/a } }
  gcp-b: { provider: gcp, project: shop-prod-1, gcpRegion: us-east4, scratch: { databaseVersion: POSTGRES_15 }, store: { gcs: { bucket: shop-dr } } }
databases:
  shop:
    primary: { region: local-a, database: shop }
    dr: { region: gcp-b, instance: shop-dr, credentials: { user: postgres, password: "env:P" } }
    objectives: { rpo: 1h, rto: 1h }
`,
    );
    expectUsageError(
      lifeboat('failover', 'shop', '--zonal', '-f', plan),
      '--zonal is a platform HA failover within one region; shop recovers across clouds',
    );
  });

  test('schedule without a subcommand, and apply with a cron typo, are usage errors before Temporal is called', () => {
    expectUsageError(lifeboat('schedule'), 'expected: lifeboat schedule apply | list | pause | unpause | trigger');
    const plan = join(work, 'cron.yaml');
    writeFileSync(plan, ordersPlan('    schedule: { drill: { cron: "0 3 * *" } }\n'));
    expectUsageError(
      lifeboat('schedule', 'apply', '-f', plan),
      'databases.orders.schedule.drill.cron: expected five cron fields',
    );
  });

  test('drill of a database named like an Object.prototype member is a usage error', () => {
    expectUsageError(lifeboat('drill', 'toString'), 'database "toString"', 'expected one of orders');
  });

  // A directory stats fine; reading it used to throw a raw EISDIR error (exit 1).
  test('a directory given as the plan file is a usage error', () => {
    expectUsageError(
      lifeboat('plan', 'validate', '-f', work),
      `plan file ${work}: is not a regular file; expected a path to a YAML plan`,
    );
  });
});

describe('lifeboat --help: asked-for usage is not an error', () => {
  test.each([[['--help']], [['-h']], [['drill', '--help']], [['plan', 'validate', '-h']]])(
    'lifeboat %p prints the usage on stdout and exits 0',
    (args) => {
      const run = lifeboat(...args);
      expect(run.status).toBe(0);
      expect(run.stdout).toContain('usage:');
      expect(run.stdout).toContain('lifeboat drill <db>');
      expect(run.stderr).toBe('');
    },
  );
});

describe('lifeboat plan validate: good plans exit 0', () => {
  test('the built-in demo plan is valid', () => {
    const run = lifeboat('plan', 'validate');
    expect(run.status).toBe(0);
    expect(run.stderr).toContain(`${DEMO_PLAN}: valid`);
    expect(run.stderr).toMatch(/: valid \(1 database, 2 regions, sha256 [0-9a-f]{12}\)/);
  });

  test('the demo plan given with -f is valid', () => {
    const run = lifeboat('plan', 'validate', '-f', DEMO_PLAN);
    expect(run.status).toBe(0);
    expect(run.stderr).toContain(`${DEMO_PLAN}: valid`);
  });

  test('a plan of its own is valid and counted', () => {
    const run = lifeboat('plan', 'validate', '--plan', twoDatabases);
    expect(run.status).toBe(0);
    expect(run.stderr).toMatch(/: valid \(2 databases, 2 regions, sha256 [0-9a-f]{12}\)/);
  });
});
