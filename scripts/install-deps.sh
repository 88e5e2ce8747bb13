#!/bin/sh
# Install the Debian packages berth's build, tests and benchmarks use. Runs as root, no stdin.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    build-essential pkg-config libseccomp-dev ca-certificates busybox-static runc crun podman hyperfine jq util-linux procps iptables >/dev/null
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install a Rust toolchain >= 1.85 (https://rustup.rs), then run this again" >&2
    exit 1
fi
