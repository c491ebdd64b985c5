#!/usr/bin/env bash
# Prices the pieces of the gateway's request path over HTTP: bench/ablation.ts variants (a bare
# Bun.serve + fetch proxy plus one piece of gateway work each, then all of them), next to the
# gateway binary's open route, all against the same backend in one run. wrk -t1 -c50, ROUNDS
# rounds of DURATION, variant order rotated each round, medians. Cost per piece = CPU time the
# proxy process (all its threads) used per completed request, read from /proc before and after
# each run, minus the bare variant's: much steadier than throughput on a shared 2-vCPU box.
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

pick_port BE
start_bg backend "$BUN" "$BENCH_DIR/backend.ts" "$BE"
wait_http "http://127.0.0.1:$BE/small" 20 || die "backend did not start"

NAMES=(); URLS=(); PIDS=()
i=0
for v in $VARIANTS; do
  pick_port P
  start_bg "v$i" "$BUN" "$BENCH_DIR/ablation.ts" "$P" "$BE" "$v"
  wait_http "http://127.0.0.1:$P/small" 20 || die "variant $v did not start: $(cat "$T/v$i.log")"
  NAMES+=("$v"); URLS+=("http://127.0.0.1:$P/$SIZE"); PIDS+=("$LAST_PID")
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
PIDS+=("$LAST_PID")
wait_http "http://127.0.0.1:$GW/open/small" 20 || die "gateway did not start"
NAMES+=("gateway-open"); URLS+=("http://127.0.0.1:$GW/open/$SIZE")

N=${#NAMES[@]}
RESULTS="$T/results.tsv"
: >"$RESULTS"
for k in $(seq 0 $((N - 1))); do run_wrk "${URLS[$k]}" 1s >/dev/null; done
for r in $(seq 1 "$ROUNDS"); do
  for j in $(seq 0 $((N - 1))); do
    k=$(((j + r) % N))
    c0=$(cpu_ticks "${PIDS[$k]}")
    read -r rps p50 p99 bad reqs <<<"$(run_wrk "${URLS[$k]}" "$DURATION")"
    cpu=$(cpu_us_per_req $(($(cpu_ticks "${PIDS[$k]}") - c0)) "$reqs")
    printf '%s\t%s\t%s\t%s\n' "${NAMES[$k]}" "$r" "$rps" "$cpu" >>"$RESULTS"
    log "round $r ${NAMES[$k]}: $rps req/s, $cpu CPU µs/request$([ "$bad" = 0 ] || echo " errors: $bad")"
  done
done

med() { awk -F'\t' -v n="$1" -v f="${2:-3}" '$1 == n { print $f }' "$RESULTS" | median; }
BASE=$(med none)
BASE_CPU=$(med none 4)
echo "## Ablation ($SIZE body)"
echo
echo "$(machine_line)"
echo "wrk -t1 -c${WRK_CONNECTIONS:-50} -d$DURATION, median of $ROUNDS rounds, order rotated each round."
echo
echo "| variant | req/s | × bare | proxy CPU µs/request | CPU over bare (µs) |"
echo "|---|---|---|---|---|"
for n in "${NAMES[@]}"; do
  v=$(med "$n"); c=$(med "$n" 4)
  echo "| $n | $(kfmt "$v") | $(ratio "$v" "$BASE") | $c | $(awk -v c="$c" -v b="$BASE_CPU" 'BEGIN { printf "%+.1f", c - b }') |"
done
