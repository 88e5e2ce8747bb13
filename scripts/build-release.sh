#!/bin/sh
# Build berth's binaries in release mode, statically linked for this host (glibc's static
# libc: no dynamic loader at start-up, which is a measurable share of a runtime command).
# Prints the directory that holds the binaries.
set -eu
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
# libseccomp must be linked statically too: a static binary cannot load a shared library.
libdir=$(pkg-config --variable=libdir libseccomp 2>/dev/null || echo /usr/lib)
LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH="$libdir" \
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --quiet --release --locked --target "$host" -p berth-runtime-cli -p berthd -p berth-shim -p berth-pause -p berth >&2
echo "$PWD/target/$host/release"
