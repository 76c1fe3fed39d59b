#!/usr/bin/env bash
# `npm run setup`: everything geo-sfu needs on a fresh machine, from the npm registry and Debian
# packages only. Safe to run again: each step skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "npm dependencies"
# mediasoup's postinstall would download a prebuilt worker from GitHub; we build it ourselves below.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  MEDIASOUP_WORKER_BIN=skip npm ci --no-audit --no-fund
else
  echo "node_modules is up to date"
fi

step "mediasoup worker"
# Built offline from Debian libraries and cached outside the clone (instant when cached);
# then started once to prove it runs. See infra/mediasoup/build-worker.sh.
bash infra/mediasoup/build-worker.sh
node --import tsx infra/mediasoup/check-worker.ts

# Test tools: coturn (turnserver, turnutils_uclient) for test/infra/coturn.test.ts
# and promtool (Debian's prometheus package) for the Prometheus config/rules checks. Installed only
# when missing, so a second run costs two `command -v`. kubectl (for `kubectl kustomize`) comes
# with the machine image; it is not in Debian's archive.
step "infra tools (coturn, promtool)"
infra_missing=()
command -v turnserver >/dev/null 2>&1 && command -v turnutils_uclient >/dev/null 2>&1 || infra_missing+=(coturn)
command -v promtool >/dev/null 2>&1 || infra_missing+=(prometheus)
if [ "${#infra_missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "missing ${infra_missing[*]} and not root: install them with apt-get (Debian packages)" >&2
    exit 1
  fi
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  # Only the binaries are wanted: the daemons these packages ship (a Prometheus server on :9090)
  # must not start. Without a policy-rc.d, one that refuses service starts is put there for the
  # install and removed after. The package lists are refreshed only if apt cannot find the packages.
  infra_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    infra_policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$infra_policy" >/dev/null
    $SUDO chmod 755 "$infra_policy"
    trap '[ -n "$infra_policy" ] && $SUDO rm -f "$infra_policy"' EXIT
  fi
  if ! apt-cache show "${infra_missing[@]}" >/dev/null 2>&1; then $SUDO apt-get update -qq; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${infra_missing[@]}"
  if [ -n "$infra_policy" ]; then $SUDO rm -f "$infra_policy"; infra_policy=""; fi
else
  echo "coturn and promtool are installed"
fi

# Debian's chromium for the dashboard's browser test (test/web/dashboard.test.ts, via playwright-core;
# Playwright's own browser download is not used). Installed only when missing.
step "chromium (dashboard browser test)"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "chromium is missing and not root: install it with apt-get (Debian package chromium)" >&2
    exit 1
  fi
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  if ! apt-cache show chromium >/dev/null 2>&1; then $SUDO apt-get update -qq; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
else
  echo "chromium is installed"
fi

step "web dashboard (web/ -> web/dist)" && npm run --silent build:web

echo
echo "setup done: 'npm start' runs the embedded default, 'npm test' runs the tests."
