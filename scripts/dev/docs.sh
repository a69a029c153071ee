#!/usr/bin/env bash
# Builds the documentation site (docs/, mkdocs.yml) in strict mode: a link to a missing page or
# anchor, or a page left out of the nav, fails. Installs mkdocs from PyPI into .venv the first time
# (pinned; the built-in readthedocs theme, no other packages). Output: dist/docs (ignored by git,
# ESLint and Prettier like the rest of dist/). Safe to run again; a few seconds once installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdocs_version=1.6.1
if [ "$(.venv/bin/mkdocs --version 2>/dev/null | awk '{print $3}')" != "$mkdocs_version" ]; then
  echo "docs: installing mkdocs $mkdocs_version (PyPI) into .venv"
  [ -x .venv/bin/pip ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "mkdocs==$mkdocs_version"
fi
# Not --quiet: it hides the warnings that --strict counts (the build would pass with broken links).
.venv/bin/mkdocs build --strict --clean --site-dir dist/docs 2>&1 | { grep -v "^INFO" || true; }
echo "docs: built into dist/docs"
