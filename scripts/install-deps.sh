#!/bin/sh
# Install the Debian packages berth's build, tests and benchmarks use. Runs as root, no stdin.
# Services the packages bring (docker.io's dockerd, docker-registry) are kept from starting:
# the tests start their own, privately, and stop them.
set -eu
export DEBIAN_FRONTEND=noninteractive
ours=
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    ours=1
fi
status=0
{
    apt-get update -qq &&
    apt-get install -y -qq --no-install-recommends \
        build-essential pkg-config libseccomp-dev ca-certificates busybox-static runc crun podman \
        skopeo umoci hyperfine jq util-linux bsdutils procps iptables iproute2 tini curl openssl \
        docker-registry apache2-utils debootstrap golang-go nftables python3 docker-compose \
        containernetworking-plugins containerd protobuf-compiler \
        >/dev/null &&
    # The tests drive the real docker CLI against berthd (these machines have docker 28 in
    # /usr/local/bin), and exchange archives with a private dockerd: Debian's docker.io.
    if ! command -v dockerd >/dev/null 2>&1; then
        apt-get install -y -qq --no-install-recommends docker.io >/dev/null
    fi
} || status=$?
[ -z "$ours" ] || rm -f /usr/sbin/policy-rc.d
[ "$status" = 0 ] || exit "$status"
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is missing: install a Rust toolchain >= 1.85 (https://rustup.rs), then run this again" >&2
    exit 1
fi
