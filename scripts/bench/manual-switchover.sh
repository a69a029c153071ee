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
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

primary_port=''
primary_passfile="${PGPASSFILE:-}"
poll=0.1
write="insert into public.switchover_probe (by) values ('manual-switchover.sh')"

parse_options "${standby_options[@]}" primary-port primary-passfile poll -- "$@"
check_standby_options
require_port primary-port "$primary_port"
require_passfile primary primary-passfile "$primary_passfile"
[[ "$poll" =~ ^[0-9]*\.?[0-9]+$ ]] || die "--poll must be a number of seconds (got '${poll}')"
use_bin

on_primary() { libpq "$primary_port" "$primary_passfile" "$@"; }

# Fence: one session, each statement in its own transaction (ALTER SYSTEM refuses a transaction
# block). The reload reaches other sessions asynchronously, so they are ended; only the LSN is printed.
fence_primary() {
  final_lsn=$(on_primary sql <<'SQL'
alter system set default_transaction_read_only = on;
select pg_reload_conf() \g /dev/null
select count(pg_terminate_backend(pid)) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid() \g /dev/null
select pg_current_wal_lsn();
SQL
)
  [[ "$final_lsn" =~ ^[0-9A-F]+/[0-9A-F]+$ ]] || { echo "fence: expected an LSN from the primary, got '${final_lsn}'" >&2; exit 1; }
}

# Until the standby has replayed everything the primary wrote before the fence: nothing lost.
wait_for_replay() {
  until [[ "$(on_standby sql -c "select coalesce(pg_last_wal_replay_lsn() >= '${final_lsn}'::pg_lsn, false)")" == t ]]; do
    sleep "$poll"
  done
}

started=$EPOCHREALTIME
step 'fence primary' fence_primary
step 'wait for replay' wait_for_replay
promote_and_write
printf 'final_lsn\t%s\n' "$final_lsn"
printf 'rto\t%s\n' "$(since "$started")"
