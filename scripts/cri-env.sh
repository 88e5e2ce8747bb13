# shellcheck shell=bash
# The private CRI environment scripts/critest.sh and bench/cri share, sourced by both: critest
# and crictl (built once from ../shared/peers, cached), a private docker-registry holding
# stand-ins for every image critest pulls (scripts/critest-images.py) with hosts.toml mirrors
# sending registry.k8s.io and gcr.io to it, private CNI networks (own bridge and 10.88.x
# subnet each), and private runtimes: berthd with its CRI socket, containerd 1.6 with its CRI
# plugin. cri_cleanup stops everything started here by PID and removes everything made here.
#
# The caller sets cri_prog (its name, for messages) and keep (non-empty: keep the work
# directory), calls cri_build_tools, then cri_init_work and `trap cri_cleanup EXIT` before
# starting anything. Environment: BERTH_CRITOOLS_TAR, BERTH_CRITOOLS_CACHE (see critest.sh).

cri_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cri_prog=${cri_prog:-cri}
keep=${keep:-}

log() { echo "$cri_prog: $*" >&2; }
die() { log "$*"; exit 1; }

# critest and crictl, built once into the cache with Debian's Go (vendored modules, no
# network), the build tree removed afterwards to spare the disk.
cache=${BERTH_CRITOOLS_CACHE:-$cri_repo/target/cri-tools}
critest=$cache/bin/critest
crictl=$cache/bin/crictl
cri_build_tools_locked() {
    if [ -x "$critest" ] && [ -x "$crictl" ]; then
        return
    fi
    local tarball=${BERTH_CRITOOLS_TAR:-$cri_repo/../shared/peers/cri-tools-v1.29.0.tar.gz}
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
cri_build_tools() {
    mkdir -p "$cache"
    exec 9>"$cache/.lock"
    flock 9
    cri_build_tools_locked
    flock -u 9
}

# The checks and the state every run needs; the work directory everything else lives in.
cri_init_work() { # PREFIX
    [ "$(id -u)" = 0 ] || die "this creates pods, namespaces, bridges and cgroups: run it as root"
    local tool
    for tool in docker-registry skopeo python3 gcc ip; do
        command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh installs it)"
    done
    [ -x /usr/lib/cni/bridge ] || die "no CNI plugins in /usr/lib/cni: apt-get install containernetworking-plugins"
    work=$(mktemp -d "/tmp/$1.XXXXXX")
    pids=()              # processes started here, stopped by PID
    cri_daemons=()       # the runtimes among them: their descendants are stopped too
    cri_endpoints=()     # runtimes whose pods are removed before they stop
    cri_nets=()          # CNI network names, whose /var/lib/cni state is removed
    cri_bridges=()       # their bridges
    cri_subnets=()       # their subnets (a bridge shows its route only once a pod runs)
    cri_cgroups=()       # cgroup parents (names under each hierarchy) removed when empty
    cri_had_test_slice=
    # The nat tables the portmap plugin will make (removed at cleanup: cni-nat-tables.sh).
    # shellcheck disable=SC2207 # family names are words
    cri_nat_tables=($("$cri_repo/scripts/cni-nat-tables.sh" absent))
    local cg
    for cg in /sys/fs/cgroup/*/test.slice; do
        [ -d "$cg" ] && cri_had_test_slice=1
    done
    return 0
}

# Every process under PIDS (children, grandchildren...), PIDS excluded.
cri_descendants() { # PID...
    local -A children=()
    local p ppid
    for p in /proc/[0-9]*; do
        ppid=$(awk '/^PPid:/ {print $2; exit}' "$p/status" 2>/dev/null) || continue
        [ -n "$ppid" ] && children[$ppid]+=" ${p#/proc/}"
    done
    local queue=("$@") found=() next
    while [ ${#queue[@]} -gt 0 ]; do
        next=${queue[0]}
        queue=("${queue[@]:1}")
        for p in ${children[$next]:-}; do
            found+=("$p")
            queue+=("$p")
        done
    done
    echo "${found[@]}"
}

# Cleanup, whatever happened: pods left behind removed through the runtimes, then every
# process started here (by PID), the runtimes' descendants (berthd's berth-pause holders) and
# the processes whose command line names the work directory (containerd's shims, which
# detach from it) with theirs; mounts under the work directory, the bridges, CNI state,
# cgroups. Exits with the status the script had.
cri_cleanup() {
    local status=$?
    set +e
    [ -n "${work:-}" ] || exit "$status"
    local ep
    for ep in "${cri_endpoints[@]}"; do
        timeout 60 "$crictl" --runtime-endpoint "$ep" rmp -fa >/dev/null 2>&1
    done
    local p pid roots=()
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" = $$ ] && continue
        if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF "$work/"; then
            roots+=("$pid")
        fi
    done
    # shellcheck disable=SC2207 # pids are words
    local leftovers=($(cri_descendants "${cri_daemons[@]}" "${roots[@]}") "${roots[@]}")
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
    for pid in "${leftovers[@]}"; do
        kill -KILL "$pid" 2>/dev/null
    done
    sleep 0.5
    # Innermost first.
    grep -F " $work/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null
    done
    local name
    for name in "${cri_bridges[@]}"; do
        ip link del "$name" 2>/dev/null
    done
    for name in "${cri_nets[@]}"; do
        rm -rf "/var/lib/cni/networks/$name" /var/lib/cni/results/"$name"-* 2>/dev/null
    done
    # critest puts pods under /test.slice when the runtime does not say its cgroup driver
    # (containerd 1.6 lacks RuntimeConfig): the empty cgroups left there, if this run made it.
    [ -n "$cri_had_test_slice" ] || cri_cgroups+=(test.slice)
    local cg
    for name in "${cri_cgroups[@]}"; do
        for cg in /sys/fs/cgroup/*/"$name"; do
            [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
        done
    done
    "$cri_repo/scripts/cni-nat-tables.sh" remove "${cri_nat_tables[@]}"
    if [ -n "$keep" ]; then
        log "kept $work"
    else
        rm -rf "$work"
    fi
    exit "$status"
}

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

# The private registry with the image stand-ins, and the mirrors in $work/certs.d
# (containerd's hosts.toml layout, which berthd's --registry-config reads too) sending
# registry.k8s.io and gcr.io to it; anything it lacks goes on to the real registry,
# unreachable offline. $work/images.yaml is critest's --test-images-file. Sets registry.
cri_start_registry() { # [ADDR]
    registry=${1:-127.0.0.1:$(free_port)}
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
    # Debian's dynamic busybox for the images, unpacked from its package (apt-get download,
    # kept in the cache): busybox-static's shell runs applets without exec (see
    # critest-images.py).
    local busybox=$cache/busybox/bin/busybox
    exec 9>"$cache/.lock"
    flock 9
    if [ ! -x "$busybox" ]; then
        rm -rf "$cache/busybox" "$cache"/busybox_*.deb
        local debs=()
        (cd "$cache" && apt-get download busybox >/dev/null 2>&1) && debs=("$cache"/busybox_*.deb)
        if [ -f "${debs[0]:-}" ] && dpkg-deb -x "${debs[0]}" "$cache/busybox"; then
            rm -f "$cache"/busybox_*.deb
        else
            log "apt-get download busybox failed: the images use busybox-static (the MaskedPaths spec then fails)"
            busybox=/bin/busybox
        fi
    fi
    flock -u 9
    exec 9>&-
    log "building the image stand-ins and pushing them to $registry"
    CRITEST_BUSYBOX=$busybox python3 "$cri_repo/scripts/critest-images.py" "$work/oci" "$work/pause" "$work/nnp" >"$work/images.txt"
    local layout reference path
    while read -r layout reference path; do
        skopeo copy --quiet --dest-tls-verify=false "oci:$layout" "docker://$registry/$path" ||
            die "pushing $reference failed"
    done <"$work/images.txt"

    local ns
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
}

# A CNI conf dir DIR holding network NAME: its own bridge BRIDGE (at most 15 characters) and
# a 10.88.x.0/24 no route, address or other network of this run uses yet; host-local IPAM
# (state under DIR), portmap, loopback.
cri_network() { # DIR NAME BRIDGE
    local dir=$1 name=$2 bridge=$3 subnet='' start x i
    start=$(($$ % 150 + 100))
    for i in $(seq 0 149); do
        x=$(((start + i - 100) % 150 + 100))
        case " ${cri_subnets[*]} " in *" 10.88.$x.0/24 "*) continue ;; esac
        if ! ip -4 route show | grep -q "^10\.88\.$x\." && ! ip -4 addr show | grep -q " 10\.88\.$x\."; then
            subnet=10.88.$x.0/24
            break
        fi
    done
    [ -n "$subnet" ] || die "no free 10.88.x.0/24"
    cri_nets+=("$name")
    cri_bridges+=("$bridge")
    cri_subnets+=("$subnet")
    mkdir -p "$dir" "$dir.ipam"
    cat >"$dir/10-$name.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$name",
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
        "dataDir": "$dir.ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
    cat >"$dir/99-loopback.conf" <<EOF
{"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}
EOF
    log "CNI network $name: bridge $bridge, $subnet, conf dir $dir"
}

# A runtime started in the background, in a private mount namespace without
# /sys/fs/cgroup/unified when cri_private_cgroup_ns is set (crun 1.8 needs that on this
# hybrid host). Sets cri_pid.
cri_private_cgroup_ns=${cri_private_cgroup_ns:-}
cri_spawn() { # LOG COMMAND...
    local logfile=$1
    shift
    if [ -n "$cri_private_cgroup_ns" ]; then
        unshare --mount --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh "$@" \
            >"$logfile" 2>&1 &
    else
        "$@" >"$logfile" 2>&1 &
    fi
    cri_pid=$!
    pids+=("$cri_pid")
    cri_daemons+=("$cri_pid")
}

# The runtime's socket is there; the runtime dying first ends the wait with its log.
cri_socket_up() { # SOCKET LOG
    if ! kill -0 "$cri_pid" 2>/dev/null; then
        tail -5 "$2" >&2
        die "the runtime exited (log: $2)"
    fi
    [ -S "$1" ]
}

# containerd (/usr/bin/containerd, Debian's 1.6) with its own root, state, sockets, CNI conf
# dir and mirrors (config_path), its CRI plugin running RUNTIME (runc or crun) through
# io.containerd.runc.v2. Sets cri_endpoint and cri_pid.
cri_start_containerd() { # DIR CNI-CONF-DIR RUNTIME LOG
    local c=$1 confdir=$2 runtime=$3 logfile=$4 runtime_binary
    command -v containerd >/dev/null || die "containerd is missing: apt-get install containerd"
    runtime_binary=$(command -v "$runtime") || die "$runtime is missing"
    mkdir -p "$c"
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
    default_runtime_name = "$runtime"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$runtime]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$runtime.options]
        BinaryName = "$runtime_binary"
        Root = "$c/runtime-root"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$confdir"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$work/certs.d"
EOF
    cri_spawn "$logfile" containerd --config "$c/config.toml"
    cri_endpoint=unix://$c/containerd.sock
    cri_endpoints+=("$cri_endpoint")
    wait_for 30 "containerd (log: $logfile)" cri_socket_up "$c/containerd.sock" "$logfile"
}

# berthd (BERTHD; berth-shim, berth-pause and berth-runtime beside it) with its own roots,
# sockets, CNI conf dir and mirrors, the Docker API on DIR/berth.sock. Sets cri_endpoint and
# cri_pid.
cri_start_berthd() { # DIR CNI-CONF-DIR BERTHD LOG
    local b=$1 confdir=$2 berthd=$3 logfile=$4
    [ -x "$berthd" ] || die "no berthd at $berthd (cargo build -p berthd -p berth-shim -p berth-pause -p berth-runtime-cli, or set BERTHD)"
    mkdir -p "$b"
    echo '{}' >"$b/daemon.json"
    cri_spawn "$logfile" "$berthd" --config-file "$b/daemon.json" \
        -H "unix://$b/berth.sock" --data-root "$b/data" --exec-root "$b/run" \
        --pidfile "$b/berthd.pid" --bridge none \
        --registry-config "$work/certs.d" \
        --cri-socket "$b/cri.sock" --cni-conf-dir "$confdir" --cni-bin-dir /usr/lib/cni
    cri_endpoint=unix://$b/cri.sock
    cri_endpoints+=("$cri_endpoint")
    wait_for 30 "berthd's CRI socket (log: $logfile)" cri_socket_up "$b/cri.sock" "$logfile"
}
