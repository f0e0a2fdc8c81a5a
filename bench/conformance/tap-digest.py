#!/usr/bin/env python3
"""Digest a bats TAP file from runc's integration suite into one line per
failed test: the test name, the assertion that failed, the last runtime
command the test ran (from the suite's `runc` wrapper, which logs
"<runtime> <args> (status=N):" followed by the output) and the first line of
that command's output.

Usage: tap-digest.py FILE.tap [--runtime NAME] [--tsv]

Why: the raw TAP of a 300-test run is thousands of lines; triage needs the
command and the error side by side, grouped by cause.
"""

import argparse
import re
import sys

RESULT = re.compile(r"^(ok|not ok) (\d+) (.*?)(?: # (skip|timeout)(.*))?$")
NOISE = re.compile(r"^# (rmdir: failed to remove|--- teardown ---|/.*helpers\.bash: line \d+: kill)")


def parse(path):
    """Yield (status, number, name, diagnostic lines) per test."""
    current = None
    with open(path, encoding="utf-8", errors="replace") as tap:
        for raw in tap:
            line = raw.rstrip("\n").rstrip("\r")
            m = RESULT.match(line)
            if m:
                if current:
                    yield current
                status = m.group(1)
                if m.group(4) == "skip":
                    status = "skip"
                elif m.group(4) == "timeout":
                    status = "timeout"
                current = (status, int(m.group(2)), m.group(3), [])
            elif current and line.startswith("#"):
                current[3].append(line)
    if current:
        yield current


def digest(diag, runtime):
    """Return (failed assertion, last runtime command, its first output line)."""
    assertion = next((d[2:].strip() for d in diag if d.startswith("#   `")), "")
    cmd, first = "", ""
    cmd_re = re.compile(r"^# (%s .*) \(status=(-?\d+)\):$" % re.escape(runtime))
    for i, d in enumerate(diag):
        m = cmd_re.match(d)
        if not m:
            continue
        if m.group(1).split()[1:2] == ["spec"]:
            continue
        cmd = "%s -> status %s" % (m.group(1), m.group(2))
        first = ""
        for nxt in diag[i + 1:]:
            if cmd_re.match(nxt) or NOISE.match(nxt):
                break
            text = nxt[1:].strip()
            if text:
                first = text
                break
    return assertion, cmd, first


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tap")
    ap.add_argument("--runtime", default="berth-runtime", help="basename the suite logs commands with")
    ap.add_argument("--tsv", action="store_true")
    args = ap.parse_args()
    for status, num, name, diag in parse(args.tap):
        if status not in ("not ok", "timeout"):
            continue
        assertion, cmd, first = digest(diag, args.runtime)
        fields = [str(num), status, name, assertion, cmd, first[:300]]
        if args.tsv:
            print("\t".join(f.replace("\t", " ") for f in fields))
        else:
            print("%s %s: %s\n    assert: %s\n    cmd:    %s\n    out:    %s" % tuple(fields))
    return 0


if __name__ == "__main__":
    sys.exit(main())
