#!/usr/bin/env bash
# `make down`: stop what `make up` started and remove what it made on the
# host: skiff up (and with it the Ingress router's and the API's listeners),
# its pods (containers, cgroups, network namespaces), the CNI bridge, the pod
# cgroups, the service proxy's iptables chains and the private containerd.
# The data stays.
set -euo pipefail
BIN=${1:-bin/skiff}
DIR=${SKIFF_UP_DIR:-$PWD/.skiff-up}
pidfile="$DIR/skiff.pid"
# Also the old store-only `make up`'s pidfile.
for pf in "$pidfile" "$DIR/server.pid"; do
  [ -f "$pf" ] || continue
  pid=$(cat "$pf")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then echo "skiff (pid $pid) ignored SIGTERM for 15s; killing it"; kill -KILL "$pid"; fi
    echo "stopped skiff (pid $pid)"
  else
    echo "skiff (pid $pid) was not running"
  fi
  rm -f "$pf"
done

agent="$DIR/data/agent"
if [ -d "$agent" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: removing pods, the bridge and cgroups needs root: run 'sudo make down'." >&2
    exit 1
  fi
  if [ ! -x "$BIN" ]; then go build -o "$BIN" ./cmd/skiff; fi
  echo "removing pods, the bridge and cgroups, stopping containerd"
  "$BIN" teardown-node --data-dir "$agent" 2>&1 | sed 's/^/    /'
fi

# Check that nothing is left.
left=0
if pgrep -f -- "$DIR/" >/dev/null 2>&1; then
  echo "warning: processes still running from $DIR:" >&2; pgrep -af -- "$DIR/" >&2; left=1
fi
if grep -q " $DIR/" /proc/self/mountinfo; then
  echo "warning: mounts left under $DIR:" >&2; grep " $DIR/" /proc/self/mountinfo >&2; left=1
fi
if [ -f "$agent/node.json" ]; then
  bridge=$(sed -n 's/.*"bridgeName": *"\([^"]*\)".*/\1/p' "$agent/node.json")
  cgroup=$(sed -n 's/.*"cgroupParent": *"\([^"]*\)".*/\1/p' "$agent/node.json")
  if [ -n "$bridge" ] && ip link show "$bridge" >/dev/null 2>&1; then echo "warning: bridge $bridge is still there" >&2; left=1; fi
  if [ -n "$bridge" ] && ip netns 2>/dev/null | grep -q "^$bridge-"; then echo "warning: network namespaces $bridge-* are still there" >&2; left=1; fi
  if [ -n "$cgroup" ] && ls -d /sys/fs/cgroup/*/"$cgroup" >/dev/null 2>&1; then echo "warning: cgroups */$cgroup are still there" >&2; left=1; fi
fi
if command -v iptables-save >/dev/null 2>&1 && iptables-save 2>/dev/null | grep -q '^:SKIFF-'; then
  echo "warning: service proxy chains (SKIFF-*) are still in iptables:" >&2
  iptables-save | grep '^:SKIFF-' >&2; left=1
fi
if [ -f "$DIR/ports" ] && command -v ss >/dev/null 2>&1; then
  # shellcheck disable=SC1091
  . "$DIR/ports"
  for p in "${API##*:}" "${CLIENT##*:}" "${PEER##*:}" "${METRICS##*:}" "$HTTP_PORT" "$HTTPS_PORT" 10250; do
    if [ -n "$p" ] && ss -ltnpH "sport = :$p" 2>/dev/null | grep -q .; then
      echo "warning: something still listens on port $p:" >&2; ss -ltnpH "sport = :$p" >&2; left=1
    fi
  done
fi
if [ $left = 0 ]; then
  echo "skiff is down: no processes, listeners, mounts, network namespaces, bridge, cgroups or SKIFF iptables chains left (data kept in $DIR)"
fi
