#!/usr/bin/env bash
# Builds everything: bpf/ (eBPF objects, shim, generated layout check) and the apps.
set -euo pipefail
cd "$(dirname "$0")/.."
npx turbo run build --output-logs=errors-only
# The agent bundle served by GET /bundles/… for the one-line install (a no-op when up to date).
node scripts/build-agent-bundle.mjs --quiet
