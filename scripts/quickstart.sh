#!/bin/sh
# From a fresh Debian machine to a first container: install the packages, build berth,
# make a busybox bundle, and run it with berth-runtime. Run as root.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
bin=$(scripts/build-release.sh)
work=$(mktemp -d /tmp/berth-quickstart.XXXXXX)
trap 'rm -rf "$work"' EXIT
scripts/busybox-rootfs.sh "$work/rootfs"
"$bin/berth-runtime" spec --bundle "$work"
# A non-interactive first container: print who and where we are, from inside.
jq '.process.terminal = false
    | .process.args = ["sh", "-c", "echo \"hello from $(hostname): pid $$, uid $(id -u), $(ls /proc | grep -c \"^[0-9]\") processes visible\""]' \
    "$work/config.json" > "$work/config.tmp" && mv "$work/config.tmp" "$work/config.json"
"$bin/berth-runtime" --root /run/berth-runtime run --bundle "$work" "quickstart-$$"
echo "berth-runtime is at $bin/berth-runtime"
