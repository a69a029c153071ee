// Hostile code: a backup whose data carries code that runs programs when a superuser evaluates it,
// and plan checks that reach for a superuser's powers. Restores load as `lifeboat_restore` (the
// scratch database's owner, no superuser) and checks run as a login with pg_read_all_data only
// (activities/pg/roles.ts, load-dump.ts), so none of it gets to run a program or read a server file:
// each attempt is a failed check naming what was refused. Both kinds of restore (the local
// provider's, a portable backup's) and both places checks run (a scratch instance, a new primary).
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { withClient } from '../../activities/pg/sql';
import type { BackupRef, CheckResult, ReplicaSetSpec } from '../../workflows/types';
import { markerDirectory, markerTableSql } from '../support/t2-drill';
import { restoreBench } from '../support/unit-restore-bench';

const DB = 'hostile_code';

/** The checks a hostile plan (or a hand-started run) could carry, and one honest check. */
function hostileChecks(markerDir: string) {
  return [
    { name: 'reads a server file', sql: `select pg_read_binary_file('/etc/hostname') is null` },
    // The programs read what COPY sends them: one that did not could fail the COPY with a broken pipe.
    {
      name: 'runs a program',
      sql: `copy (select 1) to program 'touch ${join(markerDir, 'from-check')}; cat > /dev/null'`,
    },
    // The admin session that made the checks' login is open while they run: there is one to end.
    {
      name: 'ends the admin sessions',
      sql: `select bool_and(pg_terminate_backend(pid)) from pg_stat_activity
             where datid = (select oid from pg_database where datname = current_database()) and usesysid in (select oid from pg_roles where rolsuper)`,
    },
    { name: 'reads the data', sql: 'select count(*) = 100 from plain' },
  ];
}

function expectRefused(checks: CheckResult[]): void {
  expect(checks).toEqual([
    {
      name: 'reads a server file',
      ok: false,
      detail: expect.stringMatching(/^query failed: permission denied for function pg_read_binary_file/),
    },
    {
      name: 'runs a program',
      ok: false,
      detail: expect.stringMatching(
        /^query failed: must be superuser or have privileges of the pg_execute_server_program role/,
      ),
    },
    { name: 'ends the admin sessions', ok: false, detail: expect.stringMatching(/^query failed: .*superuser/) },
    { name: 'reads the data', ok: true, detail: 'returned true' },
  ]);
}

describe('code in a backup, and plan checks, run without superuser', () => {
  const bench = restoreBench({ db: DB, test: 'hostile-code', activityType: 'hostile' });
  const { p, activities, inActivity, regionA, stamp } = bench;
  const markerDir = markerDirectory();
  const restoreMarker = join(markerDir, 'from-restore');
  const scratch = bench.scratch('hostile-code');
  let localCopy: BackupRef;
  let portableCopy: BackupRef;

  beforeAll(async () => {
    await bench.makeDatabase(`${markerTableSql('touch_marker', 'guarded', restoreMarker)}
        insert into guarded values (1, 1), (2, 2);
        create table plain (id int primary key, note text);
        insert into plain select i, 'note ' || i from generate_series(1, 100) i;
        create schema stats;
        create extension pg_stat_statements with schema stats;
        create extension file_fdw;
        create function quiet() returns event_trigger language plpgsql as $f$ begin end $f$;
        create event trigger lifeboat_test_trigger on sql_drop execute function quiet();`);
    // The constraint really does run a program when a superuser evaluates it: so "no marker" below means something.
    expect(existsSync(restoreMarker)).toBe(true);
    rmSync(restoreMarker);
    ({ localCopy, portableCopy } = await bench.backUp());
    await inActivity(() => activities.createScratchInstance(scratch));
  }, 180_000);

  afterAll(async () => {
    await bench.tearDown();
    rmSync(markerDir, { recursive: true, force: true });
  });

  test.each([
    ['the local provider', () => localCopy],
    ['a portable backup', () => portableCopy],
  ])(
    'a restore from %s loads as a role without superuser: the constraint never runs its program, and the table it refused is a finding by name',
    async (_kind, ref) => {
      const { value } = await inActivity(() => activities.restoreBackup({ ref: ref(), scratch }));
      expect(existsSync(restoreMarker)).toBe(false);

      // The load went on past what it could not restore, and named each.
      expect(value.findings).toEqual(
        expect.arrayContaining([
          {
            name: 'restore of TABLE DATA public guarded',
            ok: false,
            detail: expect.stringMatching(/must be superuser or have privileges of the pg_execute_server_program role/),
          },
          {
            name: 'restore of EVENT TRIGGER lifeboat_test_trigger',
            ok: false,
            detail: expect.stringMatching(/permission denied to create event trigger/),
          },
          {
            name: 'restore of EXTENSION file_fdw',
            ok: false,
            detail: expect.stringMatching(/needs a superuser, and is not among the extensions Lifeboat creates itself/),
          },
        ]),
      );
      expect(value.findings).toHaveLength(3);
      // No CONTEXT lines: they can quote a row.
      for (const f of value.findings) expect(f.detail).not.toMatch(/CONTEXT|COPY guarded, line/);

      const conn = await p.connectScratch(scratch);
      await withClient(conn, async (client) => {
        const { rows } = await client.query<{
          owner: string;
          super: boolean;
          stats: string | null;
          schemaOwner: string;
        }>(`
        select pg_get_userbyid(d.datdba) as owner, r.rolsuper as super,
               (select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace where e.extname = 'pg_stat_statements') as stats,
               (select pg_get_userbyid(nspowner) from pg_namespace where nspname = 'stats') as "schemaOwner"
          from pg_database d join pg_roles r on r.oid = d.datdba where d.datname = current_database()`);
        // An allow-listed extension that needs a superuser is made by Lifeboat, in the dump's schema.
        expect(rows[0]).toEqual({
          owner: 'lifeboat_restore',
          super: false,
          stats: 'stats',
          schemaOwner: 'lifeboat_restore',
        });
      });

      // The verify that follows says what is missing because of it.
      const verified = await inActivity(() => activities.verifyRestore({ ref: ref(), scratch, checks: [] }));
      expect(verified.value.tables).toEqual(
        expect.arrayContaining([
          { name: 'public.guarded', ok: false, detail: '0 rows; the backup had 2' },
          { name: 'public.plain', ok: true, detail: expect.stringMatching(/^100 rows, checksum matches$/) },
        ]),
      );
    },
  );

  test("a scratch instance's plan checks run as a login without superuser: reading a server file, running a program, ending sessions are permission errors", async () => {
    await inActivity(() => activities.restoreBackup({ ref: localCopy, scratch }));
    const verified = await inActivity(() =>
      activities.verifyRestore({ ref: localCopy, scratch, checks: hostileChecks(markerDir) }),
    );
    expectRefused(verified.value.checks);
    expect(existsSync(join(markerDir, 'from-check'))).toBe(false);
    // The login made for them is gone.
    await withClient(await p.connectScratch(scratch), async (client) => {
      const { rows } = await client.query(`select rolname from pg_roles where rolname like 'lifeboat\\_check\\_%'`);
      expect(rows).toEqual([]);
    });
  });

  test("a new primary's smoke test runs the plan checks as a login without superuser too", async () => {
    const set: ReplicaSetSpec = { set: 'hostile-code', home: regionA, dr: { name: 'local-b', provider: 'local' } };
    const { value } = await inActivity(() =>
      activities.smokeTest({
        set,
        node: { region: 'local-a', name: 'server' },
        database: DB,
        checks: hostileChecks(markerDir),
        token: `hostile-code-${stamp}`,
      }),
    );
    expect(value.checks[0]).toMatchObject({ name: 'write on the new primary', ok: true });
    expectRefused(value.checks.slice(1));
    expect(existsSync(join(markerDir, 'from-check'))).toBe(false);
    await withClient(await p.connect({ region: regionA, database: DB }), async (client) => {
      const { rows } = await client.query(`select rolname from pg_roles where rolname like 'lifeboat\\_check\\_%'`);
      expect(rows).toEqual([]);
    });
  });
});
