// The plan file is validated once, at the edge: every way to get it wrong must be a PlanError whose
// message names the field, the offending value and what was expected (DESIGN.md, "The plan file").
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import {
  backupInput,
  drillInput,
  loadPlanFile,
  MAX_PLAN_BYTES,
  parseDuration,
  parsePlan,
  PlanError,
  planRegions,
  replicaSetOf,
  type LoadedPlan,
} from '../../worker/plan';
import { planErrorOf } from '../support/plan-errors';
import { ordersPlan } from './helpers';

// The minimal plan of the README ("The plan file"), with its check: this form must always stay valid.
const MINIMAL = ordersPlan(`    checks:
      - name: recent orders exist
        sql: select count(*) > 0 from orders
`);

const DEMO_PLAN = resolve(__dirname, '..', '..', 'scripts', 'dev', 'demo-plan.yaml');

type Tree = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The minimal plan as a tree, changed by `edit`, back to YAML: one mistake per case. */
function minimalWith(edit: (plan: Tree) => void): string {
  const plan = parseYaml(MINIMAL) as Tree;
  edit(plan);
  return stringifyYaml(plan);
}

describe('parsePlan: valid plans', () => {
  test('the minimal plan from DESIGN.md parses, with durations in seconds and defaults filled in', () => {
    const loaded = parsePlan(MINIMAL, 'minimal.yaml');
    expect(loaded.source).toBe('minimal.yaml');
    expect(loaded.digest).toBe(createHash('sha256').update(MINIMAL).digest('hex'));
    expect(loaded.plan.regions).toEqual({ 'local-a': { provider: 'local' }, 'local-b': { provider: 'local' } });
    const orders = loaded.plan.databases.orders!;
    expect(orders.objectives).toEqual({ rpo: 900, rto: 1800 });
    expect(orders.primary).toEqual({ region: 'local-a', database: 'orders' });
    expect(orders.dr).toEqual({ region: 'local-b', standby: false });
    expect(orders.checks).toEqual([{ name: 'recent orders exist', sql: 'select count(*) > 0 from orders' }]);
    expect(orders.retention).toEqual({ keep: 7 });
  });

  test('objectives may be plain numbers of seconds, and checks and retention are optional', () => {
    const loaded = parsePlan(
      minimalWith((p) => {
        p.databases.orders.objectives = { rpo: 60, rto: 5400 };
        delete p.databases.orders.checks;
        p.databases.orders.retention = { keep: 3 };
      }),
      'numbers.yaml',
    );
    const orders = loaded.plan.databases.orders!;
    expect(orders.objectives).toEqual({ rpo: 60, rto: 5400 });
    expect(orders.checks).toEqual([]);
    expect(orders.retention).toEqual({ keep: 3 });
  });

  test('the digest changes when the text changes, so the audit trail names the exact plan', () => {
    const a = parsePlan(MINIMAL, 'a.yaml');
    const b = parsePlan(MINIMAL.replace('rpo: 15m', 'rpo: 10m'), 'a.yaml');
    expect(a.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(b.digest).not.toBe(a.digest);
  });
});

describe('loadPlanFile', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'lifeboat-plan-test-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('the demo plan (scripts/dev/demo-plan.yaml) loads', () => {
    const loaded = loadPlanFile(DEMO_PLAN);
    expect(loaded.source).toBe(DEMO_PLAN);
    expect(loaded.digest).toBe(createHash('sha256').update(readFileSync(DEMO_PLAN, 'utf8')).digest('hex'));
    expect(Object.keys(loaded.plan.regions).sort()).toEqual(['local-a', 'local-b']);
    expect(Object.keys(loaded.plan.databases)).toEqual(['orders']);
    const orders = loaded.plan.databases.orders!;
    expect(orders.primary).toEqual({ region: 'local-a', database: 'orders' });
    expect(orders.dr).toEqual({ region: 'local-b', standby: true });
    expect(orders.objectives).toEqual({ rpo: 900, rto: 1800 });
    expect(orders.checks.length).toBeGreaterThanOrEqual(1);
    expect(new Set(orders.checks.map((c) => c.name)).size).toBe(orders.checks.length);
    for (const check of orders.checks) expect(check.sql.trim()).toMatch(/^select /i);
  });

  test('a missing file is a PlanError naming the path', () => {
    const missing = join(dir, 'no-such-plan.yaml');
    expect(() => loadPlanFile(missing)).toThrow(PlanError);
    expect(() => loadPlanFile(missing)).toThrow(`plan file ${missing}: cannot be read; expected a path to a YAML plan`);
  });

  test('a file over 1 MiB is refused before it is read, naming the path, its size and the limit', () => {
    const big = join(dir, 'big.yaml');
    writeFileSync(big, MINIMAL + '#'.repeat(MAX_PLAN_BYTES) + '\n');
    const size = Buffer.byteLength(MINIMAL) + MAX_PLAN_BYTES + 1;
    expect(MAX_PLAN_BYTES).toBe(1024 * 1024);
    expect(() => loadPlanFile(big)).toThrow(PlanError);
    expect(() => loadPlanFile(big)).toThrow(`plan file ${big}: is ${size} bytes; expected at most ${MAX_PLAN_BYTES}`);
  });

  test('a file of exactly 1 MiB is still accepted', () => {
    const edge = join(dir, 'edge.yaml');
    const padding = MAX_PLAN_BYTES - Buffer.byteLength(MINIMAL) - 2;
    writeFileSync(edge, MINIMAL + '#' + ' '.repeat(padding) + '\n');
    expect(readFileSync(edge).length).toBe(MAX_PLAN_BYTES);
    expect(loadPlanFile(edge).plan.databases.orders!.objectives.rpo).toBe(900);
  });

  test('errors in a file name the file', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, MINIMAL.replace('rpo: 15m', 'rpo: soon'));
    expect(() => loadPlanFile(bad)).toThrow(PlanError);
    expect(() => loadPlanFile(bad)).toThrow(`${bad}: invalid plan`);
  });

  // statSync succeeds on a directory; only the read would fail, with a raw EISDIR and exit 1.
  test('a directory given as the plan file is a PlanError naming the path and what was expected', () => {
    expect(() => loadPlanFile(dir)).toThrow(PlanError);
    expect(() => loadPlanFile(dir)).toThrow(`plan file ${dir}: is not a regular file; expected a path to a YAML plan`);
  });
});

describe('parseDuration', () => {
  test.each([
    ['30s', 30],
    ['15m', 900],
    ['1h', 3600],
    ['1h30m', 5400],
    ['2h0m5s', 7205],
    [' 15m ', 900],
    ['90', 90],
    [' 90 ', 90],
    [90, 90],
    [0.5, 0.5],
  ])('%p is %p seconds', (input, seconds) => {
    expect(parseDuration(input)).toBe(seconds);
  });

  test.each([
    ['15x'],
    [''],
    ['m'],
    ['h'],
    ['1.5h'],
    ['15 minutes'],
    ['m15'],
    ['-5m'],
    ['1d'],
    ['30m1h'],
    ['1h30'],
    ['9 0'],
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
  ])('%p is not a duration', (input) => {
    expect(parseDuration(input)).toBeNull();
  });
});

interface BadPlan {
  name: string;
  text: string;
  /** The field path the message must name. */
  path: string;
  /** The offending value, as the message must show it. */
  value: string;
  /** What the message must say was expected. */
  expected: string;
}

const BAD_PLANS: BadPlan[] = [
  {
    name: 'unknown provider azure',
    text: minimalWith((p) => (p.regions['local-a'].provider = 'azure')),
    path: 'regions.local-a.provider',
    value: '"azure"',
    expected: 'expected provider "local", "aws" or "gcp"',
  },
  {
    name: 'provider names are lowercase (GCP)',
    text: minimalWith((p) => (p.regions['local-b'].provider = 'GCP')),
    path: 'regions.local-b.provider',
    value: '"GCP"',
    expected: 'expected provider "local", "aws" or "gcp"',
  },
  {
    name: 'provider of the wrong type',
    text: minimalWith((p) => (p.regions['local-a'].provider = 7)),
    path: 'regions.local-a.provider',
    value: 'got 7',
    expected: 'expected provider "local"',
  },
  {
    name: 'primary region not among the regions',
    text: minimalWith((p) => (p.databases.orders.primary.region = 'local-z')),
    path: 'databases.orders.primary.region',
    value: '"local-z"',
    expected: 'expected one of local-a, local-b',
  },
  {
    name: 'dr region not among the regions',
    text: minimalWith((p) => (p.databases.orders.dr.region = 'eu-west')),
    path: 'databases.orders.dr.region',
    value: '"eu-west"',
    expected: 'expected one of local-a, local-b',
  },
  {
    name: 'dr region equal to the primary region',
    text: minimalWith((p) => (p.databases.orders.dr.region = 'local-a')),
    path: 'databases.orders.dr.region',
    value: '"local-a"',
    expected: 'expected a different region',
  },
  {
    name: 'region name in the wrong case',
    text: minimalWith((p) => (p.databases.orders.primary.region = 'Local-A')),
    path: 'databases.orders.primary.region',
    value: '"Local-A"',
    expected: 'expected a region name',
  },
  {
    name: 'negative rpo',
    text: minimalWith((p) => (p.databases.orders.objectives.rpo = -5)),
    path: 'databases.orders.objectives.rpo',
    value: 'got -5',
    expected: 'expected a duration greater than zero',
  },
  {
    name: 'zero rto',
    text: minimalWith((p) => (p.databases.orders.objectives.rto = '0s')),
    path: 'databases.orders.objectives.rto',
    value: '"0s"',
    expected: 'expected a duration greater than zero',
  },
  {
    name: 'zero rpo as a number',
    text: minimalWith((p) => (p.databases.orders.objectives.rpo = 0)),
    path: 'databases.orders.objectives.rpo',
    value: 'got 0',
    expected: 'expected a duration greater than zero',
  },
  {
    name: 'rpo with an unknown unit',
    text: minimalWith((p) => (p.databases.orders.objectives.rpo = '15x')),
    path: 'databases.orders.objectives.rpo',
    value: '"15x"',
    expected: 'expected a duration such as 30s, 15m, 1h or 1h30m',
  },
  {
    name: 'missing objectives',
    text: minimalWith((p) => delete p.databases.orders.objectives),
    path: 'databases.orders.objectives',
    value: 'missing',
    expected: 'expected object',
  },
  {
    name: 'duplicate check names',
    text: minimalWith((p) => p.databases.orders.checks.push({ name: 'recent orders exist', sql: 'select true' })),
    path: 'databases.orders.checks.1.name',
    value: '"recent orders exist"',
    expected: 'expected unique check names',
  },
  {
    name: 'checks not a list',
    text: minimalWith((p) => (p.databases.orders.checks = 'select true')),
    path: 'databases.orders.checks',
    value: '"select true"',
    expected: 'expected array',
  },
  {
    name: 'check with empty sql',
    text: minimalWith((p) => (p.databases.orders.checks[0].sql = '')),
    path: 'databases.orders.checks.0.sql',
    value: 'got ""',
    expected: 'expected a SQL query',
  },
  {
    name: 'check without sql',
    text: minimalWith((p) => delete p.databases.orders.checks[0].sql),
    path: 'databases.orders.checks.0.sql',
    value: 'missing',
    expected: 'expected string',
  },
  {
    name: 'SQL injection in the database name',
    text: minimalWith((p) => (p.databases.orders.primary.database = 'orders; drop table x')),
    path: 'databases.orders.primary.database',
    value: '"orders; drop table x"',
    expected: 'expected a PostgreSQL database name',
  },
  {
    name: 'database name starting with a digit',
    text: minimalWith((p) => (p.databases.orders.primary.database = '1orders')),
    path: 'databases.orders.primary.database',
    value: '"1orders"',
    expected: 'expected a PostgreSQL database name',
  },
  {
    name: 'database name of the wrong type',
    text: minimalWith((p) => (p.databases.orders.primary.database = 42)),
    path: 'databases.orders.primary.database',
    value: 'got 42',
    expected: 'expected string',
  },
  {
    name: 'empty databases',
    text: minimalWith((p) => (p.databases = {})),
    path: 'databases',
    value: 'is empty',
    expected: 'expected at least one database',
  },
  {
    name: 'databases as a list',
    text: minimalWith((p) => (p.databases = ['orders'])),
    path: 'databases',
    value: '["orders"]',
    expected: 'expected record',
  },
  {
    name: 'missing regions',
    text: minimalWith((p) => delete p.regions),
    path: 'regions',
    value: 'missing',
    expected: 'expected record',
  },
  {
    name: 'retention keep 0',
    text: minimalWith((p) => (p.databases.orders.retention = { keep: 0 })),
    path: 'databases.orders.retention.keep',
    value: 'got 0',
    expected: 'expected at least 1',
  },
  {
    name: 'retention keep not a whole number',
    text: minimalWith((p) => (p.databases.orders.retention = { keep: 2.5 })),
    path: 'databases.orders.retention.keep',
    value: 'got 2.5',
    expected: 'expected a whole number',
  },
  {
    name: 'a document that is not a mapping',
    text: '- regions\n- databases\n',
    path: '(top level)',
    value: '["regions","databases"]',
    expected: 'expected object',
  },
  {
    name: 'an empty document',
    text: '',
    path: '(top level)',
    value: 'got null',
    expected: 'expected object',
  },
];

describe('parsePlan: malformed plans are PlanErrors naming the field, the value and what was expected', () => {
  test.each(BAD_PLANS.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const message = planErrorOf(c.text);
    // The field path and the value appear on the same line of the report.
    const line = message.split('\n').find((l) => l.trimStart().startsWith(`${c.path}:`));
    expect(line).toBeDefined();
    expect(line).toContain(c.value);
    expect(line).toContain(c.expected);
  });

  // Plans are strict objects: a typo must not be silently ignored (an ignored `rp0` would leave the default).
  test.each([
    ['in a database', 'databases.orders', 'colour', (p: Tree) => (p.databases.orders.colour = 'blue')],
    ['in a region', 'regions.local-a', 'zone', (p: Tree) => (p.regions['local-a'].zone = 'a')],
    [
      'in objectives (a typo)',
      'databases.orders.objectives',
      'rp0',
      (p: Tree) => (p.databases.orders.objectives.rp0 = '5m'),
    ],
    [
      'in a check',
      'databases.orders.checks.0',
      'query',
      (p: Tree) => (p.databases.orders.checks[0].query = 'select true'),
    ],
    ['at the top level', '', 'schedules', (p: Tree) => (p.schedules = { nightly: '0 3 * * *' })],
  ])('an unknown key %s is refused, naming the object and the key', (_where, parent, key, edit) => {
    const message = planErrorOf(minimalWith(edit));
    const line = message.split('\n').find((l) => l.includes(key));
    expect(line).toBeDefined();
    // Today the line is the object's path; a fixed message may name `<object>.<key>` itself.
    const head = line!.trimStart();
    expect(head.startsWith(parent || '(top level)') || head.startsWith(`${key}:`)).toBe(true);
    expect(line).toMatch(/unrecognized key|unknown key/i);
  });

  test('invalid YAML is a PlanError that says so and where', () => {
    const message = planErrorOf('regions: [\n  local-a: {\n', 'broken.yaml');
    expect(message).toMatch(/^broken\.yaml: not valid YAML: .*line \d+/);
  });

  test('more than one YAML document is refused', () => {
    const message = planErrorOf(`${MINIMAL}---\n${MINIMAL}`);
    expect(message).toContain('not valid YAML');
    expect(message).toContain('multiple documents');
  });

  test('an alias bomb is refused instead of expanded', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++)
      bomb.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(', ')}]`,
      );
    const message = planErrorOf(bomb.join('\n') + '\n');
    expect(message).toContain('not valid YAML');
    expect(message).toContain('Excessive alias count');
  });

  test('several mistakes are reported together, one line each', () => {
    const message = planErrorOf(
      minimalWith((p) => {
        p.regions['local-a'].provider = 'azure';
        p.databases.orders.objectives.rto = '30 minutes';
        p.databases.orders.primary.database = 'orders; drop table x';
      }),
    );
    const lines = message.split('\n').slice(1);
    expect(lines).toHaveLength(3);
    expect(message).toContain('regions.local-a.provider');
    expect(message).toContain('databases.orders.objectives.rto');
    expect(message).toContain('databases.orders.primary.database');
  });

  test('a database name in the plan that is not a safe identifier is refused', () => {
    const message = planErrorOf(
      minimalWith((p) => {
        p.databases['orders; drop table x'] = p.databases.orders;
        delete p.databases.orders;
      }),
    );
    expect(message).toContain('databases.orders; drop table x');
  });
});

// The DESIGN.md contract ("a message that names the field, the value and what is expected") for the
// cases zod's default messages got wrong.
describe('parsePlan: messages say what was expected, where zod alone would not', () => {
  test('rpo of the wrong type (true) says a duration was expected', () => {
    const message = planErrorOf(minimalWith((p) => (p.databases.orders.objectives.rpo = true)));
    expect(message).toContain('databases.orders.objectives.rpo');
    expect(message).toContain('got true');
    expect(message).toContain('expected a duration');
  });

  test('rpo .nan shows the value as written, not as null', () => {
    const message = planErrorOf(MINIMAL.replace('rpo: 15m', 'rpo: .nan'));
    expect(message).toContain('databases.orders.objectives.rpo');
    expect(message).not.toContain('got null');
    expect(message).toContain('expected a duration');
  });

  test('an unknown key names the key in the path and lists the keys that are allowed', () => {
    const message = planErrorOf(minimalWith((p) => (p.databases.orders.colour = 'blue')));
    expect(message).toContain('databases.orders.colour');
    expect(message).toMatch(/expected .*primary.*dr.*objectives/);
  });

  test('a database key that is not a valid name shows the key and what a name looks like', () => {
    const message = planErrorOf(
      minimalWith((p) => {
        p.databases.Orders = p.databases.orders;
        delete p.databases.orders;
      }),
    );
    expect(message).toContain('databases.Orders');
    expect(message).toContain('expected a database name (lowercase letters, digits, dashes)');
    expect(message).not.toContain('{"primary"');
  });

  // A region named after an Object.prototype member: a check `!plan.regions[name]` would find the
  // inherited function, so the plan would pass and the runbook get a region whose provider is undefined.
  test('a dr region named "constructor" that the plan does not define is refused', () => {
    const message = planErrorOf(minimalWith((p) => (p.databases.orders.dr.region = 'constructor')));
    expect(message).toContain('databases.orders.dr.region');
    expect(message).toContain('"constructor"');
    expect(message).toContain('expected one of local-a, local-b');
  });
});

describe('parsePlan: more of the same contract', () => {
  test('rpo .inf shows Infinity, not null', () => {
    const message = planErrorOf(MINIMAL.replace('rpo: 15m', 'rpo: .inf'));
    expect(message).toMatch(/databases\.orders\.objectives\.rpo: expected a duration.*\(got Infinity\)/);
  });

  test('an rpo given as a quoted number of seconds is that many seconds', () => {
    const loaded = parsePlan(MINIMAL.replace('rpo: 15m', 'rpo: "90"'), 'quoted.yaml');
    expect(loaded.plan.databases.orders!.objectives.rpo).toBe(90);
  });

  test('several unknown keys in one object are reported one line each, at their own paths', () => {
    const message = planErrorOf(
      minimalWith((p) => {
        p.databases.orders.objectives.rp0 = '5m';
        p.databases.orders.objectives.rt0 = '1h';
      }),
    );
    const lines = message.split('\n').slice(1);
    expect(lines).toEqual([
      '  databases.orders.objectives.rp0: unknown key; expected only rpo, rto (got "5m")',
      '  databases.orders.objectives.rt0: unknown key; expected only rpo, rto (got "1h")',
    ]);
  });

  test('an unknown key at the top level lists the top-level keys', () => {
    const message = planErrorOf(minimalWith((p) => (p.schedules = 'nightly')));
    expect(message).toContain('  schedules: unknown key; expected only regions, databases (got "nightly")');
  });

  test('a region key that is not a valid name shows the key, not the region under it', () => {
    const message = planErrorOf(
      minimalWith((p) => {
        p.regions.Local_A = p.regions['local-a'];
      }),
    );
    expect(message).toContain(
      '  regions.Local_A: expected a region name (lowercase letters, digits, dashes) (got key "Local_A")',
    );
  });

  // zod reads a `constructor` key as "not a plain object" and silently drops `__proto__`; both must be
  // refused by name instead.
  test.each([
    ['databases', 'constructor', 'database'],
    ['databases', '__proto__', 'database'],
    ['regions', 'constructor', 'region'],
    ['regions', '__proto__', 'region'],
  ])('a %s key named %p is refused by name', (record, key, what) => {
    const text = MINIMAL.replace(
      record === 'databases' ? '  orders:' : '  local-b: { provider: local }',
      record === 'databases' ? `  ${key}:` : `  ${key}: { provider: local }`,
    );
    const message = planErrorOf(text);
    expect(message).toContain(
      `  ${record}.${key}: is a name JavaScript reserves; expected a ${what} name (lowercase letters, digits, dashes) (got key "${key}")`,
    );
    expect(message).not.toContain('expected record, received object');
  });

  test('a primary region named "constructor" that the plan does not define is refused', () => {
    const message = planErrorOf(minimalWith((p) => (p.databases.orders.primary.region = 'constructor')));
    expect(message).toContain(
      'databases.orders.primary.region: "constructor" is not a region of this plan; expected one of local-a, local-b',
    );
  });

  test('a YAML alias that refers to itself is reported, not a crash', () => {
    const message = planErrorOf('regions: &r [*r]\ndatabases: {}\n');
    expect(message).toMatch(/regions: .*expected record.*\(got a value that contains itself, through a YAML alias\)/);
  });
});

describe('drillInput, backupInput and planRegions', () => {
  let loaded: LoadedPlan;
  let two: LoadedPlan;
  beforeAll(() => {
    loaded = parsePlan(MINIMAL, 'minimal.yaml');
    two = parsePlan(
      minimalWith((p) => {
        p.databases.billing = {
          primary: { region: 'local-b', database: 'billing_db' },
          dr: { region: 'local-a' },
          objectives: { rpo: '1m', rto: '1h' },
          retention: { keep: 3 },
        };
      }),
      'two.yaml',
    );
  });

  test('drillInput carries the plan into one typed input object', () => {
    expect(drillInput(loaded, 'orders', { fromLatestBackup: true, triggeredBy: 'cli:test' })).toEqual({
      database: 'orders',
      primary: { region: { name: 'local-a', provider: 'local' }, database: 'orders' },
      dr: { name: 'local-b', provider: 'local' },
      objectives: { rpoSeconds: 900, rtoSeconds: 1800 },
      checks: [{ name: 'recent orders exist', sql: 'select count(*) > 0 from orders' }],
      fromLatestBackup: true,
      planDigest: loaded.digest,
      triggeredBy: 'cli:test',
    });
  });

  test('drillInput keeps the plan name apart from the PostgreSQL database name', () => {
    const input = drillInput(two, 'billing', { fromLatestBackup: false, triggeredBy: 'schedule' });
    expect(input.database).toBe('billing');
    expect(input.primary).toEqual({ region: { name: 'local-b', provider: 'local' }, database: 'billing_db' });
    expect(input.dr).toEqual({ name: 'local-a', provider: 'local' });
    expect(input.objectives).toEqual({ rpoSeconds: 60, rtoSeconds: 3600 });
    expect(input.checks).toEqual([]);
    expect(input.fromLatestBackup).toBe(false);
  });

  test('backupInput carries the retention (7 by default)', () => {
    expect(backupInput(loaded, 'orders', { triggeredBy: 'cli:test' })).toEqual({
      database: 'orders',
      primary: { region: { name: 'local-a', provider: 'local' }, database: 'orders' },
      dr: { name: 'local-b', provider: 'local' },
      keep: 7,
      planDigest: loaded.digest,
      triggeredBy: 'cli:test',
    });
    expect(backupInput(two, 'billing', { triggeredBy: 'x' }).keep).toBe(3);
  });

  test('an unknown database is a PlanError naming it, the plan and the known ones', () => {
    expect(() => drillInput(two, 'nosuchdb', { fromLatestBackup: false, triggeredBy: 'x' })).toThrow(PlanError);
    expect(() => drillInput(two, 'nosuchdb', { fromLatestBackup: false, triggeredBy: 'x' })).toThrow(
      'database "nosuchdb" is not in two.yaml; expected one of orders, billing',
    );
    expect(() => backupInput(loaded, 'Orders', { triggeredBy: 'x' })).toThrow(PlanError);
    expect(() => backupInput(loaded, 'Orders', { triggeredBy: 'x' })).toThrow('expected one of orders');
  });

  // databaseOf used to look the name up with `plan.databases[name]`, so names inherited from
  // Object.prototype were "found": drillInput threw a TypeError and `lifeboat drill toString` exited 1.
  test.each([['constructor'], ['toString'], ['__proto__'], ['hasOwnProperty']])(
    'the database name %p is a PlanError like any unknown name (no prototype lookup)',
    (name) => {
      expect(() => drillInput(loaded, name, { fromLatestBackup: false, triggeredBy: 'x' })).toThrow(PlanError);
      expect(() => backupInput(loaded, name, { triggeredBy: 'x' })).toThrow(
        `database ${JSON.stringify(name)} is not in minimal.yaml; expected one of orders`,
      );
    },
  );

  test('planRegions lists every region of the plan, for the worker task queues', () => {
    expect(planRegions(loaded)).toEqual([
      { name: 'local-a', provider: 'local' },
      { name: 'local-b', provider: 'local' },
    ]);
  });
});

describe('parsePlan: cloud regions', () => {
  const cloudPlan = (dr: string) => `
regions:
  gcp-a: { provider: gcp, project: shop-prod-1, gcpRegion: us-central1, scratch: { databaseVersion: POSTGRES_16, network: projects/shop-prod-1/global/networks/default } }
  gcp-b: { provider: gcp, project: shop-prod-1, gcpRegion: us-east4, scratch: { databaseVersion: POSTGRES_16 } }
databases:
  shop:
    primary: { region: gcp-a, database: shop, instance: shop-main, credentials: { user: lifeboat, password: "env:SHOP_PW" } }
    dr: ${dr}
    objectives: { rpo: 15m, rto: 1h }
`;

  test('a Cloud SQL plan parses into region settings and an instance target, the password a reference', () => {
    const loaded = parsePlan(cloudPlan('{ region: gcp-b }'), 'cloud.yaml');
    const input = drillInput(loaded, 'shop', { fromLatestBackup: false, triggeredBy: 'test' });
    expect(input.primary).toEqual({
      region: {
        name: 'gcp-a',
        provider: 'gcp',
        settings: {
          project: 'shop-prod-1',
          gcpRegion: 'us-central1',
          scratchTier: 'db-custom-1-3840',
          scratchDatabaseVersion: 'POSTGRES_16',
          scratchNetwork: 'projects/shop-prod-1/global/networks/default',
        },
      },
      database: 'shop',
      instance: 'shop-main',
      credentials: { user: 'lifeboat', password: 'env:SHOP_PW' },
    });
  });

  test('a Cloud SQL standby needs its replica named, and the replica set carries it', () => {
    expect(planErrorOf(cloudPlan('{ region: gcp-b, standby: true }'))).toMatch(
      /databases\.shop\.dr\.replica: missing; expected the cross-region read replica's Cloud SQL instance name/,
    );
    const set = replicaSetOf(
      parsePlan(cloudPlan('{ region: gcp-b, standby: true, replica: shop-dr }'), 'cloud.yaml'),
      'shop',
    );
    expect(set).toMatchObject({
      set: 'gcp-a',
      nodes: { home: 'shop-main', dr: 'shop-dr' },
      credentials: { user: 'lifeboat', password: 'env:SHOP_PW' },
    });
  });

  test('a password written in the plan instead of a reference is refused without echoing it', () => {
    const message = planErrorOf(cloudPlan('{ region: gcp-b }').replace('"env:SHOP_PW"', 'hunter2-secret'));
    expect(message).toContain('databases.shop.primary.credentials.password: expected a reference');
    expect(message).not.toContain('hunter2-secret');
  });
});
