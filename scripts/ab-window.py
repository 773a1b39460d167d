#!/usr/bin/env python3
"""A/B of `orderstream bench window` binaries (docs/benchmarks.md, seventeenth
analytics round). One invocation of each binary in turn, INVOCATIONS times,
each `--runs 5` into a fresh output; prints each binary's median and
quartiles over all its runs. This machine's speed drifts by more than most
changes save, so one invocation per binary says little; alternating many
does.

    ab-window.py INPUT_DIR INVOCATIONS BINARY [BINARY ...]

INPUT_DIR is a table directory a replay wrote (the bench's
/tmp/orderstream-bench/replay-one). A BINARY written NAME=VALUE@PATH runs
PATH with that environment variable set.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile


def run(binary, source, output):
    env = dict(os.environ)
    if "@" in binary:
        setting, binary = binary.split("@", 1)
        name, value = setting.split("=", 1)
        env[name] = value
    out = subprocess.run(
        [binary, "bench", "window", "--runs", "5", "--input", source, "--output", output],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, check=True,
    ).stdout
    rows = [int(r) for r in re.findall(r"bench: (\d+) rows from", out)]
    rates = [int(r) for r in re.findall(r"= (\d+) rows/s \(", out)]
    if not rates:
        raise SystemExit(f"{binary}: no rates in its output:\n{out}")
    return [rows[0] / rate * 1000 for rate in rates]


def main():
    source, invocations, binaries = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    times = {b: [] for b in binaries}
    work = tempfile.mkdtemp(prefix="ab-window-")
    try:
        for _ in range(invocations):
            for binary in binaries:
                output = os.path.join(work, "out")
                shutil.rmtree(output, ignore_errors=True)
                times[binary] += run(binary, source, output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for binary, ms in times.items():
        ms = sorted(ms)
        print(f"{binary}: {len(ms)} runs, median {statistics.median(ms):.0f} ms, "
              f"quartiles {ms[len(ms) // 4]:.0f} / {ms[3 * len(ms) // 4]:.0f} ms")


if __name__ == "__main__":
    main()
