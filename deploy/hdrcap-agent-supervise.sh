#!/bin/sh
# hdrcap-agent supervisor for hosts without systemd (written by install.sh). It keeps one
# agent running: restarts it whenever it exits (backing off up to 30 s while it keeps failing
# fast), records its own pid in @PID_FILE@, and on SIGTERM stops the agent (which detaches
# its BPF programs and flushes queued records) before exiting. install.sh starts it detached
# with its output appended to the agent log.
set -u
AGENT=@INSTALL_ROOT@/current/bin/hdrcap-agent
CONFIG=@CONFIG_FILE@
PID_FILE=@PID_FILE@

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

note "started (pid $$)"
delay=1
while [ "$stopping" -eq 0 ]; do
  started=$(date +%s)
  "$AGENT" service --config "$CONFIG" </dev/null &
  child=$!
  status=0
  wait "$child" || status=$?
  # A trapped signal interrupts wait; wait again until the agent has really exited.
  while kill -0 "$child" 2>/dev/null; do
    status=0
    wait "$child" || status=$?
  done
  child=
  [ "$stopping" -eq 1 ] && break
  [ $(($(date +%s) - started)) -ge 60 ] && delay=1
  note "agent exited with status $status; restarting in ${delay}s"
  sleep "$delay" &
  sleeper=$!
  wait "$sleeper" 2>/dev/null || true
  kill "$sleeper" 2>/dev/null || true
  sleeper=
  [ "$delay" -lt 30 ] && delay=$((delay * 2))
done
rm -f "$PID_FILE"
note "stopped"
