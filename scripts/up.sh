#!/usr/bin/env bash
# `make up`: start Skiff in the background on this machine and show how to use it.
# Today that is a single-member store (skiff server); the agent and the demo app
# join it as their issues land.
set -euo pipefail
BIN=${1:-bin/skiff}
DIR=${SKIFF_UP_DIR:-$PWD/.skiff-up}
CLIENT=${SKIFF_UP_CLIENT:-127.0.0.1:2379}
PEER=${SKIFF_UP_PEER:-127.0.0.1:2380}
METRICS=${SKIFF_UP_METRICS:-127.0.0.1:2381}
mkdir -p "$DIR"
pidfile="$DIR/server.pid"

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "skiff is already running (pid $(cat "$pidfile"), data in $DIR); 'make down' stops it."
else
  for addr in "$CLIENT" "$PEER"; do
    if (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
      echo "error: $addr is already in use by another program." >&2
      echo "       stop it, or choose other ports: SKIFF_UP_CLIENT=127.0.0.1:12379 SKIFF_UP_PEER=127.0.0.1:12380 make up" >&2
      exit 1
    fi
  done
  echo "starting skiff server (data in $DIR/data, log in $DIR/server.log)"
  setsid "$BIN" server --name default --data-dir "$DIR/data" \
    --listen-client "$CLIENT" --listen-peer "$PEER" --listen-metrics "$METRICS" \
    >"$DIR/server.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
fi

# Wait, with progress, until the store answers through the etcd API.
deadline=$((SECONDS + 60))
printf 'waiting for the store to elect a leader '
until ETCDCTL_API=3 etcdctl --endpoints="$CLIENT" --command-timeout=2s endpoint health >/dev/null 2>&1; do
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo; echo "error: skiff server exited; its log ($DIR/server.log) ends with:" >&2
    tail -n 20 "$DIR/server.log" >&2; rm -f "$pidfile"; exit 1
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo; echo "error: the store did not become healthy within 60s; see $DIR/server.log" >&2; exit 1
  fi
  printf '.'; sleep 0.5
done
echo " ready"
ETCDCTL_API=3 etcdctl --endpoints="$CLIENT" put /skiff/hello "world" >/dev/null
cat <<MSG

Skiff's store is up: one member, etcd v3 API on $CLIENT, metrics on http://$METRICS/metrics.
Talk to it with etcdctl (Debian's etcd-client):

  export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=$CLIENT
  etcdctl get /skiff/hello
  etcdctl put greeting hi && etcdctl get --prefix g
  etcdctl watch --prefix / &        # then put something
  etcdctl member list -w table
  etcdctl endpoint status -w table

'make down' stops it (the data stays in $DIR; remove the folder to start afresh).
MSG
