#!/bin/sh
# geo-sfu image entry point: `router` or `agent` picks the process; anything else runs as given.
# Runs the JavaScript `npm run build` wrote to dist/ with plain node (no TypeScript loader), with
# stack traces mapped back to the .ts sources. exec: node is PID 1 and gets SIGTERM directly (the
# agent drains on it, the router closes). The package root is two folders up (/app in the image).
set -eu
cd "$(dirname "$0")/../.."
cmd="${1:-router}"
[ "$#" -gt 0 ] && shift
case "$cmd" in
  router) exec node --enable-source-maps dist/router/main.js "$@" ;;
  agent | region-agent) exec node --enable-source-maps dist/region-agent/main.js "$@" ;;
  *) exec "$cmd" "$@" ;;
esac
