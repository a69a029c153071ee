#!/usr/bin/env bash
# The shell baseline for the drill benchmark: what an SRE would type to prove a backup restores,
# with nothing Lifeboat adds (no Temporal, no manifest statistics, no scratch cluster).
#
#   pg_dump (custom format, Lifeboat's compression) -> cp to the DR side -> sha256sum of both
#   -> createdb in the DR cluster -> pg_restore --jobs=2 -> count(*) of every table -> dropdb
#
# Usage:
#   baseline.sh --db NAME --src-port PORT --dst-port PORT --workdir DIR
#               [--host 127.0.0.1] [--user postgres] [--src-passfile F] [--dst-passfile F]
#               [--compress 1] [--jobs 2] [--bin DIR]
#
# Credentials come only from libpq passfiles (--*-passfile, else $PGPASSFILE): never on argv.
# Output on stdout, tab-separated, for scripts/bench/drill-vs-shell.ts:
#   step <name> <seconds>      one line per step, in order
#   dump_bytes <n>
#   rows <table> <n>           one line per restored table
# Everything it creates (files under --workdir, the restored database) is removed on exit.
set -euo pipefail

host=127.0.0.1
user=postgres
db=''
src_port=''
dst_port=''
src_passfile="${PGPASSFILE:-}"
dst_passfile="${PGPASSFILE:-}"
workdir=''
compress=1
jobs=2
bin=''

die() { echo "baseline.sh: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --db) db="$2"; shift 2 ;;
    --host) host="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --src-port) src_port="$2"; shift 2 ;;
    --dst-port) dst_port="$2"; shift 2 ;;
    --src-passfile) src_passfile="$2"; shift 2 ;;
    --dst-passfile) dst_passfile="$2"; shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    --compress) compress="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
[[ -n "$db" ]] || die '--db is required (the database to dump)'
[[ "$src_port" =~ ^[0-9]+$ ]] || die "--src-port must be a port number (got '${src_port}')"
[[ "$dst_port" =~ ^[0-9]+$ ]] || die "--dst-port must be a port number (got '${dst_port}')"
[[ -n "$workdir" ]] || die '--workdir is required (where the dump and its copy go)'
[[ -r "$src_passfile" ]] || die "source passfile '${src_passfile}' is not readable (--src-passfile or PGPASSFILE)"
[[ -r "$dst_passfile" ]] || die "destination passfile '${dst_passfile}' is not readable (--dst-passfile or PGPASSFILE)"
# The same tools Lifeboat runs (LIFEBOAT_PG_BIN or the newest Debian install), not whatever is on PATH.
if [[ -n "$bin" ]]; then PATH="$bin:$PATH"; fi

restored="${db}_baseline_$$"
src_dir="$workdir/src"
dst_dir="$workdir/dst"

# libpq settings per side, as per-command environment, so one side's never leaks into the other.
on_src() { PGHOST="$host" PGPORT="$src_port" PGUSER="$user" PGPASSFILE="$src_passfile" "$@"; }
on_dst() { PGHOST="$host" PGPORT="$dst_port" PGUSER="$user" PGPASSFILE="$dst_passfile" "$@"; }

cleanup() {
  on_dst dropdb --if-exists --force "$restored" 2>/dev/null || true
  rm -rf "$src_dir" "$dst_dir"
}
trap cleanup EXIT

since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

# Runs one step and reports its wall time; the step's own output goes to stderr.
step() {
  local name="$1"; shift
  local t0=$EPOCHREALTIME
  "$@" >&2
  printf 'step\t%s\t%s\n' "$name" "$(since "$t0")"
}

mkdir -p "$src_dir" "$dst_dir"

step 'pg_dump' on_src pg_dump --format=custom "--compress=$compress" --file="$src_dir/dump.pgdump" "$db"
step 'cp to DR' cp "$src_dir/dump.pgdump" "$dst_dir/dump.pgdump"

verify_checksums() {
  local a b
  a=$(sha256sum "$src_dir/dump.pgdump" | cut -d' ' -f1)
  b=$(sha256sum "$dst_dir/dump.pgdump" | cut -d' ' -f1)
  [[ "$a" == "$b" ]] || { echo "copy differs from the dump: $a vs $b" >&2; return 1; }
}
step 'sha256sum both' verify_checksums

step 'createdb' on_dst createdb "$restored"
step 'pg_restore' on_dst pg_restore --exit-on-error --no-owner --no-privileges "--jobs=$jobs" --dbname="$restored" "$dst_dir/dump.pgdump"

# count(*) of every ordinary table, one query per table, as a person would check "did it all land".
count_rows() {
  local table
  on_dst psql -X -q -At -v ON_ERROR_STOP=1 -d "$restored" -c "
    select format('%I.%I', n.nspname, c.relname)
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema')
     order by 1" |
    while IFS= read -r table; do
      printf 'rows\t%s\t%s\n' "$table" "$(on_dst psql -X -q -At -v ON_ERROR_STOP=1 -d "$restored" -c "select count(*) from $table")"
    done
}
# Row counts are results, not chatter: keep them on stdout (step() would send them to stderr).
t0=$EPOCHREALTIME
count_rows
printf 'step\t%s\t%s\n' 'row counts' "$(since "$t0")"

step 'dropdb' on_dst dropdb --force "$restored"
printf 'dump_bytes\t%s\n' "$(stat -c %s "$src_dir/dump.pgdump")"
