// What a manifest records of a database's content, and how a restored copy is read back to compare:
// each table's rows and an order-independent digest of them, the sequences' positions, the large
// objects. Equal data must give equal digests on any two servers of the same major version, so
// nothing here may hash a value's OID-valued form (an enum's label OID, a regclass) or a form that
// depends on a session setting the two sides could set differently.
import type { Client } from 'pg';
import type { CheckResult, LargeObjectStats, SequenceStats, TableStats } from '../../workflows/types';

/**
 * How a table's content digest is computed. All are order-independent sums of a per-row hash, so
 * identical data gives an identical digest whatever the physical order after a restore.
 * - hash_record_extended, md5-text (manifests before v2, still verified as they were computed): the
 *   first hashes enums and reg* values by OID (equal data restored elsewhere differs), the second is
 *   the row's text under whatever settings the session had.
 * - columns-v2: PostgreSQL's row hash over the row's columns, each column either as stored (a type
 *   in EXACT_HASH_TYPES, or built of them) or as its text form under PINNED_SETTINGS (every other
 *   type: enums, reg*, arrays, json, extension types...); the manifest lists the latter
 *   (TableStats.textColumns) and the verifier hashes those the same way. Row security off.
 */
export type ChecksumAlgorithm = NonNullable<TableStats['algorithm']>;

const OLD_DIGEST_SQL = {
  // Their exact text, `t::text` and all (a column named t shadows the row there).
  hash_record_extended: 'coalesce(sum(hash_record_extended(t, 0)), 0)::text',
  'md5-text': "coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)::text",
};

/**
 * Every setting a value's text form depends on, pinned for the v2 reads on both sides. search_path
 * empty makes regclass, regtype, regproc... print schema-qualified. row_security off makes a read
 * that row-level security would filter fail instead, so a digest is of every row or of none.
 */
const PINNED_SETTINGS: Array<[string, string]> = [
  ['DateStyle', 'ISO, YMD'],
  ['IntervalStyle', 'postgres'],
  ['extra_float_digits', '1'],
  ['bytea_output', 'hex'],
  ['TimeZone', 'UTC'],
  ['lc_monetary', 'C'],
  ['search_path', ''],
  ['row_security', 'off'],
];
const PIN_SQL = PINNED_SETTINGS.map(([name, value]) => `set local ${name} = '${value}'`).join('; ');

/**
 * Built-in types whose hash function hashes the stored value itself: no OID, no setting, and two
 * values hash alike only when they are the same value (not merely equal: numeric 1.0 = 1.00,
 * interval '1 day' = '24 hours', float -0 = 0, jsonb holds numerics, citext ignores case). numeric
 * is exact only under a typmod (a fixed scale); arrays hash without their dimensions, so they go
 * by text too.
 */
const EXACT_HASH_TYPES = [
  'bool',
  'char',
  'name',
  'int2',
  'int4',
  'int8',
  'text',
  'varchar',
  'bpchar',
  'bytea',
  'date',
  'time',
  'timetz',
  'timestamp',
  'timestamptz',
  'uuid',
  'macaddr',
  'macaddr8',
  'inet',
  'cidr',
  'pg_lsn',
];

/**
 * Each column of each table (by regclass), in order, and whether its value hashes exactly as stored.
 * A column's type is followed through domains, composites, ranges and multiranges; an enum, a reg*
 * or oid, an array, an extension's type or a non-deterministic collation anywhere sends the column
 * to its text form.
 */
const PLAN_SQL = `
  with recursive cols(rel, attnum, typ, typmod, coll) as (
    select a.attrelid, a.attnum, a.atttypid, a.atttypmod, a.attcollation
      from pg_catalog.pg_attribute a
     where a.attrelid in (select x::pg_catalog.regclass from pg_catalog.json_array_elements_text($1::pg_catalog.json) as x)
       and a.attnum > 0 and not a.attisdropped
    union
    select c.rel, c.attnum, n.typ, n.typmod, n.coll
      from cols c join pg_catalog.pg_type t on t.oid = c.typ
     cross join lateral (
       select t.typbasetype, t.typtypmod, t.typcollation where t.typtype = 'd'
       union all
       select a.atttypid, a.atttypmod, a.attcollation from pg_catalog.pg_attribute a
        where t.typtype = 'c' and a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped
       union all
       select r.rngsubtype, -1, r.rngcollation from pg_catalog.pg_range r where t.typtype = 'r' and r.rngtypid = t.oid
       union all
       select r.rngtypid, -1, 0 from pg_catalog.pg_range r where t.typtype = 'm' and r.rngmultitypid = t.oid
     ) as n(typ, typmod, coll)
  ), exact as (
    select c.rel, c.attnum,
           pg_catalog.bool_and(
             t.typtype in ('d', 'c', 'r', 'm')
             or (t.typtype = 'b' and t.typnamespace = 'pg_catalog'::pg_catalog.regnamespace
                 and t.typsubscript <> 'pg_catalog.array_subscript_handler'::pg_catalog.regproc
                 and (t.typname = any($2::pg_catalog.text[]) or (t.typname = 'numeric' and c.typmod >= 0))
                 and coalesce((select l.collisdeterministic from pg_catalog.pg_collation l where l.oid = c.coll), true))
           ) as exact
      from cols c join pg_catalog.pg_type t on t.oid = c.typ
     group by c.rel, c.attnum
  )
  select e.rel, pg_catalog.array_agg(a.attname::pg_catalog.text order by e.attnum) as columns,
         pg_catalog.array_agg(a.attname::pg_catalog.text order by e.attnum) filter (where not e.exact) as text_columns
    from exact e join pg_catalog.pg_attribute a on a.attrelid = e.rel and a.attnum = e.attnum
   group by e.rel`;

/** How columns-v2 reads one table: its columns in order, and those hashed by their text form. */
export interface ColumnPlan {
  columns: string[];
  textColumns: string[];
}

/**
 * Each table's columns, and which of them hash by text (quoted, schema-qualified names as
 * listTables gives them). Needs a transaction.
 */
export async function columnPlans(client: Client, tables: string[]): Promise<Map<string, ColumnPlan>> {
  const plans = new Map<string, ColumnPlan>(tables.map((t) => [t, { columns: [], textColumns: [] }])); // a table with no columns
  if (tables.length === 0) return plans;
  // The planner's guess at the recursion is wild enough to JIT-compile it: half a second for a
  // query that runs in one millisecond. jit off in a savepoint rolled back after, like the settings.
  await client.query('savepoint lifeboat_plan; set local jit = off');
  try {
    const { rows } = await client.query<{ q: string; columns: string[] | null; text_columns: string[] | null }>(
      `with p as (${PLAN_SQL})
       select r.q, p.columns, p.text_columns
         from pg_catalog.json_array_elements_text($1::pg_catalog.json) as r(q) left join p on p.rel = r.q::pg_catalog.regclass::pg_catalog.oid`,
      [JSON.stringify(tables), EXACT_HASH_TYPES],
    );
    for (const row of rows) plans.set(row.q, { columns: row.columns ?? [], textColumns: row.text_columns ?? [] });
    return plans;
  } finally {
    await client.query('rollback to savepoint lifeboat_plan; release savepoint lifeboat_plan');
  }
}

/** The columns-v2 digest expression: text columns by their text form, bytes compared ("C"). */
function columnsDigestSql(plan: ColumnPlan): string {
  const text = new Set(plan.textColumns);
  const quote = (name: string) => `t."${name.replace(/"/g, '""')}"`;
  const fields = plan.columns.map((c) => (text.has(c) ? `(${quote(c)})::pg_catalog.text collate "C"` : quote(c)));
  return `coalesce(sum(pg_catalog.hash_record_extended(row(${fields.join(', ')}), 0)), 0)::text`;
}

/** A table the digest reader could not read in full, and why. */
export interface Unreadable {
  table: string;
  unreadable: string;
}

export function isUnreadable(stats: TableStats | Unreadable): stats is Unreadable {
  return 'unreadable' in stats;
}

const INSUFFICIENT_PRIVILEGE = '42501';

/** Why `user` cannot read every row of `table` (row-level security), in words an operator can act on. */
function rlsReason(err: unknown, user: string): string | null {
  const e = err as { code?: string; message?: string };
  if (e.code !== INSUFFICIENT_PRIVILEGE || !/row-level security/i.test(e.message ?? '')) return null;
  return (
    `row-level security hides rows of it from ${user}, which is neither a superuser nor BYPASSRLS (${e.message}); ` +
    `give the login BYPASSRLS (ALTER ROLE ${user} BYPASSRLS, as a superuser or the platform's admin role) so that every row is counted and hashed`
  );
}

/**
 * Row count and content digest of one table. columns-v2 needs `plan` and an open transaction: the
 * settings are pinned in a savepoint rolled back afterwards, so they never leak into the
 * connection's other queries (nor change an older manifest's md5-text read on the same connection).
 */
export async function tableStats(
  client: Client,
  table: string,
  algorithm: ChecksumAlgorithm,
  plan?: ColumnPlan,
): Promise<TableStats | Unreadable> {
  const from = `from only ${table} as t`;
  if (algorithm !== 'columns-v2') {
    const { rows } = await client.query<{ rows: string; digest: string }>(
      `select count(*)::bigint as rows, ${OLD_DIGEST_SQL[algorithm]} as digest ${from}`,
    );
    return toStats(table, algorithm, rows[0]);
  }
  if (!plan) throw new Error(`no column plan for ${table}`);
  await client.query(`savepoint lifeboat_digest; ${PIN_SQL}`);
  try {
    const { rows } = await client.query<{ rows: string; digest: string }>(
      `select count(*)::bigint as rows, ${columnsDigestSql(plan)} as digest ${from}`,
    );
    return { ...toStats(table, algorithm, rows[0]), textColumns: plan.textColumns };
  } catch (err) {
    const reason = rlsReason(err, client.user ?? 'the login');
    if (reason) return { table: unquote(table), unreadable: reason };
    throw err;
  } finally {
    await client.query('rollback to savepoint lifeboat_digest; release savepoint lifeboat_digest');
  }
}

function toStats(
  table: string,
  algorithm: ChecksumAlgorithm,
  row: { rows: string; digest: string } | undefined,
): TableStats {
  if (!row) throw new Error(`no stats for ${table}`);
  return { table: unquote(table), rows: Number(row.rows), checksum: row.digest, algorithm };
}

/**
 * Stats for many tables over `clients` connections in parallel (each table on one connection),
 * every connection inside a transaction. Taking a manifest, each table is read by columns-v2;
 * verifying one, `expected` gives each table's algorithm and text columns as the manifest has them.
 */
export async function allTableStats(
  clients: Client[],
  tables: string[],
  options: {
    onTable?: (done: number) => void;
    expected?: Map<string, Pick<TableStats, 'algorithm' | 'textColumns'>>;
  } = {},
): Promise<Array<TableStats | Unreadable>> {
  const algorithmOf = (t: string): ChecksumAlgorithm =>
    options.expected ? (options.expected.get(t)?.algorithm ?? 'md5-text') : 'columns-v2';
  const planned = tables.filter((t) => algorithmOf(t) === 'columns-v2');
  const plans = planned.length && clients[0] ? await columnPlans(clients[0], planned) : new Map<string, ColumnPlan>();
  // Verifying, the manifest says which columns were hashed by text; the columns are the table's own.
  if (options.expected)
    for (const [t, plan] of plans)
      plans.set(t, { columns: plan.columns, textColumns: options.expected.get(t)?.textColumns ?? [] });
  const results = new Map<string, TableStats | Unreadable>();
  const queue = [...tables];
  let done = 0;
  await Promise.all(
    clients.map(async (client) => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        results.set(next, await tableStats(client, next, algorithmOf(next), plans.get(next)));
        options.onTable?.(++done);
      }
    }),
  );
  return tables.map((t) => results.get(t)!);
}

/** Manifest-side: every table read in full, or an error naming each that was not and why. */
export function readableOrThrow(stats: Array<TableStats | Unreadable>, fail: (message: string) => Error): TableStats[] {
  const unreadable = stats.filter(isUnreadable);
  if (unreadable.length)
    throw fail(
      `the manifest cannot count and hash every row: ${unreadable.map((u) => `${u.table}: ${u.unreadable}`).join('; ')}`,
    );
  return stats as TableStats[];
}

/** Marks the unlogged ones among `stats` (a physical restore brings those back empty). */
export async function markUnlogged(client: Client, stats: TableStats[], quoted: string[]): Promise<TableStats[]> {
  if (quoted.length === 0) return stats;
  const { rows } = await client.query<{ q: string }>(
    `select r.q from pg_catalog.json_array_elements_text($1::pg_catalog.json) as r(q)
       join pg_catalog.pg_class c on c.oid = r.q::pg_catalog.regclass where c.relpersistence = 'u'`,
    [JSON.stringify(quoted)],
  );
  const unlogged = new Set(rows.map((r) => unquote(r.q)));
  return stats.map((s) => (unlogged.has(s.table) ? { ...s, unlogged: true } : s));
}

/**
 * Every sequence's position (user schemas), read as the sequence is now: sequences are not
 * transactional, so even in a dump's snapshot a busy one may have moved on when pg_dump reads it.
 * One the login may not read is listed with the reason instead of a position.
 */
export async function sequenceStats(client: Client): Promise<SequenceStats[]> {
  const { rows } = await client.query<{ s: string; q: string; increment: string; readable: boolean }>(`
    select pg_catalog.format('%s.%s', n.nspname, c.relname) as s, pg_catalog.format('%I.%I', n.nspname, c.relname) as q,
           q.seqincrement::text as increment, pg_catalog.has_sequence_privilege(c.oid, 'SELECT') as readable
      from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      join pg_catalog.pg_sequence q on q.seqrelid = c.oid
     where c.relkind = 'S' and n.nspname not in ('pg_catalog', 'information_schema')
       and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
     order by 1`);
  // Read in batches of one statement each, not one round trip per sequence.
  const positions = new Map<string, { last_value: string; is_called: boolean }>();
  const readable = rows.filter((r) => r.readable);
  for (let i = 0; i < readable.length; i += 500) {
    const batch = readable.slice(i, i + 500);
    const { rows: pos } = await client.query<{ i: number; last_value: string; is_called: boolean }>(
      batch
        .map((r, j) => `select ${j} as i, last_value::text as last_value, is_called from ${r.q}`)
        .join(' union all '),
    );
    for (const p of pos) positions.set(batch[p.i]!.s, p);
  }
  return rows.map((r): SequenceStats => {
    const p = positions.get(r.s);
    return p
      ? { sequence: r.s, lastValue: p.last_value, isCalled: p.is_called, increment: r.increment }
      : {
          sequence: r.s,
          lastValue: null,
          isCalled: false,
          increment: r.increment,
          unreadable: `${client.user ?? 'the login'} has no SELECT privilege on it`,
        };
  });
}

/**
 * The large objects: how many, and an order-independent digest over each object's OID (pg_dump keeps
 * them), size and content, read in 1 MiB pieces so an object of any size fits. Needs a transaction
 * (the descriptors lo_open hands out live until its end). Null when the login may not read them all.
 */
export async function largeObjectStats(client: Client): Promise<LargeObjectStats | { unreadable: string }> {
  await client.query('savepoint lifeboat_lo');
  try {
    const { rows } = await client.query<{ count: string; checksum: string; bytes: string }>(`
      with o as (
        select m.oid as id, pg_catalog.lo_lseek64(pg_catalog.lo_open(m.oid, 262144), 0, 2) as size
          from pg_catalog.pg_largeobject_metadata m
      ), parts as (
        select pg_catalog.md5(o.id::text || ':' || o.size::text) as h from o
        union all
        select pg_catalog.md5(o.id::text || '@' || p::text || ':' || pg_catalog.md5(pg_catalog.lo_get(o.id, p, 1048576)))
          from o cross join lateral pg_catalog.generate_series(0::bigint, o.size - 1, 1048576) as p
      )
      select (select count(*) from o)::text as count,
             (select coalesce(sum(o.size), 0) from o)::text as bytes,
             coalesce(sum(('x' || pg_catalog.substr(h, 1, 15))::bit(60)::bigint), 0)::text as checksum
        from parts`);
    const row = rows[0]!;
    return { count: Number(row.count), bytes: Number(row.bytes), checksum: row.checksum };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code !== INSUFFICIENT_PRIVILEGE) throw err;
    return {
      unreadable: `${client.user ?? 'the login'} may not read every large object (${e.message}): it needs to own them or be granted SELECT on them`,
    };
  } finally {
    await client.query('rollback to savepoint lifeboat_lo; release savepoint lifeboat_lo');
  }
}

/** "schema"."table" as a manifest names it: schema.table, unquoted. */
export function unquote(qualified: string): string {
  return qualified
    .split(/(?<=")\.(?=")/)
    .map((part) => part.slice(1, -1).replace(/""/g, '"'))
    .join('.');
}

/**
 * The restored sequences against the manifest's. A sequence ahead of its manifest position passes
 * with that said: sequences are not transactional, so a busy one moves on between the manifest's
 * read and the dump's (or the platform's snapshot). One behind fails: new rows would reuse values.
 */
export function compareSequences(want: SequenceStats[], got: SequenceStats[], window: string): CheckResult[] {
  const found = new Map(got.map((s) => [s.sequence, s]));
  return want.map((w): CheckResult => {
    const name = `sequence ${w.sequence}`;
    const g = found.get(w.sequence);
    if (!g) return { name, ok: false, detail: 'missing from the restored database' };
    if (w.lastValue === null)
      return {
        name,
        ok: true,
        notCompared: true,
        detail: `not compared: the backup could not read its position (${w.unreadable ?? 'no privilege'})`,
      };
    if (g.lastValue === null)
      return {
        name,
        ok: true,
        notCompared: true,
        detail: `not compared: its position cannot be read here (${g.unreadable ?? 'no privilege'})`,
      };
    const position = (s: SequenceStats) => BigInt(s.lastValue!) - (s.isCalled ? 0n : BigInt(s.increment));
    const [was, now] = [position(w), position(g)];
    const ahead = (now - was) * (BigInt(w.increment) < 0n ? -1n : 1n);
    if (ahead === 0n) return { name, ok: true, detail: `position ${describe(g)}, as in the backup` };
    if (ahead > 0n)
      return {
        name,
        ok: true,
        detail: `position ${describe(g)}, ahead of the manifest's ${describe(w)}: it was used between the manifest and ${window} (sequences are not transactional)`,
      };
    return {
      name,
      ok: false,
      detail: `position ${describe(g)}, behind the backup's ${describe(w)}: new rows would reuse values already handed out`,
    };
  });
}

function describe(s: SequenceStats): string {
  return s.isCalled ? `last value ${s.lastValue}` : `${s.lastValue} not yet handed out`;
}

/** The restored large objects against the manifest's. */
export function compareLargeObjects(
  want: LargeObjectStats | { unreadable: string },
  got: LargeObjectStats | { unreadable: string },
  window: string,
): CheckResult {
  const name = 'large objects';
  if ('unreadable' in want)
    return {
      name,
      ok: true,
      notCompared: true,
      detail: `not compared: the backup could not read them (${want.unreadable})`,
    };
  if ('unreadable' in got) return { name, ok: true, notCompared: true, detail: `not compared: ${got.unreadable}` };
  const changed = window === 'the dump' ? '' : ` (or they were written between the manifest and ${window})`;
  if (got.count !== want.count)
    return { name, ok: false, detail: `${got.count} large objects; the backup had ${want.count}${changed}` };
  if (got.checksum !== want.checksum)
    return {
      name,
      ok: false,
      detail: `${got.count} large objects (${got.bytes} bytes; the backup had ${want.bytes}) but content checksum differs from the backup's${changed}`,
    };
  return { name, ok: true, detail: `${got.count} large objects (${got.bytes} bytes), checksum matches` };
}
