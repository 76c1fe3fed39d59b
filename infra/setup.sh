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
if [ -f infra/mediasoup/build-worker.sh ]; then
  bash infra/mediasoup/build-worker.sh
fi

echo
echo "setup done: 'npm start' runs the embedded default, 'npm test' runs the tests."
