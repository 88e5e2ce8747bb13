#!/bin/sh
# berth's test suite: unit tests and the root-only integration tests (real containers,
# compared with runc where runc is the reference). Run as root.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "the tests create namespaces and mounts: run them as root" >&2
    exit 1
fi
log=$(mktemp)
trap 'rm -f "$log" "$log.rc"' EXIT
{ rc=0; cargo test --workspace --locked --no-fail-fast || rc=$?; echo "$rc" > "$log.rc"; } 2>&1 | tee "$log"
status=$(cat "$log.rc")
# One closing line with the totals of every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit $status
