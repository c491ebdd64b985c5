#!/usr/bin/env bash
# Checks what `npm run release` built (not part of `npm test`: run it after the release):
# exactly the seven binaries and SHA256SUMS, `sha256sum -c SHA256SUMS` passes, each file has
# the type (`file`) of its platform, each embeds the reload worker and no path of this machine,
# and the ones this machine can run (natively, or arm64 under qemu-user-static) print a
# `--version` naming their platform.
#
#   scripts/check-release.sh [DIR]     (default: dist/release)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
DIR=${1:-dist/release}
VERSION=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' package.json | head -1)
failed=0

ok() { printf 'ok    %s\n' "$*"; }
bad() { printf 'FAIL  %s\n' "$*"; failed=1; }

# name → what `file -b` must say (extended regex)
declare -A TYPE=(
  [otoroshi-lite-linux-x64]='^ELF 64-bit LSB .*x86-64.*interpreter /lib64/ld-linux-x86-64\.so\.2'
  [otoroshi-lite-linux-arm64]='^ELF 64-bit LSB .*ARM aarch64.*interpreter /lib/ld-linux-aarch64\.so\.1'
  [otoroshi-lite-linux-x64-musl]='^ELF 64-bit LSB .*x86-64.*interpreter /lib/ld-musl-x86_64\.so\.1'
  [otoroshi-lite-linux-arm64-musl]='^ELF 64-bit LSB .*ARM aarch64.*interpreter /lib/ld-musl-aarch64\.so\.1'
  [otoroshi-lite-darwin-x64]='^Mach-O 64-bit x86_64 executable'
  [otoroshi-lite-darwin-arm64]='^Mach-O 64-bit arm64 executable'
  [otoroshi-lite-windows-x64.exe]='^PE32\+ executable \(console\) x86-64'
)

[ -d "$DIR" ] || { echo "$DIR does not exist: run npm run release first" >&2; exit 1; }
command -v file >/dev/null || { echo "file(1) is needed (Debian: apt-get install file)" >&2; exit 1; }

expected=$(printf '%s\n' "${!TYPE[@]}" SHA256SUMS | sort)
present=$(cd "$DIR" && find . -mindepth 1 -maxdepth 1 | sed 's|^\./||' | sort)
if [ "$present" = "$expected" ]; then ok "$DIR holds exactly the 7 binaries and SHA256SUMS"; else
  bad "$DIR holds: $(echo "$present" | tr '\n' ' ')(expected: $(echo "$expected" | tr '\n' ' '))"
fi

if out=$(cd "$DIR" && sha256sum -c SHA256SUMS 2>&1); then ok "sha256sum -c SHA256SUMS: $(echo "$out" | grep -c ': OK$') OK"; else
  bad "sha256sum -c SHA256SUMS:"; echo "$out"
fi
listed=$(awk '{ sub(/^\*/, "", $2); print $2 }' "$DIR/SHA256SUMS" | sort)
if [ "$listed" = "$(printf '%s\n' "${!TYPE[@]}" | sort)" ]; then ok "SHA256SUMS lists each binary once, by relative name"; else bad "SHA256SUMS lists: $listed"; fi

for name in $(printf '%s\n' "${!TYPE[@]}" | sort); do
  f=$DIR/$name
  [ -f "$f" ] || { bad "$name missing"; continue; }
  t=$(file -b "$f")
  if [[ $t =~ ${TYPE[$name]} ]]; then ok "$name: $(stat -c %s "$f") bytes: $t"; else bad "$name: $t"; fi
  if grep -q -a -F 'config/reload-worker.js' "$f"; then ok "$name embeds config/reload-worker.js"; else bad "$name does not embed the reload worker"; fi
  if grep -q -a -F "$ROOT" "$f"; then bad "$name contains this machine's path $ROOT"; else ok "$name contains no $ROOT path"; fi
done

# --version of what this machine can run.
check_version() { # name platform command...
  local name=$1 platform=$2; shift 2
  local v re="^otoroshi-lite ${VERSION//./\\.} \\($platform, ([0-9a-f]{7}|unknown), [0-9]{4}-[0-9]{2}-[0-9]{2}, bun [0-9.]+\\)$"
  v=$("$@" --version 2>&1)
  if [[ $v =~ $re ]]; then ok "$name --version: $v"; else bad "$name --version: $v"; fi
}
if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] && ! { ldd --version 2>&1 | grep -qi musl; }; then
  check_version otoroshi-lite-linux-x64 linux-x64 "$DIR/otoroshi-lite-linux-x64"
fi
if command -v qemu-aarch64-static >/dev/null && [ -d /usr/aarch64-linux-gnu ]; then
  check_version otoroshi-lite-linux-arm64 linux-arm64 qemu-aarch64-static -L /usr/aarch64-linux-gnu "$DIR/otoroshi-lite-linux-arm64"
else
  echo "skip  otoroshi-lite-linux-arm64 --version: qemu-user-static or libc6-arm64-cross absent"
fi
if command -v llvm-objdump >/dev/null; then
  for name in otoroshi-lite-darwin-x64 otoroshi-lite-darwin-arm64; do
    if llvm-objdump --macho --private-headers "$DIR/$name" 2>/dev/null | grep -q LC_CODE_SIGNATURE; then ok "$name carries a code signature"; else bad "$name has no code signature: macOS on arm64 refuses to run it"; fi
  done
fi

echo
[ "$failed" = 0 ] && echo "release OK" || echo "release check FAILED"
exit "$failed"
