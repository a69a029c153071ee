#!/usr/bin/env bash
# A drill of a database nobody wrote for Lifeboat, on the demo stack: loads the type and object
# corpus (test/fixtures/corpus/corpus.sql: every type family, quoted names, forced row-level
# security, large objects, application roles and grants) into local-a as database `corpus`, anew
# each time, then runs `lifeboat drill corpus` with scripts/dev/corpus-plan.yaml (the demo plan plus
# the corpus and its privilege checks). Needs what scripts/demo.sh sets up; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
plan=scripts/dev/corpus-plan.yaml
./bin/lifeboat dev up -f "$plan"
home=${LIFEBOAT_HOME:-$PWD/.lifeboat}
cluster="$home/regions/local-a/cluster"
port=$(node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).port))' "$cluster/state.json")
bin=${LIFEBOAT_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
# The admin login's password comes from the cluster's passfile, never argv.
psql() { PGPASSFILE="$cluster/pgpass" "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -q "$@"; }
psql -d postgres \
  -c "do \$\$ begin if not exists (select from pg_roles where rolname = 'corpus_owner') then create role corpus_owner; end if;
        if not exists (select from pg_roles where rolname = 'corpus_reader') then create role corpus_reader; end if; end \$\$" \
  -c 'drop database if exists corpus with (force)' \
  -c 'create database corpus owner corpus_owner'
psql -d corpus -f test/fixtures/corpus/corpus.sql >/dev/null
exec ./bin/lifeboat drill corpus -f "$plan" "$@"
