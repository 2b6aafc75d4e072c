#!/bin/sh
# hdrcap agent installer, served by the control plane at /install.sh:
#
#   curl -fsSL <control-plane>/install.sh | sudo sh -s -- --token <token> [--labels k=v,...] [--ca <pem>]
#   curl -fsSL <control-plane>/install.sh | sudo sh -s -- --uninstall
#
# Installs the control plane's current agent bundle (checksum-verified) under
# /opt/hdrcap-agent/<version> with a `current` link, its configuration in /etc/hdrcap/agent.json
# (0600, no secrets), its identity in /var/lib/hdrcap, and runs it as the systemd service
# hdrcap-agent, or, without systemd, under a small supervisor (pid file /run/hdrcap-agent.pid,
# log /var/log/hdrcap-agent.log, rotated by size) started at boot by /etc/init.d/hdrcap-agent
# or a cron @reboot entry where the host has either. Every check runs, and the agent enrolls, before anything on
# the host changes. The enrollment token is handed to one enrollment process through its
# environment and is never written to disk. Re-running upgrades in place and keeps the identity.
# Exit codes: 1 failure, 2 usage, 3 host cannot run the agent, 4 download or checksum,
# 5 enrollment refused, 6 installed but the agent did not start.
set -eu

CONTROL_PLANE_URL='@HDRCAP_CONTROL_PLANE_URL@'
INSTALL_ROOT=/opt/hdrcap-agent
CONFIG_DIR=/etc/hdrcap
CONFIG_FILE=/etc/hdrcap/agent.json
CA_FILE=/etc/hdrcap/ca.pem
STATE_DIR=/var/lib/hdrcap
UNIT_FILE=/etc/systemd/system/hdrcap-agent.service
SUPERVISOR="$INSTALL_ROOT/hdrcap-agent-supervise"
PID_FILE=/run/hdrcap-agent.pid
LOG_FILE=/var/log/hdrcap-agent.log
INIT_SCRIPT=/etc/init.d/hdrcap-agent
CRON_FILE=/etc/cron.d/hdrcap-agent
BPF_PIN_DIR=/sys/fs/bpf/hdrcap
MIN_KERNEL=5.8

say() { printf 'hdrcap-install: %s\n' "$*" >&2; }
die() {
  code=$1
  shift
  printf 'hdrcap-install: error: %s\n' "$*" >&2
  exit "$code"
}

usage() {
  cat <<EOF
Install, upgrade or remove the hdrcap agent on this host (as root).

  curl -fsSL $CONTROL_PLANE_URL/install.sh | sudo sh -s -- --token <token> [options]

  --token <hcet_...>     enrollment token (or \$HDRCAP_ENROLLMENT_TOKEN); not needed to upgrade
  --labels k=v[,k=v]     labels asked for at enrollment (the token's labels win)
  --ca <pem file>        trust this CA for HTTPS to the control plane (kept in $CA_FILE)
  --uninstall            stop and remove the agent, and deregister it from the control plane
EOF
}

token=${HDRCAP_ENROLLMENT_TOKEN:-}
# Nothing this script starts later (the service) may inherit the token.
unset HDRCAP_ENROLLMENT_TOKEN
labels=
ca=
uninstall=0
need_value() { [ "$2" -ge 2 ] || die 2 "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
  case $1 in
    --token) need_value "$1" $#; token=$2; shift 2 ;;
    --token=*) token=${1#*=}; shift ;;
    --labels) need_value "$1" $#; labels=$2; shift 2 ;;
    --labels=*) labels=${1#*=}; shift ;;
    --ca) need_value "$1" $#; ca=$2; shift 2 ;;
    --ca=*) ca=${1#*=}; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die 2 "unknown option '$1' (see --help)" ;;
  esac
done

[ "$(id -u)" = 0 ] || die 3 "this installer must run as root (pipe it to 'sudo sh -s -- ...')"

# ---------------------------------------------------------------- service control

systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# Pids of processes whose command line runs a file under $INSTALL_ROOT (no pgrep on minimal hosts),
# among those sharing this script's root directory (not another chroot's or the outer host's agent).
installed_pids() {
  self_root=$(stat -L -c %d:%i / 2>/dev/null || echo /)
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [ "$pid" = "$$" ] && continue
    [ "$(stat -L -c %d:%i "$d/root/" 2>/dev/null || echo /)" = "$self_root" ] || continue
    cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
    case $cmd in *"$INSTALL_ROOT/"*) echo "$pid" ;; esac
  done
}

stop_agent() {
  if systemd_running && [ -f "$UNIT_FILE" ]; then
    systemctl stop hdrcap-agent.service 2>/dev/null || true
  fi
  if [ -f "$PID_FILE" ]; then
    pid=$(cat "$PID_FILE" 2>/dev/null || true)
    case $pid in '' | *[!0-9]*) pid= ;; esac
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      i=0
      # The agent detaches its programs and flushes records on SIGTERM (up to ~10 s).
      while kill -0 "$pid" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.2; i=$((i + 1)); done
    fi
    rm -f "$PID_FILE"
  fi
  # Anything left (a crashed supervisor's agent, a stuck process) is ended outright.
  left=$(installed_pids)
  if [ -n "$left" ]; then
    kill -TERM $left 2>/dev/null || true
    sleep 2
    left=$(installed_pids)
    [ -z "$left" ] || kill -KILL $left 2>/dev/null || true
  fi
}

# Boot start of the fallback supervisor (hosts without systemd): removed on uninstall and
# when the host runs systemd now.
remove_boot_start() {
  if [ -f "$INIT_SCRIPT" ]; then
    if command -v update-rc.d >/dev/null 2>&1; then
      update-rc.d -f hdrcap-agent remove >/dev/null 2>&1 || true
    elif command -v chkconfig >/dev/null 2>&1; then
      chkconfig --del hdrcap-agent >/dev/null 2>&1 || true
    fi
    rm -f "$INIT_SCRIPT"
  fi
  rm -f "$CRON_FILE"
}

# ---------------------------------------------------------------- uninstall

if [ "$uninstall" = 1 ]; then
  [ -e "$INSTALL_ROOT" ] || [ -e "$CONFIG_DIR" ] || [ -e "$STATE_DIR" ] || [ -e "$UNIT_FILE" ] || say "the agent does not look installed; removing leftovers anyway"
  say "stopping the agent"
  stop_agent
  if systemd_running && [ -f "$UNIT_FILE" ]; then
    systemctl disable hdrcap-agent.service >/dev/null 2>&1 || true
  fi
  if [ -f "$STATE_DIR/agent.json" ] && [ -x "$INSTALL_ROOT/current/bin/hdrcap-agent" ]; then
    if out=$("$INSTALL_ROOT/current/bin/hdrcap-agent" deregister --state-dir "$STATE_DIR" 2>&1); then
      say "$out"
    else
      say "warning: could not deregister this agent: $out"
      say "warning: it stays listed (offline) on the control plane"
    fi
  fi
  rm -f "$UNIT_FILE"
  if systemd_running; then systemctl daemon-reload 2>/dev/null || true; fi
  remove_boot_start
  rm -rf "$INSTALL_ROOT" "$CONFIG_DIR" "$STATE_DIR"
  rm -f "$PID_FILE" "$LOG_FILE" "$LOG_FILE".[0-9]*
  # The agent pins nothing today; older or future agents may, under this one folder.
  if [ -d "$BPF_PIN_DIR" ]; then rm -rf "$BPF_PIN_DIR"; fi
  say "uninstalled: removed $INSTALL_ROOT, $CONFIG_DIR, $STATE_DIR and the service"
  exit 0
fi

# ---------------------------------------------------------------- checks (nothing changes here)

arch=$(uname -m)
[ "$arch" = x86_64 ] || die 3 "unsupported architecture $arch: the agent bundle is built for x86_64 only"

kernel=$(uname -r)
kmajor=${kernel%%.*}
kminor=${kernel#*.}
kminor=${kminor%%[!0-9]*}
case $kmajor$kminor in *[!0-9]* | '') die 3 "cannot read the kernel version from '$kernel'" ;; esac
if [ "$kmajor" -lt 5 ] || { [ "$kmajor" -eq 5 ] && [ "$kminor" -lt 8 ]; }; then
  die 3 "kernel $kernel is too old: the agent needs Linux >= $MIN_KERNEL (BPF ring buffer, CO-RE)"
fi
[ -r /sys/kernel/btf/vmlinux ] || die 3 "kernel $kernel has no BTF (/sys/kernel/btf/vmlinux is missing): the agent needs a kernel built with CONFIG_DEBUG_INFO_BTF=y"

bpf_config=
for f in "/boot/config-$kernel" /proc/config.gz; do
  [ -r "$f" ] || continue
  case $f in *.gz) bpf_config=$(gzip -dc "$f" 2>/dev/null | grep '^CONFIG_BPF_SYSCALL=' || true) ;; *) bpf_config=$(grep '^CONFIG_BPF_SYSCALL=' "$f" || true) ;; esac
  break
done
# /proc/sys/kernel/unprivileged_bpf_disabled exists exactly when the bpf() syscall is built in.
if [ "$bpf_config" != "CONFIG_BPF_SYSCALL=y" ] && [ ! -e /proc/sys/kernel/unprivileged_bpf_disabled ]; then
  die 3 "kernel $kernel has no bpf() syscall (CONFIG_BPF_SYSCALL is not set)"
fi

if command -v curl >/dev/null 2>&1; then
  downloader=curl
elif command -v wget >/dev/null 2>&1; then
  downloader=wget
else
  die 3 "neither curl nor wget is installed: install one of them first"
fi
command -v tar >/dev/null 2>&1 && command -v gzip >/dev/null 2>&1 || die 3 "tar and gzip are needed to unpack the agent"
if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
elif command -v openssl >/dev/null 2>&1; then
  sha256() { openssl dgst -sha256 "$1" | sed 's/.*= *//'; }
else
  die 3 "no SHA-256 tool (sha256sum, shasum or openssl) to verify the download"
fi

if [ -n "$ca" ]; then
  [ -r "$ca" ] || die 2 "--ca $ca: file not found or not readable"
  grep -q 'BEGIN CERTIFICATE' "$ca" || die 2 "--ca $ca: not a PEM certificate file"
  case $ca in /*) ;; *) ca="$(pwd)/$ca" ;; esac
elif [ -r "$CA_FILE" ]; then
  ca=$CA_FILE # the CA pinned by an earlier install
fi

if [ -n "$labels" ]; then
  old_ifs=$IFS
  IFS=,
  for kv in $labels; do
    case $kv in
      '') ;;
      *=*)
        k=${kv%%=*}
        v=${kv#*=}
        printf '%s' "$k" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$' || die 2 "--labels: '$k' is not a label key (letters, digits, . _ / -)"
        printf '%s' "$v" | grep -Eq '^[A-Za-z0-9._/:@+-]{0,255}$' || die 2 "--labels: the value of '$k' may only hold letters, digits and . _ / : @ + -"
        ;;
      *) die 2 "--labels: '$kv' is not key=value" ;;
    esac
  done
  IFS=$old_ifs
fi

enrolled_before=0
[ -f "$STATE_DIR/agent.json" ] && enrolled_before=1
if [ "$enrolled_before" = 0 ]; then
  [ -n "$token" ] || die 2 "this host is not enrolled yet: pass --token <enrollment token> (create one with 'hdrcap agents install-command')"
fi
if [ -n "$token" ]; then
  printf '%s' "$token" | grep -Eq '^hcet_[A-Za-z0-9_-]+$' || die 2 "--token: that is not an enrollment token (hcet_...)"
fi

have_lib() {
  if command -v ldconfig >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep -q "[[:space:]]$1 "; then return 0; fi
  for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64 /usr/lib /lib; do
    [ -e "$d/$1" ] && return 0
  done
  return 1
}
missing_libs=
have_lib libbpf.so.1 || missing_libs="$missing_libs libbpf"
have_lib libelf.so.1 || missing_libs="$missing_libs libelf"
pkg_manager=
if [ -n "$missing_libs" ]; then
  for pm in apt-get dnf yum zypper; do
    if command -v $pm >/dev/null 2>&1; then pkg_manager=$pm; break; fi
  done
  [ -n "$pkg_manager" ] || die 3 "missing shared libraries:$missing_libs (libbpf.so.1, libelf.so.1) and no apt-get/dnf/yum/zypper to install them"
fi

# ---------------------------------------------------------------- download, verify, enroll (still nothing changed)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hdrcap-install.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

fetch() {
  if [ "$downloader" = curl ]; then
    if [ -n "$ca" ]; then curl -fsSL --retry 3 --cacert "$ca" -o "$2" "$1"; else curl -fsSL --retry 3 -o "$2" "$1"; fi
  else
    if [ -n "$ca" ]; then wget -q --tries=3 --ca-certificate="$ca" -O "$2" "$1"; else wget -q --tries=3 -O "$2" "$1"; fi
  fi
}
json_field() { sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" "$2" | head -n 1; }

fetch "$CONTROL_PLANE_URL/bundles/latest.json" "$tmp/latest.json" || die 4 "cannot download $CONTROL_PLANE_URL/bundles/latest.json (is a bundle built on the control plane, and is it reachable from here?)"
version=$(json_field version "$tmp/latest.json")
file=$(json_field file "$tmp/latest.json")
expected=$(json_field sha256 "$tmp/latest.json")
printf '%s' "$version" | grep -Eq '^[A-Za-z0-9._-]+$' || die 4 "the control plane's latest.json names no valid version"
printf '%s' "$file" | grep -Eq '^agent-[A-Za-z0-9._-]+-linux-x64\.tar\.gz$' || die 4 "the control plane's latest.json names no valid bundle file"
printf '%s' "$expected" | grep -Eq '^[0-9a-f]{64}$' || die 4 "the control plane's latest.json has no valid sha256"

say "downloading agent $version"
fetch "$CONTROL_PLANE_URL/bundles/$file" "$tmp/$file" || die 4 "cannot download $CONTROL_PLANE_URL/bundles/$file"
actual=$(sha256 "$tmp/$file")
if [ "$actual" != "$expected" ]; then
  die 4 "checksum mismatch for $file: expected sha256 $expected, got $actual. The bundle was corrupted or tampered with in transit; refusing to install it. Nothing on this host was changed."
fi

mkdir "$tmp/x"
tar -xzf "$tmp/$file" -C "$tmp/x" || die 4 "cannot unpack $file"
stage="$tmp/x/hdrcap-agent-$version"
[ -x "$stage/bin/hdrcap-agent" ] && [ "$(cat "$stage/VERSION" 2>/dev/null)" = "$version" ] || die 4 "$file does not hold agent $version"
"$stage/node/bin/node" -e 'process.exit(0)' >/dev/null 2>&1 || die 3 "the bundled Node.js runtime does not run on this host (it needs glibc >= 2.28; musl-based systems are not supported)"

if [ -n "$ca" ]; then NODE_EXTRA_CA_CERTS=$ca; export NODE_EXTRA_CA_CERTS; fi
# A new host enrolls into a scratch state folder, moved into place only once all else is done.
if [ "$enrolled_before" = 1 ]; then enroll_state=$STATE_DIR; else enroll_state="$tmp/state"; fi
set -- enroll --control-plane "$CONTROL_PLANE_URL" --state-dir "$enroll_state"
[ -z "$labels" ] || set -- "$@" --labels "$labels"
if ! enrolled=$(HDRCAP_ENROLLMENT_TOKEN=$token "$stage/bin/hdrcap-agent" "$@"); then
  die 5 "enrollment refused (see the message above); nothing on this host was changed"
fi
token= # not needed any more
# The service finds the pinned CA in $CA_FILE by itself; it must not keep the user's original path.
unset NODE_EXTRA_CA_CERTS
say "$enrolled"

# ---------------------------------------------------------------- apply

if [ -n "$missing_libs" ]; then
  say "installing$missing_libs with $pkg_manager"
  case $pkg_manager in
    apt-get)
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y -q --no-install-recommends libbpf1 libelf1 >"$tmp/pkg.log" 2>&1 ||
        { apt-get update -q >>"$tmp/pkg.log" 2>&1 && apt-get install -y -q --no-install-recommends libbpf1 libelf1 >>"$tmp/pkg.log" 2>&1; } ||
        { tail -n 20 "$tmp/pkg.log" >&2; die 1 "apt-get could not install libbpf1 libelf1"; }
      ;;
    dnf | yum) $pkg_manager install -y libbpf elfutils-libelf >"$tmp/pkg.log" 2>&1 || { tail -n 20 "$tmp/pkg.log" >&2; die 1 "$pkg_manager could not install libbpf elfutils-libelf"; } ;;
    zypper) zypper --non-interactive install libbpf1 libelf1 >"$tmp/pkg.log" 2>&1 || { tail -n 20 "$tmp/pkg.log" >&2; die 1 "zypper could not install libbpf1 libelf1"; } ;;
  esac
  have_lib libbpf.so.1 || die 1 "libbpf.so.1 is still missing after installing libbpf (this distribution's libbpf may be too old)"
fi

previous=
[ -L "$INSTALL_ROOT/current" ] && previous=$(readlink "$INSTALL_ROOT/current")
if [ -n "$previous" ] || [ -f "$PID_FILE" ] || [ -f "$UNIT_FILE" ]; then
  say "stopping the running agent${previous:+ ($previous)}"
  stop_agent
fi

mkdir -p "$INSTALL_ROOT"
chmod 0755 "$INSTALL_ROOT"
rm -rf "${INSTALL_ROOT:?}/$version"
mv "$stage" "$INSTALL_ROOT/$version"
ln -sfn "$version" "$INSTALL_ROOT/current"
# Keep the previous version for a manual rollback (point `current` back at it); drop older ones.
for d in "$INSTALL_ROOT"/*; do
  [ -d "$d" ] && [ ! -L "$d" ] || continue
  name=${d##*/}
  [ "$name" = "$version" ] || [ "$name" = "$previous" ] || rm -rf "$d"
done

mkdir -p "$CONFIG_DIR"
chmod 0700 "$CONFIG_DIR"
if [ -n "$ca" ] && [ "$ca" != "$CA_FILE" ]; then
  cp "$ca" "$CA_FILE"
  chmod 0644 "$CA_FILE"
fi
labels_json=
if [ -n "$labels" ]; then
  old_ifs=$IFS
  IFS=,
  for kv in $labels; do
    [ -n "$kv" ] || continue
    labels_json="$labels_json${labels_json:+, }\"${kv%%=*}\": \"${kv#*=}\""
  done
  IFS=$old_ifs
  labels_json="{$labels_json}"
elif [ -f "$CONFIG_FILE" ]; then
  labels_json=$(sed -n 's/^[[:space:]]*"labels": \({.*}\),$/\1/p' "$CONFIG_FILE" | head -n 1)
fi
[ -n "$labels_json" ] || labels_json='{}'
if [ -f "$CA_FILE" ]; then ca_json="\"$CA_FILE\""; else ca_json=null; fi
old_umask=$(umask)
umask 077
cat >"$CONFIG_FILE.tmp" <<EOF
{
  "controlPlaneUrl": "$CONTROL_PLANE_URL",
  "stateDir": "$STATE_DIR",
  "labels": $labels_json,
  "caFile": $ca_json,
  "installedVersion": "$version"
}
EOF
chmod 0600 "$CONFIG_FILE.tmp"
mv "$CONFIG_FILE.tmp" "$CONFIG_FILE"

if [ "$enrolled_before" = 0 ]; then
  mkdir -p "$STATE_DIR"
  chmod 0700 "$STATE_DIR"
  for f in "$enroll_state"/*; do [ -e "$f" ] && mv "$f" "$STATE_DIR/"; done
fi
umask "$old_umask"

# ---------------------------------------------------------------- service

start_marker=0
if systemd_running; then
  cat >"$UNIT_FILE" <<'HDRCAP_UNIT_EOF'
@HDRCAP_SYSTEMD_UNIT@
HDRCAP_UNIT_EOF
  chmod 0644 "$UNIT_FILE"
  rm -f "$SUPERVISOR"
  remove_boot_start
  systemctl daemon-reload
  systemctl enable hdrcap-agent.service >/dev/null 2>&1
  since=$(date '+%Y-%m-%d %H:%M:%S')
  systemctl restart hdrcap-agent.service
  agent_log() { journalctl -u hdrcap-agent.service --since "$since" --no-pager -o cat 2>/dev/null; }
  agent_alive() { systemctl is-active --quiet hdrcap-agent.service; }
  where="journalctl -u hdrcap-agent"
else
  cat >"$SUPERVISOR" <<'HDRCAP_SUPERVISOR_EOF'
@HDRCAP_SUPERVISOR@
HDRCAP_SUPERVISOR_EOF
  chmod 0755 "$SUPERVISOR"
  touch "$LOG_FILE"
  chmod 0600 "$LOG_FILE"
  start_marker=$(wc -c <"$LOG_FILE")
  "$SUPERVISOR" --daemon
  # Started again at boot by whatever this host has: a SysV init script, else cron's @reboot.
  if command -v update-rc.d >/dev/null 2>&1 || command -v chkconfig >/dev/null 2>&1; then
    rm -f "$CRON_FILE"
    cat >"$INIT_SCRIPT" <<'HDRCAP_INIT_EOF'
@HDRCAP_INIT_SCRIPT@
HDRCAP_INIT_EOF
    chmod 0755 "$INIT_SCRIPT"
    if command -v update-rc.d >/dev/null 2>&1; then
      update-rc.d hdrcap-agent defaults >/dev/null 2>&1 || say "warning: update-rc.d could not enable $INIT_SCRIPT"
    else
      chkconfig --add hdrcap-agent >/dev/null 2>&1 || say "warning: chkconfig could not enable $INIT_SCRIPT"
    fi
    boot="at boot by $INIT_SCRIPT"
  elif [ -d /etc/cron.d ] && { command -v cron >/dev/null 2>&1 || command -v crond >/dev/null 2>&1; }; then
    printf '# hdrcap agent: written by install.sh, removed by install.sh --uninstall\n@reboot root %s --daemon\n' "$SUPERVISOR" >"$CRON_FILE"
    chmod 0644 "$CRON_FILE"
    boot="at boot by cron ($CRON_FILE)"
  else
    boot="not at boot: add '$SUPERVISOR --daemon' to this host's start-up"
  fi
  agent_log() { tail -c "+$((start_marker + 1))" "$LOG_FILE"; }
  agent_alive() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }
  where=$LOG_FILE
fi

# Wait for the agent to say it runs (connected to NATS), so a broken install fails here, loudly.
i=0
while [ $i -lt 150 ]; do
  if agent_log | grep -q '"msg":"agent running"'; then
    say "agent $version is running (service: $(if systemd_running; then echo systemd unit hdrcap-agent; else echo "supervisor, pid $(cat "$PID_FILE"), started $boot"; fi); logs: $where)"
    exit 0
  fi
  if agent_log | grep -q '"level":60'; then break; fi
  i=$((i + 1))
  sleep 0.2
done
agent_log | tail -n 20 >&2 || true
if agent_alive; then
  die 6 "agent $version is installed but did not report running within 30 s; see $where"
fi
die 6 "agent $version is installed but is not running; see $where"
