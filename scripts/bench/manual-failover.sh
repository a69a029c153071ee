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
# shellcheck source=scripts/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

write="insert into public.failover_probe (by) values ('manual-failover.sh')"

parse_options "${standby_options[@]}" -- "$@"
check_standby_options
use_bin

started=$EPOCHREALTIME
promote_and_write
printf 'rto\t%s\n' "$(since "$started")"
