#!/usr/bin/env bash
# The manual baseline for the unplanned-failover benchmark: the primary is already dead (the caller
# killed it just before starting this), and an SRE promotes the standby and proves it takes a write,
# with nothing Lifeboat adds (no fence, no topology record, no canaries, no smoke tests beyond one
# write). The raw-tool floor of an unplanned failover.
#
#   promote the standby (pg_ctl promote -w as the server's OS user, or select pg_promote())
#   -> one write on the new primary, in a new session
#
# Usage:
#   manual-failover.sh --db NAME --standby-port PORT --standby-datadir DIR
#                      [--host 127.0.0.1] [--user postgres] [--standby-passfile F]
#                      [--promote pg_ctl|sql] [--os-user NAME] [--write SQL] [--bin DIR]
#
# --os-user: when we are root, pg_ctl runs as this user (PostgreSQL refuses root); ignored otherwise.
# --write:   the write that proves the new primary takes writes; by default an insert into
#            public.failover_probe (by text), which scripts/bench/unplanned-failover.ts creates.
# Credentials come only from a libpq passfile (--standby-passfile, else $PGPASSFILE): never on argv.
# Output on stdout, tab-separated, for scripts/bench/unplanned-failover.ts:
#   step <name> <seconds>      one line per step, in order
#   rto <seconds>              from this script's first command to the committed write
# It changes the roles for good (the standby is promoted): putting the set back is the caller's job.
set -euo pipefail

host=127.0.0.1
user=postgres
db=''
standby_port=''
standby_passfile="${PGPASSFILE:-}"
standby_datadir=''
promote=pg_ctl
os_user=''
write="insert into public.failover_probe (by) values ('manual-failover.sh')"
bin=''

die() { echo "manual-failover.sh: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --db) db="$2"; shift 2 ;;
    --host) host="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --standby-port) standby_port="$2"; shift 2 ;;
    --standby-passfile) standby_passfile="$2"; shift 2 ;;
    --standby-datadir) standby_datadir="$2"; shift 2 ;;
    --promote) promote="$2"; shift 2 ;;
    --os-user) os_user="$2"; shift 2 ;;
    --write) write="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
[[ -n "$db" ]] || die '--db is required (the database to write to after the promote)'
[[ "$standby_port" =~ ^[0-9]+$ ]] || die "--standby-port must be a port number (got '${standby_port}')"
[[ -r "$standby_passfile" ]] || die "standby passfile '${standby_passfile}' is not readable (--standby-passfile or PGPASSFILE)"
[[ "$promote" == pg_ctl || "$promote" == sql ]] || die "--promote must be pg_ctl or sql (got '${promote}')"
[[ "$promote" == sql || -n "$standby_datadir" ]] || die '--standby-datadir is required to promote with pg_ctl'
# The same tools Lifeboat runs (LIFEBOAT_PG_BIN or the newest Debian install), not whatever is on PATH.
if [[ -n "$bin" ]]; then PATH="$bin:$PATH"; fi

on_standby() { PGHOST="$host" PGPORT="$standby_port" PGUSER="$user" PGPASSFILE="$standby_passfile" "$@"; }
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }

# pg_ctl must run as the data directory's owner; as root, that is --os-user (from / , which it can reach).
as_server_user() {
  if [[ "$(id -u)" == 0 && -n "$os_user" ]]; then (cd / && runuser -u "$os_user" -- "$@"); else "$@"; fi
}

since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

started=$EPOCHREALTIME

# 1. Promote, waiting until the standby has left recovery.
t0=$EPOCHREALTIME
if [[ "$promote" == pg_ctl ]]; then
  as_server_user pg_ctl promote -w -t 60 -D "$standby_datadir" >&2
else
  [[ "$(on_standby sql -c 'select pg_promote(true, 60)')" == t ]] || { echo 'pg_promote did not finish within 60s' >&2; exit 1; }
fi
printf 'step\t%s\t%s\n' "promote ($promote)" "$(since "$t0")"

# 2. The new primary takes a write, in a new session as a client would open one.
t0=$EPOCHREALTIME
on_standby sql -c "$write" >&2
printf 'step\t%s\t%s\n' 'write on the new primary' "$(since "$t0")"

printf 'rto\t%s\n' "$(since "$started")"
