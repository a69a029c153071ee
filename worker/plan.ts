// The plan file: which databases, where they live, where they recover to, what "right" means.
// Validated once, here, with messages that name the field, the value and what was expected.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { BackupInput, DrillInput, RegionSpec } from '../workflows/types';

export const MAX_PLAN_BYTES = 1024 * 1024;

const NAME = /^[a-z][a-z0-9-]{0,62}$/;
const PG_IDENT = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

const duration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const seconds = parseDuration(value);
  if (seconds === null) {
    ctx.addIssue({ code: 'custom', message: 'expected a duration such as 30s, 15m, 1h or 1h30m (or a number of seconds)' });
    return z.NEVER;
  }
  if (seconds <= 0) {
    ctx.addIssue({ code: 'custom', message: 'expected a duration greater than zero' });
    return z.NEVER;
  }
  return seconds;
});

const regionSchema = z.strictObject({
  provider: z.enum(['local'], { message: 'expected provider "local" (aws and gcp are not available in this version)' }),
});

const checkSchema = z.strictObject({
  name: z.string().min(1, 'expected a non-empty name').max(200, 'expected at most 200 characters'),
  sql: z.string().min(1, 'expected a SQL query').max(20_000, 'expected at most 20000 characters'),
});

const databaseSchema = z.strictObject({
  primary: z.strictObject({
    region: z.string().regex(NAME, 'expected a region name (lowercase letters, digits, dashes)'),
    database: z.string().regex(PG_IDENT, 'expected a PostgreSQL database name (letters, digits, _ and $, not starting with a digit)'),
  }),
  dr: z.strictObject({
    region: z.string().regex(NAME, 'expected a region name (lowercase letters, digits, dashes)'),
  }),
  objectives: z.strictObject({ rpo: duration, rto: duration }),
  checks: z.array(checkSchema).default([]),
  retention: z.strictObject({ keep: z.number().int('expected a whole number').min(1, 'expected at least 1').max(1000) }).default({ keep: 7 }),
});

const planSchema = z.strictObject({
  regions: z.record(z.string().regex(NAME, 'expected a region name (lowercase letters, digits, dashes)'), regionSchema),
  databases: z.record(z.string().regex(NAME, 'expected a database name (lowercase letters, digits, dashes)'), databaseSchema),
});

export type Plan = z.infer<typeof planSchema>;

export interface LoadedPlan {
  plan: Plan;
  source: string;
  digest: string;
}

/** Bad input: the CLI turns this into exit code 2. */
export class PlanError extends Error {
  override name = 'PlanError';
}

export function parseDuration(value: number | string): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  const m = /^\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$/.exec(value);
  if (!m || (!m[1] && !m[2] && !m[3])) return null;
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

export function loadPlanFile(path: string): LoadedPlan {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new PlanError(`plan file ${path}: cannot be read; expected a path to a YAML plan`);
  }
  if (size > MAX_PLAN_BYTES) throw new PlanError(`plan file ${path}: is ${size} bytes; expected at most ${MAX_PLAN_BYTES}`);
  return parsePlan(readFileSync(path, 'utf8'), path);
}

export function parsePlan(text: string, source: string): LoadedPlan {
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 50 });
  } catch (err) {
    throw new PlanError(`${source}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const result = planSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.slice(0, 10).map((issue) => {
      const path = issue.path.map(String).join('.');
      const value = valueAt(raw, issue.path as Array<string | number>);
      const got = value === undefined ? 'missing' : `got ${JSON.stringify(value)?.slice(0, 80)}`;
      return `  ${path || '(top level)'}: ${issue.message} (${got})`;
    });
    throw new PlanError(`${source}: invalid plan\n${lines.join('\n')}`);
  }
  const plan = result.data;
  const problems: string[] = [];
  for (const [name, db] of Object.entries(plan.databases)) {
    if (!plan.regions[db.primary.region]) problems.push(`  databases.${name}.primary.region: ${JSON.stringify(db.primary.region)} is not a region of this plan; expected one of ${Object.keys(plan.regions).join(', ')}`);
    if (!plan.regions[db.dr.region]) problems.push(`  databases.${name}.dr.region: ${JSON.stringify(db.dr.region)} is not a region of this plan; expected one of ${Object.keys(plan.regions).join(', ')}`);
    if (db.dr.region === db.primary.region) problems.push(`  databases.${name}.dr.region: ${JSON.stringify(db.dr.region)} is the primary's region; expected a different region`);
    const seen = new Set<string>();
    db.checks.forEach((check, i) => {
      if (seen.has(check.name)) problems.push(`  databases.${name}.checks.${i}.name: ${JSON.stringify(check.name)} is used twice; expected unique check names`);
      seen.add(check.name);
    });
  }
  if (Object.keys(plan.databases).length === 0) problems.push('  databases: is empty; expected at least one database');
  if (problems.length) throw new PlanError(`${source}: invalid plan\n${problems.join('\n')}`);
  return { plan, source, digest: createHash('sha256').update(text).digest('hex') };
}

function valueAt(raw: unknown, path: Array<string | number>): unknown {
  let node = raw;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

function region(plan: Plan, name: string): RegionSpec {
  const spec = plan.regions[name];
  if (!spec) throw new PlanError(`region ${name} is not in the plan`);
  return { name, provider: spec.provider };
}

export function databaseOf(loaded: LoadedPlan, database: string) {
  const db = loaded.plan.databases[database];
  if (!db) {
    throw new PlanError(
      `database ${JSON.stringify(database)} is not in ${loaded.source}; expected one of ${Object.keys(loaded.plan.databases).join(', ')}`,
    );
  }
  return db;
}

export function drillInput(loaded: LoadedPlan, database: string, options: { fromLatestBackup: boolean; triggeredBy: string }): DrillInput {
  const db = databaseOf(loaded, database);
  return {
    database,
    primary: { region: region(loaded.plan, db.primary.region), database: db.primary.database },
    dr: region(loaded.plan, db.dr.region),
    objectives: { rpoSeconds: db.objectives.rpo, rtoSeconds: db.objectives.rto },
    checks: db.checks,
    fromLatestBackup: options.fromLatestBackup,
    planDigest: loaded.digest,
    triggeredBy: options.triggeredBy,
  };
}

export function backupInput(loaded: LoadedPlan, database: string, options: { triggeredBy: string }): BackupInput {
  const db = databaseOf(loaded, database);
  return {
    database,
    primary: { region: region(loaded.plan, db.primary.region), database: db.primary.database },
    dr: region(loaded.plan, db.dr.region),
    keep: db.retention.keep,
    planDigest: loaded.digest,
    triggeredBy: options.triggeredBy,
  };
}

/** Every region the plan names, for the worker's task queues. */
export function planRegions(loaded: LoadedPlan): RegionSpec[] {
  return Object.keys(loaded.plan.regions).map((name) => region(loaded.plan, name));
}
