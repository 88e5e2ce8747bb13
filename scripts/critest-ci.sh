#!/usr/bin/env bash
# CI's CRI conformance stage: critest (scripts/critest.sh --berth) against a private berthd;
# it fails when a spec fails that scripts/critest-known-failures.txt does not list, and says
# when a listed one passes (the list should then shrink). Without the cri-tools tarball
# (../shared/peers) it prints SKIP and passes, as conformance.sh does.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tarball=${BERTH_CRITOOLS_TAR:-$repo/../shared/peers/cri-tools-v1.29.0.tar.gz}
if [ ! -f "$tarball" ]; then
    echo "SKIP critest: no cri-tools tarball at $tarball"
    exit 0
fi
mkdir -p "$repo/target/critest"
summary="$repo/target/critest/berth.txt"
"$repo/scripts/critest.sh" --berth --out "$repo/target/critest/berth.xml" | tee "$summary" || true
known=$(grep -v '^#' "$repo/scripts/critest-known-failures.txt" | sed '/^$/d')
failed=$(sed -n 's/^FAILED: //p' "$summary")
grep -q '^critest: ' "$summary" || { echo "critest gave no summary" >&2; exit 1; }
unexpected=$(comm -23 <(sort <<<"$failed" | sed '/^$/d') <(sort <<<"$known"))
fixed=$(comm -13 <(sort <<<"$failed" | sed '/^$/d') <(sort <<<"$known"))
[ -z "$fixed" ] || printf 'critest: listed as failing but passed now (shrink the list):\n%s\n' "$fixed"
if [ -n "$unexpected" ]; then
    printf 'critest: unexpected failures:\n%s\n' "$unexpected" >&2
    exit 1
fi
echo "critest: no failure beyond the known ones"
