#!/bin/bash
# What Docker's defaults promise a container, checked on a private berthd: from inside a
# default container (capabilities, seccomp, no_new_privs, masked and read-only paths,
# device rules, namespaces) and from outside (the modes of the data root, the exec root
# and the socket). One PASS or FAIL line per check; exits 1 if any failed. Run as root.
#
#   scripts/security-check.sh                      # builds nothing if target/debug has berth
#   BERTH_BIN=DIR scripts/security-check.sh        # the binaries in DIR
#   scripts/security-check.sh --host unix:///S --data-root D --exec-root E
#                                                  # another daemon (a private dockerd, to
#                                                  # show each check passes where Docker's
#                                                  # defaults hold)
#
# Everything it makes goes when it ends: containers, the image, berthd (its mounts live in
# its own mount namespace), the temp directory.
set -eu
cd "$(dirname "$0")/.."

host= data_root= exec_root=
while [ $# -gt 0 ]; do
    case $1 in
        --host) host=$2; shift 2 ;;
        --data-root) data_root=$2; shift 2 ;;
        --exec-root) exec_root=$2; shift 2 ;;
        *) echo "usage: $0 [--host unix:///SOCKET --data-root DIR --exec-root DIR]" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    echo "run as root: it starts a daemon and reads its directories as another user" >&2
    exit 2
fi

work=$(mktemp -d /tmp/berth-security.XXXXXX)
# Traversable, so that what nobody can or cannot reach below is decided by the modes under
# test, not by this directory's.
chmod 755 "$work"
image=berth-security/busybox:1
berthd_pid=
# A default bridge of its own (the host's berth0 is not this check's to make or remove).
bridge=bsec$$
bip=10.211.$(( $$ % 250 )).1/24
cleanup() {
    status=$?
    if [ -n "${DOCKER_HOST:-}" ] && [ -S "${DOCKER_HOST#unix://}" ]; then
        ids=$(docker ps -aq --filter label=berth-security-check 2>/dev/null || true)
        [ -z "$ids" ] || docker rm -f $ids > /dev/null 2>&1 || true
        docker rmi -f "$image" > /dev/null 2>&1 || true
    fi
    if [ -n "$berthd_pid" ]; then
        kill -TERM "$berthd_pid" 2>/dev/null || true
        wait "$berthd_pid" 2>/dev/null || true
        # Its default bridge and nftables table (berthd keeps both across restarts, as
        # dockerd keeps docker0): this run's own, by name.
        ip link del "$bridge" 2>/dev/null || true
        nft delete table ip "berth-$bridge" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$host" ]; then
    bin=${BERTH_BIN:-}
    if [ -z "$bin" ]; then
        bin=$PWD/target/debug
        if ! [ -x "$bin/berthd" ] || ! [ -x "$bin/berth-shim" ] || ! [ -x "$bin/berth-runtime" ]; then
            cargo build --quiet --locked -p berthd -p berth-shim -p berth-runtime-cli >&2
        fi
    fi
    data_root=$work/data exec_root=$work/run
    echo '{}' > "$work/daemon.json"
    # In a mount namespace of its own (as the tests run it): the containers' mounts go with it.
    unshare --mount --propagation private "$bin/berthd" --config-file "$work/daemon.json" \
        -H "unix://$work/berth.sock" --data-root "$data_root" --exec-root "$exec_root" \
        --bridge "$bridge" --bip "$bip" 2> "$work/berthd.log" &
    berthd_pid=$!
    host=unix://$work/berth.sock
    tries=0
    until [ -S "$work/berth.sock" ]; do
        tries=$((tries + 1))
        if [ "$tries" -gt 400 ] || ! kill -0 "$berthd_pid" 2>/dev/null; then
            echo "berthd did not start:" >&2
            cat "$work/berthd.log" >&2
            exit 1
        fi
        sleep 0.05
    done
elif [ -z "$data_root" ] || [ -z "$exec_root" ]; then
    echo "--host needs --data-root and --exec-root (the daemon's, for the checks from outside)" >&2
    exit 2
fi
export DOCKER_HOST=$host DOCKER_CONFIG=$work/docker-config
socket=${host#unix://}

scripts/busybox-rootfs.sh "$work/rootfs"
tar -C "$work/rootfs" -c . | docker import --change 'CMD ["sh"]' - "$image" > /dev/null

failed=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; failed=$((failed + 1)); }
# check NAME EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected $2, got ${3:-nothing}"; fi
}

# A container with Docker's defaults (and no network: only its own loopback), run once.
run() {
    docker run --rm --label berth-security-check=1 "$@"
}

# What the default container reports about itself, as key=value lines.
probe='
status() { sed -n "s/^$1:[[:space:]]*//p" /proc/self/status; }
for k in CapInh CapPrm CapEff CapBnd CapAmb Seccomp NoNewPrivs; do echo "$k=$(status $k)"; done
for ns in pid net mnt ipc uts; do echo "ns_$ns=$(readlink /proc/self/ns/$ns)"; done
echo "netdevs=$(ls /sys/class/net | tr "\n" " ")"
# Masked: a file reads empty, a directory lists empty (or it is not there at all).
for p in /proc/asound /proc/acpi /proc/kcore /proc/keys /proc/latency_stats /proc/timer_list \
         /proc/timer_stats /proc/sched_debug /proc/scsi /sys/firmware /sys/devices/virtual/powercap; do
    if [ -d "$p" ]; then
        [ -z "$(ls -A "$p" 2>/dev/null)" ] && echo "masked $p=yes" || echo "masked $p=no"
    elif [ -e "$p" ]; then
        [ "$(head -c 64 "$p" 2>/dev/null | wc -c)" = 0 ] && echo "masked $p=yes" || echo "masked $p=no"
    else
        echo "masked $p=absent"
    fi
done
# Read-only: mounted ro, and a write to /proc/sys fails (the value it has: harmless if it went
# through, even where the UTS namespace is the host'"'"'s).
for p in /proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger; do
    opts=$(awk -v p="$p" '"'"'$5 == p { print $6 }'"'"' /proc/self/mountinfo | tail -n 1)
    case ",$opts," in
        *,ro,*) echo "readonly $p=yes" ;;
        ,,) [ -e "$p" ] && echo "readonly $p=no (not a mount)" || echo "readonly $p=absent" ;;
        *) echo "readonly $p=no ($opts)" ;;
    esac
done
domain=$(cat /proc/sys/kernel/domainname)
if (echo "$domain" > /proc/sys/kernel/domainname) 2>/dev/null; then
    echo "write /proc/sys=allowed"
else
    echo "write /proc/sys=refused"
fi
# Devices: the default capabilities allow mknod; the device rules must refuse opening what
# is not on their list (a block device: loop0; /dev/mem), and allow /dev/null.
opened() {
    if err=$(dd if="$1" of=/dev/null bs=1 count=1 2>&1); then echo opened
    else case $err in *"not permitted"*) echo EPERM ;; *) echo "other error: $err" ;; esac; fi
}
mknod /tmp/blk b 7 0 && echo "open b 7 0=$(opened /tmp/blk)" || echo "open b 7 0=mknod failed"
mknod /tmp/mem c 1 1 && echo "open c 1 1=$(opened /tmp/mem)" || echo "open c 1 1=mknod failed"
echo "open /dev/null=$(opened /dev/null)"
(echo x > /dev/null) 2>/dev/null && echo "write /dev/null=ok" || echo "write /dev/null=failed"
'

out=$(run --network none "$image" sh -c "$probe")
nnp=$(run --network none --security-opt no-new-privileges "$image" \
    sed -n 's/^NoNewPrivs:[[:space:]]*//p' /proc/self/status)
value() { printf '%s\n' "$out" | sed -n "s|^$1=||p"; }

# Docker's 14: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE
# NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP; nothing inheritable or ambient (moby
# empties the inheritable set since CVE-2022-24769).
caps=00000000a80425fb
check "capabilities: effective set is Docker's default 14" "$caps" "$(value CapEff)"
check "capabilities: permitted set is Docker's default 14" "$caps" "$(value CapPrm)"
check "capabilities: bounding set is Docker's default 14" "$caps" "$(value CapBnd)"
check "capabilities: inheritable set is empty" 0000000000000000 "$(value CapInh)"
check "capabilities: ambient set is empty" 0000000000000000 "$(value CapAmb)"
check "seccomp: filter mode (Seccomp: 2)" 2 "$(value Seccomp)"
check "no_new_privs: off by default (NoNewPrivs: 0)" 0 "$(value NoNewPrivs)"
check "no_new_privs: on with --security-opt no-new-privileges (NoNewPrivs: 1)" 1 "$nnp"

masked_any=
for p in /proc/asound /proc/acpi /proc/kcore /proc/keys /proc/latency_stats /proc/timer_list \
         /proc/timer_stats /proc/sched_debug /proc/scsi /sys/firmware /sys/devices/virtual/powercap; do
    v=$(value "masked $p")
    case $v in
        yes) pass "masked path $p: empty inside"; masked_any=1 ;;
        absent) ;;
        *) fail "masked path $p" "readable inside ($v)" ;;
    esac
done
[ -n "$masked_any" ] || fail "masked paths" "none of Docker's masked paths exists in the container"
for p in /proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger; do
    v=$(value "readonly $p")
    case $v in
        yes) pass "read-only path $p: mounted ro" ;;
        absent) ;;
        *) fail "read-only path $p" "$v" ;;
    esac
done
check "read-only path /proc/sys: a write fails" refused "$(value "write /proc/sys")"

check "devices: opening a block device (b 7 0, mknod'ed) is refused with EPERM" EPERM "$(value "open b 7 0")"
check "devices: opening /dev/mem (c 1 1, mknod'ed) is refused with EPERM" EPERM "$(value "open c 1 1")"
check "devices: /dev/null opens" opened "$(value "open /dev/null")"
check "devices: /dev/null takes writes" ok "$(value "write /dev/null")"

# Namespaces: the container's differ from this shell's (the host's) for pid, net, mnt, ipc
# and uts; --network none leaves only a loopback.
for ns in pid net mnt ipc uts; do
    inside=$(value "ns_$ns")
    outside=$(readlink "/proc/$$/ns/$ns")
    if [ -n "$inside" ] && [ "$inside" != "$outside" ]; then
        pass "namespace $ns: its own ($inside, host $outside)"
    else
        fail "namespace $ns" "inside ${inside:-unknown}, host $outside"
    fi
done
check "network none: only a loopback interface" "lo " "$(value netdevs)"

# From outside: what an unprivileged local user can reach.
as_nobody() {
    if command -v setpriv > /dev/null; then
        setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
    else
        runuser -u nobody -- "$@"
    fi
}
for dir in "$data_root" "$exec_root"; do
    mode=$(stat -c %a "$dir")
    if as_nobody ls "$dir" > /dev/null 2>&1; then
        fail "$dir (mode $mode) is not readable by nobody" "nobody can list it"
    else
        pass "$dir (mode $mode) is not readable by nobody"
    fi
    if as_nobody sh -c 'cd "$1"' sh "$dir" 2> /dev/null; then
        fail "$dir (mode $mode) is not traversable by nobody" "nobody can enter it"
    else
        pass "$dir (mode $mode) is not traversable by nobody"
    fi
done
check "socket $socket: mode 0660" 660 "$(stat -c %a "$socket")"
if as_nobody curl -sf --max-time 5 --unix-socket "$socket" http://localhost/_ping > /dev/null 2>&1; then
    fail "socket: nobody cannot connect" "nobody got an answer to /_ping"
else
    pass "socket: nobody cannot connect"
fi

total=$(printf '%s\n' "$out" | grep -c . || true)
[ "$total" -gt 0 ] || fail "probe" "the container printed nothing"
if [ "$failed" -gt 0 ]; then
    echo "security check: $failed check(s) failed against $host"
    exit 1
fi
echo "security check: every check passed against $host"
