#!/usr/bin/env python3
"""Mean and median time of one Docker API request, many times over one keep-alive connection
(so neither a client's start-up nor connection set-up is counted).

Usage: api_latency.py SOCKET PATH [N]
"""
import http.client
import socket
import statistics
import sys
import time


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


def main():
    sock, path = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    conn = UnixConnection(sock)
    times = []
    for i in range(n + 10):
        start = time.perf_counter()
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            sys.exit(f"{path}: HTTP {resp.status}")
        if i >= 10:
            times.append((time.perf_counter() - start) * 1000)
    print(f"{statistics.mean(times):.2f} {statistics.median(times):.2f}")


if __name__ == "__main__":
    main()
