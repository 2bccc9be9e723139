#!/usr/bin/env bash
# Disk, memory and start-up with many sessions stored.
#
#   bash benches/sessions.sh            # 1,000,000 sessions (SESSIONS=... to change)
#
# Seeds a fresh database (one user, SESSIONS sessions, compacted), starts the release gateway
# on it and reports: file size per session, start-up time to the first answered health check,
# RSS after start-up, then RSS after wrk has presented 10,000 different sessions for 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
sessions=${SESSIONS:-1000000}
for tool in wrk curl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/deps.sh" >&2; exit 1; }
done
cargo build --release --quiet --bin authgate --example seed_sessions

work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

seed_started=$(date +%s%N)
target/release/examples/seed_sessions "$work/db.redb" "$sessions" "$work/tokens.txt"
seed_ms=$(( ($(date +%s%N) - seed_started) / 1000000 ))
size=$(stat -c %s "$work/db.redb")

port=$(free_port)
cat >"$work/config.toml" <<CONF
[server]
listen = ["127.0.0.1:$port"]
public_url = "http://127.0.0.1:$port"
[storage]
path = "$work/db.redb"
[log]
level = "warn"
[[routes]]
path = "/"
upstream = "whoami"
policy = "authenticated"
CONF

started=$(date +%s%N)
target/release/authgate serve --config "$work/config.toml" 2>"$work/stderr" &
pid=$!
until curl -sf -o /dev/null "http://127.0.0.1:$port/auth/health"; do
  kill -0 "$pid" 2>/dev/null || { cat "$work/stderr" >&2; exit 1; }
  sleep 0.002
done
startup_ms=$(( ($(date +%s%N) - started) / 1000000 ))
rss() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
rss_idle=$(rss)

first=$(head -n1 "$work/tokens.txt")
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: authgate_session=$first" "http://127.0.0.1:$port/app")
[ "$code" = 200 ] || { echo "a seeded session was not accepted ($code)" >&2; exit 1; }

out=$(TOKENS="$work/tokens.txt" wrk -t1 -c16 -d10s -s benches/sessions/tokens.lua "http://127.0.0.1:$port/app")
rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
rss_load=$(rss)
tokens=$(wc -l <"$work/tokens.txt")

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
printf '%-44s %s\n' "sessions stored" "$sessions" \
  "seeding (insert + compaction)" "${seed_ms} ms" \
  "database file after compaction" "$size bytes ($(( size / sessions )) bytes per session)" \
  "start-up to first health answer" "${startup_ms} ms" \
  "RSS after start-up" "${rss_idle} MiB" \
  "RSS after $tokens sessions checked (10 s)" "${rss_load} MiB" \
  "proxied req/s over those sessions" "${rps}${non2xx:+ (non-2xx: $non2xx)}"
