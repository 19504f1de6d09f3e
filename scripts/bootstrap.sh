#!/usr/bin/env bash
# Bring a fresh Debian 12 machine to the point where rcp builds and its tests run.
# Idempotent: every step checks whether its result is already there.
#   scripts/bootstrap.sh            packages (as root), QUIC deps, venv + rcp
#   scripts/bootstrap.sh deps       packages and the QUIC deps only
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREFIX="$ROOT/third_party/prefix"
WORK="$ROOT/third_party/build"
WOLFSSL_VERSION=5.7.2
NGTCP2_VERSION=1.11.0
LIBSSH_VERSION=0.11.5
JOBS=$(nproc)

PACKAGES=(cmake g++ make autoconf automake libtool pkg-config dpkg-dev
  libssl-dev zlib1g-dev libmsgpack-cxx-dev libxxhash-dev pybind11-dev python3-dev python3-venv
  python3-pytest python3-rich googletest openssh-server openssh-client
  iproute2 procps psmisc rsync nftables  # nftables: UDP dropped in a namespace (tests/test_tcp_transport.py)
  clang libclang-rt-14-dev  # libFuzzer with ASan/UBSan for scripts/fuzz.sh
  tcpdump  # the wire check in tests/test_wire.py
  strace  # the --fsync check in tests/test_copy_local.py
  time  # /usr/bin/time: the rcpds' peak RSS and CPU in make bench (bench/measure.py)
  python3-flake8 python3-mypy clang-format clang-tidy  # make lint (flake8, mypy + stubtest, C++ checks)
  python3-ipykernel python3-nbclient python3-nbformat python3-matplotlib  # the notebooks, run in a kernel
  python3-jsonschema  # rcp --json checked against docs/rcp-json.schema.json
  python3-distributed)  # Dask: sharded copies' shards as tasks (rcp.scaleout, tests/test_scaleout.py)
BACKPORTS_PACKAGES=(python3-scikit-build-core)

log() { printf '[bootstrap] %s\n' "$*" >&2; }

missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

setup_apt_sources() {
  local f=/etc/apt/sources.list.d/rcp.sources
  [ -f "$f" ] && return 1
  log "adding bookworm-backports and deb-src entries ($f)"
  cat >"$f" <<'SRC'
# Added by rcp's scripts/bootstrap.sh
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  return 0
}

install_packages() {
  local need need_bp
  need=$(missing_packages "${PACKAGES[@]}" | xargs)
  need_bp=$(missing_packages "${BACKPORTS_PACKAGES[@]}" | xargs)
  if [ "$(id -u)" -ne 0 ]; then
    if [ -n "$need$need_bp" ]; then
      log "not root; install these first (bookworm-backports for the second list):"
      echo "  apt-get install $need" ; echo "  apt-get install -t bookworm-backports $need_bp >/dev/null"
      exit 1
    fi
    return
  fi
  local updated=0
  if setup_apt_sources || [ -n "$need$need_bp" ] && [ ! -f "$WORK/.apt-updated" ]; then
    apt-get update -qq; updated=1
    mkdir -p "$WORK"; touch "$WORK/.apt-updated"
  fi
  if [ -n "$need" ]; then
    log "installing: $need"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null || {
      [ $updated = 1 ] && exit 1
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null; }
  fi
  if [ -n "$need_bp" ]; then
    log "installing from bookworm-backports: $need_bp"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports $need_bp >/dev/null
  fi
}

fetch_source() { # name suite version -> prints extracted dir
  local name=$1 suite=$2 version=$3 dir="$WORK/src"
  mkdir -p "$dir"
  local tarball
  tarball=$(ls "$dir/${name}_${version}".orig.tar.* 2>/dev/null | head -n1 || true)
  if [ -z "$tarball" ]; then
    log "fetching Debian source package $name/$suite"
    # The .dsc may be missing on some mirrors; the orig tarball is what we need.
    (cd "$dir" && apt-get source --download-only "$name/$suite" >/dev/null 2>&1) || true
    tarball=$(ls "$dir/${name}_${version}".orig.tar.* 2>/dev/null | head -n1 || true)
    [ -n "$tarball" ] || { log "could not fetch ${name}_${version}.orig.tar.* (is deb-src for $suite configured?)"; exit 1; }
  fi
  rm -rf "$dir/$name-$version"
  mkdir -p "$dir/$name-$version"
  tar -xf "$tarball" -C "$dir/$name-$version" --strip-components=1
  echo "$dir/$name-$version"
}

WOLFSSL_FLAGS="--disable-shared --enable-static --with-pic
  --enable-quic --enable-certgen --enable-keygen --enable-aesni --enable-intelasm
  --enable-ecc --enable-ed25519 --enable-curve25519 --enable-sha3 --enable-opensslextra
  --enable-session-ticket --disable-examples --disable-crypttests --disable-benchmark"
# The pinning verify callback must run for every certificate, not only on chain errors.
# HAVE_SECRET_CALLBACK gives the keylog callback (SSLKEYLOGFILE on demand) without
# --enable-keylog-export, which would write every session's secrets to ./sslkeylog.log.
WOLFSSL_CFLAGS="-DWOLFSSL_ALWAYS_VERIFY_CB -DHAVE_SECRET_CALLBACK"
NGTCP2_FLAGS="--with-wolfssl --enable-lib-only --disable-shared --enable-static --with-pic"
# libssh, static and without GSSAPI (Debian has no static krb5), so that the wheel's _core
# needs nothing beyond glibc; it links OpenSSL's libcrypto.a and libz.a. rcp is a client only.
LIBSSH_FLAGS="-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON
  -DCMAKE_INSTALL_LIBDIR=lib -DWITH_GSSAPI=OFF -DWITH_SERVER=OFF -DWITH_EXAMPLES=OFF -DWITH_PCAP=OFF
  -DWITH_ZLIB=ON -DWITH_SFTP=ON -DUNIT_TESTING=OFF"

# A stamp records version and flags, so a change of either rebuilds.
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

build_wolfssl() {
  local stamp="$PREFIX/.wolfssl" want="$WOLFSSL_VERSION $WOLFSSL_FLAGS $WOLFSSL_CFLAGS"
  stamp_ok "$stamp" "$want" && return
  local src; src=$(fetch_source wolfssl trixie "$WOLFSSL_VERSION")
  log "building wolfSSL $WOLFSSL_VERSION with QUIC"
  (cd "$src" && { [ -x configure ] || ./autogen.sh >/dev/null; } &&
    # shellcheck disable=SC2086
    CFLAGS="-O2 $WOLFSSL_CFLAGS" ./configure --prefix="$PREFIX" $WOLFSSL_FLAGS >/dev/null &&
    make -j"$JOBS" >/dev/null && make install >/dev/null)
  echo "$want" >"$stamp"
  rm -f "$PREFIX/.ngtcp2" # built against the old wolfSSL
}

build_ngtcp2() {
  local stamp="$PREFIX/.ngtcp2" want="$NGTCP2_VERSION $NGTCP2_FLAGS"
  stamp_ok "$stamp" "$want" && return
  local src; src=$(fetch_source ngtcp2 bookworm-backports "$NGTCP2_VERSION")
  log "building ngtcp2 $NGTCP2_VERSION with the wolfSSL crypto helper"
  (cd "$src" && { [ -x configure ] || autoreconf -fi >/dev/null; } &&
    # static wolfSSL needs libm at link time; configure's link test would fail without it
    # shellcheck disable=SC2086
    PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" LIBS="-lm" ./configure --prefix="$PREFIX" $NGTCP2_FLAGS >/dev/null &&
    make -j"$JOBS" >/dev/null && make install >/dev/null)
  echo "$want" >"$stamp"
}

build_libssh() {
  local stamp="$PREFIX/.libssh" want="$LIBSSH_VERSION $LIBSSH_FLAGS"
  stamp_ok "$stamp" "$want" && return
  local src; src=$(fetch_source libssh trixie "$LIBSSH_VERSION")
  log "building libssh $LIBSSH_VERSION (static, no GSSAPI)"
  # shellcheck disable=SC2086
  cmake -S "$src" -B "$src/build" -DCMAKE_INSTALL_PREFIX="$PREFIX" $LIBSSH_FLAGS >/dev/null
  # its deprecation warnings would bury the bootstrap's own lines; shown only on failure
  cmake --build "$src/build" -j"$JOBS" >"$src/build.log" 2>&1 || { tail -n 30 "$src/build.log"; exit 1; }
  cmake --install "$src/build" >/dev/null
  echo "$want" >"$stamp"
}

setup_venv() {
  local venv="$ROOT/.venv"
  if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv from /usr/bin/python3"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
  fi
}

install_packages
mkdir -p "$PREFIX" "$WORK"
build_wolfssl
build_ngtcp2
build_libssh
[ "${1:-}" = deps ] && exit 0
setup_venv
log "ready: $PREFIX, $ROOT/.venv"
