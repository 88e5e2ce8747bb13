#!/usr/bin/env python3
"""Write a docker-archive (classic layout, gzip'd layers) from uncompressed layer tars.

Usage: make_archive.py OUT.tar NAME:TAG LAYER.tar...
The config's diff_ids are the sha256 of each uncompressed layer; each layer is stored as
<sha of gz>/layer.tar.gz-compressed bytes (docker load and podman accept compressed layers).
"""
import hashlib
import io
import json
import subprocess
import sys
import tarfile


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def add_bytes(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def main():
    out, ref, layers = sys.argv[1], sys.argv[2], sys.argv[3:]
    diff_ids, gz_paths = [], []
    for layer in layers:
        diff_ids.append("sha256:" + sha256_file(layer))
        gz = layer + ".gz"
        with open(gz, "wb") as f:
            subprocess.run(["gzip", "-6", "-c", layer], stdout=f, check=True)
        gz_paths.append(gz)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/bash"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "bench layer %d" % i} for i in range(len(layers))],
    }
    config_bytes = json.dumps(config).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    with tarfile.open(out, "w") as tar:
        names = []
        for gz in gz_paths:
            name = sha256_file(gz) + "/layer.tar"
            tar.add(gz, arcname=name)
            names.append(name)
        add_bytes(tar, config_name, config_bytes)
        add_bytes(tar, "manifest.json", json.dumps([{"Config": config_name, "RepoTags": [ref], "Layers": names}]).encode())


if __name__ == "__main__":
    main()
