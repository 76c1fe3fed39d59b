#!/usr/bin/env bash
# `npm run test:deploy`: the image built with podman from infra/Dockerfile and the stack of
# test/deploy/compose.yml run from it, checked from this host by test/deploy/main.ts (see there).
#
# podman runs with the project's infra/podman/containers.conf (CONTAINERS_CONF), the machine's own
# configuration untouched. Base images: test/deploy/base-images.sh (Debian + Node 24, cached in
# ~/.cache/geo-sfu/images). The mediasoup worker is the one `npm run setup` built (cached in
# ~/.cache/geo-sfu/mediasoup-worker), copied into the build context for the image's worker stage
# (GEO_SFU_WORKER_SOURCE=context). The host's CA bundle is mounted read-only into the build for
# npm (the egress proxy's CA is in it), never copied into an image.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF="$PWD/infra/podman/containers.conf"

for tool in podman podman-compose mmdebstrap runc; do
  command -v "$tool" >/dev/null || { echo "test:deploy: $tool is missing: run npm run setup:test" >&2; exit 1; }
done

export TEST_DEPLOY_STARTED_MS="$(date +%s%3N)"
timing() { printf '[test:deploy] %-44s %4d s\n' "$1" "$2"; }

t=$SECONDS
eval "$(bash test/deploy/base-images.sh)"   # NODE_IMAGE, SERVICES_IMAGE
timing "base images (node, services)" $((SECONDS - t))

t=$SECONDS
worker="$(bash infra/mediasoup/build-worker.sh)"
context_worker=infra/mediasoup/context-worker
log="$(mktemp)"
trap 'rm -rf "$context_worker" "$log"' EXIT
install -D -m 0755 "$worker" "$context_worker/mediasoup-worker"
build_args=(--build-arg "NODE_IMAGE=$NODE_IMAGE" --build-arg "NODE_SLIM_IMAGE=$NODE_IMAGE" --build-arg GEO_SFU_WORKER_SOURCE=context)
ca=""
for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do [ -s "$f" ] && { ca="$f"; break; }; done
[ -n "$ca" ] && build_args+=(--build-arg "NODE_EXTRA_CA_CERTS=$ca" --volume "$ca:$ca:ro")
export GEO_SFU_IMAGE=localhost/geo-sfu:test
if ! podman build --network host --layers -f infra/Dockerfile --ignorefile infra/Dockerfile.dockerignore \
  "${build_args[@]}" -t "$GEO_SFU_IMAGE" . >"$log" 2>&1; then
  tail -60 "$log" >&2
  echo "test:deploy: podman build failed (above: the end of its output)" >&2
  exit 1
fi
if grep -n EBADENGINE "$log" >&2; then
  echo "test:deploy: npm printed EBADENGINE while building the image (above)" >&2
  exit 1
fi
rm -rf "$context_worker"
timing "image $GEO_SFU_IMAGE (podman build)" $((SECONDS - t))

export SERVICES_IMAGE
exec node --import tsx test/deploy/main.ts
