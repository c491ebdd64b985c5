#!/bin/sh
# Installs the otoroshi-lite binary for this machine: detects the OS, the CPU and (on Linux) the
# C library, downloads the matching release file and SHA256SUMS, checks the file against its
# checksum and only then installs it. POSIX sh: runs under dash, busybox ash, bash, zsh.
#
#   curl -fsSL https://raw.githubusercontent.com/otoroshi-lite/otoroshi-lite/main/packaging/install.sh | sh
#   OTOROSHI_INSTALL_DIR=$HOME/.local/bin sh install.sh
#
# OTOROSHI_RELEASE_URL  where the release files are (default: the latest GitHub release)
# OTOROSHI_INSTALL_DIR  where the binary goes (default: /usr/local/bin)
set -eu

RELEASE_URL=${OTOROSHI_RELEASE_URL:-https://github.com/otoroshi-lite/otoroshi-lite/releases/latest/download}
INSTALL_DIR=${OTOROSHI_INSTALL_DIR:-/usr/local/bin}

say() { printf '%s\n' "$*"; }
die() {
  printf 'otoroshi-lite install: %s\n' "$*" >&2
  exit 1
}

# glibc's ldd names glibc in `ldd --version`, musl's names musl; without ldd, only musl's
# loader present means musl (a glibc system may carry musl's loader for other programs).
is_musl() {
  if command -v ldd >/dev/null 2>&1; then
    ldd --version 2>&1 | grep -qi musl
    return
  fi
  for f in /lib/ld-musl-*.so.1; do
    [ -e "$f" ] || return 1
  done
  for f in /lib*/ld-linux*.so.* /lib/*-linux-gnu*/ld-linux*.so.*; do
    [ -e "$f" ] && return 1
  done
  return 0
}

detect_platform() {
  os=$(uname -s)
  case "$os" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    MINGW* | MSYS* | CYGWIN*) os=windows ;;
    *) die "no release for the operating system \"$os\" (there are binaries for Linux, macOS and Windows); build from source: see docs/install.md" ;;
  esac
  cpu=$(uname -m)
  case "$cpu" in
    x86_64 | amd64) cpu=x64 ;;
    aarch64 | arm64) cpu=arm64 ;;
    *) die "no release for the CPU \"$cpu\" (there are binaries for x86_64 and arm64); build from source: see docs/install.md" ;;
  esac
  libc=
  if [ "$os" = linux ] && is_musl; then libc=-musl; fi
  if [ "$os" = windows ] && [ "$cpu" != x64 ]; then
    die "no release for Windows on \"$(uname -m)\" (there is one for Windows x86_64)"
  fi
  platform=$os-$cpu$libc
}

download() { # URL FILE
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL -o "$2" "$1" || die "cannot download $1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1" || die "cannot download $1"
  else
    die "curl or wget is needed to download the release"
  fi
}

sha256_of() { # FILE
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d ' ' -f 1
  else
    die "sha256sum or shasum is needed to verify the download"
  fi
}

detect_platform
file=otoroshi-lite-$platform
target=otoroshi-lite
if [ "$os" = windows ]; then
  file=$file.exe
  target=$target.exe
fi

tmp=$(mktemp -d 2>/dev/null) || die "cannot create a temporary directory"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "otoroshi-lite: downloading $file for $platform from $RELEASE_URL"
download "$RELEASE_URL/SHA256SUMS" "$tmp/SHA256SUMS"
download "$RELEASE_URL/$file" "$tmp/$file"

# SHA256SUMS lines are "<hex>  <name>" (or "<hex> *<name>" in binary mode).
expected=$(awk -v f="$file" '$2 == f || $2 == "*" f { print tolower($1); exit }' "$tmp/SHA256SUMS")
[ -n "$expected" ] || die "SHA256SUMS has no line for $file; nothing installed"
actual=$(sha256_of "$tmp/$file" | tr 'A-F' 'a-f')
if [ "$actual" != "$expected" ]; then
  die "checksum mismatch for $file (expected $expected, got $actual): the download is corrupt or was tampered with; nothing installed"
fi
say "otoroshi-lite: checksum OK ($expected)"

mkdir -p "$INSTALL_DIR" 2>/dev/null || die "cannot create $INSTALL_DIR (run as root, or set OTOROSHI_INSTALL_DIR)"
# Copied next to its destination, then renamed over it: a running binary is never half-written.
staged=$INSTALL_DIR/.$target.$$
cp "$tmp/$file" "$staged" 2>/dev/null || die "cannot write to $INSTALL_DIR (run as root, or set OTOROSHI_INSTALL_DIR)"
chmod 755 "$staged"
mv -f "$staged" "$INSTALL_DIR/$target" || {
  rm -f "$staged"
  die "cannot install $INSTALL_DIR/$target"
}
say "otoroshi-lite: installed $INSTALL_DIR/$target"

version=$("$INSTALL_DIR/$target" --version 2>/dev/null) || version=
say ""
if [ -n "$version" ]; then
  say "  $version"
elif [ "$libc" = -musl ]; then
  say "  It does not start yet: on Alpine, install the C++ runtime first: apk add libstdc++"
fi
case ":${PATH:-}:" in
  *":$INSTALL_DIR:"*) ;;
  *) say "  $INSTALL_DIR is not in PATH: add it, or call $INSTALL_DIR/$target" ;;
esac
say ""
say "Next steps:"
say "  1. Write a config and check it:  $target check --config /etc/otoroshi-lite/otoroshi.yaml"
say "  2. Try it:                       $target --config /etc/otoroshi-lite/otoroshi.yaml"
if [ "$os" = linux ]; then
  say "  3. Run it as a service:          packaging/otoroshi-lite.service (systemd), see docs/install.md"
fi
say "  Docs: docs/install.md, docs/configuration.md"
