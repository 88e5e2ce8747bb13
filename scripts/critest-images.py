#!/usr/bin/env python3
"""Stand-ins for the images cri-tools' critest v1.29 pulls, built offline into one OCI
image layout (OUT, one ref name per image; the layers they share are stored once), from Debian's busybox-static plus a few host
binaries (with their shared libraries) that Debian's busybox lacks. scripts/critest.sh
pushes each with skopeo to a private registry, where hosts.toml mirrors send
registry.k8s.io and gcr.io. Deterministic: the same host files give the same digests.

Usage: critest-images.py OUT [PAUSE_BINARY [NNP_BINARY]]
  PAUSE_BINARY  a static pause program: makes registry.k8s.io/pause:3.6 and :3.9
  NNP_BINARY    a static program printing "Effective uid: N": made setuid root, it is the
                entrypoint of registry.k8s.io/e2e-test-images/nonewprivs:1.3
Prints one line per image reference: <OUT>:<ref name> <reference as critest names it>
<its path in the private registry>.
"""

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

# Debian's busybox package (dynamic, unpacked by critest.sh) when given: busybox-static's
# shell runs applets without exec'ing them, so a masked /bin/ls would still run (the
# MaskedPaths spec expects "/bin/sh: ls: Permission denied", as the real image gives).
BUSYBOX = os.environ.get("CRITEST_BUSYBOX", "/bin/busybox")
# Debian's busybox has no ipcs (the IPC namespace specs run `ipcs -m`) and no pgrep
# (checkSleepCmd): the host's, with the libraries they load.
HOST_BINARIES = ["/usr/bin/ipcs", "/usr/bin/pgrep"]
CRI_TOOLS = "gcr.io/k8s-staging-cri-tools/"
E2E = "registry.k8s.io/e2e-test-images/"

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
www-data:x:33:
users:x:100:
nogroup:x:65534:
"""


class Layer:
    """A tar layer built in memory, entries in the order added, fixed times and owners."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.seen = set()

    def _info(self, path, kind, mode):
        info = tarfile.TarInfo(path.lstrip("/"))
        info.type = kind
        info.mode = mode
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    def dir(self, path, mode=0o755):
        path = path.strip("/")
        if not path or path in self.seen:
            return
        self.dir(os.path.dirname(path))
        self.seen.add(path)
        self.tar.addfile(self._info(path, tarfile.DIRTYPE, mode))

    def file(self, path, data, mode=0o644):
        if isinstance(data, str):
            data = data.encode()
        self.dir(os.path.dirname(path.strip("/")))
        info = self._info(path, tarfile.REGTYPE, mode)
        info.size = len(data)
        self.seen.add(path.strip("/"))
        self.tar.addfile(info, io.BytesIO(data))

    def hardlink(self, path, target):
        """`path` another name of the file `target` (as the busybox image's applets are: a
        masked /bin/ls must not mask /bin/sh)."""
        if path.strip("/") in self.seen:
            return
        self.dir(os.path.dirname(path.strip("/")))
        info = self._info(path, tarfile.LNKTYPE, 0o755)
        info.linkname = target.lstrip("/")
        self.seen.add(path.strip("/"))
        self.tar.addfile(info)

    def symlink(self, path, target):
        if path.strip("/") in self.seen:
            return
        self.dir(os.path.dirname(path.strip("/")))
        info = self._info(path, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.seen.add(path.strip("/"))
        self.tar.addfile(info)

    def host_file(self, path, mode=None):
        with open(path, "rb") as f:
            data = f.read()
        self.file(path, data, mode if mode is not None else os.stat(path).st_mode & 0o7777)

    def finish(self):
        """(uncompressed tar, gzipped blob)."""
        self.tar.close()
        raw = self.buf.getvalue()
        gz = io.BytesIO()
        with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
            g.write(raw)
        return raw, gz.getvalue()


def libraries(binary):
    """The shared libraries `binary` loads (ldd), as real paths and the names it asks for."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts:
            path = parts[parts.index("=>") + 1]
        elif parts and parts[0].startswith("/"):
            path = parts[0]
        else:
            continue
        if path.startswith("/"):
            libs.append(path)
    return libs


def add_libraries(layer, binary):
    """The shared libraries `binary` loads, at the paths it asks for them by."""
    if subprocess.run(["ldd", binary], capture_output=True).returncode != 0:
        return  # static
    for lib in libraries(binary):
        real = os.path.realpath(lib)
        if real.strip("/") not in layer.seen:
            layer.host_file(real, 0o755)
        if real != lib:
            layer.symlink(lib, real)


def base_layer():
    """busybox-static with every applet linked, users and groups, the usual directories,
    and ipcs and pgrep from the host."""
    layer = Layer()
    for d, mode in [("bin", 0o755), ("sbin", 0o755), ("usr/bin", 0o755), ("usr/sbin", 0o755),
                    ("etc", 0o755), ("root", 0o700), ("tmp", 0o1777), ("var/tmp", 0o1777),
                    ("var/run", 0o755), ("var/www", 0o755), ("proc", 0o555), ("sys", 0o555),
                    ("dev", 0o755), ("home", 0o755)]:
        layer.dir(d, mode)
    with open(BUSYBOX, "rb") as f:
        layer.file("bin/busybox", f.read(), 0o755)
    add_libraries(layer, BUSYBOX)
    applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    host_names = {os.path.basename(b) for b in HOST_BINARIES}
    for applet in applets:
        if applet != "bin/busybox" and os.path.basename(applet) not in host_names:
            layer.hardlink(applet, "/bin/busybox")
    for binary in HOST_BINARIES:
        add_libraries(layer, binary)
        layer.host_file(binary, 0o755)
    layer.file("etc/passwd", PASSWD)
    layer.file("etc/group", GROUP)
    layer.file("etc/hosts", "127.0.0.1 localhost\n")
    layer.file("etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")
    return layer.finish()


def nginx_layer(port):
    """nginx's stand-in: busybox httpd serving a page on `port`. PID 1 is a shell whose
    command line says "nginx: master process" and whose process name is nginx (it is
    started through /usr/sbin/nginx, a link to busybox), and it writes /var/run/nginx.pid,
    as the PID-namespace specs expect of nginx."""
    layer = Layer()
    layer.symlink("usr/sbin/nginx", "/bin/busybox")
    layer.file("usr/share/nginx/html/index.html",
               "<html><body><h1>Welcome to nginx!</h1><p>(berth critest stand-in: busybox httpd)</p></body></html>\n")
    script = (
        "echo $$ > /var/run/nginx.pid; "
        f"httpd -f -p {port} -h /usr/share/nginx/html & child=$!; "
        "trap 'kill $child; exit 0' TERM INT QUIT; wait $child"
    )
    layer.file("docker-entrypoint.sh",
               "#!/bin/sh\n# A stand-in for nginx (see critest-images.py).\n"
               f"exec -a sh /usr/sbin/nginx -c \"{script}\" 'nginx: master process nginx -g daemon off;'\n",
               0o755)
    return layer.finish(), ["/docker-entrypoint.sh"]


def httpd_layer():
    """Apache httpd's stand-in (the multi-container specs): busybox httpd on port 80, which
    first logs the command line Apache's image logs (the specs look for
    "httpd -D FOREGROUND")."""
    layer = Layer()
    layer.file("usr/local/apache2/htdocs/index.html", "<html><body><h1>It works!</h1></body></html>\n")
    layer.file("usr/local/bin/httpd-foreground",
               "#!/bin/sh\n# A stand-in for Apache httpd (see critest-images.py).\n"
               "echo \"[core:notice] [pid $$] AH00094: Command line: 'httpd -D FOREGROUND'\" >&2\n"
               "exec httpd -f -p 80 -h /usr/local/apache2/htdocs\n", 0o755)
    return layer.finish()


def files_layer(files):
    layer = Layer()
    for path, data, mode in files:
        layer.file(path, data, mode)
    return layer.finish()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_image(root, name, layers, config):
    """The blobs of one image of `layers` ((tar, gz) pairs) into the OCI layout at root;
    returns its index entry."""
    blobs = os.path.join(root, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def blob(data):
        digest = sha(data)
        with open(os.path.join(blobs, digest[7:]), "wb") as f:
            f.write(data)
        return {"digest": digest, "size": len(data)}

    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [sha(raw) for raw, _ in layers]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "critest-images.py"}
                    for _ in layers],
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(blob(json.dumps(cfg, sort_keys=True).encode()),
                       mediaType="application/vnd.oci.image.config.v1+json"),
        "layers": [dict(blob(gz), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
                   for _, gz in layers],
    }
    m = blob(json.dumps(manifest, sort_keys=True).encode())
    return dict(m, mediaType="application/vnd.oci.image.manifest.v1+json",
                annotations={"org.opencontainers.image.ref.name": name})


def main():
    if len(sys.argv) not in (2, 3, 4):
        sys.exit(__doc__)
    out = sys.argv[1]
    pause = sys.argv[2] if len(sys.argv) >= 3 else None
    nnp = sys.argv[3] if len(sys.argv) >= 4 else None
    base = base_layer()
    path_env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    images = []  # (layout name, layers, config, [(critest reference, registry path)])

    def add(name, layers, config, refs):
        cfg = {"Env": path_env, "Cmd": ["sh"]}
        cfg.update(config)
        images.append((name, layers, cfg, refs))

    def both(ref):
        """registry.k8s.io/x and gcr.io/x are mirrored to the registry's /x."""
        return (ref, ref.split("/", 1)[1])

    add("busybox", [base], {}, [both(E2E + "busybox:1.29-2")])
    nginx, entry = nginx_layer(80)
    add("nginx", [base, nginx], {"Entrypoint": entry, "Cmd": None,
                                 "ExposedPorts": {"80/tcp": {}}},
        [both(E2E + "nginx:1.14-2")])
    hostnet, entry = nginx_layer(12003)
    add("hostnet-nginx", [base, hostnet], {"Entrypoint": entry, "Cmd": None,
                                           "ExposedPorts": {"12003/tcp": {}}},
        [both(CRI_TOOLS + "hostnet-nginx-amd64:latest")])
    for image, user in [("test-image-user-uid", "1002"),
                        ("test-image-user-username", "www-data"),
                        ("test-image-user-uid-group", "1003:1004"),
                        ("test-image-user-username-group", "www-data:1004")]:
        add(image, [base], {"User": user}, [both(CRI_TOOLS + image + ":latest")])
    group = files_layer([
        ("etc/passwd", PASSWD + "default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n", 0o644),
        ("etc/group", GROUP + "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n", 0o644),
    ])
    add("test-image-predefined-group", [base, group], {"User": "1000"},
        [both(CRI_TOOLS + "test-image-predefined-group:latest")])
    # As cri-tools' images/image-test: busybox plus an empty file named after the image.
    for image, tag, marker in [("test-image-1", "latest", "test-image-1"),
                               ("test-image-2", "latest", "test-image-2"),
                               ("test-image-3", "latest", "test-image-3"),
                               ("test-image-latest", "latest", "test-image-latest"),
                               ("test-image-digest", "latest", "test-image-digest"),
                               ("test-image-tag", "test", "test"),
                               ("test-image-tag", "all", "all")]:
        add(f"{image}-{tag}", [base, files_layer([(marker, b"", 0o644)])], {},
            [both(CRI_TOOLS + f"{image}:{tag}")])
    same = files_layer([("same-image", b"", 0o644)])
    add("test-image-tags", [base, same], {},
        [both(CRI_TOOLS + f"test-image-tags:{t}") for t in (1, 2, 3)])
    add("httpd", [base, httpd_layer()], {"Cmd": ["httpd-foreground"],
                                         "ExposedPorts": {"80/tcp": {}}},
        [both(E2E + "httpd:2.4.39-4")])
    if nnp:
        with open(nnp, "rb") as f:
            data = f.read()
        add("nonewprivs", [base, files_layer([("nnp", data, 0o4755)])],
            {"Entrypoint": ["/nnp"], "Cmd": None}, [both(E2E + "nonewprivs:1.3")])
    if pause:
        with open(pause, "rb") as f:
            data = f.read()
        add("pause", [files_layer([("pause", data, 0o755)])],
            {"Entrypoint": ["/pause"], "Cmd": None, "Env": path_env},
            [both("registry.k8s.io/pause:3.6"), both("registry.k8s.io/pause:3.9")])

    entries = []
    for name, layers, config, refs in images:
        config = {k: v for k, v in config.items() if v is not None}
        entries.append(write_image(out, name, layers, config))
        for ref, path in refs:
            print(f"{out}:{name}", ref, path)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": entries}, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


if __name__ == "__main__":
    main()
