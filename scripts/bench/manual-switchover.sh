#!/usr/bin/env bash
# The manual baseline for the switchover benchmark: a planned switchover as a careful SRE would type
# it with psql and pg_ctl, with nothing Lifeboat adds (no Temporal, no topology record, no canaries,
# no smoke tests beyond one write).
#
#   fence the primary the way Lifeboat does, a demote that no client can get around: touch
#   standby.signal in its data directory (anything that starts it again gets a server in recovery),
#   pg_ctl stop -m fast (every session ended, a shutdown checkpoint streamed to the standby before the
#   server exits), read that checkpoint's position with pg_controldata
#   -> poll the standby until pg_last_wal_replay_lsn() is past it (every --poll seconds)
#   -> promote it (pg_ctl promote -w as the server's OS user, or select pg_promote())
#   -> one write on the new primary, in a new session
#
# Usage:
#   manual-switchover.sh --db NAME --primary-port PORT --primary-datadir DIR --standby-port PORT --standby-datadir DIR
#                        [--host 127.0.0.1] [--user postgres] [--primary-passfile F] [--standby-passfile F]
#                        [--promote pg_ctl|sql] [--os-user NAME] [--poll 0.1] [--write SQL] [--bin DIR]
#
# --os-user: when we are root, pg_ctl runs as this user (PostgreSQL refuses root); ignored otherwise.
# --write:   the write that proves the new primary takes writes; by default an insert into
#            public.switchover_probe (by text), which scripts/bench/switchover-vs-manual.ts creates.
# Credentials come only from libpq passfiles (--*-passfile, else $PGPASSFILE): never on argv.
# Output on stdout, tab-separated, for scripts/bench/switchover-vs-manual.ts:
#   step <name> <seconds>      one line per step, in order
#   final_lsn <lsn>            the fenced primary's shutdown checkpoint (the standby replays past it)
#   rto <seconds>              from the first command to the committed write
# It changes the roles for good (the standby is promoted, the old primary stays stopped, held in
# recovery should it start): putting the set back is the caller's job.
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

primary_port=''
primary_datadir=''
primary_passfile="${PGPASSFILE:-}"
poll=0.1
write="insert into public.switchover_probe (by) values ('manual-switchover.sh')"

parse_options "${standby_options[@]}" primary-port primary-datadir primary-passfile poll -- "$@"
check_standby_options
require_port primary-port "$primary_port"
[[ -n "$primary_datadir" ]] || die '--primary-datadir is required (the fence stops the primary with pg_ctl)'
require_passfile primary primary-passfile "$primary_passfile"
[[ "$poll" =~ ^[0-9]*\.?[0-9]+$ ]] || die "--poll must be a number of seconds (got '${poll}')"
use_bin

# Fence: a demote. standby.signal first, so that no restart can bring the node back writable; then a
# fast shutdown, which ends every session and, before the server exits, streams its shutdown
# checkpoint to the standby. That checkpoint is the last thing the primary wrote.
fence_primary() {
  as_server_user touch "$primary_datadir/standby.signal"
  as_server_user pg_ctl stop -m fast -w -t 60 -D "$primary_datadir" >/dev/null
  final_lsn=$(as_server_user env LC_ALL=C pg_controldata -D "$primary_datadir" | sed -n 's/^Latest checkpoint location: *//p')
  [[ "$final_lsn" =~ ^[0-9A-F]+/[0-9A-F]+$ ]] || { echo "fence: expected the shutdown checkpoint's LSN from pg_controldata, got '${final_lsn}'" >&2; exit 1; }
}

# Until the standby has replayed the shutdown checkpoint, and with it everything before: nothing lost.
wait_for_replay() {
  until [[ "$(on_standby sql -c "select coalesce(pg_last_wal_replay_lsn() > '${final_lsn}'::pg_lsn, false)")" == t ]]; do
    sleep "$poll"
  done
}

started=$EPOCHREALTIME
step 'fence primary' fence_primary
step 'wait for replay' wait_for_replay
promote_and_write
printf 'final_lsn\t%s\n' "$final_lsn"
printf 'rto\t%s\n' "$(since "$started")"
