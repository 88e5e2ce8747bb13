#!/usr/bin/env python3
"""Turn a bundle's config.json into a Docker-like one: Docker's default capabilities, a
memory and a pids limit, and a seccomp profile in Docker's format (moby's default.json, or
podman's /usr/share/containers/seccomp.json) converted to the OCI form a runtime receives,
the way an engine does: keep the rules whose includes/excludes match x86_64 and the caps.

Usage: docker_like_config.py CONFIG.json PROFILE.json   (rewrites CONFIG.json in place)
"""
import json
import sys

DOCKER_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
ARCH = "amd64"


def applies(rule):
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if inc.get("arches") and ARCH not in inc["arches"]:
        return False
    if exc.get("arches") and ARCH in exc["arches"]:
        return False
    if inc.get("caps") and not set(inc["caps"]) <= set(DOCKER_CAPS):
        return False
    if exc.get("caps") and set(exc["caps"]) & set(DOCKER_CAPS):
        return False
    return True


def oci_profile(profile):
    arches = []
    for m in profile.get("archMap") or []:
        if m["architecture"] == "SCMP_ARCH_X86_64":
            arches = [m["architecture"]] + m.get("subArchitectures", [])
    out = {"defaultAction": profile["defaultAction"], "architectures": arches, "syscalls": []}
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    for rule in profile["syscalls"]:
        if not applies(rule):
            continue
        names = rule.get("names") or [rule["name"]]
        entry = {"names": names, "action": rule["action"]}
        if rule.get("args"):
            entry["args"] = rule["args"]
        if "errnoRet" in rule:
            entry["errnoRet"] = rule["errnoRet"]
        out["syscalls"].append(entry)
    return out


def main():
    config_path, profile_path = sys.argv[1], sys.argv[2]
    config = json.load(open(config_path))
    config["process"]["capabilities"] = {k: DOCKER_CAPS for k in ("bounding", "effective", "permitted")}
    config["linux"]["resources"] = {"memory": {"limit": 268435456}, "pids": {"limit": 1024}}
    config["linux"]["seccomp"] = oci_profile(json.load(open(profile_path)))
    json.dump(config, open(config_path, "w"), indent=1)


if __name__ == "__main__":
    main()
