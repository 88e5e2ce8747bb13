#!/usr/bin/env bash
# OCI runtime conformance: build the runtime-tools validation suite (58 TAP programs) from
# ../shared/peers and run it against berth-runtime, runc and crun side by side. Prints one
# table per runtime, a side-by-side table and the totals; optionally writes a TSV.
# "clean" = the program exits 0, prints no `not ok` line, and its plan (1..N) equals the
# number of tests it ran; a program that runs no test (the hook programs and the *_fail ones
# report only through their exit status and a diagnostic) is clean when it exits 0 without an
# "error" diagnostic. Run as root.
#
# Usage: scripts/conformance.sh [options] [PROGRAM...]     (default: every program)
#   --runtimes LIST     comma-separated subset of berth-runtime,runc,crun (default: all three)
#   --tsv FILE          write one line per runtime and program to FILE (tab-separated)
#   --require-parity    exit 1 when berth-runtime is not clean on a program that runc or crun
#                       (in this run) is clean on
#   --skip-if-missing   when the suite's tarball or Go is missing, print a SKIP line and exit 0
#                       instead of failing (CI: a fresh clone may have no ../shared)
#   --timeout SECONDS   per program (default 60)
#   --release           test the static release build (scripts/build-release.sh) instead of the
#                       debug build
# Environment:
#   BERTH_CONFORMANCE_SUITE  the runtime-tools tarball (default ../shared/peers/runtime-tools-*.tar.gz)
#   BERTH_CONFORMANCE_CACHE  where the suite is built and kept (default target/conformance)
#   BERTH_RUNTIME            the berth-runtime binary to test (default: built from this worktree)
#
# Isolation: every program runs in its own pid and mount namespace (private propagation) with
# a fresh tmpfs for its bundles (TMPDIR) and for the runtime's state root (passed as --root by
# a wrapper), so its mounts and processes end with it. Before the namespace ends, every
# container the program created is deleted with the runtime's `delete --force`; afterwards the
# cgroups named after those containers, and the suite's own /cgrouptest and testdir, are
# removed by path. crun runs with /sys/fs/cgroup/unified unmounted in its namespace: crun 1.8
# refuses this host's hybrid layout otherwise (MACHINE-NOTES.md). One run at a time per
# machine (the suite uses the absolute cgroup /cgrouptest): a lock serializes them.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

runtimes=berth-runtime,runc,crun
tsv=
require_parity=
skip_if_missing=
timeout_s=60
release=
programs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runtimes) runtimes=${2:?--runtimes needs a list}; shift 2 ;;
        --tsv) tsv=${2:?--tsv needs a file}; shift 2 ;;
        --require-parity) require_parity=1; shift ;;
        --skip-if-missing) skip_if_missing=1; shift ;;
        --timeout) timeout_s=${2:?--timeout needs seconds}; shift 2 ;;
        --release) release=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        -*) echo "conformance: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) programs+=("$1"); shift ;;
    esac
done
IFS=, read -r -a runtime_list <<< "$runtimes"
for rt in "${runtime_list[@]}"; do
    case "$rt" in berth-runtime|runc|crun) ;; *) echo "conformance: unknown runtime $rt" >&2; exit 2 ;; esac
done
case "$timeout_s" in ''|*[!0-9]*) echo "conformance: --timeout wants whole seconds" >&2; exit 2 ;; esac

if [ "$(id -u)" != 0 ]; then
    echo "conformance: the suite creates containers, namespaces and cgroups: run it as root" >&2
    exit 1
fi

# A missing prerequisite: fail, or with --skip-if-missing say so and succeed.
missing() {
    if [ -n "$skip_if_missing" ]; then
        echo "SKIP conformance: $1"
        exit 0
    fi
    echo "conformance: $1" >&2
    exit 1
}

suite_tar=${BERTH_CONFORMANCE_SUITE:-}
if [ -z "$suite_tar" ]; then
    for f in "$repo"/../shared/peers/runtime-tools-*.tar.gz; do
        [ -e "$f" ] && suite_tar=$f
    done
    [ -n "$suite_tar" ] || missing "no runtime-tools tarball in $(cd "$repo/.." && pwd)/shared/peers (set BERTH_CONFORMANCE_SUITE to its path)"
fi
[ -f "$suite_tar" ] || missing "the suite's tarball $suite_tar does not exist"
command -v go > /dev/null 2>&1 || missing "go is missing (apt-get install golang-go; scripts/install-deps.sh installs it)"

cache=${BERTH_CONFORMANCE_CACHE:-$repo/target/conformance}
mkdir -p "$cache"

# The suite, built once per tarball and Go version; a second run reuses it.
build_suite() {
    local key dir tmp
    key=$( { sha256sum < "$suite_tar"; go version; } | sha256sum | cut -c1-16)
    dir=$cache/runtime-tools-$key
    if [ ! -e "$dir/.built" ]; then
        echo "conformance: building the suite from $suite_tar into $dir" >&2
        tmp=$(mktemp -d "$cache/build.XXXXXX")
        tar -xzf "$suite_tar" -C "$tmp"
        # Vendored modules, no network; Go's build cache stays under the cache directory.
        ( cd "$tmp"/runtime-tools* &&
          GOFLAGS=-mod=vendor GOPROXY=off GOCACHE="$cache/go-build" \
              make -j"$(nproc)" runtimetest validation-executables > "$tmp/build.log" 2>&1 ) || {
            tail -n 30 "$tmp/build.log" >&2
            rm -rf "$tmp"
            echo "conformance: building the suite failed" >&2
            exit 1
        }
        rm -rf "$dir"
        mv "$tmp"/runtime-tools* "$dir"
        rm -rf "$tmp"
        touch "$dir/.built"
    fi
    echo "$dir"
}

runtime_binary() {
    local dir
    case "$1" in
        berth-runtime)
            if [ -n "${BERTH_RUNTIME:-}" ]; then
                echo "$BERTH_RUNTIME"
            elif [ -n "$release" ]; then
                dir=$("$repo/scripts/build-release.sh") || return 1
                echo "$dir/berth-runtime"
            else
                # A no-op when the binary is up to date (CI's test run has built it).
                (cd "$repo" && cargo build --quiet --locked -p berth-runtime-cli >&2) || return 1
                echo "$repo/target/debug/berth-runtime"
            fi ;;
        runc) if [ -x /usr/sbin/runc ]; then echo /usr/sbin/runc; else command -v runc || true; fi ;;
        crun) command -v crun || true ;;
    esac
}

# One program inside its own pid and mount namespace (we are its PID 1 here): mount a tmpfs
# for bundles and state, run the program under a timeout, then delete what it left.
run_in_namespace() {
    local rt=$1 bin=$2 suite=$3 prog=$4 scratch=$5 out=$6 timeout_s=$7 rc=0 id
    mount -t tmpfs -o mode=0755 conformance "$scratch"
    if [ "$rt" = crun ] && mountpoint -q /sys/fs/cgroup/unified; then
        umount /sys/fs/cgroup/unified
    fi
    mkdir "$scratch/tmp" "$scratch/state"
    # The suite passes no --root: the wrapper gives the runtime a private one, and notes
    # every command so the containers can be found and deleted afterwards.
    printf '#!/bin/sh\necho "$*" >> %s/commands\nexec %s --root %s/state "$@"\n' \
        "$scratch" "$bin" "$scratch" > "$scratch/runtime"
    chmod 755 "$scratch/runtime"
    touch "$scratch/commands"
    cd "$suite"
    TMPDIR=$scratch/tmp RUNTIME=$scratch/runtime timeout -k 5 "$timeout_s" \
        "validation/$prog/$prog.t" > "$out.out" 2> "$out.err" < /dev/null || rc=$?
    # Container ids: the last word of every create/run command.
    awk '$1 == "create" || $1 == "run" { print $NF }' "$scratch/commands" | sort -u > "$out.ids"
    cp "$scratch/commands" "$out.commands"
    while read -r id; do
        timeout 20 "$scratch/runtime" delete --force "$id" > /dev/null 2>&1 || true
    done < "$out.ids"
    # Frozen processes cannot die: thaw what a program may have paused, so that the kernel's
    # kill of this namespace's processes completes.
    thaw_leftovers "$out.ids"
    return "$rc"
}

# The cgroup directories (deepest first) that a program's containers or the suite itself
# may have made: named after a container id (runtimes prefix or not), or the suite's
# /cgrouptest and testdir/cgrouptest/container (relative to the runtime's own cgroup).
leftover_cgroups() {
    local ids=$1 mnt args=()
    while read -r id; do
        [ -n "$id" ] && args+=(-o -name "*$id")
    done < "$ids"
    for mnt in $(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) ~ /^cgroup2?$/) print $5; break } }' /proc/self/mountinfo); do
        find "$mnt" -maxdepth 4 -depth -type d \( -name cgrouptest -o -name testdir "${args[@]}" \) 2>/dev/null |
            while read -r d; do find "$d" -depth -type d 2> /dev/null; done
    done
}

thaw_leftovers() {
    local d
    leftover_cgroups "$1" | while read -r d; do
        [ -w "$d/freezer.state" ] && echo THAWED > "$d/freezer.state" 2> /dev/null || true
        [ -w "$d/cgroup.freeze" ] && echo 0 > "$d/cgroup.freeze" 2> /dev/null || true
    done
}

# After the namespace ended (its processes are killed), remove the cgroups by path. A
# killed process leaves its cgroup a moment later: retry for up to two seconds.
remove_leftovers() {
    local ids=$1 try d left
    for try in 1 2 3 4 5 6 7 8 9 10; do
        left=
        while read -r d; do
            rmdir "$d" 2> /dev/null || [ ! -d "$d" ] || left="$left $d"
        done < <(leftover_cgroups "$ids")
        [ -z "$left" ] && return 0
        sleep 0.2
    done
    echo "conformance: cgroups left behind:$left" >&2
}

# Parse one program's TAP output into a TSV row:
# runtime program result exit planned ran ok skip not_ok first_failure
summarize() {
    local rt=$1 prog=$2 rc=$3 out=$4
    awk -v rt="$rt" -v prog="$prog" -v rc="$rc" -v errfile="$out.err" '
        # A runtime message made readable: JSON escapes undone, logrus prefixes dropped.
        function tidy(s) {
            gsub(/\\\\/, "\\", s); gsub(/\\u003c/, "<", s); gsub(/\\u003e/, ">", s); gsub(/\\u0026/, "\\&", s)
            gsub(/\\n/, "; ", s); gsub(/\\"/, "\"", s); gsub(/\\t/, " ", s)
            gsub(/time="[^"]*" level=[a-z]+ msg=/, "", s)
            gsub(/[\t\r\n]+/, " ", s); gsub(/  +/, " ", s); sub(/(; )+$/, "", s)
            return s
        }
        function field(s) { sub(/^ *"[a-z]+": "/, "", s); sub(/",? *$/, "", s); return s }
        # Some programs print a second TAP stream (1..0) after the first: plans add up.
        /^1\.\.[0-9]+/ { planned += substr($1, 4); has_plan = 1 }
        /^ok / { ok++; if (tolower($0) ~ /# skip/) skip++; infail = 0 }
        /^not ok / { notok++; if (first == "") { first = $0; infail = 1; next } infail = 0 }
        # The diagnostic of the first failing test, or of a program that runs no test.
        (infail || ok + notok == 0) && /^ *"stderr": "/ && stderr == "" { stderr = field($0) }
        (infail || ok + notok == 0) && /^ *"error": "/ && error == "" { error = field($0) }
        END {
            ran = ok + notok
            # A program that runs no test (the hook programs, the *_fail ones) tells its
            # outcome by its exit status and an "error" diagnostic alone.
            if (rc == 124 || rc == 137) result = "timeout"
            else if (rc == 0 && ran == 0 && planned == 0 && error == "") result = "clean"
            else if (rc == 0 && notok == 0 && has_plan && planned == ran && ran > 0) result = "clean"
            else result = "failed"
            # What the runtime said: the diagnostic of the failing test, else the distinct lines
            # the program passed on from the runtime (its stderr), else the diagnostic error.
            msg = stderr
            if (msg == "") {
                while ((getline line < errfile) > 0) {
                    line = tidy(line)
                    if (line ~ /[^ ]/ && line !~ /^(exit status [0-9]+|failed to create the container)$/ && !said[line]++ && length(msg) < 300)
                        msg = msg (msg == "" ? "" : "; ") line
                }
            }
            if (msg == "") msg = error
            if (result == "clean") reason = ""
            else if (first != "") reason = first
            else if (result == "timeout") reason = "timed out"
            else reason = "exit " rc (!has_plan ? ", no plan" : planned != ran ? ", " ran " of " planned " run" : "")
            if (reason != "" && msg != "") reason = reason ": " msg
            printf "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", rt, prog, result, rc,
                planned, ran, ok - skip, skip, notok, substr(tidy(reason), 1, 300)
        }' "$out.out"
}

suite=$(build_suite)
if [ ${#programs[@]} = 0 ]; then
    for t in "$suite"/validation/*/*.t; do programs+=("$(basename "$t" .t)"); done
fi
for prog in "${programs[@]}"; do
    [ -x "$suite/validation/$prog/$prog.t" ] || { echo "conformance: no program $prog" >&2; exit 2; }
done

exec 9> /run/lock/berth-conformance.lock
flock -w 1800 9 || { echo "conformance: another run holds /run/lock/berth-conformance.lock" >&2; exit 1; }

logs=$cache/last-run
rm -rf "$logs"
mkdir -p "$logs"
results=$logs/results.tsv
: > "$results"
export -f run_in_namespace leftover_cgroups thaw_leftovers

# One program with one runtime: its logs go to $logs/RUNTIME/PROGRAM.*, its TSV row to stdout.
run_program() {
    local rt=$1 bin=$2 prog=$3 out=$logs/$1/$3 rc=0
    scratch=$(mktemp -d /tmp/berth-conformance.XXXXXX)
    # --kill-child: if the outer timeout ends unshare, the namespace (and all in it) ends too.
    timeout -k 5 $((timeout_s + 60)) unshare -m -p -f --propagation private --mount-proc --kill-child \
        bash -c 'set -eu; run_in_namespace "$@"' conformance "$rt" "$bin" "$suite" "$prog" "$scratch" "$out" "$timeout_s" || rc=$?
    rmdir "$scratch"
    scratch=
    [ -e "$out.ids" ] || : > "$out.ids"
    remove_leftovers "$out.ids"
    summarize "$rt" "$prog" "$rc" "$out"
}

# Programs where berth-runtime differs from a peer on purpose, with the reason; they are
# reported but do not break parity.
#   linux_mount_label: a mount label on a host without SELinux is refused, as runc does
#     (crun drops it silently).
#   poststart: the suite checks that the program's first write lands before the hook's, a
#     race between two processes that no runtime wins every time (berth runs the hooks
#     after the exec, as the spec says; runc runs them at create).
explained="linux_mount_label poststart"

# The programs berth-runtime is not clean on while runc or crun is (the explained ones
# aside).
parity_gaps() {
    awk -F'\t' -v explained=" $explained " '
        $1 == "berth-runtime" { berth[$2] = $3; why[$2] = $10 }
        ($1 == "runc" || $1 == "crun") && $3 == "clean" { peer[$2] = peer[$2] ? peer[$2] "," $1 : $1 }
        END { for (p in peer) if ((p in berth) && berth[p] != "clean" && index(explained, " " p " ") == 0)
                  printf "%s\t%s\t%s\n", p, peer[p], why[p] }
    ' "$results" | sort
}

# The tmpfs of a program lives in its namespace; on the host its mount point is an empty
# directory, left only if this script is interrupted.
scratch=
trap '[ -z "$scratch" ] || rmdir "$scratch" 2> /dev/null || true' EXIT
start=$(date +%s)
declare -A bins
for rt in "${runtime_list[@]}"; do
    bin=$(runtime_binary "$rt") || { echo "conformance: cannot build $rt" >&2; exit 1; }
    if [ -z "$bin" ] || [ ! -x "$bin" ]; then
        echo "conformance: $rt not found, not run" >&2
        continue
    fi
    bins[$rt]=$bin
    echo "conformance: $rt ($bin): ${#programs[@]} programs" >&2
    mkdir -p "$logs/$rt"
    for prog in "${programs[@]}"; do
        run_program "$rt" "$bin" "$prog" >> "$results"
    done
done
# A gap gets a second run: a few programs depend on timing (killsig and poststop fail now
# and then with crun), and a parity failure should not rest on one of those.
if [ -n "${bins[berth-runtime]:-}" ]; then
    first_gaps=$(parity_gaps)
    while IFS=$'\t' read -r prog _ why; do
        [ -n "$prog" ] || continue
        run_program berth-runtime "${bins[berth-runtime]}" "$prog" > "$logs/rerun.tsv"
        # The second row replaces the first, in place; clean the second time, it says so.
        why=$why awk -F'\t' -v OFS='\t' -v prog="$prog" '
            NR == FNR { new = $0; if ($3 == "clean") { $10 = "clean on a second run; the first: " ENVIRON["why"]; new = $0 }; next }
            $1 == "berth-runtime" && $2 == prog { print new; next }
            { print }' "$logs/rerun.tsv" "$results" > "$results.new"
        mv "$results.new" "$results"
    done <<< "$first_gaps"
    rm -f "$logs/rerun.tsv"
fi
elapsed=$(( $(date +%s) - start ))

# Tables (Markdown, so that they can go into BENCHMARKS.md as they are).
for rt in "${runtime_list[@]}"; do
    grep -q "^$rt	" "$results" || continue
    echo
    echo "### $rt"
    echo "| program | result | ok | skip | not ok | first failure |"
    echo "|:---|:---|---:|---:|---:|:---|"
    awk -F'\t' -v rt="$rt" '$1 == rt {
        r = $4 ? $3 " (exit " $4 ")" : $3
        printf "| %s | %s | %d | %d | %d | %s |\n", $2, r, $7, $8, $9, $10 }' "$results"
done

echo
echo "### side by side"
awk -F'\t' -v order="$runtimes" '
    function cell(r) {
        split(r, f, "\t")
        if (f[3] == "clean") return f[6] ? "clean (" f[6] ")" : "clean (0 tests)"
        if (f[3] == "timeout") return "timeout"
        if (f[9] > 0) return f[9] " not ok of " f[6]
        if (f[6] == 0 && f[4] == 0) return "error diagnostic"
        return "exit " f[4] " (" f[6] " of " f[5] ")"
    }
    { row[$1, $2] = $0; if (!seen[$2]++) progs[++np] = $2; if (!rseen[$1]++) present[$1] = 1 }
    END {
        nr = split(order, want, ",")
        for (i = 1; i <= nr; i++) if (present[want[i]]) rts[++n] = want[i]
        h = "| program |"; s = "|:---|"
        for (i = 1; i <= n; i++) { h = h " " rts[i] " |"; s = s ":---|" }
        print h; print s
        for (p = 1; p <= np; p++) {
            line = "| " progs[p] " |"
            for (i = 1; i <= n; i++) line = line " " (((rts[i], progs[p]) in row) ? cell(row[rts[i], progs[p]]) : "-") " |"
            print line
        }
    }' "$results"

echo
echo "### totals"
echo "| runtime | programs | clean | ok | skip | not ok |"
echo "|:---|---:|---:|---:|---:|---:|"
awk -F'\t' -v order="$runtimes" '
    { n[$1]++; c[$1] += ($3 == "clean"); ok[$1] += $7; sk[$1] += $8; no[$1] += $9 }
    END {
        nr = split(order, want, ",")
        for (i = 1; i <= nr; i++) { r = want[i]; if (r in n)
            printf "| %s | %d | %d | %d | %d | %d |\n", r, n[r], c[r], ok[r], sk[r], no[r] }
    }' "$results"

gaps=$(parity_gaps | awk -F'\t' '{ printf "%s (clean with %s): %s\n", $1, $2, $3 }')
echo
echo "conformance: logs in $logs; ${elapsed}s for ${#programs[@]} programs x ${#runtime_list[@]} runtimes"
if [ -n "$tsv" ]; then
    { printf 'runtime\tprogram\tresult\texit\tplanned\tran\tok\tskip\tnot_ok\tfirst_failure\n'; cat "$results"; } > "$tsv"
    echo "conformance: results in $tsv"
fi
if [ -n "$gaps" ]; then
    echo "conformance: berth-runtime is not clean where a peer is:"
    printf '%s\n' "$gaps" | sed 's/^/  /'
    if [ -n "$require_parity" ]; then
        exit 1
    fi
fi
exit 0
