#!/usr/bin/env python3
"""`run --rm IMAGE /bin/true` as the docker CLI does it, but from one kept-alive connection:
create, start, wait, delete. Prints the mean and median milliseconds of N runs, so the
engine's own time is seen without any client's start-up.

Usage: run_api.py SOCKET IMAGE [N]
"""
import json
import statistics
import sys
import time

from api_latency import UnixConnection


def call(conn, method, path, body=None, expect=(200, 201, 204)):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    text = resp.read()
    if resp.status not in expect:
        sys.exit(f"{method} {path}: HTTP {resp.status} {text[:200]!r}")
    return json.loads(text) if text.strip() else None


def main():
    sock, image = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    conn = UnixConnection(sock)
    config = {"Image": image, "Cmd": ["/bin/true"], "HostConfig": {"NetworkMode": "none"}}
    times = []
    for i in range(n + 3):
        start = time.perf_counter()
        cid = call(conn, "POST", "/v1.41/containers/create", config)["Id"]
        call(conn, "POST", f"/v1.41/containers/{cid}/start")
        status = call(conn, "POST", f"/v1.41/containers/{cid}/wait")
        call(conn, "DELETE", f"/v1.41/containers/{cid}")
        if status.get("StatusCode") != 0:
            sys.exit(f"exit status {status}")
        if i >= 3:
            times.append((time.perf_counter() - start) * 1000)
    print(f"{statistics.mean(times):.1f} {statistics.median(times):.1f}")


if __name__ == "__main__":
    main()
