#!/usr/bin/env bash
# End-to-end check of Skiff's etcd v3 API with Debian's etcdctl.
#
# Usage: scripts/e2e-etcdctl.sh BIN
#   Starts a 3-member Skiff cluster (BIN server ...) on loopback ports with
#   temporary data dirs, runs etcdctl against it, prints PASS/FAIL per step and
#   "N passed, M failed"; exits non-zero on any failure.
# ETCD_MODE=1 scripts/e2e-etcdctl.sh
#   Runs the same steps against a 3-member cluster of /usr/bin/etcd instead,
#   which is how the expectations were checked.
# KEEP_LOGS=1 keeps the temporary directory (member logs) for inspection.
set -uo pipefail

BIN=${1:-}
ETCD_MODE=${ETCD_MODE:-0}
ETCDCTL=${ETCDCTL:-etcdctl}
ETCD=${ETCD:-/usr/bin/etcd}
export ETCDCTL_API=3

if [ "$ETCD_MODE" != 1 ]; then
  if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
    echo "usage: $0 BIN   (path to the skiff binary; or ETCD_MODE=1 $0)" >&2
    exit 2
  fi
  BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
fi
command -v "$ETCDCTL" >/dev/null || { echo "etcdctl not found (Debian package etcd-client)" >&2; exit 2; }

TMP=$(mktemp -d /tmp/skiff-e2e.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    # Give each member 5s to exit, then kill it for good.
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [ "${KEEP_LOGS:-0}" = 1 ]; then echo "logs kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port prints a loopback port nobody listens on and that was not handed out before.
USED_PORTS=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    case "$USED_PORTS" in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      USED_PORTS="$USED_PORTS$p "
      echo "$p"
      return
    fi
  done
}

NAMES=(m0 m1 m2)
CLIENT=() PEER=()
for i in 0 1 2; do CLIENT+=("127.0.0.1:$(free_port)"); PEER+=("127.0.0.1:$(free_port)"); done
ENDPOINTS="${CLIENT[0]},${CLIENT[1]},${CLIENT[2]}"

ctl() { timeout 20 "$ETCDCTL" --endpoints="$ENDPOINTS" --dial-timeout=3s --command-timeout=8s "$@"; }
ctl1() { local ep=$1; shift; timeout 20 "$ETCDCTL" --endpoints="$ep" --dial-timeout=3s --command-timeout=8s "$@"; }

# wait_serving EP PID: poll until the member at EP answers endpoint status,
# for at most 30s, giving up at once if its process PID has exited.
wait_serving() {
  local ep=$1 pid=$2 deadline=$((SECONDS + 30))
  while [ $SECONDS -lt $deadline ]; do
    kill -0 "$pid" 2>/dev/null || break
    timeout 3 "$ETCDCTL" --endpoints="$ep" --dial-timeout=1s --command-timeout=2s endpoint status >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "member at $ep did not come up; member logs:" >&2
  for f in "$TMP"/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done
  return 1
}

start_skiff() {
  local i=$1 join=$2
  local args=(server --name "${NAMES[$i]}" --data-dir "$TMP/${NAMES[$i]}"
    --listen-client "${CLIENT[$i]}" --listen-peer "${PEER[$i]}" --no-api)
  [ -n "$join" ] && args+=(--join "$join")
  "$BIN" "${args[@]}" >"$TMP/${NAMES[$i]}.log" 2>&1 &
  PIDS+=($!)
}

start_etcd() {
  local i=$1 initial="m0=http://${PEER[0]},m1=http://${PEER[1]},m2=http://${PEER[2]}"
  "$ETCD" --name "${NAMES[$i]}" --data-dir "$TMP/${NAMES[$i]}" \
    --listen-client-urls "http://${CLIENT[$i]}" --advertise-client-urls "http://${CLIENT[$i]}" \
    --listen-peer-urls "http://${PEER[$i]}" --initial-advertise-peer-urls "http://${PEER[$i]}" \
    --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token skiff-e2e \
    >"$TMP/${NAMES[$i]}.log" 2>&1 &
  PIDS+=($!)
}

if [ "$ETCD_MODE" = 1 ]; then
  echo "== starting 3 etcd members ($($ETCD --version | head -1))"
  for i in 0 1 2; do start_etcd "$i"; done
  for i in 0 1 2; do wait_serving "${CLIENT[$i]}" "${PIDS[$i]}" || exit 1; done
else
  echo "== starting 3 skiff members ($BIN)"
  start_skiff 0 ""
  wait_serving "${CLIENT[0]}" "${PIDS[0]}" || exit 1
  start_skiff 1 "${PEER[0]}"
  wait_serving "${CLIENT[1]}" "${PIDS[1]}" || exit 1
  start_skiff 2 "${PEER[0]},${PEER[1]}"
  wait_serving "${CLIENT[2]}" "${PIDS[2]}" || exit 1
fi

# Wait until the member list shows three started members and one leader.
deadline=$((SECONDS + 30))
while [ $SECONDS -lt $deadline ]; do
  n=$(ctl member list 2>/dev/null | grep -c ', started, ')
  leaders=$(ctl endpoint status 2>/dev/null | awk -F', ' '$5 == "true"' | wc -l)
  [ "$n" = 3 ] && [ "$leaders" = 1 ] && break
  sleep 0.3
done

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$1"; }
fail() {
  FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$1"
  [ -n "${2:-}" ] && printf '      %s\n' "$2" | sed 's/^/      /' | head -20
}
# expect NAME WANT CMD...: run CMD, compare its stdout+stderr with WANT exactly.
expect() {
  local name=$1 want=$2 got; shift 2
  got=$("$@" 2>&1)
  if [ "$got" = "$want" ]; then pass "$name"; else fail "$name" "want: $(printf '%q' "$want")  got: $(printf '%q' "$got")"; fi
}
# expect_match NAME REGEX CMD...: stdout+stderr must match the extended regex.
expect_match() {
  local name=$1 re=$2 got; shift 2
  got=$("$@" 2>&1)
  if printf '%s' "$got" | grep -Eq -- "$re"; then pass "$name"; else fail "$name" "want /$re/  got: $(printf '%q' "$got")"; fi
}

echo "== etcdctl $($ETCDCTL version | head -1) against $ENDPOINTS"

# put / get / get --prefix / del
expect "put" "OK" ctl put e2e/foo bar
expect "get" $'e2e/foo\nbar' ctl get e2e/foo
expect "get through each member" $'e2e/foo\nbar\ne2e/foo\nbar\ne2e/foo\nbar' \
  sh -c "for ep in ${CLIENT[*]}; do ETCDCTL_API=3 $ETCDCTL --endpoints=\$ep get e2e/foo; done"
ctl put e2e/p/a 1 >/dev/null; ctl put e2e/p/b 2 >/dev/null; ctl put e2e/q 3 >/dev/null
expect "get --prefix" $'e2e/p/a\n1\ne2e/p/b\n2' ctl get --prefix e2e/p/
expect "get --prefix --keys-only --limit" 'e2e/p/a' ctl get --prefix --keys-only --limit=1 e2e/p/
expect "get range [e2e/p/b, e2e/r)" $'e2e/p/b\n2\ne2e/q\n3' ctl get e2e/p/b e2e/r
expect "get --prefix --limit -w json (count, more)" $'"more":true\n"count":2' \
  sh -c "ETCDCTL_API=3 $ETCDCTL --endpoints=$ENDPOINTS get --prefix --limit=1 e2e/p/ -w json | grep -o '\"more\":true\|\"count\":[0-9]*'"
expect "del" "1" ctl del e2e/foo
expect "get after del" "" ctl get e2e/foo
expect "del --prefix --prev-kv" $'2\ne2e/p/a\n1\ne2e/p/b\n2' ctl del --prefix --prev-kv e2e/p/

# txn, with the request on stdin as etcdctl's interactive mode reads it.
ctl put e2e/t/k v1 >/dev/null
txn_ok=$'value("e2e/t/k") = "v1"\n\nput e2e/t/k v2\nput e2e/t/side yes\n\nput e2e/t/k failed\n\n'
expect "txn -i (success branch)" $'SUCCESS\n\nOK\n\nOK' sh -c "printf '%s' '$txn_ok' | ETCDCTL_API=3 $ETCDCTL --endpoints=$ENDPOINTS txn -i 2>/dev/null | grep -v '^compares:\|^success requests\|^failure requests'"
expect "get after txn" $'e2e/t/k\nv2' ctl get e2e/t/k
txn_fail=$'mod("e2e/t/k") = "1"\n\nput e2e/t/k never\n\nget e2e/t/side\n\n'
expect "txn (failure branch, compare on mod revision)" $'FAILURE\n\ne2e/t/side\nyes' sh -c "printf '%s' '$txn_fail' | ETCDCTL_API=3 $ETCDCTL --endpoints=$ENDPOINTS txn"
txn_absent=$'create("e2e/t/new") = "0"\n\nput e2e/t/new created\n\n\n'
expect "txn create-if-absent on a missing key" $'SUCCESS\n\nOK' sh -c "printf '%s' '$txn_absent' | ETCDCTL_API=3 $ETCDCTL --endpoints=$ENDPOINTS txn"

# watch: a background watcher on one member, writes through another.
wlog=$TMP/watch.out
timeout 30 "$ETCDCTL" --endpoints="${CLIENT[2]}" watch --prefix e2e/w/ >"$wlog" 2>&1 &
wpid=$!
PIDS+=("$wpid")
for _ in $(seq 50); do [ -e "$wlog" ] && break; sleep 0.1; done
sleep 1 # the watch must be registered before the writes; etcdctl prints nothing until then
ctl1 "${CLIENT[0]}" put e2e/w/1 one >/dev/null
ctl1 "${CLIENT[1]}" put e2e/w/2 two >/dev/null
ctl1 "${CLIENT[0]}" del e2e/w/1 >/dev/null
want_watch=$'PUT\ne2e/w/1\none\nPUT\ne2e/w/2\ntwo\nDELETE\ne2e/w/1'
for _ in $(seq 100); do [ "$(cat "$wlog")" = "$want_watch" ] && break; sleep 0.1; done
expect "watch --prefix (live events in order)" "$want_watch" cat "$wlog"
kill "$wpid" 2>/dev/null
# watch --rev replays history.
rev1=$(ctl get e2e/w/2 -w json | grep -o '"mod_revision":[0-9]*' | cut -d: -f2)
expect "watch --rev (history replay)" $'PUT\ne2e/w/2\ntwo\nDELETE\ne2e/w/1' \
  sh -c "timeout 3 $ETCDCTL --endpoints=$ENDPOINTS watch --prefix --rev=$rev1 e2e/w/ 2>/dev/null; true"

# lease grant / keep-alive --once / timetolive --keys / list / revoke
grant=$(ctl lease grant 60 2>&1)
lease=$(printf '%s' "$grant" | awk '/granted with TTL\(60s\)/ {print $2}')
if [ -n "$lease" ]; then pass "lease grant"; else fail "lease grant" "$grant"; fi
expect "put --lease" "OK" ctl put --lease="$lease" e2e/l/key attached
expect_match "lease keep-alive --once" "^lease $lease keepalived with TTL\(60\)$" ctl lease keep-alive --once "$lease"
expect_match "lease timetolive --keys" "^lease $lease granted with TTL\(60s\), remaining\([0-9]+s\), attached keys\(\[e2e/l/key\]\)$" ctl lease timetolive --keys "$lease"
expect_match "lease list" "$lease" ctl lease list
expect "lease revoke" "lease $lease revoked" ctl lease revoke "$lease"
expect "key gone with its lease" "" ctl get e2e/l/key
expect_match "lease timetolive after revoke" "already expired" ctl lease timetolive "$lease"

# member list: three started members with their names and URLs.
ml=$(ctl member list 2>&1)
okm=1
for i in 0 1 2; do
  printf '%s\n' "$ml" | grep -E ", started, ${NAMES[$i]}, http://${PEER[$i]}, http://${CLIENT[$i]}(, false)?$" >/dev/null || okm=0
done
if [ "$okm" = 1 ] && [ "$(printf '%s\n' "$ml" | wc -l)" = 3 ]; then pass "member list"; else fail "member list" "$ml"; fi

# endpoint status on every endpoint: 3 answers, one leader, same raft term.
es=$(ctl endpoint status 2>&1)
n=$(printf '%s\n' "$es" | grep -c '^127\.0\.0\.1:')
leaders=$(printf '%s\n' "$es" | awk -F', ' '$5 == "true"' | wc -l)
terms=$(printf '%s\n' "$es" | awk -F', ' '{print $7}' | sort -u | wc -l)
if [ "$n" = 3 ] && [ "$leaders" = 1 ] && [ "$terms" = 1 ]; then pass "endpoint status (all endpoints)"; else fail "endpoint status (all endpoints)" "$es"; fi
# --cluster discovers the endpoints from the member list's client URLs.
esc=$(ctl endpoint status --cluster 2>&1)
n=$(printf '%s\n' "$esc" | grep -Ec '^http://127\.0\.0\.1:[0-9]+, [0-9a-f]+, 3\.[0-9]+\.[0-9]+, ')
leaders=$(printf '%s\n' "$esc" | awk -F', ' '$5 == "true"' | wc -l)
if [ "$n" = 3 ] && [ "$leaders" = 1 ]; then pass "endpoint status --cluster"; else fail "endpoint status --cluster" "$esc"; fi
hl=$(ctl endpoint health 2>&1)
if [ "$(printf '%s\n' "$hl" | grep -c 'is healthy')" = 3 ]; then pass "endpoint health"; else fail "endpoint health" "$hl"; fi

# compaction: compact at the current revision; older revisions are gone.
ctl put e2e/c v1 >/dev/null
old=$(ctl get e2e/c -w json | grep -o '"mod_revision":[0-9]*' | cut -d: -f2)
ctl put e2e/c v2 >/dev/null
cur=$(ctl get e2e/c -w json | grep -o '"revision":[0-9]*' | head -1 | cut -d: -f2)
expect "compaction" "compacted revision $cur" ctl compaction --physical "$cur"
expect_match "get --rev below compaction" "required revision has been compacted" ctl get e2e/c --rev="$old"
expect "get at the compaction revision" $'e2e/c\nv2' ctl get e2e/c --rev="$cur"
expect_match "compaction again below" "required revision has been compacted" ctl compaction "$old"

echo "== $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
