#!/usr/bin/env python3
"""Measurements of bench/network/run.sh (see there for the setup).

    driver.py CONFIG.json OUT_DIR

Writes OUT_DIR/samples.csv (every sample: phase, entry, iteration, value,
unit, exit code) and OUT_DIR/results.json (summaries for report.py).
The timing, the alternating `run --rm` loop and the 100-container phase
are bench/engine/driver.py's, imported.
"""

import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("engine_driver", os.path.join(HERE, "..", "engine", "driver.py"))
E = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(E)


class Writer:
    """samples.csv with a unit column; the engine driver's rows (phase,
    entry, iteration, ns, exit code) get "ns"."""

    def __init__(self, path):
        self.f = open(path, "w", newline="")
        self.w = csv.writer(self.f)
        self.w.writerow(["phase", "entry", "iteration", "value", "unit", "exit_code"])

    def writerow(self, row):
        if len(row) == 5:
            row = row[:4] + ["ns"] + row[4:]
        self.w.writerow(row)
        self.f.flush()


def summary(xs):
    return {
        "n": len(xs),
        "p10": E.percentile(xs, 0.1),
        "median": E.percentile(xs, 0.5),
        "p90": E.percentile(xs, 0.9),
    }


def parse_kv(out):
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", out)}


# --- phase 1 ---------------------------------------------------------------


def phase_run_rm(cfg, engines, writer):
    entries = {}
    for name, e in engines.items():
        if name == "podman" and not cfg["podman_bridge"]:
            nets = [("none", ["--network", "none"])]
        else:
            nets = [("bridge", []), ("none", ["--network", "none"])]
        for net, flags in nets:
            entries["%s, %s" % (name, net)] = e["cli"] + ["run", "--rm"] + flags + e.get("run_flags", []) + ["busybox", "true"]
    print("driver: phase 1, run --rm (%d iterations)" % cfg["iterations"], file=sys.stderr)
    samples, failures = E.phase_run_rm(entries, cfg["iterations"], cfg["warmup"], writer)
    out = {}
    for n, s in samples.items():
        out[n] = summary(s)
        out[n]["failures"] = failures[n]
    # bridge - none, per engine: of the medians, and the median of the
    # differences within each iteration (both ran in it, adjacent or nearly).
    deltas = {}
    for name in engines:
        b, n = samples.get(name + ", bridge"), samples.get(name + ", none")
        if not b or not n or failures[name + ", bridge"] or failures[name + ", none"]:
            continue
        paired = [x - y for x, y in zip(b, n)]
        deltas[name] = {
            "of_medians": E.percentile(b, 0.5) - E.percentile(n, 0.5),
            "of_p10s": E.percentile(b, 0.1) - E.percentile(n, 0.1),
            "paired_median": E.percentile(paired, 0.5),
        }
    return {"entries": out, "deltas": deltas}


# --- phase 2 ---------------------------------------------------------------


def docker_dnat_packets(port):
    """Packets that went through dockerd's DNAT rule for the port."""
    _, rc, out, _ = E.run(["iptables", "-t", "nat", "-L", "DOCKER", "-n", "-v", "-x"], check=False)
    total = 0
    for line in out.splitlines():
        if "DNAT" in line and ("dpt:%d " % port) in line + " ":
            total += int(line.split()[0])
    return total


def proxy_running(port):
    for pid in E.pids():
        args = E.cmdline(pid)
        if args and args[0].endswith("docker-proxy") and str(port) in args:
            return True
    return False


def wait_tcp(netbench, host, port):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        _, rc, _, _ = E.run([netbench, "crr", host, str(port), "1"], check=False, timeout=10)
        if rc == 0:
            return
        time.sleep(0.2)
    raise SystemExit("driver: nothing answers on %s:%d" % (host, port))


def phase_tcp(cfg, engines, writer):
    nb = cfg["netbench"]
    host_ip = cfg["host_ip"]
    targets = [("host loopback, no container", "host", "127.0.0.1", 18200)]
    for name, e in engines.items():
        if name == "podman" and not cfg["podman_bridge"]:
            continue
        port = e["port"]
        E.run(e["cli"] + ["run", "-d", "--name", "bbn-server", "-p", "%d:5201" % port] + e.get("run_flags", [])
              + ["busybox", "/bin/netbench", "server", "5201"])
        _, _, ip, _ = E.run(e["cli"] + ["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "bbn-server"])
        ip = ip.strip()
        targets += [
            ("%s, 127.0.0.1:%d" % (name, port), name, "127.0.0.1", port),
            ("%s, %s:%d" % (name, host_ip, port), name, host_ip, port),
            ("%s, container %s:5201 (no NAT)" % (name, ip), name, ip, 5201),
        ]
    for _, _, h, p in targets:
        wait_tcp(nb, h, p)
    res = {t[0]: {"engine": t[1], "host": t[2], "port": t[3], "gbps": [], "rr_us": [], "rr_p90_us": [],
                  "crr_us": [], "crr_p90_us": [], "dnat_packets": 0, "failures": []} for t in targets}
    dport = engines["dockerd"]["port"]
    rounds = cfg["tcp_rounds"]
    for rnd in range(rounds):
        k = rnd % len(targets)
        print("driver: phase 2, TCP round %d/%d" % (rnd + 1, rounds), file=sys.stderr)
        for label, eng, h, p in targets[k:] + targets[:k]:
            r = res[label]
            before = docker_dnat_packets(dport) if eng == "dockerd" else 0
            for kind, argv in [
                ("stream", [nb, "stream", h, str(p), str(cfg["tcp_seconds"])]),
                ("rr", [nb, "rr", h, str(p), "2000", "64"]),
                ("crr", [nb, "crr", h, str(p), "300"]),
            ]:
                _, rc, out, err = E.run(argv, check=False, timeout=120)
                kv = parse_kv(out)
                if rc != 0:
                    r["failures"].append("%s: %s" % (kind, err.strip()[:200]))
                    writer.writerow(["tcp_" + kind, label, rnd, "", "", rc])
                    continue
                if kind == "stream":
                    r["gbps"].append(kv["gbps"])
                    writer.writerow(["tcp_stream", label, rnd, kv["gbps"], "Gbit/s", rc])
                else:
                    r[kind + "_us"].append(kv["median_us"])
                    r[kind + "_p90_us"].append(kv["p90_us"])
                    writer.writerow(["tcp_" + kind, label, rnd, kv["median_us"], "us (median of the sample)", rc])
            if eng == "dockerd":
                r["dnat_packets"] += docker_dnat_packets(dport) - before
    out = {}
    for label, r in res.items():
        out[label] = {
            "engine": r["engine"],
            "host": r["host"],
            "port": r["port"],
            "gbps": summary(r["gbps"]),
            "rr_us": summary(r["rr_us"]),
            "rr_p90_us": summary(r["rr_p90_us"]),
            "crr_us": summary(r["crr_us"]),
            "crr_p90_us": summary(r["crr_p90_us"]),
            "dnat_packets": r["dnat_packets"],
            "failures": r["failures"],
        }
    docker_proxy = proxy_running(dport)
    for name, e in engines.items():
        E.run(e["cli"] + e.get("rm", ["rm", "-f"]) + ["bbn-server"], check=False)
    return {"targets": out, "docker_proxy_running": docker_proxy}


# --- phase 3 ---------------------------------------------------------------


def phase_hundred(cfg, engines, writer):
    runs = {}
    for name, e in engines.items():
        nets = ["bbnnet", "none"] if (name != "podman" or cfg["podman_bridge"]) else ["none"]
        for net in nets:
            runs["%s, %s" % (name, net)] = E.Engine(
                "%s, %s" % (name, net),
                {
                    "cli": e["cli"],
                    "detached": e["cli"] + ["run", "-d", "--network", net] + e.get("run_flags", [])
                    + ["busybox", "sleep", "1000000"],
                    "shim": e["shim"],
                    "daemons": e["daemons"],
                    "cgroup_parent": e["cgroup_parent"],
                    "rm": e.get("rm", ["rm", "-f"]),
                },
            )
    names = list(runs)
    out = {n: [] for n in names}
    for rnd in range(cfg["rounds"]):
        k = rnd % len(names)
        for n in names[k:] + names[:k]:
            print("driver: phase 3, round %d: %d containers, %s" % (rnd + 1, cfg["count"], n), file=sys.stderr)
            r = E.phase_hundred(runs[n], cfg["count"], writer, rnd)
            out[n].append({k2: r[k2] for k2 in ("round", "count", "running", "total_ns", "median_start_ns", "rm_ns")})
    return out


def main():
    cfg_path, out_dir = sys.argv[1], sys.argv[2]
    with open(cfg_path) as f:
        cfg = json.load(f)
    engines = cfg["engines"]
    writer = Writer(os.path.join(out_dir, "samples.csv"))
    result = {k: cfg[k] for k in ("iterations", "warmup", "tcp_rounds", "tcp_seconds", "rounds", "count",
                                  "host_ip", "podman_bridge", "podman_reason")}
    result["run_rm"] = phase_run_rm(cfg, engines, writer)
    result["tcp"] = phase_tcp(cfg, engines, writer)
    result["hundred"] = phase_hundred(cfg, engines, writer)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
