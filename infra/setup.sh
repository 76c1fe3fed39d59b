#!/usr/bin/env bash
# `npm run setup`: everything geo-sfu needs to run on a fresh machine (npm dependencies, the
# mediasoup worker, the web pages), from the npm registry and Debian packages only. What only the
# tests need is `npm run setup:test` (infra/setup-test.sh). Safe to run again: each step skips
# what is already done.
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

step "web dashboard (web/ -> web/dist)" && npm run --silent build:web

echo
echo "setup done: 'npm start' runs the embedded default; 'npm run setup:test' then adds what 'npm test' needs."
