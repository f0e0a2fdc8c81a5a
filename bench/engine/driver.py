#!/usr/bin/env python3
"""Measurements of bench/engine/run.sh (see there for the setup).

    driver.py CONFIG.json OUT_DIR

CONFIG (written by run.sh) names each engine's client command, daemon
processes, shim processes and cgroup parent. The driver runs four phases
and writes OUT_DIR/samples.csv (every timed command), OUT_DIR/memory.json
and OUT_DIR/section.md (the engine section of bench/RESULTS.md, without
its markers).

1. `run --rm busybox true`: every entry once per iteration, the entry that
   goes first rotating, wall-clock time of the client from spawn to exit.
2. 100 detached `sleep` containers per engine, started one after another
   (rounds alternate the engines), total time; then memory: PSS of every
   shim and container process, growth of the daemons, and the system's
   (MemTotal - MemAvailable) growth; then everything is removed.
3. Idle memory of the daemons (RSS and PSS), after start-up and at the end.
4. PSS of one shim: alone (one container), and the median over 100.
"""

import csv
import json
import os
import statistics
import subprocess
import sys
import time


def now_ns():
    return time.monotonic_ns()


def run(argv, check=True, timeout=300):
    """Runs argv; returns (ns, returncode, stdout, stderr)."""
    start = now_ns()
    p = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=timeout,
    )
    ns = now_ns() - start
    if check and p.returncode != 0:
        raise SystemExit(
            "driver: %s failed (%d): %s" % (" ".join(argv), p.returncode, p.stderr.decode(errors="replace").strip())
        )
    return ns, p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def percentile(xs, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


# --- /proc -----------------------------------------------------------------


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def smaps_kb(pid, field):
    """A field of /proc/PID/smaps_rollup in kB (0 when gone)."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def status_kb(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def meminfo_kb():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])
    return out


def used_kb():
    m = meminfo_kb()
    return m["MemTotal"] - m["MemAvailable"]


def matching(argv0_suffix, needle):
    """Processes whose argv[0] ends with argv0_suffix and whose command
    line contains needle."""
    found = []
    for pid in pids():
        args = cmdline(pid)
        if args and args[0].endswith(argv0_suffix) and any(needle in a for a in args):
            found.append(pid)
    return found


def cgroup_pids(parent):
    """Every process in a cgroup below `parent` (the pids hierarchy of v1,
    else the cgroup2 root)."""
    for root in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        base = os.path.join(root, parent.strip("/"))
        if os.path.isdir(base):
            out = []
            for dirpath, _dirs, files in os.walk(base):
                if "cgroup.procs" in files and dirpath != base:
                    with open(os.path.join(dirpath, "cgroup.procs")) as f:
                        out.extend(int(x) for x in f.read().split())
            return out
    return []


# --- engines ---------------------------------------------------------------


class Engine:
    def __init__(self, name, cfg):
        self.name = name
        self.cli = cfg["cli"]
        self.run_rm = cfg.get("run_rm")
        self.detached = cfg.get("detached")
        self.shim = cfg.get("shim")  # [argv0 suffix, needle]
        self.daemons = cfg.get("daemons", [])  # [[argv0 suffix, needle], ...]
        self.cgroup_parent = cfg.get("cgroup_parent")
        self.rm = cfg.get("rm", ["rm", "-f"])
        self.label = cfg.get("label", name)

    def daemon_pids(self):
        out = []
        for suffix, needle in self.daemons:
            out.extend(matching(suffix, needle))
        return out

    def shim_pids(self):
        return matching(self.shim[0], self.shim[1]) if self.shim else []

    def container_pids(self):
        shims = set(self.shim_pids())
        return [p for p in cgroup_pids(self.cgroup_parent) if p not in shims]

    def ids(self):
        _, _, out, _ = run(self.cli + ["ps", "-aq"])
        return out.split()

    def remove_all(self):
        # Ten at a time: dockerd 20.10 wedged for good (every request
        # hanging) on one `rm -f` of 50 running containers here.
        ids = self.ids()
        for i in range(0, len(ids), 10):
            run(self.cli + self.rm + ids[i : i + 10], timeout=300)
        # The last shims and mounts go a moment after rm answers.
        deadline = time.monotonic() + 60
        while (self.shim_pids() or self.container_pids()) and time.monotonic() < deadline:
            time.sleep(0.1)


def daemon_memory(engine):
    ps = engine.daemon_pids()
    return {
        "pids": ps,
        "rss_kb": sum(status_kb(p, "VmRSS") for p in ps),
        "pss_kb": sum(smaps_kb(p, "Pss") for p in ps),
    }


# --- phases ----------------------------------------------------------------


def phase_run_rm(entries, iterations, warmup, writer):
    names = list(entries)
    samples = {n: [] for n in names}
    failures = {n: [] for n in names}
    total = warmup + iterations
    for it in range(total):
        k = it % len(names)
        order = names[k:] + names[:k]
        for name in order:
            ns, rc, _, err = run(entries[name], check=False)
            if it < warmup:
                continue
            writer.writerow(["run_rm", name, it - warmup, ns, rc])
            if rc == 0:
                samples[name].append(ns)
            else:
                failures[name].append(err.strip()[:300])
        if (it + 1) % 10 == 0:
            print("driver: run --rm iteration %d/%d" % (it + 1, total), file=sys.stderr)
    return samples, failures


def one_shim_pss(engine):
    """PSS of a shim serving the only container of its engine, idle: 3 s
    after the start (berth-shim unmaps its code after 1 s without work)."""
    engine.remove_all()
    run(engine.detached)
    time.sleep(3.0)
    shims = engine.shim_pids()
    pss = [smaps_kb(p, "Pss") for p in shims]
    rss = [status_kb(p, "VmRSS") for p in shims]
    engine.remove_all()
    return {"count": len(shims), "pss_kb": pss, "rss_kb": rss}


def settle_deletions():
    """On an ext4 without a journal (this machine's root), every inode
    allocation skips the inodes deleted in the last 60 s (300 s while
    their inode table block is dirty): creates right after a mass removal
    pay for it. Flush, then wait past that window, so no engine's timed
    starts pay for the removals before them (another engine's, or the
    `run --rm` phase's)."""
    os.sync()
    time.sleep(61.0)


def phase_hundred(engine, count, writer, rnd):
    engine.remove_all()
    settle_deletions()
    before_daemons = daemon_memory(engine)
    before_used = used_kb()
    before_slab = meminfo_kb()["Slab"]
    times = []
    start = now_ns()
    for i in range(count):
        ns, _, _, _ = run(engine.detached)
        times.append(ns)
        writer.writerow(["start100", engine.name, rnd * count + i, ns, 0])
    total = now_ns() - start
    time.sleep(2.0)  # let the last shims settle (a shim's helpers exit after start)
    shims = engine.shim_pids()
    conts = engine.container_pids()
    after_daemons = daemon_memory(engine)
    after_used = used_kb()
    after_slab = meminfo_kb()["Slab"]
    shim_pss = [smaps_kb(p, "Pss") for p in shims]
    cont_pss = [smaps_kb(p, "Pss") for p in conts]
    cont_anon = [smaps_kb(p, "Pss_Anon") for p in conts]
    running = len(engine.ids())
    rm_start = now_ns()
    engine.remove_all()
    rm_ns = now_ns() - rm_start
    writer.writerow(["rm100", engine.name, rnd, rm_ns, 0])
    return {
        "round": rnd,
        "count": count,
        "running": running,
        "total_ns": total,
        "median_start_ns": statistics.median(times),
        "rm_ns": rm_ns,
        "shims": len(shims),
        "shim_pss_kb": shim_pss,
        "containers": len(conts),
        "container_pss_kb": sum(cont_pss),
        "container_pss_anon_kb": sum(cont_anon),
        "daemon_pss_delta_kb": after_daemons["pss_kb"] - before_daemons["pss_kb"],
        "daemon_rss_delta_kb": after_daemons["rss_kb"] - before_daemons["rss_kb"],
        "system_used_delta_kb": after_used - before_used,
        "slab_delta_kb": after_slab - before_slab,
    }


def main():
    cfg_path, out_dir = sys.argv[1], sys.argv[2]
    with open(cfg_path) as f:
        cfg = json.load(f)
    engines = {name: Engine(name, e) for name, e in cfg["engines"].items()}
    iterations = int(cfg.get("iterations", 50))
    warmup = int(cfg.get("warmup", 3))
    rounds = int(cfg.get("rounds", 3))
    count = int(cfg.get("count", 100))
    result = {"iterations": iterations, "warmup": warmup, "rounds": rounds, "count": count}

    samples_f = open(os.path.join(out_dir, "samples.csv"), "w", newline="")
    writer = csv.writer(samples_f)
    writer.writerow(["phase", "entry", "iteration", "ns", "exit_code"])

    # 3a. Idle daemons, after start-up and the image import.
    time.sleep(3.0)
    distinct = {n: e for n, e in engines.items() if e.daemons and not cfg["engines"][n].get("same_daemon_as")}
    result["idle_start"] = {n: daemon_memory(e) for n, e in distinct.items()}

    # 1. run --rm.
    entries = {name: argv for name, argv in cfg["run_rm"].items()}
    print("driver: phase 1, run --rm (%d iterations)" % iterations, file=sys.stderr)
    samples, failures = phase_run_rm(entries, iterations, warmup, writer)
    result["run_rm"] = {
        n: {
            "n": len(s),
            "p10": percentile(s, 0.1),
            "median": percentile(s, 0.5),
            "p90": percentile(s, 0.9),
            "failures": failures[n],
        }
        for n, s in samples.items()
    }

    # 4a. One shim alone.
    result["one_shim"] = {}
    for n, e in engines.items():
        if e.detached and e.shim and not cfg["engines"][n].get("same_daemon_as"):
            result["one_shim"][n] = one_shim_pss(e)

    # 2. 100 containers, rounds alternating the engines' order.
    hundred = [n for n, e in engines.items() if e.detached]
    result["hundred"] = {n: [] for n in hundred}
    for rnd in range(rounds):
        k = rnd % len(hundred)
        for n in hundred[k:] + hundred[:k]:
            print("driver: phase 2, round %d: %d containers on %s" % (rnd + 1, count, n), file=sys.stderr)
            result["hundred"][n].append(phase_hundred(engines[n], count, writer, rnd))

    # 3b. Idle daemons after all that work (every container removed).
    time.sleep(3.0)
    result["idle_end"] = {n: daemon_memory(e) for n, e in distinct.items()}
    samples_f.close()
    with open(os.path.join(out_dir, "memory.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
