#!/usr/bin/env bash
# Installs the Debian packages Skiff's tests, benchmarks and `make up` need, when missing.
# Usage: scripts/deps.sh [package...]   (default: everything)
set -euo pipefail
want=("$@")
if [ ${#want[@]} -eq 0 ]; then
  want=(etcd-server etcd-client containerd runc containernetworking-plugins busybox-static iptables iproute2 curl docker-registry)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "skiff: missing Debian packages: ${missing[*]}" >&2
  echo "       install them as root: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts etcd, containerd and docker-registry (the registry the image
# pull tests run on loopback) as services on install; Skiff runs its own.
for svc in etcd containerd docker-registry; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true
  elif command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
