#!/usr/bin/env bash
# Installs what hdrcap needs on a Debian machine, only what is missing:
# Debian packages (toolchain for bpf/, Postgres, nats-server, test tools) and npm dependencies.
# Safe to re-run. Used by scripts/up.sh and scripts/test.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }

# Build + run: clang/llvm/libbpf/bpftool build the eBPF objects and the shim;
# postgresql and nats-server are started as project-owned local services.
PACKAGES=(clang llvm libbpf-dev libelf-dev bpftool make gcc pkg-config
          postgresql nats-server iproute2 curl ca-certificates)
# Tests and benchmarks: real servers and clients to capture.
if [ "${HDRCAP_WITH_TEST_TOOLS:-0}" = 1 ]; then
  PACKAGES+=(nginx-light wrk python3 tcpdump tshark debootstrap)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${missing[*]} — run as root (or install them) and retry" >&2
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's postgresql package starts its own cluster; hdrcap runs its own and does not need it.

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "hdrcap needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi
# Fixes to installed dependencies that upstream has not released yet (see the script).
node scripts/patch-deps.mjs
