#!/usr/bin/env bash
# The test suite: type check, lint, then jest (unit, workflows against a real Temporal dev server
# and real PostgreSQL, integration against moto_server for AWS and fake-gcs-server for Cloud Storage,
# replay). Installs what it needs first, both stand-ins, Chromium (the evidence-report test opens
# the HTML reports in it) and the runbook tests' time-skipping Temporal test server included; safe
# to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-moto --with-gcs-emulator --with-chromium --with-test-server --with-promtool
. scripts/node-env.sh  # Node.js 24: the one setup.sh installed where the system has an older one
echo "== typecheck"; npx --no-install tsc -p tsconfig.json --noEmit
echo "== lint"; npx --no-install eslint .
echo "== format"; npx --no-install prettier --check . >/dev/null || { npx --no-install prettier --list-different .; echo "prettier: the files above are not formatted (npx prettier --write .)" >&2; exit 1; }
echo "== docs"; bash scripts/dev/docs.sh
echo "== jest"
results=$(mktemp)
status=0
npx --no-install jest --ci --runInBand --json --outputFile="$results" "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ""}`);
  if (r.numTotalTests === 0) { console.error("no tests ran"); process.exit(1); }
' "$results" || status=1
rm -f "$results"
exit "$status"
