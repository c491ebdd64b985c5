#!/usr/bin/env bash
# Prices the pieces of the gateway's request path over HTTP: bench/ablation.ts variants (a bare
# Bun.serve + fetch proxy plus one piece of gateway work each, then all of them), next to the
# gateway binary's open route, all against the same backend in one run. wrk -t1 -c50, ROUNDS
# rounds of DURATION, variant order rotated each round, medians. Cost per piece = difference of
# 1/throughput against the bare variant, in µs per request (on this 2-vCPU box wrk and the
# backend share the cores, so read these as relative, not absolute, CPU costs).
#
#   bash bench/ablation.sh              # ~4 min
#   SIZE=64k bash bench/ablation.sh     # the same with 64 KiB bodies
#   VARIANTS="none ip signal" bash bench/ablation.sh
#
# Env: DURATION (5s), ROUNDS (3), SIZE (small | 64k), VARIANTS, OTOROSHI_BIN, MAX_SECONDS (900).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
SIZE=${SIZE:-small}
VARIANTS=${VARIANTS:-"none ip signal abort timer reqhdr reshdr opts hono direct ip,signal,abort,timer,reqhdr,reshdr,opts,hono"}

bench_init "${MAX_SECONDS:-900}"
ensure_tools
ensure_binary
T=$BENCH_TMP

USED=()
pick_port() { local p; while :; do p=$(free_port); [[ " ${USED[*]} " == *" $p "* ]] || break; done; USED+=("$p"); printf -v "$1" '%s' "$p"; }
pick_port BE
start_bg backend "$BUN" "$BENCH_DIR/backend.ts" "$BE"
wait_http "http://127.0.0.1:$BE/small" 20 || die "backend did not start"

NAMES=(); URLS=()
i=0
for v in $VARIANTS; do
  pick_port P
  start_bg "v$i" "$BUN" "$BENCH_DIR/ablation.ts" "$P" "$BE" "$v"
  wait_http "http://127.0.0.1:$P/small" 20 || die "variant $v did not start: $(cat "$T/v$i.log")"
  NAMES+=("$v"); URLS+=("http://127.0.0.1:$P/$SIZE")
  i=$((i + 1))
done
pick_port GW
cat >"$T/otoroshi.yaml" <<YAML
server: { port: $GW, host: 127.0.0.1 }
routes:
  - id: open
    frontend: { domains: ["127.0.0.1/open"] }
    backend: { targets: [{ hostname: 127.0.0.1, port: $BE }] }
YAML
start_bg gateway "$GW_BIN" --config "$T/otoroshi.yaml" --port "$GW"
wait_http "http://127.0.0.1:$GW/open/small" 20 || die "gateway did not start"
NAMES+=("gateway-open"); URLS+=("http://127.0.0.1:$GW/open/$SIZE")

N=${#NAMES[@]}
RESULTS="$T/results.tsv"
: >"$RESULTS"
for k in $(seq 0 $((N - 1))); do run_wrk "${URLS[$k]}" 1s >/dev/null; done
for r in $(seq 1 "$ROUNDS"); do
  for j in $(seq 0 $((N - 1))); do
    k=$(((j + r) % N))
    read -r rps p50 p99 bad <<<"$(run_wrk "${URLS[$k]}" "$DURATION")"
    printf '%s\t%s\t%s\n' "${NAMES[$k]}" "$r" "$rps" >>"$RESULTS"
    log "round $r ${NAMES[$k]}: $rps req/s$([ "$bad" = 0 ] || echo " errors: $bad")"
  done
done

med() { awk -F'\t' -v n="$1" '$1 == n { print $3 }' "$RESULTS" | median; }
BASE=$(med none)
echo "## Ablation ($SIZE body)"
echo
echo "$(machine_line)"
echo "wrk -t1 -c${WRK_CONNECTIONS:-50} -d$DURATION, median of $ROUNDS rounds, order rotated each round."
echo
echo "| variant | req/s | × bare | µs/request over bare |"
echo "|---|---|---|---|"
for n in "${NAMES[@]}"; do
  v=$(med "$n")
  echo "| $n | $(kfmt "$v") | $(ratio "$v" "$BASE") | $(awk -v v="$v" -v b="$BASE" 'BEGIN { if (v > 0 && b > 0) printf "%+.1f", 1e6 / v - 1e6 / b; else print "–" }') |"
done
