#!/usr/bin/env bash
# npm run setup: one-time machine/project setup.
#
# Steps (each is idempotent and fast when already done):
#   1. mediasoup worker binary, built offline from Debian libraries and cached
#      outside the clone (see infra/mediasoup/build-worker.sh). Prints the path.
#
# Other setup steps can be appended below.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "[setup] mediasoup worker" >&2
worker_bin="$(bash infra/mediasoup/build-worker.sh)"
echo "[setup] mediasoup worker: ${worker_bin}" >&2
npx --no-install tsx infra/mediasoup/check-worker.ts >&2
