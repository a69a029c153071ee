#!/usr/bin/env bash
# The manual baseline for the switchover benchmark: a planned switchover as a careful SRE would type
# it with psql and pg_ctl, with nothing Lifeboat adds (no Temporal, no topology record, no canaries,
# no smoke tests beyond one write).
#
#   fence the primary in one psql session: ALTER SYSTEM SET default_transaction_read_only = on,
#   pg_reload_conf(), end every client session, read pg_current_wal_lsn()
#   -> poll the standby until pg_last_wal_replay_lsn() >= that LSN (every --poll seconds)
#   -> promote it (pg_ctl promote -w as the server's OS user, or select pg_promote())
#   -> one write on the new primary, in a new session
#
# Usage:
#   manual-switchover.sh --db NAME --primary-port PORT --standby-port PORT --standby-datadir DIR
#                        [--host 127.0.0.1] [--user postgres] [--primary-passfile F] [--standby-passfile F]
#                        [--promote pg_ctl|sql] [--os-user NAME] [--poll 0.1] [--write SQL] [--bin DIR]
#
# --os-user: when we are root, pg_ctl runs as this user (PostgreSQL refuses root); ignored otherwise.
# --write:   the write that proves the new primary takes writes; by default an insert into
#            public.switchover_probe (by text), which scripts/bench/switchover-vs-manual.ts creates.
# Credentials come only from libpq passfiles (--*-passfile, else $PGPASSFILE): never on argv.
# Output on stdout, tab-separated, for scripts/bench/switchover-vs-manual.ts:
#   step <name> <seconds>      one line per step, in order
#   final_lsn <lsn>            the fenced primary's last WAL position
#   rto <seconds>              from the first command to the committed write
# It changes the roles for good (the standby is promoted, the old primary stays read-only): putting
# the set back is the caller's job.
set -euo pipefail

host=127.0.0.1
user=postgres
db=''
primary_port=''
standby_port=''
primary_passfile="${PGPASSFILE:-}"
standby_passfile="${PGPASSFILE:-}"
standby_datadir=''
promote=pg_ctl
os_user=''
poll=0.1
write="insert into public.switchover_probe (by) values ('manual-switchover.sh')"
bin=''

die() { echo "manual-switchover.sh: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --db) db="$2"; shift 2 ;;
    --host) host="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --primary-port) primary_port="$2"; shift 2 ;;
    --standby-port) standby_port="$2"; shift 2 ;;
    --primary-passfile) primary_passfile="$2"; shift 2 ;;
    --standby-passfile) standby_passfile="$2"; shift 2 ;;
    --standby-datadir) standby_datadir="$2"; shift 2 ;;
    --promote) promote="$2"; shift 2 ;;
    --os-user) os_user="$2"; shift 2 ;;
    --poll) poll="$2"; shift 2 ;;
    --write) write="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
[[ -n "$db" ]] || die '--db is required (the database to write to after the promote)'
[[ "$primary_port" =~ ^[0-9]+$ ]] || die "--primary-port must be a port number (got '${primary_port}')"
[[ "$standby_port" =~ ^[0-9]+$ ]] || die "--standby-port must be a port number (got '${standby_port}')"
[[ -r "$primary_passfile" ]] || die "primary passfile '${primary_passfile}' is not readable (--primary-passfile or PGPASSFILE)"
[[ -r "$standby_passfile" ]] || die "standby passfile '${standby_passfile}' is not readable (--standby-passfile or PGPASSFILE)"
[[ "$promote" == pg_ctl || "$promote" == sql ]] || die "--promote must be pg_ctl or sql (got '${promote}')"
[[ "$promote" == sql || -n "$standby_datadir" ]] || die '--standby-datadir is required to promote with pg_ctl'
[[ "$poll" =~ ^[0-9]*\.?[0-9]+$ ]] || die "--poll must be a number of seconds (got '${poll}')"
# The same tools Lifeboat runs (LIFEBOAT_PG_BIN or the newest Debian install), not whatever is on PATH.
if [[ -n "$bin" ]]; then PATH="$bin:$PATH"; fi

# libpq settings per side, as per-command environment, so one side's never leaks into the other.
on_primary() { PGHOST="$host" PGPORT="$primary_port" PGUSER="$user" PGPASSFILE="$primary_passfile" "$@"; }
on_standby() { PGHOST="$host" PGPORT="$standby_port" PGUSER="$user" PGPASSFILE="$standby_passfile" "$@"; }
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }

# pg_ctl must run as the data directory's owner; as root, that is --os-user (from / , which it can reach).
as_server_user() {
  if [[ "$(id -u)" == 0 && -n "$os_user" ]]; then (cd / && runuser -u "$os_user" -- "$@"); else "$@"; fi
}

since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

started=$EPOCHREALTIME

# 1. Fence: one session, each statement in its own transaction (ALTER SYSTEM refuses a transaction
#    block). The reload reaches other sessions asynchronously, so they are ended; only the LSN is printed.
t0=$EPOCHREALTIME
final_lsn=$(on_primary sql <<'SQL'
alter system set default_transaction_read_only = on;
select pg_reload_conf() \g /dev/null
select count(pg_terminate_backend(pid)) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid() \g /dev/null
select pg_current_wal_lsn();
SQL
)
[[ "$final_lsn" =~ ^[0-9A-F]+/[0-9A-F]+$ ]] || { echo "fence: expected an LSN from the primary, got '${final_lsn}'" >&2; exit 1; }
printf 'step\t%s\t%s\n' 'fence primary' "$(since "$t0")"

# 2. Wait until the standby has replayed everything the primary wrote before the fence: nothing lost.
t0=$EPOCHREALTIME
until [[ "$(on_standby sql -c "select coalesce(pg_last_wal_replay_lsn() >= '${final_lsn}'::pg_lsn, false)")" == t ]]; do
  sleep "$poll"
done
printf 'step\t%s\t%s\n' 'wait for replay' "$(since "$t0")"

# 3. Promote, waiting until the standby has left recovery.
t0=$EPOCHREALTIME
if [[ "$promote" == pg_ctl ]]; then
  as_server_user pg_ctl promote -w -t 60 -D "$standby_datadir" >&2
else
  [[ "$(on_standby sql -c 'select pg_promote(true, 60)')" == t ]] || { echo 'pg_promote did not finish within 60s' >&2; exit 1; }
fi
printf 'step\t%s\t%s\n' "promote ($promote)" "$(since "$t0")"

# 4. The new primary takes a write, in a new session as a client would open one.
t0=$EPOCHREALTIME
on_standby sql -c "$write" >&2
printf 'step\t%s\t%s\n' 'write on the new primary' "$(since "$t0")"

printf 'final_lsn\t%s\n' "$final_lsn"
printf 'rto\t%s\n' "$(since "$started")"
