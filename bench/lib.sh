# Shared helpers for bench/*.sh (sourced, not run). Everything listens on 127.0.0.1; every
# process a script starts is recorded here and stopped by PID on exit; the whole script is
# bounded by a watchdog.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
BUN="$ROOT/node_modules/.bin/bun"
DENO="$ROOT/node_modules/.bin/deno"
# The gateway under test: the compiled binary (OTOROSHI_BIN overrides, e.g. a build of a branch).
GW_BIN="${OTOROSHI_BIN:-$ROOT/dist/otoroshi-lite}"

BENCH_PIDS=()
BENCH_TMP=""
BENCH_WATCHDOG=""

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Stops one process we started: TERM, then KILL after 5 s.
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
  local i
  for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${BENCH_PIDS[$i]}"; done
  BENCH_PIDS=()
  if [ -n "$BENCH_WATCHDOG" ]; then kill "$BENCH_WATCHDOG" 2>/dev/null || true; wait "$BENCH_WATCHDOG" 2>/dev/null || true; fi
  if [ -n "$BENCH_TMP" ] && [ -z "${KEEP_TMP:-}" ]; then rm -rf "$BENCH_TMP"; fi
  if [ -n "$BENCH_TMP" ] && [ -n "${KEEP_TMP:-}" ]; then log "kept $BENCH_TMP"; fi
}

# bench_init MAX_SECONDS: temp dir, cleanup trap and a watchdog that ends the script after
# MAX_SECONDS (the trap then stops everything it started).
bench_init() {
  local max=$1
  BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/otoroshi-bench.XXXXXX")"
  trap bench_cleanup EXIT
  trap 'log "interrupted"; exit 130' INT TERM
  local main=$$
  (
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    sleep "$max" &
    s=$!
    wait "$s"
    echo "[watchdog] ${max}s limit reached, stopping" >&2
    kill -TERM "$main"
  ) &
  BENCH_WATCHDOG=$!
}

# start_bg NAME CMD...: runs CMD in the background, output in $BENCH_TMP/NAME.log; sets LAST_PID.
start_bg() {
  local name=$1; shift
  "$@" >"$BENCH_TMP/$name.log" 2>&1 &
  LAST_PID=$!
  BENCH_PIDS+=("$LAST_PID")
}

# A port nobody listens on: random in 20000-31999, below the kernel's ephemeral range (32768+)
# so that no outgoing connection holds it, and checked by connecting to it.
free_port() {
  local p i
  for i in $(seq 1 100); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  die "no free port found"
}

# pick_port VAR: a free port, distinct from every port picked before in this script.
PICKED_PORTS=()
pick_port() {
  local p
  while :; do p=$(free_port); [[ " ${PICKED_PORTS[*]} " == *" $p "* ]] || break; done
  PICKED_PORTS+=("$p")
  printf -v "$1" '%s' "$p"
}

# wait_http URL [SECONDS]: until the URL answers with any HTTP status.
wait_http() {
  local url=$1 max=${2:-20} i code
  for i in $(seq 1 $((max * 20))); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null || true)
    [ -n "$code" ] && [ "$code" != "000" ] && return 0
    sleep 0.05
  done
  return 1
}

# expect_status CODE CURL_ARGS...: fails the script when the answer is not CODE.
expect_status() {
  local want=$1; shift
  local got
  got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" || true)
  [ "$got" = "$want" ] || die "expected HTTP $want from curl $*, got $got"
}

# wrk and nginx come from Debian; installed only when missing (not part of CI).
ensure_tools() {
  local need=()
  command -v wrk >/dev/null || need+=(wrk)
  if [ "${1:-}" = nginx ] && ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then need+=(nginx-light); fi
  command -v curl >/dev/null || need+=(curl)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]} from Debian"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null || die "could not install ${need[*]}"
  fi
  [ -x "$BUN" ] || die "$BUN missing: run npm install"
}

ensure_binary() {
  if [ ! -x "$GW_BIN" ]; then
    log "building $GW_BIN (npm run build)"
    (cd "$ROOT" && npm run build >/dev/null) || die "build failed"
  fi
}

# Generates a key pair entry for keypairs: with the binary's own keygen.
keygen_yaml() { "$GW_BIN" keygen --alg "$1" --id "$2"; }

# run_wrk URL DURATION [LUA]: prints "rps p50_ms p99_ms bad requests" (bad = non-2xx/3xx +
# socket errors; requests = completed in the run).
run_wrk() {
  local url=$1 dur=$2 lua=${3:-} out
  local args=(-t1 -c"${WRK_CONNECTIONS:-50}" -d"$dur" --timeout 5s --latency)
  [ -n "$lua" ] && args+=(-s "$lua")
  out=$(wrk "${args[@]}" "$url" 2>&1) || { echo "$out" >&2; echo "0 0 0 1 0"; return; }
  echo "$out" >>"$BENCH_TMP/wrk.log"
  echo "$out" | awk '
    function ms(v) {
      if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
      if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
      if (v ~ /m$/)  { sub(/m$/, "", v);  return v * 60000 }
      if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
      return v + 0
    }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    /^Requests\/sec:/ { rps = $2 }
    / requests in / { reqs = $1 }
    /Non-2xx or 3xx responses:/ { bad += $NF }
    /Socket errors:/ { gsub(/,/, ""); bad += $4 + $6 + $8 + $10 }
    END { printf "%.0f %.2f %.2f %d %d\n", rps, p50, p99, bad, reqs }'
}

# median of the numbers on stdin (one per line); "–" when there are none.
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "–"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ratio A B with two decimals ("–" when B is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "–" || b == "–" || b + 0 == 0) print "–"; else printf "%.2f", a / b }'; }

# verdict VALUE TARGET → "met" / "missed".
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { if (v == "–") print "n/a"; else print (v + 0 >= t + 0) ? "met" : "**missed**" }'; }

# thousands: 12345 → 12.3k
kfmt() { awk -v v="$1" 'BEGIN { if (v == "–") print v; else if (v >= 1000) printf "%.1fk", v / 1000; else printf "%.0f", v }'; }

# RSS of a PID in MiB (one decimal), from /proc.
rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }

machine_line() {
  local cpu
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) vCPU ($cpu), $(uname -sr), bun $("$BUN" --version), wrk $(wrk -v 2>&1 | awk 'NR==1 { print $2 }')"
}

# write_nginx_conf DIR LISTEN_PORT BACKEND_PORT WORKERS: DIR/nginx.conf, a default-install shape
# (worker_processes as a packaged nginx.conf: auto) with a keep-alive upstream and the same
# X-Forwarded-* work the gateway does. Run with: nginx -p DIR -e DIR/error.log -c DIR/nginx.conf
write_nginx_conf() {
  local d=$1 listen=$2 backend=$3 workers=$4
  mkdir -p "$d"
  cat >"$d/nginx.conf" <<NGINX
# generated by bench/lib.sh
$([ "$(id -u)" = 0 ] && echo "user root root;")
worker_processes $workers;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  client_body_temp_path $d/body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  upstream backend {
    server 127.0.0.1:$backend;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$listen;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
    }
  }
}
NGINX
}

# Sum of the RSS of a process and its children (nginx master + workers), MiB.
rss_tree_mib() {
  local pids="$1 $(pgrep -P "$1" 2>/dev/null | tr '\n' ' ')" p total=0 kb
  for p in $pids; do
    kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  awk -v t="$total" 'BEGIN { printf "%.1f", t / 1024 }'
}

# CPU time (user + system, all threads) of a process and its direct children, in clock ticks.
cpu_ticks() {
  local p total=0 t
  for p in "$1" $(pgrep -P "$1" 2>/dev/null); do
    # Fields after the ")" of the command name: utime and stime are the 12th and 13th.
    t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }')
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# cpu_us_per_req TICKS_DELTA REQUESTS → CPU µs per request, one decimal.
cpu_us_per_req() { awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "–" }'; }
