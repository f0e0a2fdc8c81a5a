#!/usr/bin/env python3
"""Times the clients for bench/cli/run.sh.

argv: result.json samples.csv socket iterations warmup count berth docker...

Each run is a fork+exec of the client with stdout to /dev/null, timed from
just before posix_spawn to waitpid (the driver's own cost, the same for
both clients, is measured too: /bin/true). The raw API entries make the
same requests the clients make, over the socket, one connection each."""

import csv
import json
import os
import socket
import statistics
import sys
import time

out_json, out_csv, sock, iterations, warmup, count, berth = sys.argv[1:8]
docker = sys.argv[8:]
iterations, warmup, count = int(iterations), int(warmup), int(count)
host = ["-H", "unix://" + sock]
devnull = os.open(os.devnull, os.O_RDWR)


def spawn(argv):
    fa = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=fa)
    _, status = os.waitpid(pid, 0)
    t = time.perf_counter_ns() - t0
    return t, os.waitstatus_to_exitcode(status)


def api(paths):
    """GET each path on a fresh connection, read to the end."""
    t0 = time.perf_counter_ns()
    for p in paths:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.sendall(("GET %s HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n" % p).encode())
        while s.recv(65536):
            pass
        s.close()
    return time.perf_counter_ns() - t0, 0


# What each command asks the daemon (both clients negotiate the version
# with /_ping first).
commands = {
    "--version (no daemon)": (["--version"], None),
    "version": (["version"], ["/_ping", "/v1.41/version"]),
    "ps -a (%d containers)" % count: (["ps", "-a"], ["/_ping", "/v1.41/containers/json?all=1"]),
    "images": (["images"], ["/_ping", "/v1.41/images/json"]),
    "inspect (one container)": (["inspect", "c1"], ["/_ping", "/v1.41/containers/c1/json"]),
}

samples = {}
rows = []
for name, (args, paths) in commands.items():
    entries = {
        "berth": lambda a=args: spawn([berth] + (host if a[0] != "--version" else []) + a),
        "docker": lambda a=args: spawn(docker + (host if a[0] != "--version" else []) + a),
    }
    if paths:
        entries["raw API"] = lambda p=paths: api(p)
    else:
        entries["/bin/true"] = lambda: spawn(["/bin/true"])
    for i in range(warmup + iterations):
        for client, fn in entries.items():
            t, code = fn()
            if i >= warmup:
                samples.setdefault(name, {}).setdefault(client, []).append((t, code))
                rows.append([name, client, i - warmup, t, code])

result = {}
for name, per in samples.items():
    result[name] = {}
    for client, s in per.items():
        ok = sorted(t for t, c in s if c == 0)
        q = statistics.quantiles(ok, n=10) if len(ok) >= 2 else [ok[0]] * 9
        result[name][client] = {
            "n": len(ok),
            "failed": sum(1 for _, c in s if c != 0),
            "median": statistics.median(ok),
            "p10": q[0],
            "p90": q[-1],
        }
with open(out_json, "w") as f:
    json.dump({"iterations": iterations, "warmup": warmup, "count": count, "commands": result}, f, indent=1)
with open(out_csv, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["command", "client", "iteration", "ns", "exit"])
    w.writerows(rows)
