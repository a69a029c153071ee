#!/usr/bin/env bash
# Installs promtool, which checks and unit-tests the alert rules in monitoring/ (test/unit/monitoring-*).
# It comes with Debian's `prometheus` package; only promtool is wanted, so the package's Prometheus
# server is kept from starting (now and at boot). Idempotent: nothing to do when promtool is on PATH.
set -euo pipefail
say() { printf 'install-promtool: %s\n' "$*" >&2; }

if command -v promtool >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  say "promtool is missing: install it (Debian/Ubuntu: sudo apt-get install --no-install-recommends prometheus,"
  say "then sudo systemctl disable --now prometheus; or a release from https://prometheus.io/download/), then run this again"
  exit 1
fi

say "installing promtool (Debian package prometheus, its server kept stopped)"
# invoke-rc.d and deb-systemd-invoke ask policy-rc.d whether a service may start: 101 says no.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
# The package lists may be missing or stale on a fresh machine: refresh them only when needed.
if ! apt-cache show prometheus >/dev/null 2>&1 || ! install; then
  apt-get update -qq
  install
fi
# The package enables its service for the next boot; promtool is all that is wanted.
if [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus.service >/dev/null 2>&1 || true
elif command -v update-rc.d >/dev/null; then
  update-rc.d prometheus disable >/dev/null 2>&1 || true
fi
promtool --version 2>&1 | head -n 1 >&2
