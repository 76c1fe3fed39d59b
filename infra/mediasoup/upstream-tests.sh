#!/usr/bin/env bash
# mediasoup's own Node test suite (shipped compiled in the npm package: node/lib/test/test-*.js,
# jest) run against the worker this project builds offline and patches (infra/mediasoup/), so a
# change of Debian libraries or of a patch is caught by upstream's own tests.
#
#   bash infra/mediasoup/upstream-tests.sh     # or: npm run test:mediasoup
#
# The suite reads node/lib/test/data/dtls-{cert,key}.pem, which the package does not ship: a
# self-signed pair is generated there once. jest, pick-port and sctp are the suite's own
# devDependencies (ours too).
set -euo pipefail
cd "$(dirname "$0")/../.."

suite="$PWD/node_modules/mediasoup/node/lib/test"
[ -d "$suite" ] || { echo "no mediasoup test suite at $suite (run npm run setup)" >&2; exit 1; }
data="$suite/data"
if [ ! -s "$data/dtls-cert.pem" ] || [ ! -s "$data/dtls-key.pem" ]; then
  mkdir -p "$data"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=mediasoup-test \
    -keyout "$data/dtls-key.pem" -out "$data/dtls-cert.pem" 2>/dev/null
fi

MEDIASOUP_WORKER_BIN="$(bash infra/mediasoup/build-worker.sh)"
export MEDIASOUP_WORKER_BIN
# jest skips node_modules unless told otherwise: the suite lives there.
exec npx --no-install jest --ci --config "{\"rootDir\":\"$suite\",\"testMatch\":[\"**/test-*.js\"],\"testPathIgnorePatterns\":[],\"haste\":{\"retainAllFiles\":true},\"transform\":{}}" "$@"
