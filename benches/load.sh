#!/usr/bin/env bash
# Side-by-side load: authgate against nginx on the same upstream, all on loopback.
#
#   bash benches/load.sh                       # from the repository root; about 6 minutes
#   DURATION=5s CONNECTIONS=64 THREADS=2 bash benches/load.sh
#   SKIP_LOGIN=1 bash benches/load.sh          # without the login flood
#   BIN=/path/to/authgate SEED=/path/to/seed_sessions BARE=/path/to/bare_proxy bash benches/load.sh
#                                              # another build instead of this tree's
#   ALLOC_BIN=/path/to/authgate bash benches/load.sh
#                                              # also: allocations per request, from a build
#                                              # with --features count-allocations
#   BEFORE_BIN=/old/authgate BEFORE_SEED=/old/seed_sessions SKIP_LOGIN=1 bash benches/load.sh
#                                              # also: /app/x at rest and with logouts on
#                                              # both builds, alternating, in one run
#
# Builds the release binary and examples/bare_proxy.rs (a Pingora proxy with nothing but
# `upstream_peer`, the yardstick for authgate's own cost), starts an nginx upstream answering
# "ok", then side by side with 1 thread and with 2 (nginx: 1 and 2 workers): nginx proxy_pass,
# the bare Pingora proxy, and authgate's public route, authenticated route (session cookie and
# API token) and /auth/verify; and nginx auth_request in front of authgate. wrk runs against
# each, one after the other, with the same settings (default -t1 -c32 -d10s --latency, each
# after a discarded 2 s warm-up). Prints req/s, p50 and p99 per row and the ratios the
# performance targets are stated in. Then the latency each proxy adds over the upstream at a
# steady rate of half the authenticated peak (benches/load/paced.lua). One row repeats the
# authenticated route over the sessions of 1000 users, at rest and while 50 logouts a second
# end other sessions (all seeded into the database before start by examples/seed_sessions.rs),
# for the cost of what a logout makes the gateway forget. The last part floods /auth/login and
# compares the login rate with what argon2 allows on this machine, the authenticated route's
# p99 at the steady rate during the flood with its p99 at rest, and one login at a time with a
# CPU-bound loop of another process per core beside it with one login alone.
#
# Exits 0 when everything ran (a target that is not met is printed, not an error); non-zero
# when something did not build, start or answer as expected. The nginx configs and the wrk
# login script are in benches/load/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

duration=${DURATION:-10s}
connections=${CONNECTIONS:-32}
threads=${THREADS:-1}
warmup=2s

fail() {
  echo "load.sh: $*" >&2
  exit 1
}

for tool in wrk nginx curl; do
  command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/deps.sh"
done
nginx_bin=$(command -v nginx)

work=$(mktemp -d)
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${pg_ctl:-}" ] && "${as_pg[@]}" "$pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Quiet unless it fails (cargo prints warnings even with --quiet). Waits for the build lock
# when someone else is building. BIN and SEED name binaries built elsewhere instead.
if [ -z "${BIN:-}" ] || [ -z "${SEED:-}" ] || [ -z "${BARE:-}" ]; then
  if ! cargo build --release --quiet --bin authgate --example seed_sessions --example bare_proxy \
    >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    fail "cargo build --release failed"
  fi
fi
bin=${BIN:-$root/target/release/authgate}
seed=${SEED:-$root/target/release/examples/seed_sessions}
bare=${BARE:-$root/target/release/examples/bare_proxy}
[ -x "$bin" ] || fail "$bin was not built"
[ -x "$seed" ] || fail "$seed was not built"
[ -x "$bare" ] || fail "$bare was not built"

# --- ports and processes --------------------------------------------------------------------

# A random port in 20000-31999 (below the kernel's ephemeral range, so no outgoing connection
# holds it) that nothing answers on and that is not taken by this script.
taken=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    [[ $taken == *" $p "* ]] && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
    echo "$p"
    return
  done
}
# take_ports NAME...: a free port in each variable NAME, none of them the same.
take_ports() {
  local name p
  for name in "$@"; do
    p=$(free_port)
    printf -v "$name" '%s' "$p"
    taken+="$p "
  done
}
take_ports up_port proxy_port gw_port authreq_port proxy2_port gw1_port bare1_port bare2_port

# wait_listen PORT PID NAME LOG: until something accepts on PORT (10 s at most).
wait_listen() {
  local i
  for ((i = 0; i < 1000; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    if ! kill -0 "$2" 2>/dev/null; then
      cat "$4" >&2 2>/dev/null || true
      fail "$3 exited during start-up"
    fi
    sleep 0.01
  done
  cat "$4" >&2 2>/dev/null || true
  fail "$3 did not listen on 127.0.0.1:$1 within 10 s"
}

# start_nginx NAME PORT [TEMPLATE WORKERS]: benches/load/TEMPLATE.conf (default NAME.conf) with
# its placeholders filled in (WORKERS worker processes, default 1), in the foreground (daemon
# off) as a background job of this script, so cleanup can stop it by pid.
start_nginx() {
  local name=$1 port=$2 template=${3:-$1} workers=${4:-1}
  mkdir -p "$work/$name-tmp"
  sed -e "s|@DIR@|$work|g" -e "s|@TMP@|$work/$name-tmp|g" -e "s|@PORT@|$port|g" \
    -e "s|@NAME@|$name|g" -e "s|@WORKERS@|$workers|g" -e "s|@UPSTREAM@|$up_port|g" \
    -e "s|@AUTHGATE@|$gw_port|g" "benches/load/$template.conf" >"$work/$name.conf"
  "$nginx_bin" -p "$work" -c "$work/$name.conf" -e "$work/$name-error.log" -g "daemon off;" \
    </dev/null >"$work/$name.out" 2>&1 &
  pids+=($!)
  wait_listen "$port" "$!" "nginx ($name)" "$work/$name.out"
}

# status [curl args...] URL: the HTTP status of one request (000 when nothing answered).
# curl's own complaint, if any, goes to $work/curl.err.
status() {
  curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$@" 2>"$work/curl.err" || true
}
# expect CODE WHAT [curl args...] URL: fail unless the request answers CODE.
expect() {
  local want=$1 what=$2 got
  shift 2
  got=$(status "$@")
  [ "$got" = "$want" ] && return
  cat "$work/curl.err" >&2
  [ -s "${gw_log:-}" ] && { echo "authgate's log (last lines):" >&2; tail -n 20 "$gw_log" >&2; }
  fail "$what answered $got, expected $want (curl $*)"
}

start_nginx upstream "$up_port"
start_nginx proxy "$proxy_port" proxy 1
start_nginx proxy2 "$proxy2_port" proxy 2

# start_bare PORT THREADS: the bare Pingora proxy (examples/bare_proxy.rs) in authgate's shape.
start_bare() {
  "$bare" "127.0.0.1:$1" "127.0.0.1:$up_port" "$2" </dev/null >"$work/bare$2.log" 2>&1 &
  pids+=($!)
  wait_listen "$1" "$!" "bare_proxy ($2 threads)" "$work/bare$2.log"
}
start_bare "$bare1_port" 1
start_bare "$bare2_port" 2

user=bench
flood_user=flood
password=bench-password-0123456789
# Sessions for the logouts row, of another user, seeded before start: 50 a second for the
# warm-up and the measurement, and then some.
logout_sessions=${LOGOUT_SESSIONS:-6000}

# start_gateway TAG BIN SEED PORT [STORAGE EXTRA]: authgate from BIN on PORT, with its own
# database seeded by SEED (the same build's examples/seed_sessions), an owner, a session and an
# API token. STORAGE replaces the [storage] keys (then nothing is seeded), EXTRA is appended and
# $gw_threads, when set, is its server.threads. Sets gw_pid, cookie and token; the log is
# $work/TAG.log, the seeded sessions' tokens $work/TAG-tokens.txt.
gw_threads=""
start_gateway() {
  local tag=$1 gbin=$2 gseed=$3 port=$4 url=http://127.0.0.1:$4 code i
  local storage=${5:-"path = \"$work/$tag.redb\""} extra=${6:-}
  # Only what differs from the shipped config.toml is set; every other key keeps its
  # documented default (threads = cores, hash_concurrency = cores, hash_queue = 64, ...).
  cat >"$work/$tag.toml" <<CONF
# Written by benches/load.sh; everything not set here is the default of config.toml.
[server]
listen = ["127.0.0.1:$port"]
public_url = "$url"
trusted_proxies = ["127.0.0.1/32"]
${gw_threads:+threads = $gw_threads}

[storage]
$storage

[log]
level = "warn"

$extra

[[routes]]
host = "*"
path = "/public"
upstream = "127.0.0.1:$up_port"
policy = "public"

[[routes]]
host = "*"
path = "/app"
upstream = "127.0.0.1:$up_port"
policy = "authenticated"
CONF
  if [ -z "${5:-}" ]; then
    "$gseed" "$work/$tag.redb" "$logout_sessions" "$work/$tag-tokens.txt" >"$work/$tag-seed.log" 2>&1 ||
      { cat "$work/$tag-seed.log" >&2; fail "seeding sessions failed ($tag)"; }
  fi
  if ! "$gbin" check-config --config "$work/$tag.toml" >"$work/$tag-check.log" 2>&1; then
    cat "$work/$tag-check.log" >&2
    fail "the generated authgate config does not validate ($tag)"
  fi
  # The login floods sign in as an account of their own: each sign-in beyond
  # session.max_per_user ends that user's oldest session, which must not be the rows' one.
  printf '%s\n' "$password" | "$gbin" user add --config "$work/$tag.toml" --email flood@example.com \
    --username "$flood_user" --password-stdin >"$work/$tag-user.log" 2>&1 ||
    { cat "$work/$tag-user.log" >&2; fail "authgate user add failed ($tag)"; }
  env -u RUST_LOG "$gbin" serve --config "$work/$tag.toml" </dev/null >"$work/$tag.log" 2>&1 &
  gw_pid=$!
  pids+=("$gw_pid")
  wait_listen "$port" "$gw_pid" "authgate ($tag)" "$work/$tag.log"
  for ((i = 0; i < 500; i++)); do
    [ "$(status "$url/auth/health")" = 200 ] && break
    sleep 0.01
  done
  gw_log=$work/$tag.log
  expect 200 "authgate /auth/health ($tag)" "$url/auth/health"
  # The owner account, then a login for the session cookie (name=value from Set-Cookie).
  expect 201 "POST /auth/setup ($tag)" -H 'Content-Type: application/json' \
    -d "{\"email\":\"bench@example.com\",\"username\":\"$user\",\"password\":\"$password\"}" \
    "$url/auth/setup"
  code=$(curl -s -D "$work/$tag-login.headers" -o /dev/null -w '%{http_code}' --max-time 10 \
    -H 'Content-Type: application/json' -d "{\"identifier\":\"$user\",\"password\":\"$password\"}" \
    "$url/auth/login" || true)
  [ "$code" = 200 ] || fail "POST /auth/login answered $code, expected 200 ($tag)"
  cookie=$(tr -d '\r' <"$work/$tag-login.headers" |
    awk 'tolower($1) == "set-cookie:" { split($2, kv, ";"); if (kv[1] ~ /=./) { print kv[1]; exit } }')
  [ -n "$cookie" ] || fail "POST /auth/login set no cookie ($tag)"
  token=$(curl -s --max-time 10 -H "Cookie: $cookie" -H 'Content-Type: application/json' \
    -d '{"name":"bench"}' "$url/auth/tokens" | grep -o '"token":"agt_[^"]*"' | cut -d'"' -f4 || true)
  [ -n "$token" ] || fail "POST /auth/tokens gave no token ($tag)"
}

gw_threads=1
start_gateway authgate1 "$bin" "$seed" "$gw1_port"
gw1=http://127.0.0.1:$gw1_port
gw1_cookie=$cookie gw1_token=$token
gw_threads=2
start_gateway authgate "$bin" "$seed" "$gw_port"
gw_threads=""
gw=http://127.0.0.1:$gw_port
main_pid=$gw_pid main_cookie=$cookie main_token=$token

start_nginx auth_request "$authreq_port"

# --- the rows ---------------------------------------------------------------------------

# What nginx's auth_request sends /auth/verify (the only headers that endpoint reads).
verify_headers=(-H "X-Original-URL: http://127.0.0.1:$gw_port/app/x" -H "X-Original-Method: GET")

# Authentication must really be applied where it is measured: no cookie, no 200.
expect 401 "authgate /app/x without the cookie" "$gw/app/x"
expect 401 "authgate /auth/verify without the cookie" "${verify_headers[@]}" "$gw/auth/verify"
expect 401 "nginx auth_request without the cookie" "http://127.0.0.1:$authreq_port/app/x"

names=() rps=() p50=() p99=() notes=()
# at[KEY]: the index of the row recorded under KEY.
declare -A at=()

# wrk_parse FILE: "req/s p50-ms p99-ms" from wrk --latency output.
wrk_parse() {
  awk '
    function ms(v) {
      if (v ~ /us$/) return v / 1000
      if (v ~ /ms$/) return v + 0
      if (v ~ /s$/) return v * 1000
      if (v ~ /m$/) return v * 60000
      if (v ~ /h$/) return v * 3600000
      return v + 0
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    $1 == "Requests/sec:" { rps = $2 }
    END { if (rps == "") exit 1; printf "%.0f %.2f %.2f\n", rps, p50, p99 }
  ' "$1"
}
# wrk_problems FILE: non-2xx/3xx responses and socket errors, or nothing.
wrk_problems() {
  awk '
    /Non-2xx or 3xx responses:/ { out = out sep $NF " non-2xx"; sep = "; " }
    /Socket errors:/ { sub(/^ *Socket errors: */, ""); out = out sep "socket errors: " $0; sep = "; " }
    END { printf "%s", out }
  ' "$1"
}
# wrk_socket_errors FILE: the socket errors alone, or nothing.
wrk_socket_errors() {
  awk '/Socket errors:/ { sub(/^ *Socket errors: */, ""); printf "socket errors: %s", $0 }' "$1"
}

# row KEY NAME URL [wrk/curl header args...]: require a 200, warm up, measure, record as KEY.
# With row_script set, wrk runs that script too and the check request uses the first session
# of $SESSION_TOKENS. With pace_ms set, each connection waits that long after every answer
# (benches/load/paced.lua) and row_connections replaces the connection count: a steady rate
# below the peak, for latency rather than throughput.
row_script=""
pace_ms=""
row_connections=""
row() {
  local key=$1 name=$2 url=$3 out parsed r a b script=() c=${row_connections:-$connections}
  shift 3
  [ -n "$pace_ms" ] && script=(-s benches/load/paced.lua)
  if [ -n "$row_script" ]; then
    script=(-s "$row_script")
    expect 200 "$name" -H "Cookie: authgate_session=$(head -n 1 "$SESSION_TOKENS")" "$url"
  else
    expect 200 "$name" "$@" "$url"
  fi
  out="$work/row${#names[@]}.txt"
  PACE_MS=$pace_ms wrk -t"$threads" -c"$c" -d"$warmup" "${script[@]}" "$@" "$url" >/dev/null 2>&1 ||
    fail "wrk warm-up failed for $name"
  PACE_MS=$pace_ms wrk -t"$threads" -c"$c" -d"$duration" --latency "${script[@]}" "$@" "$url" >"$out" 2>&1 ||
    { cat "$out" >&2; fail "wrk failed for $name"; }
  parsed=$(wrk_parse "$out") || { cat "$out" >&2; fail "could not read wrk's output for $name"; }
  read -r r a b <<<"$parsed"
  at[$key]=${#names[@]}
  names+=("$name") rps+=("$r") p50+=("$a") p99+=("$b")
  notes+=("$(wrk_problems "$out")")
}

# RPS KEY: the req/s of the row recorded as KEY; P50 / P99 likewise.
RPS() { echo "${rps[${at[$1]}]}"; }
P50() { echo "${p50[${at[$1]}]}"; }
P99() { echo "${p99[${at[$1]}]}"; }

# thread_ticks PID: "name ticks" per thread of PID (user + system CPU, in clock ticks).
thread_ticks() {
  local t
  for t in /proc/"$1"/task/*; do
    awk '{ sub(/^[^(]*\(/, ""); n = $0; sub(/\).*/, "", n); sub(/^[^)]*\) /, "");
           print n, $12 + $13 }' "$t/stat" 2>/dev/null || true
  done
}

expect 401 "authgate (1 thread) /app/x without the cookie" "$gw1/app/x"
row up "upstream (nginx, direct)" "http://127.0.0.1:$up_port/app/x"
# The same rows with one thread (nginx: one worker) and with two.
for t in 1 2; do
  if [ "$t" = 1 ]; then
    g=$gw1 c=$gw1_cookie k=$gw1_token np=$proxy_port bp=$bare1_port
  else
    g=$gw c=$main_cookie k=$main_token np=$proxy2_port bp=$bare2_port
  fi
  row "nginx$t" "nginx proxy_pass, ${t}w" "http://127.0.0.1:$np/app/x"
  row "bare$t" "bare Pingora, ${t}t" "http://127.0.0.1:$bp/app/x"
  row "public$t" "authgate public, ${t}t" "$g/public/x"
  [ "$t" = 2 ] && { thread_ticks "$main_pid" >"$work/ticks-before.txt"; ticks_from=$(date +%s%N); }
  row "auth$t" "authgate cookie /app, ${t}t" "$g/app/x" -H "Cookie: $c"
  [ "$t" = 2 ] && { thread_ticks "$main_pid" >"$work/ticks-after.txt"; ticks_to=$(date +%s%N); }
  row "token$t" "authgate token /app, ${t}t" "$g/app/x" -H "Authorization: Bearer $k"
  row "verify$t" "authgate /auth/verify, ${t}t" "$g/auth/verify" -H "Cookie: $c" "${verify_headers[@]}"
done
cookie=$main_cookie
row authreq "nginx auth_request + authgate" "http://127.0.0.1:$authreq_port/app/x" -H "Cookie: $cookie"

# Latency at half the authenticated route's peak (2 threads): the same steady rate through
# each proxy and straight to the upstream, so each proxy's p50/p99 minus the upstream's is
# what it adds. Each connection sends a request every PACE ms (less its answer's time: wrk
# waits for the answer first), so the rate is a little under the aim; the row shows it.
pace=2
half_rate=$(( $(RPS auth2) / 2 ))
pace_ms=$pace row_connections=$(( (half_rate * pace + 999) / 1000 ))
row_connections=$((row_connections < 1 ? 1 : row_connections))
row lat_up "paced: upstream (direct)" "http://127.0.0.1:$up_port/app/x"
row lat_nginx "paced: nginx proxy_pass, 2w" "http://127.0.0.1:$proxy2_port/app/x"
row lat_bare "paced: bare Pingora, 2t" "http://127.0.0.1:$bare2_port/app/x"
row lat_auth "paced: authgate cookie /app, 2t" "$gw/app/x" -H "Cookie: $main_cookie"
paced_connections=$row_connections
pace_ms="" row_connections=""

# Logouts in the background: `logouts_start TAG URL` ends the next unused seeded sessions of
# gateway TAG at about 50 a second for a row's warm-up and measurement (a slice of its tokens
# of its own, so every logout really ends a session); `logouts_stop` waits for it and sets
# logout_rate and logout_problems.
logout_for=$(( ${duration%s} + ${warmup%s} + 2 ))
declare -A logout_next=()
logouts_start() {
  local tag=$1 url=$2 first last
  first=${logout_next[$tag]:-1}
  last=$((first + 60 * logout_for - 1))
  logout_next[$tag]=$((last + 1))
  sed -n "${first},${last}p" "$work/$tag-tokens.txt" >"$work/logout-slice.txt"
  [ "$(wc -l <"$work/logout-slice.txt")" -gt $((50 * logout_for)) ] ||
    fail "too few seeded sessions left for $tag: raise LOGOUT_SESSIONS"
  LOGOUT_TOKENS=$work/logout-slice.txt wrk -t1 -c1 -d"${logout_for}s" -s benches/load/logout.lua \
    "$url/auth/logout" >"$work/logouts.txt" 2>&1 &
  logout_pid=$!
  pids+=("$logout_pid")
}
logouts_stop() {
  wait "$logout_pid" || { cat "$work/logouts.txt" >&2; fail "wrk failed for the logouts"; }
  logout_rate=$(awk '/Requests\/sec:/ { printf "%.0f", $2 }' "$work/logouts.txt")
  logout_problems=$(wrk_problems "$work/logouts.txt")
}

# The authenticated route with the sessions of many users in use (the last $in_use seeded
# sessions, never logged out, in turn), at rest and while other sessions end at 50 a second.
in_use=${SESSIONS_IN_USE:-1000}
first_token=$(head -n 1 "$work/authgate-tokens.txt")
[ -n "$first_token" ] || fail "no seeded session tokens"
expect 200 "a seeded session" -H "Cookie: authgate_session=$first_token" "$gw/app/x"
tail -n "$in_use" "$work/authgate-tokens.txt" >"$work/authgate-inuse.txt"
export SESSION_TOKENS=$work/authgate-inuse.txt
row_script=benches/load/sessions.lua
row sessions "authgate /app/x, $in_use sessions" "$gw/app/x"
logouts_start authgate "$gw"
row sessions_logouts "  the same + 50 logouts/s" "$gw/app/x"
logouts_stop
row_script=""
# (wrk builds one request it never sends before the first; the third is certainly sent.)
third_token=$(sed -n 3p "$work/authgate-tokens.txt")
expect 401 "a seeded session after its logout" -H "Cookie: authgate_session=$third_token" "$gw/app/x"
row7_logouts=$logout_rate row7_problems=$logout_problems

# --- the shared backend ------------------------------------------------------------------------

# With PostgreSQL's server installed (scripts/deps.sh), the authenticated route again on a
# gateway whose state is in a private PostgreSQL cluster (started here, on loopback), beside the
# redb rows of this run, and how many operations it sent the database per 10,000 proxied
# requests (authgate_store_queries_total before and after the row; one of them is the second
# metrics read itself). SKIP_PG=1 leaves it out.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
pg_row=""
if [ "${SKIP_PG:-0}" != 1 ] && [ -x "$pg_bin/initdb" ]; then
  take_ports pg_port pg_gw_port pg_metrics_port
  mkdir -p "$work/pg"
  as_pg=()
  if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root: its own user, in a folder it may enter.
    chmod 755 "$work"
    chown postgres: "$work/pg"
    as_pg=(runuser -u postgres --)
  fi
  "${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U postgres -A trust >"$work/pg-init.log" 2>&1 ||
    { cat "$work/pg-init.log" >&2; fail "initdb failed"; }
  pg_ctl=$pg_bin/pg_ctl
  "${as_pg[@]}" "$pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -t 30 \
    -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1" start >"$work/pg-start.log" 2>&1 ||
    { cat "$work/pg-start.log" "$work/pg/server.log" >&2; fail "PostgreSQL did not start"; }
  start_gateway pg "$bin" "$seed" "$pg_gw_port" \
    "backend = \"postgres\"
url = \"postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable\"" \
    "[security]
encryption_key_file = \"$work/pg.key\"

[metrics]
listen = \"127.0.0.1:$pg_metrics_port\""
  pg_cookie=$cookie
  cookie=$main_cookie gw_log=$work/authgate.log
  pg_queries() {
    curl -s --max-time 5 "http://127.0.0.1:$pg_metrics_port/metrics" |
      awk '$1 == "authgate_store_queries_total" { print $2 }'
  }
  # What the sign-in left to write (its audit entries) is written within a second or two.
  sleep 3
  q_before=$(pg_queries)
  row pg "authgate /app/x on PostgreSQL" "http://127.0.0.1:$pg_gw_port/app/x" -H "Cookie: $pg_cookie"
  q_after=$(pg_queries)
  pg_row=${at[pg]}
  pg_requests=$(awk '/ requests in / { print $1 }' "$work/row$pg_row.txt")
  pg_per_10k=$(awk -v a="$q_after" -v b="$q_before" -v n="$pg_requests" \
    'BEGIN { printf "%.3f", (n > 0) ? (a - b - 1) * 10000 / n : -1 }')
fi

# --- before and after, side by side -----------------------------------------------------------

# With BEFORE_BIN and BEFORE_SEED (another build's authgate and examples/seed_sessions), the
# authenticated route at rest and with 50 logouts a second is measured on both builds in the
# same run, alternating (ABBA) for ROUNDS rounds (3), and the medians are compared.
compare=""
if [ -n "${BEFORE_BIN:-}" ]; then
  [ -x "$BEFORE_BIN" ] && [ -x "${BEFORE_SEED:-}" ] ||
    fail "BEFORE_BIN and BEFORE_SEED must both name executables"
  take_ports before_port
  start_gateway before "$BEFORE_BIN" "$BEFORE_SEED" "$before_port"
  before_url=http://127.0.0.1:$before_port
  cookie=$main_cookie gw_log=$work/authgate.log
  rounds=${ROUNDS:-3}
  declare -A cmp_rps=() cmp_p99=()
  tail -n "$in_use" "$work/before-tokens.txt" >"$work/before-inuse.txt"
  # measure TAG URL WITH_LOGOUTS: one warmed-up wrk run over the gateway's sessions in use;
  # appends to cmp_*[TAG/rest|logouts].
  measure() {
    local tag=$1 url=$2 busy=$3 key out parsed r a b files
    key=$tag/$([ "$busy" = 1 ] && echo logouts || echo rest)
    # This tree's gateway keeps its files under the name "authgate".
    files=$([ "$tag" = after ] && echo authgate || echo "$tag")
    export SESSION_TOKENS=$work/$files-inuse.txt
    expect 200 "$key" -H "Cookie: authgate_session=$(head -n 1 "$SESSION_TOKENS")" "$url/app/x"
    [ "$busy" = 1 ] && logouts_start "$files" "$url"
    out=$work/cmp.txt
    wrk -t"$threads" -c"$connections" -d"$warmup" -s benches/load/sessions.lua "$url/app/x" >/dev/null 2>&1 ||
      fail "wrk warm-up failed for $key"
    wrk -t"$threads" -c"$connections" -d"$duration" --latency -s benches/load/sessions.lua "$url/app/x" >"$out" 2>&1 ||
      { cat "$out" >&2; fail "wrk failed for $key"; }
    [ "$busy" = 1 ] && logouts_stop
    parsed=$(wrk_parse "$out") || { cat "$out" >&2; fail "could not read wrk's output for $key"; }
    read -r r a b <<<"$parsed"
    cmp_rps[$key]+="$r " cmp_p99[$key]+="$b "
  }
  for ((round = 1; round <= rounds; round++)); do
    for busy in 0 1; do
      if ((round % 2)); then
        measure after "$gw" "$busy"
        measure before "$before_url" "$busy"
      else
        measure before "$before_url" "$busy"
        measure after "$gw" "$busy"
      fi
    done
  done
  compare=1
fi

# --- allocations per request ------------------------------------------------------------------

# With ALLOC_BIN (this tree's authgate built with `--features count-allocations`): the public,
# cookie and token rows once more, briefly, on a gateway from it, and the allocations each
# request made (authgate_allocations_total over authgate_requests_total, both from /metrics).
allocs=""
if [ -n "${ALLOC_BIN:-}" ]; then
  [ -x "$ALLOC_BIN" ] || fail "ALLOC_BIN must name an executable"
  take_ports alloc_port alloc_metrics_port
  saved=("$cookie" "$token" "$gw_pid" "$gw_log")
  start_gateway allocs "$ALLOC_BIN" "$seed" "$alloc_port" "" \
    "[metrics]
listen = \"127.0.0.1:$alloc_metrics_port\""
  alloc_url=http://127.0.0.1:$alloc_port
  # totals: "allocations requests" from the gateway's /metrics.
  totals() {
    curl -s --max-time 5 "http://127.0.0.1:$alloc_metrics_port/metrics" | awk '
      /^authgate_allocations_total / { a = $2 }
      /^authgate_requests_total\{/ { r += $2 }
      END { if (a == "") exit 1; printf "%d %d\n", a, r }'
  }
  # allocs_row NAME URL [wrk args...]: allocations per request over a short run.
  allocs_row() {
    local name=$1 url=$2 a0 r0 a1 r1
    shift 2
    expect 200 "$name (allocations)" "$@" "$url"
    read -r a0 r0 <<<"$(totals)" || fail "no allocation count in /metrics (ALLOC_BIN)"
    wrk -t1 -c"$connections" -d3s "$@" "$url" >/dev/null 2>&1 || fail "wrk failed for $name (allocations)"
    read -r a1 r1 <<<"$(totals)" || fail "no allocation count in /metrics (ALLOC_BIN)"
    allocs+=$(awk -v n="$name" -v a=$((a1 - a0)) -v r=$((r1 - r0)) \
      'BEGIN { printf "  %-42s %6.1f   (%d requests)\n", n, (r > 0) ? a / r : 0, r }')
    allocs+=$'\n'
  }
  allocs_row "public" "$alloc_url/public/x"
  allocs_row "authenticated (cookie)" "$alloc_url/app/x" -H "Cookie: $cookie"
  allocs_row "authenticated (token)" "$alloc_url/app/x" -H "Authorization: Bearer $token"
  cookie=${saved[0]} token=${saved[1]} gw_pid=${saved[2]} gw_log=${saved[3]}
fi

# --- login flood ----------------------------------------------------------------------------

cores=$(nproc)
login=""
if [ "${SKIP_LOGIN:-0}" != 1 ]; then
  # The argon2 bound is cores / seconds-per-hash: the most logins/s the hash pool
  # (hash_concurrency = cores) allows if the CPU did nothing else. Seconds per hash is taken
  # two ways, both of which contain one full hash with the gateway's parameters:
  #  - `authgate hash-password` (the very function the gateway runs), each of 11 runs timed on
  #    its own, the median (other work on the machine makes a few runs take several times as
  #    long) minus the median start-up of the same binary exiting at once (`--help`). A fresh
  #    process still pays for faulting in argon2's 19 MiB, so this reads a little high.
  #  - one login at a time over one connection (wrk -c1, 5 s): the hash plus the gateway's own
  #    per-login work (HTTP, JSON, the session write), so this too can only read high.
  # The smaller of the two is used: it is the tighter upper bound of the hash's cost, so the
  # bound is never made easier to meet than the machine allows. The flood that is compared
  # with it runs alone; a second flood beside the authenticated route measures that route's
  # p99 (and the login rate under mixed load, for information).
  median_ns() { # COMMAND...: median wall time of 11 runs, in ns
    local i s e
    for ((i = 0; i < 11; i++)); do
      s=$(date +%s%N)
      "$@" >/dev/null || return 1
      e=$(date +%s%N)
      echo $((e - s))
    done | sort -n | sed -n 6p
  }
  hash_once() { printf '%s\n' "$password" | "$bin" hash-password --password-stdin; }
  hash_run_ns=$(median_ns hash_once) || fail "authgate hash-password failed"
  start_ns=$(median_ns "$bin" hash-password --help) || fail "authgate hash-password --help failed"
  cli_hash_ns=$((hash_run_ns - start_ns))
  ((cli_hash_ns > 0)) || fail "could not time argon2 (got $cli_hash_ns ns per hash)"

  login_url=$gw/auth/login
  export LOGIN_USER=$flood_user LOGIN_PASSWORD=$password
  lua=benches/load/login.lua
  expect 200 "POST /auth/login" -H 'Content-Type: application/json' \
    -d "{\"identifier\":\"$flood_user\",\"password\":\"$password\"}" "$login_url"
  flood_c=$((2 * cores))
  flood_cmd=(wrk -t"$threads" -c"$flood_c" -d"$duration" --latency -s "$lua" "$login_url")
  # The authenticated route at the paced rate of the latency rows, at rest and beside a flood.
  auth_cmd=(env PACE_MS="$pace" wrk -t1 -c"$paced_connections" -d"$duration" --latency
    -s benches/load/paced.lua -H "Cookie: $cookie" "$gw/app/x")

  wrk -t1 -c1 -d5s --latency -s "$lua" "$login_url" >"$work/login1.txt" 2>&1 ||
    { cat "$work/login1.txt" >&2; fail "wrk failed for the single-connection logins"; }
  "${flood_cmd[@]}" >"$work/flood.txt" 2>&1 ||
    { cat "$work/flood.txt" >&2; fail "wrk failed for the login flood"; }
  "${auth_cmd[@]}" >"$work/idle.txt" 2>&1 ||
    { cat "$work/idle.txt" >&2; fail "wrk failed for the authenticated route at rest"; }
  "${flood_cmd[@]}" >"$work/flood2.txt" 2>&1 &
  flood_pid=$!
  pids+=("$flood_pid")
  "${auth_cmd[@]}" >"$work/during.txt" 2>&1 &
  during_pid=$!
  pids+=("$during_pid")
  wait "$flood_pid" || { cat "$work/flood2.txt" >&2; fail "wrk failed for the second login flood"; }
  wait "$during_pid" || { cat "$work/during.txt" >&2; fail "wrk failed during the login flood"; }
  kill -0 "$main_pid" 2>/dev/null || { cat "$work/authgate.log" >&2; fail "authgate died in the login flood"; }
  expect 200 "authgate /app/x after the login flood" -H "Cookie: $cookie" "$gw/app/x"
  # Sign-ins on a busy host: one login at a time while a CPU-bound loop per core, of another
  # process at normal priority, runs beside the gateway.
  hogs=()
  for ((i = 0; i < cores; i++)); do
    sh -c 'while :; do :; done' &
    hogs+=($!)
    pids+=($!)
  done
  wrk -t1 -c1 -d5s --latency --timeout 30s -s "$lua" "$login_url" >"$work/login-hogs.txt" 2>&1 ||
    { cat "$work/login-hogs.txt" >&2; fail "wrk failed for the logins beside CPU hogs"; }
  kill "${hogs[@]}" 2>/dev/null || true
  wait "${hogs[@]}" 2>/dev/null || true
  login=1
fi

# --- report ---------------------------------------------------------------------------------

git_rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ "$git_rev" != unknown ] && ! git diff --quiet HEAD 2>/dev/null && git_rev+=" (working tree modified)"
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
wrk_v=$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }' || true)
nginx_v=$("$nginx_bin" -v 2>&1 | sed 's|.*nginx/||')

echo "machine: $cores cores, ${cpu:-unknown CPU}, Linux $(uname -r); wrk $wrk_v, nginx $nginx_v"
echo "commit:  $git_rev"
[ -n "${BIN:-}" ] && echo "binary:  $bin (BIN)"
echo "load:    wrk -t$threads -c$connections -d$duration --latency, one row at a time, each after a $warmup warm-up"
echo
printf '%-38s %10s %9s %9s\n' "" "req/s" "p50 ms" "p99 ms"
for i in "${!names[@]}"; do
  printf '%-38s %10s %9s %9s' "$((i + 1)). ${names[$i]}" "${rps[$i]}" "${p50[$i]}" "${p99[$i]}"
  [ -n "${notes[$i]}" ] && printf '   WARNING: %s' "${notes[$i]}"
  echo
done

# ratio_line LABEL NUMERATOR DENOMINATOR OP TARGET: the ratio and "met" / "NOT MET" against
# the target (no target: informational).
ratio_line() {
  local label=$1 num=$2 den=$3 op=$4 target=$5
  awk -v l="$label" -v n="$num" -v d="$den" -v op="$op" -v t="$target" 'BEGIN {
    r = (d > 0) ? n / d : 0
    if (t == "") { printf "%-44s %6.2f   (informational)\n", l, r; exit }
    met = (op == ">=") ? (r >= t) : (r <= t)
    printf "%-44s %6.2f   target %s %.2f   %s\n", l, r, op, t, met ? "met" : "NOT MET"
  }'
}
echo
for t in 1 2; do
  echo "${t} thread(s) (nginx: ${t} worker(s)):"
  ratio_line "  bare Pingora / nginx proxy_pass" "$(RPS bare$t)" "$(RPS nginx$t)" "" ""
  ratio_line "  public / bare Pingora" "$(RPS public$t)" "$(RPS bare$t)" ">=" 0.95
  ratio_line "  authenticated (cookie) / bare Pingora" "$(RPS auth$t)" "$(RPS bare$t)" ">=" 0.90
  ratio_line "  authenticated (token) / bare Pingora" "$(RPS token$t)" "$(RPS bare$t)" ">=" 0.90
  if [ "$t" = 1 ]; then
    ratio_line "  authenticated (cookie) / nginx proxy_pass" "$(RPS auth1)" "$(RPS nginx1)" ">=" 0.70
  else
    ratio_line "  authenticated (cookie) / nginx proxy_pass" "$(RPS auth2)" "$(RPS nginx2)" "" ""
  fi
  ratio_line "  /auth/verify / nginx proxy_pass" "$(RPS verify$t)" "$(RPS nginx$t)" "" ""
done
echo "CPU of authgate's busiest threads during row $((${at[auth2]} + 1)) (as top -H shows it):"
awk -v ns=$((ticks_to - ticks_from)) -v hz="$(getconf CLK_TCK)" '
  NR == FNR { before[$1 " " FNR] = $2; names[FNR] = $1; next }
  { used = $2 - before[$1 " " FNR]; if (used > 0) printf "  %-16s %5.1f%%\n", $1, 100 * used / hz / (ns / 1e9) }
' "$work/ticks-before.txt" "$work/ticks-after.txt" | sort -k2 -rn | head -n 4
echo "2 threads / 1 thread (every process shares the $(nproc) cores: see docs/performance.md):"
for k in nginx bare public auth token verify; do
  ratio_line "  $k" "$(RPS ${k}2)" "$(RPS ${k}1)" "" ""
done
ratio_line "nginx auth_request / nginx proxy_pass, 1w" "$(RPS authreq)" "$(RPS nginx1)" "" ""
echo "latency added over the upstream at about half the authenticated peak" \
  "($(RPS lat_auth) req/s over $paced_connections connections, one request per ${pace} ms each):"
for k in nginx bare auth; do
  awk -v n="$k" -v a="$(P50 lat_$k)" -v b="$(P99 lat_$k)" -v ua="$(P50 lat_up)" -v ub="$(P99 lat_up)" \
    'BEGIN { printf "  %-42s p50 +%.2f ms   p99 +%.2f ms\n", n, a - ua, b - ub }'
done
echo "logouts beside row $((${at[sessions_logouts]} + 1)): ${row7_logouts:-?}/s${row7_problems:+   WARNING: $row7_problems}"
ratio_line "$in_use sessions with logouts / at rest (req/s)" "$(RPS sessions_logouts)" "$(RPS sessions)" "" ""
ratio_line "$in_use sessions with logouts / at rest (p99)" "$(P99 sessions_logouts)" "$(P99 sessions)" "" ""
if [ -n "$pg_row" ]; then
  ratio_line "authenticated on PostgreSQL / on redb" "$(RPS pg)" "$(RPS auth2)" ">=" 0.95
  echo "database operations per 10,000 proxied requests on PostgreSQL: $pg_per_10k (the row's warm-up and measurement: $((q_after - q_before - 1)) in all)"
fi

if [ -n "$allocs" ]; then
  echo "allocations per request (a build with --features count-allocations: $ALLOC_BIN):"
  printf '%s' "$allocs"
fi

if [ -n "$compare" ]; then
  median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
  echo
  echo "before and after, side by side: /app/x over $in_use sessions, $rounds rounds alternating, medians"
  echo "  (before: $BEFORE_BIN)"
  printf '  %-34s %10s %9s   %s\n' "" "req/s" "p99 ms" "(each round's req/s)"
  for key in before/rest after/rest before/logouts after/logouts; do
    printf '  %-34s %10s %9s   (%s)\n' "$key" "$(median <<<"${cmp_rps[$key]}")" \
      "$(median <<<"${cmp_p99[$key]}")" "${cmp_rps[$key]% }"
  done
  for tag in before after; do
    ratio_line "  $tag: with logouts / at rest (req/s)" "$(median <<<"${cmp_rps[$tag/logouts]}")" \
      "$(median <<<"${cmp_rps[$tag/rest]}")" "" ""
    ratio_line "  $tag: with logouts / at rest (p99)" "$(median <<<"${cmp_p99[$tag/logouts]}")" \
      "$(median <<<"${cmp_p99[$tag/rest]}")" "" ""
  done
fi

if [ -n "$login" ]; then
  # flood_parse FILE: "successful-logins/s non-2xx p99-ms" (successes = requests - non-2xx).
  flood_parse() {
    awk '
      function ms(v) {
        if (v ~ /us$/) return v / 1000
        if (v ~ /ms$/) return v + 0
        if (v ~ /s$/) return v * 1000
        return v * 60000
      }
      / requests in / { n = $1; s = $4; sub(/s,?$/, "", s) }
      /Non-2xx or 3xx responses:/ { bad = $NF }
      $1 == "99%" { p99 = ms($2) }
      END { if (s + 0 <= 0) exit 1; printf "%.1f %d %.1f\n", (n - bad) / s, bad + 0, p99 }' "$1"
  }
  # flood_line LABEL FILE
  flood_line() {
    local r bad p
    read -r r bad p < <(flood_parse "$2") || fail "could not read wrk's output ($2)"
    printf '  %-42s %8s /s       p99 %s ms' "$1" "$r" "$p"
    ((bad > 0)) && printf '   WARNING: %s non-2xx (503: hash queue full)' "$bad"
    local sock
    sock=$(wrk_socket_errors "$2")
    [ -n "$sock" ] && printf '   WARNING: %s' "$sock"
    echo
  }
  read -r one_rps _ one_p99 < <(wrk_parse "$work/login1.txt") || fail "could not read wrk's output (login1)"
  one_ns=$(awk -v r="$one_rps" 'BEGIN { printf "%.0f", (r > 0) ? 1e9 / r : 0 }')
  hash_ns=$cli_hash_ns
  source="hash-password"
  ((one_ns > 0 && one_ns < hash_ns)) && { hash_ns=$one_ns; source="1-connection login"; }
  read -r flood_rps _ _ < <(flood_parse "$work/flood.txt")
  read -r _ _ idle_p99 < <(wrk_parse "$work/idle.txt")
  read -r during_rps _ during_p99 < <(wrk_parse "$work/during.txt")
  bound=$(awk -v ns="$hash_ns" -v c="$cores" 'BEGIN { printf "%.1f", c / (ns / 1e9) }')
  echo
  echo "login flood: ${flood_cmd[*]:0:4} POST /auth/login with the correct password"
  awk -v cli="$cli_hash_ns" -v one="$one_ns" -v rps="$one_rps" -v p99="$one_p99" 'BEGIN {
    printf "  %-42s %8.1f ms\n", "argon2id hash: hash-password, median of 11", cli / 1e6
    printf "  %-42s %8.1f ms    (%.1f logins/s, p99 %.1f ms)\n", "one login at a time over 1 connection", one / 1e6, rps, p99
  }'
  printf '  %-42s %8s /s       (%s cores / %s ms, from the %s)\n' "argon2 bound" "$bound" "$cores" \
    "$(awk -v ns="$hash_ns" 'BEGIN { printf "%.1f", ns / 1e6 }')" "$source"
  flood_line "logins, flood alone (-c$flood_c)" "$work/flood.txt"
  flood_line "logins, flood beside paced /app/x" "$work/flood2.txt"
  ratio_line "logins/s (flood alone) / argon2 bound" "$flood_rps" "$bound" ">=" 0.90
  printf '  %-42s %8s req/s    p99 %s ms\n' "/app/x paced, at rest" "$(wrk_parse "$work/idle.txt" | cut -d' ' -f1)" "$idle_p99"
  printf '  %-42s %8s req/s    p99 %s ms' "/app/x paced, during the flood" "$during_rps" "$during_p99"
  problems=$(wrk_problems "$work/during.txt")
  [ -n "$problems" ] && printf '   WARNING: %s' "$problems"
  echo
  ratio_line "p99 during flood / p99 at rest" "$during_p99" "$idle_p99" "<=" 2.00
  read -r hog_rps hog_p50 hog_p99 < <(wrk_parse "$work/login-hogs.txt") ||
    fail "could not read wrk's output (login-hogs)"
  printf '  %-42s %8s ms    p99 %s ms  (%s logins/s; alone: %s ms)\n' \
    "one login beside $cores CPU-bound loops, p50" "$hog_p50" "$hog_p99" "$hog_rps" \
    "$(awk -v n="$one_ns" 'BEGIN { printf "%.1f", n / 1e6 }')"
  ratio_line "login beside CPU hogs / alone (p50)" "$hog_p50" \
    "$(awk -v n="$one_ns" 'BEGIN { printf "%.3f", n / 1e6 }')" "" ""
fi
