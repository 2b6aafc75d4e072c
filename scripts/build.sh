#!/usr/bin/env bash
# Builds everything: bpf/ (eBPF objects, shim, generated layout check) and the apps.
set -euo pipefail
cd "$(dirname "$0")/.."
npx turbo run build --output-logs=errors-only
