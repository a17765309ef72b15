#!/usr/bin/env bash
# `make up`: run Skiff all-in-one on this machine (skiff up: a one-member
# control plane and an agent with its private containerd) in the background,
# import the test images, deploy the demo app (a Deployment, a NodePort
# Service and an Ingress), wait until it answers through the Ingress router
# and the NodePort, and show how to reach it.
# `make down` (scripts/down.sh) stops and removes everything this started.
set -euo pipefail
BIN=${1:-bin/skiff}
DIR=${SKIFF_UP_DIR:-$PWD/.skiff-up}
API=${SKIFF_UP_API:-127.0.0.1:6443}
CLIENT=${SKIFF_UP_CLIENT:-127.0.0.1:2379}
PEER=${SKIFF_UP_PEER:-127.0.0.1:2380}
METRICS=${SKIFF_UP_METRICS:-127.0.0.1:2381}
DEMO=${SKIFF_UP_DEMO:-deploy/demo.yaml}
HTTP_PORT=${SKIFF_UP_HTTP_PORT:-80}    # the Ingress router, on every address of the node
HTTPS_PORT=${SKIFF_UP_HTTPS_PORT:-443}
export SKIFFCONFIG="$DIR/config"
pidfile="$DIR/skiff.pid"
portsfile="$DIR/ports" # what the running skiff up listens on, for a second make up and make down
log="$DIR/skiff.log"

if [ "$(id -u)" -ne 0 ]; then
  echo "error: skiff up runs containers (containerd, network namespaces, cgroups): run 'sudo make up'." >&2
  exit 1
fi
mkdir -p "$DIR"
step() { printf '\n==> %s\n' "$*"; }

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

in_use() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

if running; then
  step "skiff up is already running (pid $(cat "$pidfile"), data in $DIR)"
  # shellcheck disable=SC1090
  if [ -f "$portsfile" ]; then . "$portsfile"; fi
else
  for addr in "$API" "$CLIENT" "$PEER"; do
    if in_use "$addr"; then
      echo "error: $addr is already in use by another program." >&2
      echo "       stop it, or choose other ports, e.g.:" >&2
      echo "       SKIFF_UP_API=127.0.0.1:16443 SKIFF_UP_CLIENT=127.0.0.1:12379 SKIFF_UP_PEER=127.0.0.1:12380 make up" >&2
      exit 1
    fi
  done
  for p in "$HTTP_PORT" "$HTTPS_PORT"; do
    if in_use "127.0.0.1:$p"; then
      echo "error: port $p (the Ingress router's) is already in use by another program." >&2
      echo "       stop it, or choose other ports, e.g.:" >&2
      echo "       SKIFF_UP_HTTP_PORT=8080 SKIFF_UP_HTTPS_PORT=8443 make up" >&2
      exit 1
    fi
  done
  step "starting skiff up (data in $DIR/data, log in $log)"
  if [ -f "$log" ]; then mv "$log" "$log.1"; fi
  setsid "$BIN" up --data-dir "$DIR/data" --admin-config "$SKIFFCONFIG" \
    --listen-api "$API" --listen-client "$CLIENT" --listen-peer "$PEER" --listen-metrics "$METRICS" \
    --ingress-http-port "$HTTP_PORT" --ingress-https-port "$HTTPS_PORT" \
    >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  printf 'API=%s\nCLIENT=%s\nPEER=%s\nMETRICS=%s\nHTTP_PORT=%s\nHTTPS_PORT=%s\n' \
    "$API" "$CLIENT" "$PEER" "$METRICS" "$HTTP_PORT" "$HTTPS_PORT" >"$portsfile"
fi

# Wait, with progress, until the node is Ready.
deadline=$((SECONDS + 120))
shown=0
until "$BIN" get nodes 2>/dev/null | awk 'NR > 1 && $2 == "Ready" {ok = 1} END {exit !ok}'; do
  if ! running; then
    echo; echo "error: skiff up exited; its log ($log) ends with:" >&2
    tail -n 25 "$log" >&2; rm -f "$pidfile"
    echo "('make down' removes what it had started: containerd, pods, bridge)" >&2; exit 1
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

# wait_http WHAT URL: poll URL until it answers 200, showing progress, and
# give up (with the log's end) after 90s or when skiff up exits.
wait_http() {
  local what=$1 url=$2 deadline=$((SECONDS + 90)) code
  printf '    %s: %s ' "$what" "$url"
  until curl -sf --noproxy '*' --max-time 2 -o /dev/null "$url"; do
    if ! running; then
      echo; echo "error: skiff up exited; its log ($log) ends with:" >&2
      tail -n 25 "$log" >&2; rm -f "$pidfile"
      echo "('make down' removes what it had started: containerd, pods, bridge)" >&2; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      code=$(curl -s --noproxy '*' --max-time 2 -o /dev/null -w '%{http_code}' "$url" || true)
      echo; echo "error: $url did not answer 200 within 90s (last answer: HTTP ${code:-none}); see $log" >&2
      exit 1
    fi
    printf '.'; sleep 0.5
  done
  echo " answers"
}

node_ip=$("$BIN" get pods -l app=hello -o jsonpath='{.items[0].status.hostIP}')
node_port=$("$BIN" get service hello -o jsonpath='{.spec.ports[0].nodePort}')
port_suffix() { if [ "$1" = 80 ]; then echo ""; else echo ":$1"; fi; }
ingress_url="http://localhost$(port_suffix "$HTTP_PORT")/"
ingress_node_url="http://$node_ip$(port_suffix "$HTTP_PORT")/"
nodeport_url="http://$node_ip:$node_port/"

step "waiting until the demo answers through the Ingress and the NodePort"
wait_http "Ingress hello (router on every node address)" "$ingress_url"
wait_http "Ingress hello on the node IP" "$ingress_node_url"
wait_http "Service hello, NodePort $node_port" "$nodeport_url"

step "pods"
"$BIN" get pods -o wide

step "the demo answers: curl -s $ingress_url"
curl -s --noproxy '*' --max-time 5 "$ingress_url"

cat <<MSG

Skiff is up: one node, cluster API at https://$API, the store's etcd v3 API on $CLIENT.
The demo app (deploy/demo.yaml) answers on:

  $ingress_url            Ingress hello, through Skiff's Ingress router (also $ingress_node_url)
  $nodeport_url      Service hello, type NodePort (every node address)

Use the CLI with:

  export SKIFFCONFIG=$SKIFFCONFIG
  $BIN get pods -o wide
  $BIN get service,ingress
  $BIN describe deployment hello
  $BIN scale deployment hello --replicas 5
  curl -s $ingress_url

The store speaks etcd v3, so etcdctl (Debian's etcd-client) works on it too:

  ETCDCTL_API=3 etcdctl --endpoints=$CLIENT get --prefix --keys-only /registry/pods
  ETCDCTL_API=3 etcdctl --endpoints=$CLIENT endpoint status -w table

'make down' stops Skiff and removes its pods, bridge, cgroups, iptables rules and
containerd (the data stays in $DIR; remove the folder to start afresh).
MSG
