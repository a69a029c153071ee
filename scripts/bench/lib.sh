# What the benchmarks' shell scripts share (baseline.sh, manual-switchover.sh, manual-failover.sh):
# option parsing, libpq settings per server, psql as they all call it, pg_ctl as the server's OS
# user, and the tab-separated `step <name> <seconds>` lines the TypeScript side reads. Sourced by
# them after `set -euo pipefail`; it runs nothing itself.

# Every script takes these; each script sets its own defaults after sourcing.
host=127.0.0.1
user=postgres
bin=''

die() { echo "${0##*/}: $*" >&2; exit 2; }

# parse_options NAME... -- ARG...: each `--some-name VALUE` among the ARGs sets the variable
# some_name, for the NAMEs given and host, user, bin; any other argument is an error.
parse_options() {
  local -a _names=(host user bin)
  while [[ "$1" != -- ]]; do _names+=("$1"); shift; done
  shift
  local _flag
  while [[ $# -gt 0 ]]; do
    _flag="$1"
    [[ "$_flag" == --* && " ${_names[*]} " == *" ${_flag#--} "* ]] || die "unknown argument $_flag"
    [[ $# -ge 2 ]] || die "$_flag needs a value"
    _flag="${_flag#--}"
    printf -v "${_flag//-/_}" '%s' "$2"
    shift 2
  done
}

# require_port FLAG VALUE
require_port() { [[ "$2" =~ ^[0-9]+$ ]] || die "--$1 must be a port number (got '$2')"; }

# require_passfile SIDE FLAG VALUE
require_passfile() { [[ -r "$3" ]] || die "$1 passfile '$3' is not readable (--$2 or PGPASSFILE)"; }

# The same tools Lifeboat runs (LIFEBOAT_PG_BIN or the newest Debian install), not whatever is on PATH.
use_bin() { if [[ -n "$bin" ]]; then PATH="$bin:$PATH"; fi; }

# libpq PORT PASSFILE COMMAND...: libpq settings as per-command environment, so that one server's
# never leak into the other's.
libpq() { PGHOST="$host" PGPORT="$1" PGUSER="$user" PGPASSFILE="$2" "${@:3}"; }

# psql_at DATABASE ARG...: unaligned, tuples only, stopping at the first error.
psql_at() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" "${@:2}"; }

# pg_ctl must run as the data directory's owner; as root, that is $os_user (from /, which it can reach).
as_server_user() {
  if [[ "$(id -u)" == 0 && -n "$os_user" ]]; then (cd / && runuser -u "$os_user" -- "$@"); else "$@"; fi
}

since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

# timed NAME COMMAND...: runs the command, its output as it is, then prints the step's wall time.
timed() {
  local name="$1" t0=$EPOCHREALTIME
  shift
  "$@"
  printf 'step\t%s\t%s\n' "$name" "$(since "$t0")"
}

# step NAME COMMAND...: the same, the command's output on stderr (chatter, not results).
step() {
  local name="$1" t0=$EPOCHREALTIME
  shift
  "$@" >&2
  printf 'step\t%s\t%s\n' "$name" "$(since "$t0")"
}

# ---------------------------------------------------------------------------------------------
# The manual scripts' standby, the one they promote ($write, the write that proves it, is theirs)

# Their options for the standby (names for parse_options), the defaults, and the checks.
standby_options=(db standby-port standby-passfile standby-datadir promote os-user write)
db=''
standby_port=''
standby_passfile="${PGPASSFILE:-}"
standby_datadir=''
promote=pg_ctl
os_user=''

check_standby_options() {
  [[ -n "$db" ]] || die '--db is required (the database to write to after the promote)'
  require_port standby-port "$standby_port"
  require_passfile standby standby-passfile "$standby_passfile"
  [[ "$promote" == pg_ctl || "$promote" == sql ]] || die "--promote must be pg_ctl or sql (got '${promote}')"
  [[ "$promote" == sql || -n "$standby_datadir" ]] || die '--standby-datadir is required to promote with pg_ctl'
}

on_standby() { libpq "$standby_port" "$standby_passfile" "$@"; }
sql() { psql_at "$db" "$@"; }

# Promotes the standby, waiting until it has left recovery.
promote_standby() {
  if [[ "$promote" == pg_ctl ]]; then
    as_server_user pg_ctl promote -w -t 60 -D "$standby_datadir"
  else
    [[ "$(on_standby sql -c 'select pg_promote(true, 60)')" == t ]] || { echo 'pg_promote did not finish within 60s' >&2; exit 1; }
  fi
}

# The promote, then one write on the new primary in a new session, as a client would open one.
promote_and_write() {
  step "promote ($promote)" promote_standby
  step 'write on the new primary' on_standby sql -c "$write"
}
