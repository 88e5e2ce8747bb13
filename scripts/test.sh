#!/bin/sh
# berth's test suite: unit tests and the root-only integration tests (real containers,
# compared with runc where runc is the reference); then the fuzz stage (scripts/fuzz.sh:
# berth-fuzz's targets with ten times the cases, a few minutes) and the security check
# (scripts/security-check.sh: Docker's default confinement, checked on a private berthd).
# Run as root.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "the tests create namespaces and mounts: run them as root" >&2
    exit 1
fi
log=$(mktemp)
trap 'rm -f "$log" "$log.rc"' EXIT
# stage COMMAND...: run it, its output into the log too; the status goes to $log.rc.
stage() {
    { rc=0; "$@" || rc=$?; echo "$rc" > "$log.rc"; } 2>&1 | tee -a "$log"
    [ "$(cat "$log.rc")" = 0 ]
}
# The CRI tests' CNI portmap plugin makes nat tables it never removes: this run's go at the end.
nat_tables=$(scripts/cni-nat-tables.sh absent)
status=0
stage cargo test --workspace --locked --no-fail-fast || status=1
stage scripts/fuzz.sh || status=1
stage scripts/security-check.sh || status=1
# shellcheck disable=SC2086 # family names are words
scripts/cni-nat-tables.sh remove $nat_tables
# One closing line with the totals of every test binary and every security check.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^PASS / { p++ } /^FAIL / { f++ }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit $status
