#!/usr/bin/env bash
# Build (or fetch) the mediasoup-worker binary and cache it outside the clone.
#
#   bash infra/mediasoup/build-worker.sh        # or: npm run worker:build
#
# stdout: exactly one line, the absolute path of the worker binary.
# stderr: progress and build logs.
#
# GEO_SFU_WORKER_SOURCE=offline (default)
#   Builds mediasoup's worker from node_modules/mediasoup with *no* network
#   access beyond Debian's apt and a local pip index: the package is copied to
#   a temporary directory (node_modules is never modified), every
#   worker/subprojects/*.wrap (GitHub / wrapdb downloads) is replaced by the
#   overlays in infra/mediasoup/subprojects/ that wrap Debian's libraries, and
#   infra/mediasoup/patches/srtp3-compat/srtp.h maps the libsrtp 3 API the
#   worker uses onto Debian's libsrtp 2, and infra/mediasoup/patches/worker/
#   *.patch are applied to the worker sources in the copy (patch -p1; see
#   infra/mediasoup/patches/README.md for why each exists). Then mediasoup's own
#   `npm run worker:build` runs in the copy (meson + ninja from pip).
# GEO_SFU_WORKER_SOURCE=prebuilt
#   For machines with internet: runs mediasoup's normal postinstall
#   (downloads the prebuilt worker from GitHub into node_modules/mediasoup)
#   and caches a copy.
#
# Cache:
#   ${GEO_SFU_CACHE_DIR:-$HOME/.cache/geo-sfu}/mediasoup-worker/<key>/mediasoup-worker
#   key (offline)  = <mediasoup version>-<sha256 of: mediasoup version, arch,
#                    Debian versions of the -dev packages below (dpkg-query),
#                    contents of infra/mediasoup/subprojects + patches>
#   key (prebuilt) = prebuilt-<mediasoup version>
#   <key>/key.txt records the key material.
#   ${cache}/mediasoup-worker/current-<mediasoup version> holds the absolute
#   path of the binary last resolved by this script; sfu/worker-binary.ts
#   reads it. If the binary for the current key exists the script only prints
#   its path (and refreshes current-<version>).
#
# Environment:
#   GEO_SFU_CACHE_DIR      cache root (default $HOME/.cache/geo-sfu)
#   GEO_SFU_WORKER_SOURCE  offline | prebuilt (default offline)
#   GEO_SFU_KEEP_BUILD=1   keep the temporary build directory
#   GEO_SFU_FORCE_BUILD=1  rebuild even if the cached binary exists
#   MESON_VERSION / NINJA_VERSION  pip versions (default 1.12.1 / 1.13.2)
#   PIP_INDEX_URL          if unset and pip is configured with a local
#                          (file://) index, that index is used so pip never
#                          waits on an unreachable PyPI.
set -euo pipefail

readonly DEBIAN_PACKAGES=(
  pkg-config
  libuv1-dev
  libssl-dev
  libsrtp2-dev
  libusrsctp-dev
  libabsl-dev
  libflatbuffers-dev
  flatbuffers-compiler
)
# Exactly what the offline recipe was verified with (mediasoup 3.19.3).
readonly MESON_ARGS_OFFLINE="-Dms_disable_liburing=true --wrap-mode=nodownload"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/../.." && pwd)"
MS_PKG="${REPO_ROOT}/node_modules/mediasoup"
CACHE_ROOT="${GEO_SFU_CACHE_DIR:-${HOME}/.cache/geo-sfu}/mediasoup-worker"
SOURCE="${GEO_SFU_WORKER_SOURCE:-offline}"

STEP="start"
STEP_HINT=""
BUILD_ROOT=""
T0=$(date +%s)

log() { printf '[build-worker] %s\n' "$*" >&2; }

die() {
  printf '[build-worker] FAILED at step "%s": %s\n' "${STEP}" "$*" >&2
  exit 1
}

step() {
  STEP="$1"
  STEP_HINT="${2:-}"
  log "step: ${STEP}"
}

on_err() {
  local rc=$?
  printf '[build-worker] FAILED at step "%s" (exit %s).\n' "${STEP}" "${rc}" >&2
  if [[ -n "${STEP_HINT}" ]]; then
    printf '[build-worker] why/what to check: %s\n' "${STEP_HINT}" >&2
  fi
  if [[ -n "${BUILD_ROOT}" && -d "${BUILD_ROOT}" ]]; then
    printf '[build-worker] build directory kept for inspection: %s\n' "${BUILD_ROOT}" >&2
    BUILD_ROOT="" # keep it
  fi
  exit "${rc}"
}
trap on_err ERR

cleanup() {
  if [[ -n "${BUILD_ROOT}" && -d "${BUILD_ROOT}" && "${GEO_SFU_KEEP_BUILD:-0}" != "1" ]]; then
    rm -rf "${BUILD_ROOT}"
  fi
}
trap cleanup EXIT

# ---------------------------------------------------------------------------

step "check mediasoup package" "run 'npm ci' (MEDIASOUP_WORKER_BIN=skip npm ci) first"
[[ -f "${MS_PKG}/package.json" ]] || die "${MS_PKG}/package.json not found; run 'MEDIASOUP_WORKER_BIN=skip npm ci' first"
MS_VERSION="$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "${MS_PKG}/package.json" | head -n1)"
[[ -n "${MS_VERSION}" ]] || die "cannot read the version from ${MS_PKG}/package.json"

step "check options"
case "${SOURCE}" in
  offline | prebuilt) ;;
  *) die "GEO_SFU_WORKER_SOURCE must be 'offline' or 'prebuilt' (got '${SOURCE}')" ;;
esac

# Debian versions of the packages, one "name=version" per line ("name=missing").
debian_versions() {
  local pkg status version
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}|${Version}' "${pkg}" 2>/dev/null || true)"
    if [[ "${status%%|*}" == "install ok installed" ]]; then
      version="${status#*|}"
    else
      version="missing"
    fi
    printf '%s=%s\n' "${pkg}" "${version}"
  done
}

overlay_digest() {
  (
    cd "${SCRIPT_DIR}"
    # Documentation (*.md) does not affect the binary.
    find subprojects patches -type f ! -name '*.md' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  )
}

compute_key() {
  if [[ "${SOURCE}" == "prebuilt" ]]; then
    KEY="prebuilt-${MS_VERSION}"
    KEY_MATERIAL="mediasoup=${MS_VERSION}
source=prebuilt"
    return
  fi
  KEY_MATERIAL="mediasoup=${MS_VERSION}
arch=$(uname -m)
meson_args=${MESON_ARGS_OFFLINE}
$(debian_versions)
$(overlay_digest)"
  local digest
  digest="$(printf '%s\n' "${KEY_MATERIAL}" | sha256sum)"
  KEY="${MS_VERSION}-${digest:0:16}"
}

publish_current() {
  # Atomically record the resolved binary for sfu/worker-binary.ts.
  local current="${CACHE_ROOT}/current-${MS_VERSION}"
  local bin="$1"
  if [[ ! -f "${current}" ]] || [[ "$(cat "${current}")" != "${bin}" ]]; then
    printf '%s\n' "${bin}" >"${current}.tmp.$$"
    mv -f "${current}.tmp.$$" "${current}"
  fi
}

fast_path() {
  local bin="${CACHE_ROOT}/${KEY}/mediasoup-worker"
  if [[ "${GEO_SFU_FORCE_BUILD:-0}" != "1" && -x "${bin}" ]]; then
    mkdir -p "${CACHE_ROOT}"
    publish_current "${bin}"
    printf '%s\n' "${bin}"
    exit 0
  fi
}

step "compute cache key"
compute_key
fast_path

log "no cached worker for key ${KEY} (source: ${SOURCE}); building"
mkdir -p "${CACHE_ROOT}"

# Serialize builds sharing the cache (engineers on one machine share $HOME).
step "lock cache" "another build-worker.sh holds ${CACHE_ROOT}/.lock; wait for it or remove a stale lock"
exec 9>"${CACHE_ROOT}/.lock"
if ! flock -n 9; then
  log "another build is running; waiting for ${CACHE_ROOT}/.lock"
  flock 9
fi
compute_key
fast_path

# ---------------------------------------------------------------------------
if [[ "${SOURCE}" == "prebuilt" ]]; then
  step "mediasoup postinstall (prebuilt download)" \
    "needs access to GitHub releases; on machines without internet use GEO_SFU_WORKER_SOURCE=offline"
  (
    cd "${MS_PKG}"
    unset MEDIASOUP_WORKER_BIN
    node npm-scripts.mjs postinstall
  ) 1>&2
  built="${MS_PKG}/worker/out/Release/mediasoup-worker"
  [[ -x "${built}" ]] || die "postinstall finished but ${built} does not exist"
else
  # ---- Debian packages -----------------------------------------------------
  step "install Debian packages" \
    "apt-get must reach Debian's mirrors and run as root (or via sudo); packages: ${DEBIAN_PACKAGES[*]}"
  missing=()
  while IFS='=' read -r pkg version; do
    [[ "${version}" == "missing" ]] && missing+=("${pkg}")
  done < <(debian_versions)
  if ((${#missing[@]} > 0)); then
    log "missing Debian packages: ${missing[*]}"
    SUDO=()
    if [[ "$(id -u)" != "0" ]]; then
      command -v sudo >/dev/null || die "not root and no sudo: install ${missing[*]} by hand"
      SUDO=(sudo)
    fi
    need_update=0
    for pkg in "${missing[@]}"; do
      if ! apt-cache show "${pkg}" >/dev/null 2>&1; then need_update=1; fi
    done
    if ((need_update)); then
      log "apt lists do not know all packages; running apt-get update"
      "${SUDO[@]}" apt-get update 1>&2
    fi
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}" 1>&2
    compute_key
    fast_path
  fi

  # ---- python: pip index, meson, ninja, invoke -----------------------------
  step "locate python and pip" "python3 with pip is required (meson, ninja and invoke come from pip)"
  PYTHON="${PYTHON:-python3}"
  "${PYTHON}" -m pip --version >/dev/null
  if [[ -z "${PIP_INDEX_URL:-}" ]]; then
    # Prefer a configured local index (file://...) over PyPI, which may be
    # unreachable: pip would otherwise retry it for minutes.
    mapfile -t local_indexes < <(
      "${PYTHON}" -m pip config list 2>/dev/null |
        sed -n "s/^[^=]*index-url='\(.*\)'$/\1/p" | tr ' ' '\n' | grep '^file://' || true
    )
    if ((${#local_indexes[@]} > 0)); then
      export PIP_INDEX_URL="${local_indexes[0]}"
      if ((${#local_indexes[@]} > 1)); then
        export PIP_EXTRA_INDEX_URL="${local_indexes[*]:1}"
      else
        export PIP_EXTRA_INDEX_URL=""
      fi
      log "using local pip index ${PIP_INDEX_URL} ${PIP_EXTRA_INDEX_URL}"
    fi
  fi
  export PIP_NO_INPUT=1
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  export MESON_VERSION="${MESON_VERSION:-1.12.1}"
  export NINJA_VERSION="${NINJA_VERSION:-1.13.2}"
  export MESON_ARGS="${MESON_ARGS_OFFLINE}"
  export PYTHON

  # ---- copy the package ----------------------------------------------------
  step "copy mediasoup package to a temporary build directory" "needs ~100 MB free in \${TMPDIR:-/tmp}"
  BUILD_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/geo-sfu-mediasoup-worker.XXXXXX")"
  WORK="${BUILD_ROOT}/mediasoup"
  cp -a "${MS_PKG}" "${WORK}"
  rm -rf "${WORK}/worker/out" "${WORK}/worker/pip_invoke" "${WORK}/worker/subprojects/packagecache"
  # npm-scripts.mjs imports node-fetch, tar and ini: let node find them in the
  # project's node_modules (node resolves ../node_modules from the copy).
  ln -s "${REPO_ROOT}/node_modules" "${BUILD_ROOT}/node_modules"

  # ---- overlays --------------------------------------------------------------
  step "replace worker/subprojects/*.wrap with Debian overlays" \
    "infra/mediasoup/subprojects/<name>/meson.build must exist for every wrap the worker uses"
  subprojects="${WORK}/worker/subprojects"
  for wrap in "${subprojects}"/*.wrap; do
    name="$(basename "${wrap}" .wrap)"
    [[ -f "${SCRIPT_DIR}/subprojects/${name}/meson.build" ]] ||
      die "no overlay for ${name}.wrap (mediasoup ${MS_VERSION} added a dependency?): add infra/mediasoup/subprojects/${name}/meson.build"
    rm -f "${wrap}"
    rm -rf "${subprojects:?}/${name}"
    cp -a "${SCRIPT_DIR}/subprojects/${name}" "${subprojects}/${name}"
  done
  mkdir -p "${subprojects}/libsrtp3/include"
  cp "${SCRIPT_DIR}/patches/srtp3-compat/srtp.h" "${subprojects}/libsrtp3/include/srtp.h"

  # ---- worker source patches -------------------------------------------------
  step "apply infra/mediasoup/patches/worker/*.patch to the worker sources" \
    "a patch no longer applies (mediasoup ${MS_VERSION} changed the file?): check whether upstream fixed it (see infra/mediasoup/patches/README.md) and drop or refresh the patch"
  for p in "${SCRIPT_DIR}"/patches/worker/*.patch; do
    [[ -e "${p}" ]] || continue
    log "applying $(basename "${p}")"
    patch -d "${WORK}" -p1 --forward --batch --no-backup-if-mismatch <"${p}" 1>&2
  done

  # ---- build -------------------------------------------------------------------
  step "npm run worker:build (mediasoup's meson/ninja build)" \
    "see the log above: pip errors mean the wheel index lacks meson==${MESON_VERSION}/ninja==${NINJA_VERSION}/invoke; meson errors name the overlay or Debian library; compiler errors in SrtpSession/DepLibSRTP point at patches/srtp3-compat/srtp.h"
  log "building in ${WORK} (MESON_ARGS=${MESON_ARGS}); this takes ~6 minutes on 2 cores"
  (
    cd "${WORK}"
    unset MEDIASOUP_WORKER_BIN # tasks.py skips compiling when it is set
    nice -n 5 npm run worker:build
  ) 1>&2
  built="${WORK}/worker/out/Release/mediasoup-worker"
  [[ -x "${built}" ]] || die "the build finished but ${built} does not exist"

  step "check the binary's shared libraries" "a Debian runtime library is missing; reinstall: ${DEBIAN_PACKAGES[*]}"
  if ldd "${built}" | grep -q 'not found'; then
    ldd "${built}" >&2
    die "unresolved shared libraries"
  fi
fi

# ---------------------------------------------------------------------------
step "install into cache" "cannot write ${CACHE_ROOT}; set GEO_SFU_CACHE_DIR to a writable directory"
dest_dir="${CACHE_ROOT}/${KEY}"
tmp_dir="${CACHE_ROOT}/.${KEY}.tmp.$$"
rm -rf "${tmp_dir}"
mkdir -p "${tmp_dir}"
cp "${built}" "${tmp_dir}/mediasoup-worker"
chmod 0755 "${tmp_dir}/mediasoup-worker"
printf '%s\n' "${KEY_MATERIAL}" >"${tmp_dir}/key.txt"
printf 'built_at=%s\nbuild_seconds=%s\nsource=%s\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(($(date +%s) - T0))" "${SOURCE}" >"${tmp_dir}/build-info.txt"
rm -rf "${dest_dir}"
mv "${tmp_dir}" "${dest_dir}"
publish_current "${dest_dir}/mediasoup-worker"

log "done in $(($(date +%s) - T0)) s: ${dest_dir}/mediasoup-worker"
printf '%s\n' "${dest_dir}/mediasoup-worker"
