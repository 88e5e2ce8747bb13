#!/usr/bin/env bash
# CRI conformance: cri-tools' critest v1.29 (built from ../shared/peers) against a CRI runtime,
# offline. Builds critest and crictl once (cached), starts a private docker-registry holding
# stand-ins for every image critest pulls (built here from busybox-static: see
# scripts/critest-images.py), points registry.k8s.io and gcr.io at it through hosts.toml
# mirrors, writes a private CNI network (own bridge and 10.88.x subnet), runs critest, saves
# its JUnit report and prints which specs passed and failed. Everything it starts is stopped
# by PID and everything it made is removed when it ends. Run as root.
#
# Usage: scripts/critest.sh [options] [-- CRITEST-ARGS...]
#   --runtime-endpoint EP  test this running runtime (unix:///path/cri.sock); it must reach
#                          the private registry by itself: configure its mirrors for
#                          registry.k8s.io and gcr.io to http://ADDR and give --registry-addr
#   --image-endpoint EP    default: the runtime endpoint
#   --berth                start a private berthd (target/debug, or target/release with
#                          --release) with its own roots, sockets, CNI conf dir and mirrors
#   --containerd           start a private containerd (/usr/bin/containerd, Debian's 1.6) with
#                          its own root, state, socket, CNI conf dir and mirrors (config_path)
#   --containerd-runtime R runc (default) or crun, for --containerd
#   --private-cgroup-ns    start the runtime in a private mount namespace without
#                          /sys/fs/cgroup/unified (crun 1.8 refuses this host's hybrid layout)
#   --registry-addr ADDR   serve the images on ADDR (127.0.0.1:PORT; default a free port)
#   --out FILE             the JUnit report (default target/critest/<runtime>.xml); critest's
#                          verbose text goes to FILE.log, the runtime's log to FILE.runtime.log
#   --focus RE, --skip RE  ginkgo's --ginkgo.focus / --ginkgo.skip
#   --build-only           build (or find) critest and crictl, print their paths, exit
#   --keep                 keep the work directory (images, logs, configs) for a look after
# Environment:
#   BERTH_CRITOOLS_TAR     the cri-tools tarball (default ../shared/peers/cri-tools-v1.29.0.tar.gz)
#   BERTH_CRITOOLS_CACHE   where critest and crictl are built and kept (default target/cri-tools)
#   BERTHD                 the berthd binary for --berth
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

runtime_endpoint=
image_endpoint=
mode=
containerd_runtime=runc
private_cgroup_ns=
out=
registry_addr=
focus=
skip=
build_only=
keep=
release=
critest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runtime-endpoint) runtime_endpoint=${2:?}; shift 2 ;;
        --image-endpoint) image_endpoint=${2:?}; shift 2 ;;
        --berth) mode=berth; shift ;;
        --containerd) mode=containerd; shift ;;
        --containerd-runtime) containerd_runtime=${2:?}; shift 2 ;;
        --private-cgroup-ns) private_cgroup_ns=1; shift ;;
        --release) release=1; shift ;;
        --out) out=${2:?}; shift 2 ;;
        --registry-addr) registry_addr=${2:?}; shift 2 ;;
        --focus) focus=${2:?}; shift 2 ;;
        --skip) skip=${2:?}; shift 2 ;;
        --build-only) build_only=1; shift ;;
        --keep) keep=1; shift ;;
        --) shift; critest_args=("$@"); break ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        *) echo "critest.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$containerd_runtime" in runc|crun) ;; *) echo "critest.sh: --containerd-runtime runc or crun" >&2; exit 2 ;; esac

cri_prog=critest.sh
# shellcheck source=scripts/cri-env.sh
. "$repo/scripts/cri-env.sh"

# 1. critest and crictl.
cri_build_tools
if [ -n "$build_only" ]; then
    echo "critest $critest"
    echo "crictl $crictl"
    exit 0
fi

if [ -z "$mode" ] && [ -z "$runtime_endpoint" ]; then
    die "say which runtime: --runtime-endpoint EP, --berth or --containerd"
fi
if [ -n "$mode" ] && [ -n "$runtime_endpoint" ]; then
    die "--runtime-endpoint tests a running runtime; --$mode starts one: give one of them"
fi

label=${mode:-external}
out=${out:-$repo/target/critest/$label.xml}
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

# 5. Cleanup, whatever happened (scripts/cri-env.sh): everything started stopped by PID,
# everything made removed.
cri_init_work critest
trap cri_cleanup EXIT
trap 'exit 130' INT TERM

# 2. The private registry, the image stand-ins and the mirrors.
cri_start_registry "$registry_addr"

# 3. The CNI network: its own bridge and a 10.88.x.0/24 no route or address uses yet.
cri_network "$work/net.d" "critest-$$" "critest$$"

runtime_log=$out.runtime.log
cri_private_cgroup_ns=$private_cgroup_ns
case "$mode" in
containerd)
    cri_start_containerd "$work/containerd" "$work/net.d" "$containerd_runtime" "$runtime_log"
    ;;
berth)
    berthd=${BERTHD:-}
    if [ -z "$berthd" ]; then
        profile=debug
        [ -z "$release" ] || profile=release
        berthd=$repo/target/$profile/berthd
    fi
    cri_start_berthd "$work/berth" "$work/net.d" "$berthd" "$runtime_log"
    ;;
*)
    cri_endpoint=$runtime_endpoint
    ;;
esac
image_endpoint=${image_endpoint:-$cri_endpoint}
"$crictl" --runtime-endpoint "$cri_endpoint" --image-endpoint "$image_endpoint" version >&2 ||
    die "the runtime at $cri_endpoint does not answer (log: $runtime_log)"

# 4. critest.
args=(--runtime-endpoint "$cri_endpoint" --image-endpoint "$image_endpoint"
    --test-images-file "$work/images.yaml" --ginkgo.v --ginkgo.no-color
    --ginkgo.junit-report "$out")
[ -z "$focus" ] || args+=(--ginkgo.focus "$focus")
[ -z "$skip" ] || args+=(--ginkgo.skip "$skip")
log "running critest (verbose output: $out.log)"
set +e
(cd "$work" && "$critest" "${args[@]}" "${critest_args[@]}") >"$out.log" 2>&1
critest_status=$?
set -e

if [ ! -s "$out" ]; then
    tail -20 "$out.log" >&2
    die "critest wrote no report (exit $critest_status): see $out.log"
fi
python3 - "$out" <<'EOF'
import sys
import xml.etree.ElementTree as ET
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
groups = {"passed": [], "failed": [], "skipped": []}
for case in cases:
    name = case.get("name", "")
    if name.startswith("[BeforeSuite]") or name.startswith("[AfterSuite]") or name.startswith("[SynchronizedBeforeSuite]"):
        if case.find("failure") is not None or case.find("error") is not None:
            groups["failed"].append(name)
        continue
    name = name.removeprefix("[It] ")
    if case.find("failure") is not None or case.find("error") is not None:
        groups["failed"].append(name)
    elif case.find("skipped") is not None:
        groups["skipped"].append(name)
    else:
        groups["passed"].append(name)
for state in ("passed", "failed"):
    for name in sorted(groups[state]):
        print(f"{state.upper()}: {name}")
print(f"critest: {len(groups['passed'])} passed, {len(groups['failed'])} failed, "
      f"{len(groups['skipped'])} skipped")
EOF
log "JUnit report: $out"
exit "$critest_status"
