"""Helpers the dashboard benchmark scripts share (bench-dashboard.py and the
ab-*.py comparisons): percentiles, GETs against a dashboard, admin page
cursors, and timing two variants alternately."""
import json
import time
import urllib.request

# The last day of the seeded history (`scripts/bench-analytics seed`).
END = "2026-11-21"


def p(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=60) as r:
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"{path}: {r.status}")
        return json.loads(body)


def cursor(micros, order_id):
    return f"{micros}~{order_id}".encode().hex()


def alternate(run_a, run_b, pairs, same=lambda a, b: a == b):
    """Times `run_a` and `run_b` `pairs` times each, alternating which goes
    first so both see the same machine state; asserts they agree. Returns
    the two lists of milliseconds and the last result."""
    times = ([], [])
    for i in range(pairs):
        results = [None, None]
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            started = time.perf_counter()
            results[k] = (run_a, run_b)[k]()
            times[k].append((time.perf_counter() - started) * 1000)
        assert same(results[0], results[1]), "the two variants disagree"
    return times[0], times[1], results[0]
