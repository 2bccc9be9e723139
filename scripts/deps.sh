#!/usr/bin/env bash
# Installs the system packages authgate's build and tests need (Debian). Idempotent and quiet.
set -euo pipefail
# cmake: Pingora's zlib-ng build. nginx, caddy: the tests run authgate beside the real proxies.
# systemd: systemd-analyze checks the unit file. wrk: the load script (benches/load.sh).
packages=(cmake nginx caddy systemd wrk)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
