#!/usr/bin/env bash
# The README's run command: install what is missing, build, then run Postgres,
# nats-server and the control plane locally (state in .state/), print a working
# API key and save it to ~/.config/hdrcap/config.json. Ctrl-C stops everything.
# Set DATABASE_URL / NATS_URL to use your own Postgres / NATS instead.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/scripts/install-deps.sh"
"$ROOT/scripts/build.sh"
cd "$ROOT"
exec node apps/control-plane/dist/cli.js local up --state-dir "${HDRCAP_STATE_DIR:-$ROOT/.state}" --port "${HDRCAP_PORT:-7070}" \
  --agent-bin "$ROOT/apps/agent/dist/main.js"
