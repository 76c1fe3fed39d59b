#!/usr/bin/env bash
# `npm run setup:test`: what the tests need beyond `npm run setup` (which it runs first), from
# Debian's packages, each installed only when missing (a second run costs a few `command -v`):
# - coturn (turnserver, turnutils_uclient) for test/infra/coturn.test.ts;
# - promtool (package prometheus) for the Prometheus config and rules checks;
# - chromium for the browser tests (through playwright-core; Playwright's own browser download is
#   not used);
# - podman and its companions for `npm run test:deploy` (test/deploy/): podman-compose, runc (the
#   runtime infra/podman/containers.conf selects), netavark + aardvark-dns (networks with DNS
#   between containers; netavark needs iptables, which a machine image may lack), mmdebstrap
#   (the base images), uidmap.
# kubectl (for `kubectl kustomize`) comes with the machine image; it is not in Debian's archive.
set -euo pipefail
cd "$(dirname "$0")/.."

bash infra/setup.sh

printf '\n== test tools (coturn, promtool, chromium, podman)\n'
missing=()
command -v turnserver >/dev/null 2>&1 && command -v turnutils_uclient >/dev/null 2>&1 || missing+=(coturn)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
for pkg in podman podman-compose runc mmdebstrap uidmap netavark aardvark-dns iptables; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "coturn, promtool, chromium and podman are installed"
else
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "missing ${missing[*]} and not root: install them with apt-get (Debian packages)" >&2
    exit 1
  fi
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  # Only the binaries are wanted: the daemons these packages ship (a Prometheus server on :9090,
  # coturn) must not start. Without a policy-rc.d, one that refuses service starts is put there for
  # the install and removed after. The package lists are refreshed only if apt cannot find the
  # packages.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    trap '[ -n "$policy" ] && $SUDO rm -f "$policy"' EXIT
  fi
  if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then $SUDO apt-get update -qq; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo
echo "setup:test done: 'npm test' runs the tests."
