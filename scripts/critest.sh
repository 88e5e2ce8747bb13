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

log() { echo "critest.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# 1. critest and crictl, built once into the cache with Debian's Go (vendored modules, no
# network), the build tree removed afterwards to spare the disk.
cache=${BERTH_CRITOOLS_CACHE:-$repo/target/cri-tools}
critest=$cache/bin/critest
crictl=$cache/bin/crictl
build_tools() {
    if [ -x "$critest" ] && [ -x "$crictl" ]; then
        return
    fi
    local tarball=${BERTH_CRITOOLS_TAR:-$repo/../shared/peers/cri-tools-v1.29.0.tar.gz}
    [ -f "$tarball" ] || die "no cri-tools tarball at $tarball (set BERTH_CRITOOLS_TAR)"
    command -v go >/dev/null || die "go is missing: apt-get install golang-go"
    log "building critest and crictl from $tarball (a minute or two)"
    rm -rf "$cache/src"
    mkdir -p "$cache/src" "$cache/bin"
    tar -xzf "$tarball" -C "$cache/src" --strip-components=1
    (cd "$cache/src" &&
        GOCACHE=$cache/gocache GOPATH=$cache/gopath GOFLAGS=-mod=vendor \
            make critest crictl VERSION=v1.29.0 >"$cache/build.log" 2>&1) ||
        die "the cri-tools build failed: see $cache/build.log"
    cp "$cache/src/build/bin/linux/amd64/critest" "$cache/src/build/bin/linux/amd64/crictl" "$cache/bin/"
    chmod -R u+w "$cache/gopath" 2>/dev/null || true
    rm -rf "$cache/src" "$cache/gocache" "$cache/gopath"
}
# One build at a time per cache (tests may ask for the tools in parallel).
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
build_tools
flock -u 9
if [ -n "$build_only" ]; then
    echo "critest $critest"
    echo "crictl $crictl"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "critest creates pods, namespaces, bridges and cgroups: run it as root"
if [ -z "$mode" ] && [ -z "$runtime_endpoint" ]; then
    die "say which runtime: --runtime-endpoint EP, --berth or --containerd"
fi
if [ -n "$mode" ] && [ -n "$runtime_endpoint" ]; then
    die "--runtime-endpoint tests a running runtime; --$mode starts one: give one of them"
fi
for tool in docker-registry skopeo python3 gcc ip; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh installs it)"
done
[ -x /usr/lib/cni/bridge ] || die "no CNI plugins in /usr/lib/cni: apt-get install containernetworking-plugins"

label=${mode:-external}
out=${out:-$repo/target/critest/$label.xml}
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

work=$(mktemp -d /tmp/critest.XXXXXX)
net_name=critest-$$
bridge=critest$$
pids=()

# 5. Cleanup, whatever happened: pods left behind removed through the runtime, then every
# process this script started (by PID, then the runtime's shims: the processes whose command
# line names the work directory), mounts under the work directory, the bridge, CNI state.
cleanup() {
    local status=$?
    set +e
    if [ -n "${cri_endpoint:-}" ] && [ -n "$mode" ]; then
        timeout 60 "$crictl" --runtime-endpoint "$cri_endpoint" rmp -fa >/dev/null 2>&1
    fi
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    local p
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" = $$ ] && continue
        if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF "$work/"; then
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    sleep 0.5
    # Innermost first.
    grep -F " $work/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null
    done
    ip link del "$bridge" 2>/dev/null
    rm -rf "/var/lib/cni/networks/$net_name" /var/lib/cni/results/"$net_name"-* 2>/dev/null
    # critest puts pods under /test.slice when the runtime does not say its cgroup driver
    # (containerd 1.6 lacks RuntimeConfig): the empty cgroups left there, if this run made it.
    if [ -z "$had_test_slice" ]; then
        for cg in /sys/fs/cgroup/*/test.slice; do
            [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
        done
    fi
    if [ -n "$keep" ]; then
        log "kept $work"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
had_test_slice=
for cg in /sys/fs/cgroup/*/test.slice; do
    [ -d "$cg" ] && had_test_slice=1
done
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # SECONDS WHAT COMMAND...
    local limit=$1 what=$2
    shift 2
    for _ in $(seq $((limit * 5))); do
        "$@" && return 0
        sleep 0.2
    done
    die "$what did not come up in ${limit}s"
}

# 2. The private registry and the image stand-ins.
registry=${registry_addr:-127.0.0.1:$(free_port)}
mkdir -p "$work/registry"
cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry/storage
http:
  addr: $registry
EOF
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
pids+=($!)
wait_for 20 "docker-registry" python3 -c "import urllib.request; urllib.request.urlopen('http://$registry/v2/')"

# A pause binary for the sandbox image: sleeps, reaps, exits on SIGINT/SIGTERM.
cat >"$work/pause.c" <<'EOF'
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void leave(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
    struct sigaction quit = { .sa_handler = leave }, child = { .sa_handler = reap, .sa_flags = SA_NOCLDSTOP };
    if (sigaction(SIGINT, &quit, NULL) || sigaction(SIGTERM, &quit, NULL) || sigaction(SIGCHLD, &child, NULL))
        return 1;
    for (;;) pause();
}
EOF
# The nonewprivs image's program: setuid root in the image, it prints the effective uid.
cat >"$work/nnp.c" <<'EOF'
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("Effective uid: %d\n", (int)geteuid()); return 0; }
EOF
gcc -static -O2 -o "$work/pause" "$work/pause.c"
gcc -static -O2 -o "$work/nnp" "$work/nnp.c"
# Debian's dynamic busybox for the images, unpacked from its package (apt-get download, kept
# in the cache): busybox-static's shell runs applets without exec (see critest-images.py).
busybox=$cache/busybox/bin/busybox
flock 9
if [ ! -x "$busybox" ]; then
    rm -rf "$cache/busybox" "$cache"/busybox_*.deb
    if (cd "$cache" && apt-get download busybox >/dev/null 2>&1) &&
        dpkg-deb -x "$(ls "$cache"/busybox_*.deb | head -1)" "$cache/busybox"; then
        rm -f "$cache"/busybox_*.deb
    else
        log "apt-get download busybox failed: the images use busybox-static (the MaskedPaths spec then fails)"
        busybox=/bin/busybox
    fi
fi
flock -u 9
exec 9>&-
log "building the image stand-ins and pushing them to $registry"
CRITEST_BUSYBOX=$busybox python3 "$repo/scripts/critest-images.py" "$work/oci" "$work/pause" "$work/nnp" >"$work/images.txt"
while read -r layout reference path; do
    skopeo copy --quiet --dest-tls-verify=false "oci:$layout" "docker://$registry/$path" ||
        die "pushing $reference failed"
done <"$work/images.txt"

# The mirrors: registry.k8s.io and gcr.io served by the private registry (containerd's
# hosts.toml layout, which berthd's --registry-config reads too); anything it lacks goes on to
# the real registry, unreachable offline.
for ns in registry.k8s.io gcr.io; do
    mkdir -p "$work/certs.d/$ns"
    cat >"$work/certs.d/$ns/hosts.toml" <<EOF
server = "https://$ns"

[host."http://$registry"]
  capabilities = ["pull", "resolve"]
EOF
done
cat >"$work/images.yaml" <<EOF
defaultTestContainerImage: registry.k8s.io/e2e-test-images/busybox:1.29-2
webServerTestImage: registry.k8s.io/e2e-test-images/nginx:1.14-2
EOF

# 3. The CNI network: its own bridge and a 10.88.x.0/24 no route or address uses yet.
subnet=
start=$(( $$ % 150 + 100 ))
for i in $(seq 0 149); do
    x=$(( (start + i - 100) % 150 + 100 ))
    if ! ip -4 route show | grep -q "^10\.88\.$x\." && ! ip -4 addr show | grep -q " 10\.88\.$x\."; then
        subnet=10.88.$x.0/24
        break
    fi
done
[ -n "$subnet" ] || die "no free 10.88.x.0/24"
mkdir -p "$work/net.d" "$work/cni-ipam"
cat >"$work/net.d/10-critest.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$net_name",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$subnet"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$work/cni-ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
cat >"$work/net.d/99-loopback.conf" <<EOF
{"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}
EOF
log "CNI network $net_name: bridge $bridge, $subnet; mirrors in $work/certs.d"

# The runtime's own start command, in a private mount namespace when asked (crun 1.8 needs
# /sys/fs/cgroup/unified gone on this hybrid host).
start_runtime() { # LOG COMMAND...
    local logfile=$1
    shift
    if [ -n "$private_cgroup_ns" ]; then
        unshare --mount --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh "$@" \
            >"$logfile" 2>&1 &
    else
        "$@" >"$logfile" 2>&1 &
    fi
    pids+=($!)
}

# The runtime's socket is there; the runtime dying first ends the wait with its log.
socket_up() {
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
        tail -5 "$runtime_log" >&2
        die "the runtime exited (log: $runtime_log)"
    fi
    [ -S "$1" ]
}

runtime_log=$out.runtime.log
case "$mode" in
containerd)
    command -v containerd >/dev/null || die "containerd is missing: apt-get install containerd"
    c=$work/containerd
    mkdir -p "$c"
    runtime_binary=$(command -v "$containerd_runtime") || die "$containerd_runtime is missing"
    cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
plugin_dir = ""
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "$c/containerd.sock"

[ttrpc]
  address = "$c/containerd.sock.ttrpc"

[debug]
  address = "$c/debug.sock"
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.6"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # This machine refuses a negative oom_score_adj even to root (MACHINE-NOTES.md); the
  # sandbox's -998 made runc's init die ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "$containerd_runtime"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$containerd_runtime]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$containerd_runtime.options]
        BinaryName = "$runtime_binary"
        Root = "$c/runtime-root"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$work/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$work/certs.d"
EOF
    start_runtime "$runtime_log" containerd --config "$c/config.toml"
    cri_endpoint=unix://$c/containerd.sock
    wait_for 30 "containerd" socket_up "$c/containerd.sock"
    ;;
berth)
    berthd=${BERTHD:-}
    if [ -z "$berthd" ]; then
        profile=debug
        [ -z "$release" ] || profile=release
        berthd=$repo/target/$profile/berthd
    fi
    [ -x "$berthd" ] || die "no berthd at $berthd (cargo build -p berthd -p berth-shim -p berth-runtime-cli, or set BERTHD)"
    b=$work/berth
    mkdir -p "$b"
    echo '{}' >"$b/daemon.json"
    start_runtime "$runtime_log" "$berthd" --config-file "$b/daemon.json" \
        -H "unix://$b/berth.sock" --data-root "$b/data" --exec-root "$b/run" \
        --pidfile "$b/berthd.pid" --bridge none \
        --registry-config "$work/certs.d" \
        --cri-socket "$b/cri.sock" --cni-conf-dir "$work/net.d" --cni-bin-dir /usr/lib/cni
    cri_endpoint=unix://$b/cri.sock
    wait_for 30 "berthd's CRI socket (log: $runtime_log)" socket_up "$b/cri.sock"
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
