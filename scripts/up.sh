#!/usr/bin/env bash
# `make up`: run Skiff all-in-one on this machine (skiff up: a one-member
# control plane and an agent with its private containerd) in the background,
# import the test images, deploy the demo app and show how to reach it.
# `make down` (scripts/down.sh) stops and removes everything this started.
set -euo pipefail
BIN=${1:-bin/skiff}
DIR=${SKIFF_UP_DIR:-$PWD/.skiff-up}
API=${SKIFF_UP_API:-127.0.0.1:6443}
CLIENT=${SKIFF_UP_CLIENT:-127.0.0.1:2379}
PEER=${SKIFF_UP_PEER:-127.0.0.1:2380}
METRICS=${SKIFF_UP_METRICS:-127.0.0.1:2381}
DEMO=${SKIFF_UP_DEMO:-deploy/demo.yaml}
export SKIFFCONFIG="$DIR/config"
pidfile="$DIR/skiff.pid"
log="$DIR/skiff.log"

if [ "$(id -u)" -ne 0 ]; then
  echo "error: skiff up runs containers (containerd, network namespaces, cgroups): run 'sudo make up'." >&2
  exit 1
fi
mkdir -p "$DIR"
step() { printf '\n==> %s\n' "$*"; }

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

if running; then
  step "skiff up is already running (pid $(cat "$pidfile"), data in $DIR)"
else
  for addr in "$API" "$CLIENT" "$PEER"; do
    if (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
      echo "error: $addr is already in use by another program." >&2
      echo "       stop it, or choose other ports, e.g.:" >&2
      echo "       SKIFF_UP_API=127.0.0.1:16443 SKIFF_UP_CLIENT=127.0.0.1:12379 SKIFF_UP_PEER=127.0.0.1:12380 make up" >&2
      exit 1
    fi
  done
  step "starting skiff up (data in $DIR/data, log in $log)"
  if [ -f "$log" ]; then mv "$log" "$log.1"; fi
  setsid "$BIN" up --data-dir "$DIR/data" --admin-config "$SKIFFCONFIG" \
    --listen-api "$API" --listen-client "$CLIENT" --listen-peer "$PEER" --listen-metrics "$METRICS" \
    >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
fi

# Wait, with progress, until the node is Ready.
deadline=$((SECONDS + 120))
shown=0
until "$BIN" get nodes 2>/dev/null | awk 'NR > 1 && $2 == "Ready" {ok = 1} END {exit !ok}'; do
  if ! running; then
    echo; echo "error: skiff up exited; its log ($log) ends with:" >&2
    tail -n 25 "$log" >&2; rm -f "$pidfile"; exit 1
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo; echo "error: the node did not become Ready within 120s; see $log" >&2; exit 1
  fi
  # Show skiff up's own progress lines as they come.
  lines=$(grep -c ' skiff up: ' "$log" 2>/dev/null || true)
  if [ "${lines:-0}" -gt "$shown" ]; then
    grep ' skiff up: ' "$log" | tail -n +"$((shown + 1))" | sed 's/^/    /'
    shown=$lines
  fi
  sleep 0.5
done
grep ' skiff up: ' "$log" | tail -n +"$((shown + 1))" | sed 's/^/    /' || true
"$BIN" get nodes -o wide

step "importing the test images (built from the host's busybox-static; no registry needed)"
"$BIN" image build-test --out "$DIR/images" >/dev/null
"$BIN" image import --data-dir "$DIR/data/agent" "$DIR/images/skiff-busybox.tar" "$DIR/images/skiff-httpd.tar" | sed 's/^/    /'

step "deploying the demo ($DEMO)"
"$BIN" apply -f "$DEMO"
"$BIN" rollout status deployment/hello --timeout 180s

step "pods"
"$BIN" get pods -o wide

ip=$("$BIN" get pods -l app=hello -o jsonpath='{.items[0].status.podIP}')
step "a pod answers on its IP: curl -s http://$ip/"
ok=0
for _ in $(seq 1 20); do
  if body=$(curl -s --max-time 2 "http://$ip/"); then ok=1; break; fi
  sleep 0.5
done
if [ $ok = 1 ]; then echo "$body"; else echo "warning: http://$ip/ did not answer (see $log)" >&2; fi

cat <<MSG

Skiff is up: one node, cluster API at https://$API, the store's etcd v3 API on $CLIENT.
Use the CLI with:

  export SKIFFCONFIG=$SKIFFCONFIG
  $BIN get pods -o wide
  $BIN describe deployment hello
  $BIN scale deployment hello --replicas 5
  curl http://$ip/

The store speaks etcd v3, so etcdctl (Debian's etcd-client) works on it too:

  ETCDCTL_API=3 etcdctl --endpoints=$CLIENT get --prefix --keys-only /registry/pods
  ETCDCTL_API=3 etcdctl --endpoints=$CLIENT endpoint status -w table

'make down' stops Skiff and removes its pods, bridge, cgroups and containerd
(the data stays in $DIR; remove the folder to start afresh).
MSG
