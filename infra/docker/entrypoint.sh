#!/bin/sh
# geo-sfu image entry point: `router` or `agent` picks the process; anything else runs as given.
# exec: node is PID 1 and gets SIGTERM directly (the agent drains on it, the router closes).
set -eu
cd /app
cmd="${1:-router}"
[ "$#" -gt 0 ] && shift
case "$cmd" in
  router) exec node --import tsx router/main.ts "$@" ;;
  agent | region-agent) exec node --import tsx region-agent/main.ts "$@" ;;
  *) exec "$cmd" "$@" ;;
esac
