#!/usr/bin/env bash
# `make down`: stop what `make up` started.
set -euo pipefail
DIR=${SKIFF_UP_DIR:-$PWD/.skiff-up}
pidfile="$DIR/server.pid"
if [ ! -f "$pidfile" ]; then echo "nothing to stop (no $pidfile)"; exit 0; fi
pid=$(cat "$pidfile")
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then echo "skiff server (pid $pid) ignored SIGTERM for 10s; killing it"; kill -KILL "$pid"; fi
  echo "stopped skiff server (pid $pid); data kept in $DIR"
else
  echo "skiff server (pid $pid) was not running"
fi
rm -f "$pidfile"
