#!/usr/bin/env bash
# The main job: a full drill of the demo database on the embedded local stack, printing the report
# and the Temporal UI link to the run. Installs and starts what it needs; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/node-env.sh  # Node.js 24: the one setup.sh installed where the system has an older one
./bin/lifeboat dev up
exec ./bin/lifeboat drill orders "$@"
