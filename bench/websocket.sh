#!/usr/bin/env bash
# WebSocket proxying, side by side in one run: echo messages/s (ping-pong, 64-byte messages)
# straight to the backend, through nginx, and through the gateway; then the RSS each proxy adds
# with 1,000 idle WebSockets open through it (aim: < 64 KiB per socket pair). Writes a Markdown
# report on stdout (bench/README.md, "WebSocket").
#   bash bench/websocket.sh            # CONNS=50 DURATION=10 ROUNDS=3 IDLE=1000
# Needs: the binary (npm run build, or OTOROSHI_BIN), nginx (Debian: apt-get install -y nginx).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init 900
CONNS=${CONNS:-50}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
IDLE=${IDLE:-1000}
[ -x "$GW_BIN" ] || die "$GW_BIN is missing: npm run build (or set OTOROSHI_BIN)"
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX_BIN" ] || die "nginx is missing (apt-get install -y nginx)"
T=$BENCH_TMP
LOAD=("$BUN" "$BENCH_DIR/websocket.ts")

BE=$(free_port); NG=$(free_port)
start_bg backend "${LOAD[@]}" serve "$BE"; BACKEND_PID=$LAST_PID
for _ in $(seq 1 100); do grep -q listening "$T/backend.log" 2>/dev/null && break; sleep 0.1; done

mkdir -p "$T/nginx"
cat >"$T/nginx/nginx.conf" <<NGINX
$([ "$(id -u)" = 0 ] && echo "user root root;")
worker_processes 1;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $T/nginx/body;
  proxy_temp_path $T/nginx/proxy;
  fastcgi_temp_path $T/nginx/fastcgi;
  uwsgi_temp_path $T/nginx/uwsgi;
  scgi_temp_path $T/nginx/scgi;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:$NG;
    location / {
      proxy_pass http://127.0.0.1:$BE;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_read_timeout 3600s;
    }
  }
}
NGINX
start_bg nginx "$NGINX_BIN" -p "$T/nginx" -e "$T/nginx/error.log" -c "$T/nginx/nginx.conf"; NGINX_PID=$LAST_PID

cat >"$T/otoroshi.yaml" <<YAML
routes:
  - id: ws
    frontend: { domains: ["*"] }
    backend: { targets: [{ hostname: 127.0.0.1, port: $BE }] }
YAML
start_bg gateway "$GW_BIN" --config "$T/otoroshi.yaml" --port 0; GW_PID=$LAST_PID
GW=""
for _ in $(seq 1 100); do
  GW=$(grep -o '"event":"server.listening","protocol":"http","host":"[^"]*","port":[0-9]*' "$T/gateway.log" 2>/dev/null | grep -o '[0-9]*$' || true)
  [ -n "$GW" ] && break; sleep 0.1
done
[ -n "$GW" ] || die "the gateway did not start: $(cat "$T/gateway.log")"
sleep 0.5

declare -A URL=([direct]="ws://127.0.0.1:$BE/" [nginx]="ws://127.0.0.1:$NG/" [gateway]="ws://127.0.0.1:$GW/")
declare -A PIDOF=([nginx]=$NGINX_PID [gateway]=$GW_PID)
log "warm-up"
for t in direct nginx gateway; do "${LOAD[@]}" echo "${URL[$t]}" "$CONNS" 2 >/dev/null; done
declare -A RES
for r in $(seq 1 "$ROUNDS"); do
  for t in direct nginx gateway; do
    out=$("${LOAD[@]}" echo "${URL[$t]}" "$CONNS" "$DURATION")
    log "round $r $t: $out"
    RES[$t]+="$out"$'\n'
  done
done
col() { printf '%s' "${RES[$1]}" | awk -v c="$2" 'NF { print $c }' | median; }

idle_rss() { # idle_rss NAME → "<rss before KiB> <rss with IDLE sockets KiB>" of the proxy's process tree
  local name=$1 pid=${PIDOF[$1]} before after fifo="$T/idle-$1.in"
  before=$(rss_kib_tree "$pid")
  mkfifo "$fifo"
  "${LOAD[@]}" idle "${URL[$name]}" "$IDLE" <"$fifo" >"$T/idle-$name.out" 2>&1 &
  local lp=$!; BENCH_PIDS+=("$lp")
  exec 7>"$fifo"
  for _ in $(seq 1 600); do grep -q "^open" "$T/idle-$name.out" 2>/dev/null && break; sleep 0.1; done
  grep -q "^open $IDLE" "$T/idle-$name.out" || die "$name: $(cat "$T/idle-$name.out")"
  sleep 2
  after=$(rss_kib_tree "$pid")
  echo >&7; exec 7>&-
  wait "$lp" 2>/dev/null || true
  echo "$before $after"
}
rss_kib_tree() { local p=$1 k; k=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status"); for c in $(pgrep -P "$p" || true); do k=$((k + $(awk '/^VmRSS:/ { print $2 }' "/proc/$c/status"))); done; echo "$k"; }

log "idle sockets: nginx"; read -r NB NA <<<"$(idle_rss nginx)"
log "idle sockets: gateway"; read -r GB GA <<<"$(idle_rss gateway)"
per() { awk -v a="$1" -v b="$2" -v n="$IDLE" 'BEGIN { printf "%.1f", (b - a) / n }'; }

echo "### WebSocket ($(date -u +%Y-%m-%d), $(nproc) vCPU, bun $("$BUN" --version), $("$NGINX_BIN" -v 2>&1 | sed 's|.*/||; s|^|nginx |'))"
echo
echo "Echo ping-pong, $CONNS connections, 64-byte messages, one in flight per connection, ${DURATION}s, median of $ROUNDS rounds; the load generator, backend (Bun.serve) and proxy share the machine."
echo
echo "| target | messages/s | p50 ms | p99 ms | × direct |"
echo "|---|---:|---:|---:|---:|"
D=$(col direct 1)
for t in direct nginx gateway; do echo "| $t | $(col "$t" 1) | $(col "$t" 2) | $(col "$t" 3) | $(ratio "$(col "$t" 1)" "$D") |"; done
echo
echo "Memory with $IDLE idle WebSockets open through the proxy (RSS of the proxy's processes, before → with them open):"
echo
echo "| proxy | RSS before | RSS with $IDLE open | per socket pair |"
echo "|---|---:|---:|---:|"
echo "| nginx (1 worker) | $((NB / 1024)) MiB | $((NA / 1024)) MiB | $(per "$NB" "$NA") KiB |"
echo "| gateway | $((GB / 1024)) MiB | $((GA / 1024)) MiB | $(per "$GB" "$GA") KiB |"
