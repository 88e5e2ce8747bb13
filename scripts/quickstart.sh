#!/bin/sh
# From a fresh Debian machine to a first container: install the packages, build berth,
# make a busybox bundle and run it with berth-runtime; then start berthd on a private
# socket, import the same root filesystem as an image, look at it with the docker CLI, run it
# with the berth CLI and the docker CLI, push it to a private registry and pull it back;
# build a web server image from a Dockerfile and publish its port on berthd's own bridge
# (a private bridge name and subnet, removed at the end). Run as root.
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

# The daemon: everything under $work, stopped (SIGTERM) when the script ends.
bridge=bq$$
subnet=10.231.$(shuf -i 0-254 -n 1)
"$bin/berthd" --config-file /dev/null -H "unix://$work/berth.sock" \
    --data-root "$work/data" --exec-root "$work/run" --bridge "$bridge" --bip "$subnet.1/24" \
    2> "$work/berthd.log" &
berthd_pid=$!
registry_pid=
cleanup() {
    docker rm -f web >/dev/null 2>&1 || true
    kill -TERM $berthd_pid $registry_pid 2>/dev/null
    wait $berthd_pid $registry_pid 2>/dev/null || true
    ip link del "$bridge" 2>/dev/null || true
    nft delete table ip "berth-$bridge" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
while [ ! -S "$work/berth.sock" ]; do sleep 0.05; done
export DOCKER_HOST="unix://$work/berth.sock" DOCKER_CONFIG="$work/docker-config"
tar -C "$work/rootfs" -c . | docker import --change 'CMD ["sh"]' - quickstart/busybox:1 >/dev/null
docker images
docker image inspect --format 'quickstart/busybox:1 has {{len .RootFS.Layers}} layer, Cmd {{json .Config.Cmd}}' quickstart/busybox:1
# A first container through berthd, with the berth CLI, then with the docker CLI.
"$bin/berth" -H "$DOCKER_HOST" run --rm --network none quickstart/busybox:1 \
    sh -c 'echo "hello from $(hostname) through berthd: $(id -un), $(ls /proc | grep -c "^[0-9]") process visible"'
docker run --rm --network none quickstart/busybox:1 echo "and through the docker CLI too"

# A private registry (Debian's docker-registry) on a free loopback port: push, forget, pull, run.
port=$(shuf -i 20000-60000 -n 1)
while [ -n "$(ss -Hltn "sport = :$port")" ]; do port=$(shuf -i 20000-60000 -n 1); done
printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$work/registry" "$port" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
until curl -sf "http://127.0.0.1:$port/v2/" > /dev/null; do sleep 0.05; done
docker tag quickstart/busybox:1 "127.0.0.1:$port/quickstart/busybox:1"
docker push -q "127.0.0.1:$port/quickstart/busybox:1"
docker rmi -f quickstart/busybox:1 "127.0.0.1:$port/quickstart/busybox:1" > /dev/null
"$bin/berth" -H "$DOCKER_HOST" pull -q "127.0.0.1:$port/quickstart/busybox:1"
docker run --rm --network none "127.0.0.1:$port/quickstart/busybox:1" echo "and from a registry"

# Build an image from a Dockerfile and serve it on a published port of berthd's bridge.
mkdir -p "$work/web"
printf '<h1>hello from a berth container</h1>\n' > "$work/web/index.html"
printf 'FROM quickstart/busybox:1\nCOPY index.html /www/\nEXPOSE 80\nCMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n' \
    > "$work/web/Dockerfile"
docker tag "127.0.0.1:$port/quickstart/busybox:1" quickstart/busybox:1
docker build -q -t quickstart/web:1 "$work/web"
web=$(shuf -i 20000-60000 -n 1)
while [ -n "$(ss -Hltn "sport = :$web")" ]; do web=$(shuf -i 20000-60000 -n 1); done
docker run -d --name web -p "127.0.0.1:$web:80" quickstart/web:1 > /dev/null
docker port web
until curl -sf "http://127.0.0.1:$web/" ; do sleep 0.1; done
