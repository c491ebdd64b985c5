#!/usr/bin/env bash
# The whole suite: typecheck, unit, integration, build, e2e against the binary, the release
# packaging (arm64 binary under qemu, installer, service unit, Dockerfile), e2e on Deno.
# `npm test` runs this; .ci/run runs `npm test` after `npm ci`.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BIN=./node_modules/.bin
export OTOROSHI_LOG_LEVEL="${OTOROSHI_LOG_LEVEL:-warn}"
pass=0; fail=0; status=0

# Every gateway log line of the run (in-process and processes) and every secret and token the
# suite used are kept here; the last step scans the former for the latter (scripts/scan-logs.ts).
if [ -z "${OTOROSHI_LOG_DIR:-}" ]; then
  OTOROSHI_LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/otoroshi-logs.XXXXXX")
  trap 'rm -rf "$OTOROSHI_LOG_DIR"' EXIT
fi
export OTOROSHI_LOG_DIR
summary() { echo; echo "tests: $pass passed, $fail failed"; echo "$pass passed, $fail failed"; }

step() { echo; echo "==> $*"; }
count() { # add bun test's " N pass" / " N fail" lines from a log
  local p f
  p=$(grep -Eo '^ *[0-9]+ pass' "$1" | tail -1 | grep -Eo '[0-9]+' || echo 0)
  f=$(grep -Eo '^ *[0-9]+ fail' "$1" | tail -1 | grep -Eo '[0-9]+' || echo 0)
  pass=$((pass + p)); fail=$((fail + f))
}
run_bun_tests() { # label, env..., -- paths...
  local log; log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  count "$log"; rm -f "$log"
  if [ "$rc" -ne 0 ]; then status=1; fi
}

step "format (deno fmt --check) and lint (deno lint): one style, settings in deno.json"
if $BIN/deno fmt --check --quiet && $BIN/deno lint --quiet; then pass=$((pass + 1)); else
  echo "run ./node_modules/.bin/deno fmt to format; deno lint names each problem"; fail=$((fail + 1)); status=1
fi

step "typecheck (tsc, Bun types)"
if $BIN/tsc --noEmit -p tsconfig.json; then pass=$((pass + 1)); else fail=$((fail + 1)); status=1; fi

step "typecheck (deno check, Deno entry point)"
if $BIN/deno check --quiet src/bin/deno.ts; then pass=$((pass + 1)); else fail=$((fail + 1)); status=1; fi

step "JSON Schema is up to date"
if $BIN/bun scripts/gen-schema.ts --check; then pass=$((pass + 1)); else fail=$((fail + 1)); status=1; fi

step "unit + integration tests"
run_bun_tests $BIN/bun test --timeout 30000 tests/unit tests/integration

step "build the binary"
if $BIN/bun run build; then
  step "e2e against dist/otoroshi-lite"
  run_bun_tests env OTOROSHI_E2E_RUNTIME=binary $BIN/bun test --timeout 60000 tests/e2e
else
  fail=$((fail + 1)); status=1
fi

# The full release (`npm run release`, then scripts/check-release.sh) is not run here; this
# builds the linux-arm64 binary alone and runs it under qemu, and checks the packaging files.
step "release: linux-arm64 binary under qemu, install.sh, service unit, Dockerfile"
run_bun_tests $BIN/bun test --timeout 120000 tests/release

step "e2e against the sources on Deno"
run_bun_tests env OTOROSHI_E2E_RUNTIME=deno $BIN/bun test --timeout 60000 tests/e2e

step "no secret or token in any gateway log line"
if $BIN/bun scripts/scan-logs.ts "$OTOROSHI_LOG_DIR"; then pass=$((pass + 1)); else fail=$((fail + 1)); status=1; fi

summary
exit $status
