#!/usr/bin/env bash
# The shell baseline for the drill benchmark: what an SRE would type to prove a backup restores,
# with nothing Lifeboat adds (no Temporal, no manifest, no scratch cluster).
#
#   pg_dump (custom format, Lifeboat's compression) -> cp to the DR side -> sha256sum of both
#   -> createdb in the DR cluster -> pg_restore --jobs=2 -> check the restore -> dropdb
#
# The check, --verify:
#   counts      count(*) of every table of the restored copy, one query per table, as a person would
#               check "did it all land"; nothing is compared (the default).
#   checksums   the drill's proof: every table's row count and content digest on the source and on
#               the restored copy, compared; any difference fails the script (exit 1). The digests are
#               the drill's own SQL (activities/pg/sql.ts: the sum of hash_record_extended over the
#               rows, or of an md5 of each row's text where a column type has no hash function), over
#               --jobs connections at a time on each side, as the drill uses two. On the source they are
#               read in the dump's snapshot, as the drill reads them: a psql session kept open exports
#               a snapshot, pg_dump --snapshot dumps it while the digests are read in it beside the dump.
#
# Usage:
#   baseline.sh --db NAME --src-port PORT --dst-port PORT --workdir DIR
#               [--host 127.0.0.1] [--user postgres] [--src-passfile F] [--dst-passfile F]
#               [--compress 1] [--jobs 2] [--verify counts|checksums] [--bin DIR]
#
# Credentials come only from libpq passfiles (--*-passfile, else $PGPASSFILE): never on argv.
# Output on stdout, tab-separated, for scripts/bench/drill-vs-shell.ts:
#   step <name> <seconds>      one line per step, in order
#   dump_bytes <n>
#   rows <table> <n>           one line per restored table
# Everything it creates (files under --workdir, the restored database) is removed on exit.
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

db=''
src_port=''
dst_port=''
src_passfile="${PGPASSFILE:-}"
dst_passfile="${PGPASSFILE:-}"
workdir=''
compress=1
jobs=2
verify=counts

parse_options db src-port dst-port src-passfile dst-passfile workdir compress jobs verify -- "$@"
[[ -n "$db" ]] || die '--db is required (the database to dump)'
require_port src-port "$src_port"
require_port dst-port "$dst_port"
[[ -n "$workdir" ]] || die '--workdir is required (where the dump and its copy go)'
require_passfile source src-passfile "$src_passfile"
require_passfile destination dst-passfile "$dst_passfile"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a whole number greater than zero (got '${jobs}')"
[[ "$verify" == counts || "$verify" == checksums ]] || die "--verify must be counts or checksums (got '${verify}')"
use_bin

restored="${db}_baseline_$$"
src_dir="$workdir/src"
dst_dir="$workdir/dst"

on_src() { libpq "$src_port" "$src_passfile" "$@"; }
on_dst() { libpq "$dst_port" "$dst_passfile" "$@"; }

cleanup() {
  on_dst dropdb --if-exists --force "$restored" 2>/dev/null || true
  rm -rf "$src_dir" "$dst_dir"
}
trap cleanup EXIT

mkdir -p "$src_dir" "$dst_dir"

# ---------------------------------------------------------------------------------------------
# --verify checksums: the drill's per-table digests

# activities/pg/sql.ts DIGEST_SQL, by algorithm.
declare -A digest_sql=(
  [hash_record_extended]='coalesce(sum(hash_record_extended(t, 0)), 0)::text'
  [md5-text]="coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)::text"
)
# The tables a drill's manifest lists (activities/pg/sql.ts listTables).
tables_sql="
  select format('%I.%I', n.nspname, c.relname)
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where c.relkind = 'r' and c.relpersistence = 'p'
     and n.nspname not in ('pg_catalog', 'information_schema')
     and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
   order by 1"

digest_query() { printf 'select count(*)::bigint, %s from only %s as t' "${digest_sql[$1]}" "$2"; }

# in_snapshot SQL: one query on the source in the exported snapshot ($snapshot). VERBOSITY=verbose
# puts the SQLSTATE in an error, so that a missing hash function can be told from any other failure.
in_snapshot() {
  on_src psql_at "$db" -F $'\t' -v VERBOSITY=verbose \
    -c 'begin isolation level repeatable read read only' -c "set transaction snapshot '${snapshot}'" -c "$1" -c commit
}

# source_digest TABLE: `table rows digest algorithm`. hash_record_extended first; md5-text where a
# column type has no extended hash function (SQLSTATE 42883), as a backup falls back.
source_digest() {
  local out err="$src_dir/digest-error.$BASHPID"
  if out=$(in_snapshot "$(digest_query hash_record_extended "$1")" 2>"$err"); then
    printf '%s\t%s\thash_record_extended\n' "$1" "$out"
  elif grep -q ':  42883: ' "$err"; then
    printf '%s\t%s\tmd5-text\n' "$1" "$(in_snapshot "$(digest_query md5-text "$1")")"
  else
    cat "$err" >&2
    return 1
  fi
}

# restored_digest TABLE: the same on the restored copy, by the algorithm the source's digest used.
restored_digest() {
  printf '%s\t%s\t%s\n' "$1" "$(on_dst psql_at "$restored" -F $'\t' -c "$(digest_query "${algorithm_of[$1]}" "$1")")" "${algorithm_of[$1]}"
}

# each_table FUNCTION TABLE...: FUNCTION TABLE for every table, --jobs at a time, the lines in the
# order of the tables. A subshell, so that `wait` waits only for these jobs (not pg_dump or psql).
each_table() (
  local fn="$1" parts="$src_dir/parts.$BASHPID" i running=0
  shift
  mkdir -p "$parts"
  for ((i = 1; i <= $#; i++)); do
    if ((running >= jobs)); then
      wait -n || true
      running=$((running - 1))
    fi
    # A table's line is there only when its query succeeded.
    { "$fn" "${!i}" >"$parts/$i.tmp" && mv "$parts/$i.tmp" "$parts/$i"; } &
    running=$((running + 1))
  done
  wait
  for ((i = 1; i <= $#; i++)); do
    [[ -f "$parts/$i" ]] || { echo "no digest for ${!i}" >&2; return 1; }
    cat "$parts/$i"
  done
)

# pg_dump in a snapshot exported by a session kept open (a coprocess), the digests read in the same
# snapshot beside it; the session ends when both have.
dump_with_digests() {
  coproc SNAPSHOT_SESSION { on_src psql_at "$db"; }
  local session_in=${SNAPSHOT_SESSION[1]} session_out=${SNAPSHOT_SESSION[0]} tables=() dump_pid digests=0
  printf '%s\n' 'begin isolation level repeatable read read only;' 'select pg_export_snapshot();' >&"$session_in"
  read -r -t 60 snapshot <&"$session_out" || { echo 'the snapshot session exported no snapshot within 60s' >&2; exit 1; }
  on_src pg_dump --format=custom "--compress=$compress" "--snapshot=$snapshot" --file="$src_dir/dump.pgdump" "$db" &
  dump_pid=$!
  mapfile -t tables < <(in_snapshot "$tables_sql")
  each_table source_digest "${tables[@]}" >"$src_dir/digests" || digests=$?
  wait "$dump_pid"
  echo 'commit;' >&"$session_in"
  exec {session_in}>&-
  wait "$SNAPSHOT_SESSION_PID"
  ((digests == 0)) || { echo "the source's digests failed (see above)" >&2; exit 1; }
}

# The restored copy's digests against the source's; every difference is said, then exit 1.
compare_digests() {
  local table rows digest algorithm got bad=0 tables=()
  declare -gA algorithm_of=()
  local -A source=()
  while IFS=$'\t' read -r table rows digest algorithm; do
    tables+=("$table")
    algorithm_of[$table]=$algorithm
    source[$table]="$rows"$'\t'"$digest"
  done <"$src_dir/digests"
  ((${#tables[@]})) || { echo 'the source has no tables: nothing was verified' >&2; exit 1; }
  each_table restored_digest "${tables[@]}" >"$dst_dir/digests" || { echo 'the restored copy could not be digested (see above)' >&2; exit 1; }
  while IFS=$'\t' read -r table rows digest algorithm; do
    printf 'rows\t%s\t%s\n' "$table" "$rows"
    got="$rows"$'\t'"$digest"
    if [[ "$got" != "${source[$table]}" ]]; then
      echo "${table}: ${rows} rows, ${algorithm} digest ${digest} in the restored copy; the source had ${source[$table]%%$'\t'*} rows, digest ${source[$table]#*$'\t'}" >&2
      bad=1
    fi
  done <"$dst_dir/digests"
  ((bad == 0)) || { echo 'the restored copy differs from the source' >&2; exit 1; }
}

# ---------------------------------------------------------------------------------------------
# --verify counts

# count(*) of every ordinary table, one query per table, as a person would check "did it all land".
count_rows() {
  local table
  on_dst psql_at "$restored" -c "
    select format('%I.%I', n.nspname, c.relname)
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema')
     order by 1" |
    while IFS= read -r table; do
      printf 'rows\t%s\t%s\n' "$table" "$(on_dst psql_at "$restored" -c "select count(*) from $table")"
    done
}

# ---------------------------------------------------------------------------------------------

verify_checksums() {
  local a b
  a=$(sha256sum "$src_dir/dump.pgdump" | cut -d' ' -f1)
  b=$(sha256sum "$dst_dir/dump.pgdump" | cut -d' ' -f1)
  [[ "$a" == "$b" ]] || { echo "copy differs from the dump: $a vs $b" >&2; return 1; }
}

if [[ "$verify" == checksums ]]; then
  step 'pg_dump + source digests' dump_with_digests
else
  step 'pg_dump' on_src pg_dump --format=custom "--compress=$compress" --file="$src_dir/dump.pgdump" "$db"
fi
step 'cp to DR' cp "$src_dir/dump.pgdump" "$dst_dir/dump.pgdump"
step 'sha256sum both' verify_checksums
step 'createdb' on_dst createdb "$restored"
step 'pg_restore' on_dst pg_restore --exit-on-error --no-owner --no-privileges "--jobs=$jobs" --dbname="$restored" "$dst_dir/dump.pgdump"
# Row counts are results, not chatter: they stay on stdout.
if [[ "$verify" == checksums ]]; then
  timed 'digests of the restore, compared' compare_digests
else
  timed 'row counts' count_rows
fi
step 'dropdb' on_dst dropdb --force "$restored"
printf 'dump_bytes\t%s\n' "$(stat -c %s "$src_dir/dump.pgdump")"
