#!/usr/bin/env bash
# Builds the single-file binaries with `bun build --compile`, cross-compiling from this machine
# (Bun fetches each target's runtime from the npm registry once, then caches it).
#
#   scripts/release.sh                        all seven platforms into dist/release/ + SHA256SUMS
#   scripts/release.sh --outdir DIR PLATFORM  only those platforms, into DIR (+ their SHA256SUMS)
#   scripts/release.sh --binary FILE          this machine's platform, as FILE (npm run build)
#
# Platforms: linux-x64 linux-arm64 linux-x64-musl linux-arm64-musl darwin-x64 darwin-arm64
# windows-x64. `--version` of each binary names its platform, the commit and the build date
# (SOURCE_DATE_EPOCH, when set, fixes the date, for reproducible builds).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL="linux-x64 linux-arm64 linux-x64-musl linux-arm64-musl darwin-x64 darwin-arm64 windows-x64"
BUN=${BUN:-./node_modules/.bin/bun}
outdir=dist/release
binary=
platforms=

usage() { echo "usage: $0 [--outdir DIR] [PLATFORM...] | --binary FILE   (platforms: $ALL)" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --outdir) [ $# -ge 2 ] || usage; outdir=$2; shift 2 ;;
    --binary) [ $# -ge 2 ] || usage; binary=$2; shift 2 ;;
    -h | --help) usage ;;
    -*) usage ;;
    *)
      case " $ALL " in *" $1 "*) ;; *) echo "unknown platform \"$1\"" >&2; usage ;; esac
      platforms="$platforms $1"; shift ;;
  esac
done

# This machine's platform, named like the release files.
host_platform() {
  local os arch libc=
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    MINGW* | MSYS* | CYGWIN*) os=windows ;;
    *) echo "unsupported build machine: $(uname -s)" >&2; exit 1 ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "unsupported build machine: $(uname -m)" >&2; exit 1 ;;
  esac
  if [ "$os" = linux ] && { ldd --version 2>&1 | grep -qi musl; }; then libc=-musl; fi
  echo "$os-$arch$libc"
}

commit=$(git rev-parse --short=7 HEAD 2>/dev/null || echo unknown)
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d 2>/dev/null || date -u -r "$SOURCE_DATE_EPOCH" +%Y-%m-%d)
else
  date=$(date -u +%Y-%m-%d)
fi

# build PLATFORM OUTFILE [host]
build() {
  local platform=$1 outfile=$2 target=() bytecode=()
  # No --target for the host build: the Bun that runs this script is that runtime.
  [ "${3:-}" = host ] || target=(--target="bun-$platform")
  # Bytecode (parsed ahead of time: faster start) only where a binary built here was run and
  # checked: glibc Linux (x64 natively, arm64 under qemu in tests/release/arm64.test.ts).
  # Cross-compiled bytecode has crashed targets it could not be checked on (Bun issues 18416,
  # 24144); without it the same code is parsed at start. ESM output: the CommonJS that
  # --bytecode emits by default inlines import.meta.url, i.e. this machine's source paths.
  case "$platform" in
    linux-x64 | linux-arm64) bytecode=(--bytecode) ;;
  esac
  mkdir -p "$(dirname "$outfile")"
  # --no-compile-autoload-*: a binary must not read .env or bunfig.toml from whatever directory
  # it starts in (a bunfig.toml `preload` there would run its code inside the gateway).
  "$BUN" build --compile --minify --format=esm ${bytecode[@]+"${bytecode[@]}"} ${target[@]+"${target[@]}"} \
    --no-compile-autoload-dotenv --no-compile-autoload-bunfig \
    --define OTOROSHI_BUILD_PLATFORM="\"$platform\"" \
    --define OTOROSHI_BUILD_COMMIT="\"$commit\"" \
    --define OTOROSHI_BUILD_DATE="\"$date\"" \
    --root src src/bin/bun.ts src/config/reload-worker.ts --outfile "$outfile"
}

if [ -n "$binary" ]; then
  [ -z "$platforms" ] || usage
  build "$(host_platform)" "$binary" host
  exit 0
fi

[ -n "$platforms" ] || platforms=$ALL
mkdir -p "$outdir"
# A full release replaces the previous one, so no stale file is listed or shipped.
[ "$platforms" != "$ALL" ] || rm -f "$outdir"/otoroshi-lite-* "$outdir/SHA256SUMS"
files=()
for p in $platforms; do
  name=otoroshi-lite-$p
  case "$p" in windows-*) name=$name.exe ;; esac
  build "$p" "$outdir/$name"
  files+=("$name")
done
# Relative names, the format `sha256sum -c SHA256SUMS` reads from within the directory.
sha256() { if command -v sha256sum >/dev/null; then sha256sum "$@"; else shasum -a 256 "$@"; fi; }
(cd "$outdir" && sha256 "${files[@]}" > SHA256SUMS)
echo
(cd "$outdir" && ls -l "${files[@]}" SHA256SUMS)
