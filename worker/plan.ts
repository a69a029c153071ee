// The plan file: which databases, where they live, where they recover to, what "right" means.
// Validated once, here, with messages that name the field, the value and what was expected.
import { createHash } from 'node:crypto';
import { readFileSync, statSync, type Stats } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type {
  BackupInput,
  CrossCloudInput,
  DatabaseTarget,
  DrillInput,
  FailbackInput,
  FailoverInput,
  ReadinessInput,
  RegionSpec,
  ReplicaSetSpec,
  StoreSpec,
} from '../workflows/types';

export const MAX_PLAN_BYTES = 1024 * 1024;
/** A fleet drill carries every database's input in one workflow start; past this it would not fit. */
export const MAX_DATABASES = 1000;

const NAME = /^[a-z][a-z0-9-]{0,62}$/;
const PG_IDENT = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

const DURATION_EXPECTED = 'expected a duration such as 30s, 15m, 1h or 1h30m (or a number of seconds)';

// The union's own message: zod's default would report the last branch ("expected string") for `true`.
const duration = z.union([z.number(), z.string()], { error: DURATION_EXPECTED }).transform((value, ctx) => {
  const seconds = parseDuration(value);
  if (seconds === null) {
    ctx.addIssue({ code: 'custom', message: DURATION_EXPECTED });
    return z.NEVER;
  }
  if (seconds <= 0) {
    ctx.addIssue({ code: 'custom', message: 'expected a duration greater than zero' });
    return z.NEVER;
  }
  return seconds;
});

/** A strict object whose unknown-key message lists the keys it does allow, so a typo shows its fix. */
function strictObject<T extends z.ZodRawShape>(shape: T) {
  const allowed = `unknown key; expected only ${Object.keys(shape).join(', ')}`;
  return z.strictObject(shape, { error: (issue) => (issue.code === 'unrecognized_keys' ? allowed : undefined) });
}

/**
 * A record keyed by plan names (regions, databases). zod mistakes a `constructor` key for a sign that
 * the value is not a plain object ("expected record, received object") and silently drops `__proto__`,
 * so names inherited from Object.prototype are refused here first, by name.
 */
function namedRecord<T extends z.ZodType>(what: string, value: T) {
  const name = `expected a ${what} name (lowercase letters, digits, dashes)`;
  const record = z.record(z.string().regex(NAME, name), value);
  return z.preprocess((input, ctx) => {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
    const kept: Record<string, unknown> = {};
    for (const [key, entry] of Object.entries(input)) {
      if (key in Object.prototype) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          params: { key },
          message: `is a name JavaScript reserves; ${name}`,
        });
      } else kept[key] = entry;
    }
    return kept;
  }, record);
}

const PROVIDER_EXPECTED = 'expected provider "local", "aws" or "gcp"';

// Where a region keeps portable backups (pg_dump + manifest): what crosses clouds. One of these.
const STORE_EXPECTED =
  'expected one of { s3: { bucket, prefix, awsRegion } }, { gcs: { bucket, prefix } } or { dir: /absolute/path }';
// No `.` or `..` segments: object keys are checked the same way (activities/portable/store.ts checkKey).
const bucketPrefix = z
  .string()
  .regex(
    /^((?!\.\.?\/)[A-Za-z0-9._-]+\/)*$/,
    'expected a key prefix such as lifeboat/ (ending in /, no . or .. parts), or empty',
  )
  .default('');
const storeSchema = z.union(
  [
    strictObject({
      s3: strictObject({
        bucket: z
          .string()
          .regex(
            /^(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
            'expected an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)',
          ),
        prefix: bucketPrefix,
        /** Defaults to the region's awsRegion where there is one. */
        awsRegion: z
          .string()
          .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'expected an AWS region code such as us-east-1')
          .optional(),
      }),
    }),
    strictObject({
      gcs: strictObject({
        bucket: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/, 'expected a GCS bucket name'),
        prefix: bucketPrefix,
      }),
    }),
    // `..` parts would let two regions name one directory differently and pass as two stores.
    strictObject({
      dir: z
        .string()
        .regex(/^\/[^\0]*$/, 'expected an absolute directory path')
        .refine((dir) => !dir.split('/').some((part) => part === '.' || part === '..'), {
          message: 'expected an absolute directory path without . or .. parts',
        }),
    }),
  ],
  { error: STORE_EXPECTED },
);

const localRegionSchema = strictObject({
  provider: z.literal('local', { error: PROVIDER_EXPECTED }),
  store: storeSchema.optional(),
});

// RDS identifiers: a letter, then letters, digits and single hyphens, not ending in a hyphen.
const RDS_ID = /^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$/;
const rdsId = (what: string) =>
  z
    .string()
    .regex(RDS_ID, `expected a ${what} identifier (a letter, then letters, digits and single hyphens, at most 63)`);

const awsRegionSchema = strictObject({
  provider: z.literal('aws', { error: PROVIDER_EXPECTED }),
  awsRegion: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'expected an AWS region code such as us-east-1'),
  /** Copies into this region are re-encrypted with this key (key ARN, ID or alias/...). */
  kmsKeyId: z
    .string()
    .regex(
      /^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/[A-Za-z0-9/_-]+|[0-9a-f-]{36}|alias\/[A-Za-z0-9/_-]+)$/,
      'expected a KMS key ARN, key ID or alias/name',
    )
    .optional(),
  store: storeSchema.optional(),
  /** Where drills restore: isolated, never public. */
  scratch: strictObject({
    instanceClass: z
      .string()
      .regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, 'expected an instance class such as db.t4g.micro')
      .default('db.t4g.micro'),
    subnetGroup: z.string().regex(/^[A-Za-z0-9 ._-]{1,255}$/, 'expected a DB subnet group name'),
    securityGroups: z
      .array(z.string().regex(/^sg-[0-9a-f]{8,17}$/, 'expected a security group ID such as sg-0123456789abcdef0'))
      .min(1, 'expected at least one security group'),
  }),
});

const gcpRegionSchema = strictObject({
  provider: z.literal('gcp', { error: PROVIDER_EXPECTED }),
  project: z
    .string()
    .regex(
      /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/,
      'expected a Google Cloud project ID (6-30 lowercase letters, digits, hyphens)',
    ),
  gcpRegion: z.string().regex(/^[a-z]+-[a-z]+\d+$/, 'expected a Google Cloud region such as us-central1'),
  store: storeSchema.optional(),
  /** Where drills restore: a private instance that exists only for the drill. */
  scratch: strictObject({
    tier: z
      .string()
      .regex(/^db-[a-z0-9-]+$/, 'expected a Cloud SQL tier such as db-custom-1-3840')
      .default('db-custom-1-3840'),
    databaseVersion: z
      .string()
      .regex(/^POSTGRES_\d+$/, "expected a Cloud SQL PostgreSQL version such as POSTGRES_16 (the primary's)"),
    /** The VPC for private IP (projects/<p>/global/networks/<n>); scratch instances get no public IP. */
    network: z
      .string()
      .regex(
        /^projects\/[a-z][a-z0-9-]+\/global\/networks\/[a-z][a-z0-9-]*$/,
        'expected projects/<project>/global/networks/<network>',
      )
      .optional(),
  }),
});

const regionSchema = z.discriminatedUnion('provider', [localRegionSchema, awsRegionSchema, gcpRegionSchema], {
  error: PROVIDER_EXPECTED,
});

const SECRET_REF = /^(env:[A-Za-z_][A-Za-z0-9_]*|file:\/\S+)$/;
const credentialsSchema = strictObject({
  user: z.string().regex(PG_IDENT, 'expected a PostgreSQL role name'),
  password: z
    .string()
    .regex(SECRET_REF, 'expected a reference, env:VARIABLE or file:/absolute/path, never the password itself'),
});

// Check names are printed in terminals, logs and webhooks: no control characters (an ESC sequence
// could repaint a failed report as passed). A check's SQL is one statement: a `;` followed by more
// (`select true; commit; drop table t`) would end the read-only transaction the check runs in.
const checkSchema = strictObject({
  name: z
    .string()
    .min(1, 'expected a non-empty name')
    .max(200, 'expected at most 200 characters')
    .regex(/^\P{Cc}*$/u, 'expected a name without control characters (newlines, escapes, NUL)'),
  sql: z
    .string()
    .min(1, 'expected a SQL query')
    .max(20_000, 'expected at most 20000 characters')
    .regex(/^[^\0]*$/, 'expected a SQL query without NUL characters')
    .refine((sql) => !hasSecondStatement(sql), {
      message:
        'expected one SQL statement (a ; followed by another statement would end the read-only transaction checks run in)',
    }),
});

// Five cron fields (minute hour day-of-month month day-of-week), as Temporal Schedules read them.
const CRON = /^\s*([0-9*,/-]+)\s+([0-9*,/-]+)\s+([0-9*,/?LW-]+)\s+([0-9A-Za-z*,/-]+)\s+([0-9A-Za-z*,/?L#-]+)\s*$/;
const CRON_EXPECTED = 'expected five cron fields such as "0 3 * * *" (minute hour day-of-month month day-of-week)';
const cadenceSchema = strictObject({
  /** How often: a duration such as 24h. Give this or cron. */
  every: duration.optional(),
  cron: z
    .string()
    .regex(CRON, CRON_EXPECTED)
    .refine((c) => cronFieldsInRange(c) && cronNamesKnown(c), {
      message: `${CRON_EXPECTED}, each within its range (minute 0-59, hour 0-23, day 1-31, month 1-12 or JAN-DEC, weekday 0-7 or SUN-SAT)`,
    })
    .optional(),
  /** Random delay added to each start, so a fleet does not start at once. */
  jitter: duration.optional(),
});

const databaseSchema = strictObject({
  primary: strictObject({
    region: z.string().regex(NAME, 'expected a region name (lowercase letters, digits, dashes)'),
    database: z
      .string()
      .regex(PG_IDENT, 'expected a PostgreSQL database name (letters, digits, _ and $, not starting with a digit)'),
    /** On AWS: the primary's DB instance identifier; on Google Cloud: its Cloud SQL instance name. */
    instance: rdsId('DB instance').optional(),
    /** On AWS Aurora: the primary's DB cluster identifier (instead of instance). */
    cluster: rdsId('DB cluster').optional(),
    /** On AWS: who Lifeboat connects as (canary, checks); the password by reference only. */
    credentials: credentialsSchema.optional(),
  }),
  dr: strictObject({
    region: z.string().regex(NAME, 'expected a region name (lowercase letters, digits, dashes)'),
    /** A streaming standby of the primary's server is kept in the DR region (failover needs one). */
    standby: z.boolean({ error: 'expected true or false' }).default(false),
    /** On AWS: the cross-region read replica's DB instance identifier (Aurora: the secondary cluster). */
    replica: rdsId('DB instance').optional(),
    /** On AWS Aurora: the global database that holds both clusters. */
    globalCluster: rdsId('global cluster').optional(),
    /** Cross-cloud: the instance in the DR cloud a failover restores into (a local DR region uses its own server). */
    instance: rdsId('DR instance').optional(),
    /** Cross-cloud into a cloud region: Lifeboat's login there (scratch instances are made with it). */
    credentials: credentialsSchema.optional(),
    /** Portable backups (pg_dump in the regions' stores) even between regions of one provider. */
    portable: z.boolean({ error: 'expected true or false' }).optional(),
  }),
  objectives: strictObject({ rpo: duration, rto: duration }),
  checks: z.array(checkSchema).default([]),
  retention: strictObject({
    keep: z.number().int('expected a whole number').min(1, 'expected at least 1').max(1000),
  }).default({ keep: 7 }),
  failover: strictObject({ approvalTimeout: duration.default(900) }).default({ approvalTimeout: 900 }),
  /** Temporal Schedules for this database's drills and backups (`lifeboat schedule apply`). */
  schedule: strictObject({
    drill: cadenceSchema.optional(),
    backup: cadenceSchema.optional(),
    /** Readiness checks (backup age, copy, standby, drill recency): read-only, cheap, run often. */
    readiness: cadenceSchema.optional(),
    /** A drill must have passed within this long (default: the drill interval + jitter + catch-up window, else 7d). */
    drillWindow: duration.optional(),
    /** A start missed by at most this much (the server was down) still runs; older ones are skipped. */
    catchupWindow: duration.default(3600),
  }).optional(),
});

const planSchema = strictObject({
  regions: namedRecord('region', regionSchema),
  databases: namedRecord('database', databaseSchema),
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

const CRON_NAMES: Record<number, string[]> = {
  3: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'],
  4: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'L'],
};

/** Letters in the month and weekday fields are names (JAN, MON) or L: `FOO` is a typo the server would refuse later. */
function cronNamesKnown(cron: string): boolean {
  return cron
    .trim()
    .split(/\s+/)
    .every((field, i) =>
      (field.match(/[A-Za-z]+/g) ?? []).every((word) => i < 3 || (CRON_NAMES[i] ?? []).includes(word.toUpperCase())),
    );
}

/** Whether SQL holds a `;` with more than whitespace or comments after it, outside quotes and comments. */
function hasSecondStatement(sql: string): boolean {
  // Quoted strings and identifiers, dollar quotes and comments are stepped over whole.
  const token =
    /'(?:[^']|'')*'?|"(?:[^"]|"")*"?|--[^\n]*|\/\*[\s\S]*?(?:\*\/|$)|(\$[A-Za-z_]*\$)[\s\S]*?(?:\1|$)|[^\s'"$;/-]+|[\s\S]/g;
  let ended = false;
  for (const [t] of sql.matchAll(token)) {
    if (t === ';') ended = true;
    else if (ended && !/^(\s+|--.*|\/\*[\s\S]*)$/.test(t)) return true;
  }
  return false;
}

function cronFieldsInRange(cron: string): boolean {
  const ranges: Array<[number, number]> = [
    [0, 59],
    [0, 23],
    [1, 31],
    [1, 12],
    [0, 7],
  ];
  return cron
    .trim()
    .split(/\s+/)
    .every((field, i) =>
      field.split(',').every((part) => {
        const [values = '', step] = part.split('/');
        if (step !== undefined && !(Number(step) >= 1)) return false;
        const [lo, hi] = ranges[i]!;
        // Names (JAN, MON) and letters (L, W, #) carry no number to check here.
        return (values.match(/\d+/g) ?? []).every((n) => Number(n) >= lo && Number(n) <= hi);
      }),
    );
}

export function parseDuration(value: number | string): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  // A bare number is seconds, as it is when YAML reads it unquoted.
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const m = /^\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$/.exec(value);
  if (!m || (!m[1] && !m[2] && !m[3])) return null;
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

export function loadPlanFile(path: string): LoadedPlan {
  const unreadable = `plan file ${path}: cannot be read; expected a path to a YAML plan`;
  let stat: Stats;
  try {
    stat = statSync(path);
  } catch {
    throw new PlanError(unreadable);
  }
  // A directory stats fine and only fails at the read, with a raw EISDIR.
  if (!stat.isFile()) throw new PlanError(`plan file ${path}: is not a regular file; expected a path to a YAML plan`);
  if (stat.size > MAX_PLAN_BYTES)
    throw new PlanError(`plan file ${path}: is ${stat.size} bytes; expected at most ${MAX_PLAN_BYTES}`);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new PlanError(`${unreadable} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  // Decoding leniently would turn a Latin-1 "café" into "caf\uFFFD" and validate the mangled text.
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const line =
      bytes
        .toString('utf8')
        .split('\n')
        .findIndex((l) => l.includes('\uFFFD')) + 1;
    throw new PlanError(`plan file ${path}: is not UTF-8 text (line ${line}); expected a YAML plan saved as UTF-8`);
  }
  return parsePlan(text, path);
}

export function parsePlan(text: string, source: string): LoadedPlan {
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 50 });
  } catch (err) {
    // A duplicate key is named: "Map keys must be unique at line 9" alone does not say which.
    const { code, pos } = err as { code?: string; pos?: [number, number] };
    const key =
      code === 'DUPLICATE_KEY' && pos
        ? ` (key ${JSON.stringify(/^[^:\n]*/.exec(text.slice(pos[0]))![0].trim().slice(0, 80))} appears twice)`
        : '';
    throw new PlanError(`${source}: not valid YAML: ${(err as Error).message.split('\n')[0]!.replace(/:$/, '')}${key}`);
  }
  const result = planSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.flatMap((issue) => issueLines(issue, raw)).slice(0, 10);
    throw new PlanError(`${source}: invalid plan\n${lines.join('\n')}`);
  }
  const plan = result.data;
  const problems: string[] = [];
  const regionNames = Object.keys(plan.regions).join(', ');
  for (const [name, db] of Object.entries(plan.databases)) {
    if (!Object.hasOwn(plan.regions, db.primary.region))
      problems.push(
        `  databases.${name}.primary.region: ${JSON.stringify(db.primary.region)} is not a region of this plan; expected one of ${regionNames}`,
      );
    if (!Object.hasOwn(plan.regions, db.dr.region))
      problems.push(
        `  databases.${name}.dr.region: ${JSON.stringify(db.dr.region)} is not a region of this plan; expected one of ${regionNames}`,
      );
    if (db.dr.region === db.primary.region)
      problems.push(
        `  databases.${name}.dr.region: ${JSON.stringify(db.dr.region)} is the primary's region; expected a different region`,
      );
    problems.push(...providerProblems(plan, name, db));
    for (const kind of ['drill', 'backup', 'readiness'] as const) {
      const cadence = db.schedule?.[kind];
      if (!cadence) continue;
      const at = `  databases.${name}.schedule.${kind}`;
      if (!cadence.every === !cadence.cron) problems.push(`${at}: expected exactly one of every (a duration) or cron`);
      if (cadence.every !== undefined && cadence.every < 60)
        problems.push(`${at}.every: ${cadence.every}s; expected at least 1m`);
      if (cadence.jitter !== undefined && cadence.every !== undefined && cadence.jitter >= cadence.every)
        problems.push(`${at}.jitter: ${cadence.jitter}s is not shorter than every (${cadence.every}s); expected less`);
    }
    const seen = new Set<string>();
    db.checks.forEach((check, i) => {
      if (seen.has(check.name))
        problems.push(
          `  databases.${name}.checks.${i}.name: ${JSON.stringify(check.name)} is used twice; expected unique check names`,
        );
      seen.add(check.name);
    });
  }
  for (const [name, spec] of Object.entries(plan.regions)) {
    if (spec.store && 's3' in spec.store && !spec.store.s3.awsRegion && spec.provider !== 'aws') {
      problems.push(
        `  regions.${name}.store.s3.awsRegion: missing; expected the bucket's AWS region (only aws regions supply a default)`,
      );
    }
  }
  const count = Object.keys(plan.databases).length;
  if (count === 0) problems.push('  databases: is empty; expected at least one database');
  if (count > MAX_DATABASES)
    problems.push(
      `  databases: has ${count} databases; expected at most ${MAX_DATABASES} in one plan (split the fleet into several plans)`,
    );
  if (problems.length) throw new PlanError(`${source}: invalid plan\n${problems.join('\n')}`);
  return { plan, source, digest: createHash('sha256').update(text).digest('hex') };
}

type DatabaseSpec = Plan['databases'][string];

/** What one provider needs of a database that the schema alone cannot say. */
function providerProblems(plan: Plan, name: string, db: DatabaseSpec): string[] {
  const at = `  databases.${name}`;
  const primary = Object.hasOwn(plan.regions, db.primary.region) ? plan.regions[db.primary.region] : undefined;
  const dr = Object.hasOwn(plan.regions, db.dr.region) ? plan.regions[db.dr.region] : undefined;
  if (!primary || !dr) return [];
  const problems: string[] = [];
  if (isPortable(plan, db)) {
    // Cross-cloud (or asked for): portable backups, restored by pg_restore; no streaming standby.
    const why =
      primary.provider !== dr.provider
        ? `${db.dr.region} is on ${dr.provider} and the primary on ${primary.provider}: recovery across clouds goes through portable backups`
        : 'dr.portable is true';
    for (const [name, spec] of [
      [db.primary.region, primary],
      [db.dr.region, dr],
    ] as const) {
      if (!spec.store)
        problems.push(`  regions.${name}.store: missing; expected an object store for portable backups (${why})`);
    }
    if (primary.store && dr.store && JSON.stringify(primary.store) === JSON.stringify(dr.store)) {
      problems.push(
        `  regions.${db.dr.region}.store: is the same store as regions.${db.primary.region}.store; expected a store of its own (a copy in the same place protects nothing)`,
      );
    }
    if (db.dr.standby)
      problems.push(
        `${at}.dr.standby: is true; expected false: no streaming replication crosses clouds (the cross-cloud failover restores a portable backup into dr.instance)`,
      );
    if (dr.provider === 'aws')
      problems.push(
        `${at}.dr.region: ${JSON.stringify(db.dr.region)} is on aws; portable backups restore into local or gcp regions in this version`,
      );
    if (dr.provider !== 'local' && !db.dr.credentials)
      problems.push(
        `${at}.dr.credentials: missing; expected { user, password: env:VARIABLE }, Lifeboat's login in ${db.dr.region}`,
      );
    if (dr.provider === 'gcp' && db.dr.credentials && db.dr.credentials.user !== 'postgres')
      problems.push(
        `${at}.dr.credentials.user: expected postgres, the admin login Cloud SQL scratch instances are made with (got ${JSON.stringify(db.dr.credentials.user)})`,
      );
    if (dr.provider === 'local' && (db.dr.instance || db.dr.credentials))
      problems.push(
        `${at}.dr: instance and credentials are for cloud DR regions; ${db.dr.region} is local (a failover restores into its own server)`,
      );
  } else if (db.dr.instance || db.dr.credentials) {
    problems.push(
      `${at}.dr: instance and credentials are for cross-cloud recovery (portable backups); ${name}'s DR region is on ${dr.provider} like its primary`,
    );
  }
  if (primary.provider === 'aws') {
    if (!db.primary.instance === !db.primary.cluster)
      problems.push(`${at}.primary: expected exactly one of instance (RDS) or cluster (Aurora)`);
    if (db.primary.cluster && db.dr.standby && !db.dr.globalCluster)
      problems.push(`${at}.dr.globalCluster: missing; expected the Aurora global database (dr.standby is true)`);
    if (db.primary.instance && db.dr.globalCluster)
      problems.push(`${at}.dr.globalCluster: is only for Aurora (primary.cluster); ${name} names an RDS instance`);
    if (!db.primary.credentials)
      problems.push(
        `${at}.primary.credentials: missing; expected { user, password: env:VARIABLE } for the canary and the checks`,
      );
    if (db.dr.standby && !db.dr.replica && dr.provider === 'aws')
      problems.push(
        `${at}.dr.replica: missing; expected the cross-region read replica's DB instance identifier (dr.standby is true)`,
      );
  } else if (primary.provider === 'gcp') {
    if (!db.primary.instance)
      problems.push(`${at}.primary.instance: missing; expected the primary's Cloud SQL instance name`);
    if (!db.primary.credentials)
      problems.push(
        `${at}.primary.credentials: missing; expected { user, password: env:VARIABLE } for the canary and the checks`,
      );
    if (db.primary.cluster || db.dr.globalCluster)
      problems.push(`${at}: cluster and globalCluster are Aurora settings; ${db.primary.region} is gcp`);
    if (db.dr.standby && !db.dr.replica && dr.provider === 'gcp')
      problems.push(
        `${at}.dr.replica: missing; expected the cross-region read replica's Cloud SQL instance name (dr.standby is true)`,
      );
  } else {
    if (db.primary.instance)
      problems.push(`${at}.primary.instance: is only for cloud regions; ${db.primary.region} is ${primary.provider}`);
    if (db.primary.credentials)
      problems.push(`${at}.primary.credentials: is only for cloud regions; the local provider runs its own servers`);
    if (db.primary.cluster)
      problems.push(`${at}.primary.cluster: is only for AWS regions; ${db.primary.region} is ${primary.provider}`);
    if (db.dr.globalCluster)
      problems.push(`${at}.dr.globalCluster: is only for AWS regions; ${db.dr.region} is ${dr.provider}`);
    if (db.dr.replica) problems.push(`${at}.dr.replica: is only for AWS regions; ${db.dr.region} is ${dr.provider}`);
  }
  return problems;
}

/** Portable backups: the DR region is on another provider, or the plan asks for them. */
function isPortable(plan: Plan, db: DatabaseSpec): boolean {
  const primary = Object.hasOwn(plan.regions, db.primary.region) ? plan.regions[db.primary.region] : undefined;
  const dr = Object.hasOwn(plan.regions, db.dr.region) ? plan.regions[db.dr.region] : undefined;
  return db.dr.portable === true || Boolean(primary && dr && primary.provider !== dr.provider);
}

/** One report line per mistake: `<path>: <what was expected> (<what was there>)`. */
function issueLines(issue: z.core.$ZodIssue, raw: unknown): string[] {
  const path = issue.path.map(String);
  // One line per unknown key, at the key's own path, so each typo is named where it sits.
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => line([...path, key], issue.message, describeValue(valueAt(raw, [...path, key]))));
  }
  // A bad record key: the key is what is wrong, not the (possibly large) value under it.
  if (issue.code === 'invalid_key') {
    return [line(path, issue.issues.map((i) => i.message).join('; '), `got key ${JSON.stringify(path.at(-1))}`)];
  }
  if (issue.code === 'custom' && typeof issue.params?.key === 'string') {
    return [line(path, issue.message, `got key ${JSON.stringify(issue.params.key)}`)];
  }
  // A secret pasted where a reference belongs must not be echoed into a terminal or a CI log; nor
  // the text of a file that is no plan at all (`-f ~/.pgpass` parses as one string).
  const value = valueAt(raw, path);
  const shown = /password|secret|token/i.test(path.at(-1) ?? '')
    ? 'value not shown'
    : path.length === 0 && typeof value === 'string'
      ? `got ${value.length} characters of text, not shown`
      : describeValue(value);
  return [line(path, issue.message, shown)];
}

function line(path: string[], message: string, got: string): string {
  // A key may hold control characters (a NUL, an escape sequence): shown escaped, never raw.
  const at = path.join('.').replace(/\p{Cc}/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `  ${at || '(top level)'}: ${message} (${got})`;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'missing';
  // JSON has no NaN or Infinity and would print them as null, which is not what the file says.
  if (typeof value === 'number' && !Number.isFinite(value)) return `got ${value}`;
  try {
    return `got ${(JSON.stringify(value) ?? String(value)).slice(0, 80)}`;
  } catch {
    return 'got a value that contains itself, through a YAML alias'; // JSON.stringify throws on cycles
  }
}

function valueAt(raw: unknown, path: Array<string | number>): unknown {
  let node = raw;
  for (const key of path) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

// Lookups by a name from the user go through Object.hasOwn: `plan.databases['toString']` would find
// Object.prototype's function.
function region(plan: Plan, name: string): RegionSpec {
  const spec = Object.hasOwn(plan.regions, name) ? plan.regions[name] : undefined;
  if (!spec) throw new PlanError(`region ${name} is not in the plan`);
  const store = storeSpecOf(spec);
  const withStore = store ? { store } : {};
  if (spec.provider === 'local') return { name, provider: 'local', ...withStore };
  if (spec.provider === 'gcp') {
    return {
      name,
      provider: 'gcp',
      ...withStore,
      settings: {
        project: spec.project,
        gcpRegion: spec.gcpRegion,
        scratchTier: spec.scratch.tier,
        scratchDatabaseVersion: spec.scratch.databaseVersion,
        ...(spec.scratch.network && { scratchNetwork: spec.scratch.network }),
      },
    };
  }
  return {
    name,
    provider: 'aws',
    ...withStore,
    settings: {
      awsRegion: spec.awsRegion,
      ...(spec.kmsKeyId && { kmsKeyId: spec.kmsKeyId }),
      scratchInstanceClass: spec.scratch.instanceClass,
      scratchSubnetGroup: spec.scratch.subnetGroup,
      scratchSecurityGroups: spec.scratch.securityGroups.join(','),
    },
  };
}

function storeSpecOf(spec: Plan['regions'][string]): StoreSpec | undefined {
  const store = spec.store;
  if (!store) return undefined;
  if ('dir' in store) return { kind: 'dir', path: store.dir };
  if ('gcs' in store) return { kind: 'gcs', bucket: store.gcs.bucket, prefix: store.gcs.prefix };
  const awsRegion = store.s3.awsRegion ?? (spec.provider === 'aws' ? spec.awsRegion : undefined);
  // Checked here rather than in the schema: the default comes from the region around it.
  if (!awsRegion)
    throw new PlanError("store.s3.awsRegion: missing; expected the bucket's AWS region (only aws regions supply it)");
  return { kind: 's3', bucket: store.s3.bucket, prefix: store.s3.prefix, awsRegion };
}

function targetOf(loaded: LoadedPlan, db: DatabaseSpec): DatabaseTarget {
  return {
    region: region(loaded.plan, db.primary.region),
    database: db.primary.database,
    ...(db.primary.instance && { instance: db.primary.instance }),
    ...(db.primary.cluster && { cluster: db.primary.cluster }),
    ...(db.primary.credentials && { credentials: db.primary.credentials }),
  };
}

export function databaseOf(loaded: LoadedPlan, database: string) {
  const db = Object.hasOwn(loaded.plan.databases, database) ? loaded.plan.databases[database] : undefined;
  if (!db) {
    throw new PlanError(
      `database ${JSON.stringify(database)} is not in ${loaded.source}; expected one of ${Object.keys(loaded.plan.databases).join(', ')}`,
    );
  }
  return db;
}

/** How drill, backup and readiness inputs begin: where the database lives and recovers to, which plan, who asked. */
function inputBase(loaded: LoadedPlan, db: DatabaseSpec, database: string, options: { triggeredBy: string }) {
  return {
    database,
    primary: targetOf(loaded, db),
    dr: region(loaded.plan, db.dr.region),
    ...(isPortable(loaded.plan, db) && { portable: true }),
    planDigest: loaded.digest,
    triggeredBy: options.triggeredBy,
  };
}

const objectivesOf = (db: DatabaseSpec) => ({ rpoSeconds: db.objectives.rpo, rtoSeconds: db.objectives.rto });

/** A failover's approval: pre-approved or not, and how long the runbook waits for one (the plan's default). */
function approvalOf(db: DatabaseSpec, options: { preApproved: boolean; approvalTimeoutSeconds?: number }) {
  return {
    preApproved: options.preApproved,
    timeoutSeconds: options.approvalTimeoutSeconds ?? db.failover.approvalTimeout,
  };
}

export function drillInput(
  loaded: LoadedPlan,
  database: string,
  options: { fromLatestBackup: boolean; triggeredBy: string },
): DrillInput {
  const db = databaseOf(loaded, database);
  return {
    ...inputBase(loaded, db, database, options),
    objectives: objectivesOf(db),
    checks: db.checks,
    fromLatestBackup: options.fromLatestBackup,
    ...(db.dr.credentials && { drCredentials: db.dr.credentials }),
  };
}

export function backupInput(loaded: LoadedPlan, database: string, options: { triggeredBy: string }): BackupInput {
  const db = databaseOf(loaded, database);
  return {
    ...inputBase(loaded, db, database, options),
    keep: db.retention.keep,
  };
}

/** A readiness check of one database: what the plan promises, and how recently a drill must have passed. */
export function readinessInput(loaded: LoadedPlan, database: string, options: { triggeredBy: string }): ReadinessInput {
  const db = databaseOf(loaded, database);
  return {
    ...inputBase(loaded, db, database, options),
    objectives: objectivesOf(db),
    ...(db.dr.standby && { replicaSet: replicaSetOf(loaded, database) }),
    drillWindowSeconds: drillWindowOf(db),
  };
}

const WEEK = 7 * 24 * 3600;

function drillWindowOf(db: DatabaseSpec): number {
  const schedule = db.schedule;
  if (schedule?.drillWindow !== undefined) return schedule.drillWindow;
  const every = schedule?.drill?.every;
  return every !== undefined ? every + (schedule?.drill?.jitter ?? 0) + (schedule?.catchupWindow ?? 3600) : WEEK;
}

/** The replication set a database lives in: its primary's server and that server's standby in DR. */
export function replicaSetOf(loaded: LoadedPlan, database: string): ReplicaSetSpec {
  const db = databaseOf(loaded, database);
  if (!db.dr.standby) {
    throw new PlanError(
      `databases.${database}.dr.standby: is false (or missing); expected true for a failover or failback: the DR region needs a streaming standby of ${db.primary.region}`,
    );
  }
  return {
    set: db.primary.region,
    home: region(loaded.plan, db.primary.region),
    dr: region(loaded.plan, db.dr.region),
    ...((db.primary.instance ?? db.primary.cluster) &&
      db.dr.replica && { nodes: { home: (db.primary.instance ?? db.primary.cluster)!, dr: db.dr.replica } }),
    ...(db.primary.credentials && { credentials: db.primary.credentials }),
    ...(db.dr.globalCluster && { globalCluster: db.dr.globalCluster }),
  };
}

/** Every replication set of the plan (databases with dr.standby; one set per primary region). */
export function replicaSetsOf(loaded: LoadedPlan): ReplicaSetSpec[] {
  const sets = new Map<string, ReplicaSetSpec>();
  for (const name of Object.keys(loaded.plan.databases)) {
    if (!databaseOf(loaded, name).dr.standby) continue;
    const set = replicaSetOf(loaded, name);
    if (!sets.has(set.set)) sets.set(set.set, set);
  }
  return [...sets.values()];
}

export function failoverInput(
  loaded: LoadedPlan,
  database: string,
  options: {
    mode: 'planned' | 'unplanned' | 'zonal';
    preApproved: boolean;
    triggeredBy: string;
    approvalTimeoutSeconds?: number;
  },
): FailoverInput {
  return { ...failbackInput(loaded, database, options), mode: options.mode };
}

export function failbackInput(
  loaded: LoadedPlan,
  database: string,
  options: { preApproved: boolean; triggeredBy: string; approvalTimeoutSeconds?: number; discardDivergent?: boolean },
): FailbackInput {
  const db = databaseOf(loaded, database);
  return {
    database,
    pgDatabase: db.primary.database,
    replicaSet: replicaSetOf(loaded, database),
    objectives: objectivesOf(db),
    checks: db.checks,
    approval: approvalOf(db, options),
    planDigest: loaded.digest,
    triggeredBy: options.triggeredBy,
    ...(options.discardDivergent && { discardDivergent: true }),
  };
}

/** Whether a database recovers through portable backups (across clouds): its failover is crossCloudFailover. */
export function recoversByRestore(loaded: LoadedPlan, database: string): boolean {
  return isPortable(loaded.plan, databaseOf(loaded, database));
}

/**
 * The cross-cloud runbook's input. Failover moves the database from its primary to the DR instance;
 * failback from the DR instance back to the primary's server.
 */
export function crossCloudInput(
  loaded: LoadedPlan,
  database: string,
  options: {
    direction: 'failover' | 'failback';
    mode: 'planned' | 'unplanned';
    preApproved: boolean;
    triggeredBy: string;
    approvalTimeoutSeconds?: number;
  },
): CrossCloudInput {
  const db = databaseOf(loaded, database);
  if (!isPortable(loaded.plan, db)) {
    throw new PlanError(
      `databases.${database}: its DR region is on the same provider as its primary; its failover uses the streaming standby (dr.standby), not a portable backup`,
    );
  }
  const home = targetOf(loaded, db);
  const drRegion = region(loaded.plan, db.dr.region);
  const dr: DatabaseTarget = {
    region: drRegion,
    database: db.primary.database,
    ...(db.dr.instance && { instance: db.dr.instance }),
    ...(db.dr.credentials && { credentials: db.dr.credentials }),
  };
  if (drRegion.provider !== 'local' && !db.dr.instance) {
    throw new PlanError(
      `databases.${database}.dr.instance: missing; expected the instance in ${db.dr.region} that a cross-cloud failover restores into`,
    );
  }
  const [from, to] = options.direction === 'failover' ? [home, dr] : [dr, home];
  return {
    database,
    pgDatabase: db.primary.database,
    direction: options.direction,
    mode: options.mode,
    from,
    to,
    objectives: objectivesOf(db),
    checks: db.checks,
    approval: approvalOf(db, options),
    planDigest: loaded.digest,
    triggeredBy: options.triggeredBy,
  };
}

/** Every region the plan names, for the worker's task queues. */
export function planRegions(loaded: LoadedPlan): RegionSpec[] {
  return Object.keys(loaded.plan.regions).map((name) => region(loaded.plan, name));
}
