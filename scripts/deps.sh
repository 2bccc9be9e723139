#!/usr/bin/env bash
# Installs the system packages authgate's build and tests need (Debian), and the npm packages
# of the test OpenID Connect provider. Idempotent and quiet.
set -euo pipefail
cd "$(dirname "$0")/.."
# cmake: Pingora's zlib-ng build. nginx, caddy: the tests run authgate beside the real proxies.
# systemd: systemd-analyze checks the unit file. wrk: the load script (benches/load.sh).
# nodejs, npm: the sign-in tests run a real OpenID Connect provider (tests/oidc), the path tests
# an Express app (tests/express). chromium, chromium-driver: the page tests drive a real browser.
# postgresql: the tests start private PostgreSQL clusters (initdb, pg_ctl) of their own.
packages=(cmake nginx caddy systemd wrk chromium chromium-driver postgresql)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  # No system-wide cluster: the package would create (and start) a "main" one unless told not to.
  if [[ " ${missing[*]} " == *" postgresql "* ]]; then
    $sudo apt-get install -y -qq postgresql-common >/dev/null
    $sudo pg_conftool /etc/postgresql-common/createcluster.conf set create_main_cluster false ||
      echo "create_main_cluster = false" | $sudo tee -a /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The test provider's and the test Express app's packages, exactly as locked (the tests also
# do this when they are missing).
if [ ! -f tests/oidc/node_modules/oidc-provider/package.json ] || [ ! -f tests/oidc/node_modules/jose/package.json ]; then
  (cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
if [ ! -f tests/express/node_modules/express/package.json ]; then
  (cd tests/express && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
