#!/bin/sh
# hdrcap-agent supervisor for hosts without systemd (written by install.sh). It keeps one
# agent running: restarts it whenever it exits (backing off up to 30 s while it keeps failing
# fast; at once when the agent exits with 75 after installing an upgrade), records its own
# pid in @PID_FILE@, rotates the agent log by size (copy, then truncate: every writer keeps
# appending to the same open file; @LOG_KEEP@ old files), and on SIGTERM stops the agent
# (which detaches its BPF programs and flushes queued records) before exiting.
#   hdrcap-agent-supervise            run in the foreground (output: the agent log)
#   hdrcap-agent-supervise --daemon   start detached with output appended to the log,
#                                     unless one already runs (install.sh, boot scripts)
set -u
AGENT=@INSTALL_ROOT@/current/bin/hdrcap-agent
CONFIG=@CONFIG_FILE@
PID_FILE=@PID_FILE@
LOG_FILE=@LOG_FILE@
LOG_MAX_BYTES=${HDRCAP_LOG_MAX_BYTES:-@LOG_MAX_BYTES@}
LOG_KEEP=@LOG_KEEP@
RESTART_NOW=75

running_pid() {
  pid=$(cat "$PID_FILE" 2>/dev/null || true)
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

if [ "${1:-}" = --daemon ]; then
  if pid=$(running_pid); then
    echo "hdrcap-agent-supervise: already running (pid $pid)" >&2
    exit 0
  fi
  old_umask=$(umask)
  umask 077
  touch "$LOG_FILE"
  umask "$old_umask"
  if command -v setsid >/dev/null 2>&1; then
    setsid "$0" </dev/null >>"$LOG_FILE" 2>&1 &
  else
    nohup "$0" </dev/null >>"$LOG_FILE" 2>&1 &
  fi
  exit 0
fi

child=
sleeper=
stopping=0
stop() {
  stopping=1
  if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; fi
  if [ -n "$sleeper" ]; then kill "$sleeper" 2>/dev/null || true; fi
}
trap stop TERM INT HUP
echo $$ > "$PID_FILE"
note() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) hdrcap-agent-supervise: $*"; }

# Whether process $1 still runs (a zombie does not); reads /proc without forking.
alive() {
  line=
  read -r line 2>/dev/null <"/proc/$1/stat" || return 1
  case ${line##*) } in Z* | X*) return 1 ;; esac
  return 0
}

rotate_log() {
  [ -f "$LOG_FILE" ] || return 0
  size=$(wc -c <"$LOG_FILE" 2>/dev/null || echo 0)
  [ "$size" -gt "$LOG_MAX_BYTES" ] || return 0
  i=$LOG_KEEP
  while [ "$i" -gt 1 ]; do
    if [ -f "$LOG_FILE.$((i - 1))" ]; then mv -f "$LOG_FILE.$((i - 1))" "$LOG_FILE.$i"; fi
    i=$((i - 1))
  done
  cp -p "$LOG_FILE" "$LOG_FILE.1" && : >"$LOG_FILE"
  note "rotated the log ($size bytes) to $LOG_FILE.1"
}

# One short sleep that a signal can cut short.
nap() {
  sleep "$1" &
  sleeper=$!
  wait "$sleeper" 2>/dev/null || true
  kill "$sleeper" 2>/dev/null || true
  sleeper=
}

note "started (pid $$)"
delay=1
while [ "$stopping" -eq 0 ]; do
  rotate_log
  started=$(date +%s)
  "$AGENT" service --config "$CONFIG" </dev/null &
  child=$!
  # sh cannot wait for "the agent or a timer", so poll once a second (also the rotation clock).
  ticks=0
  while [ "$stopping" -eq 0 ] && alive "$child"; do
    nap 1
    ticks=$((ticks + 1))
    if [ $((ticks % 30)) -eq 0 ]; then rotate_log; fi
  done
  status=0
  wait "$child" || status=$?
  # A trapped signal interrupts wait; wait again until the agent has really exited.
  while kill -0 "$child" 2>/dev/null; do
    status=0
    wait "$child" || status=$?
  done
  child=
  [ "$stopping" -eq 1 ] && break
  if [ "$status" -eq "$RESTART_NOW" ]; then
    note "agent exited to restart onto $(readlink @INSTALL_ROOT@/current 2>/dev/null || echo '?'); starting it now"
    delay=1
    continue
  fi
  [ $(($(date +%s) - started)) -ge 60 ] && delay=1
  note "agent exited with status $status; restarting in ${delay}s"
  nap "$delay"
  [ "$delay" -lt 30 ] && delay=$((delay * 2))
done
rm -f "$PID_FILE"
note "stopped"
