#!/usr/bin/env python3
"""A/B of two dashboard binaries over the same seeded history, on admin
order pages at many depths (docs/benchmarks.md, eighth dashboard round).

    ab-deep-pages.py http://OLD_DASHBOARD http://NEW_DASHBOARD SEED_DIR [STEP_DAYS] [PAGES]

At each depth STEP_DAYS apart (default 12: each page's status lookup reads
days no other depth reads), the first page is "cold", the first request
to touch its days (start both dashboards fresh), and the next PAGES
(default 5), followed by next_cursor as a user pages on, are "warm". A
second's pause after each page stands for the user reading it. Requests
alternate between the two dashboards, which must give the same answers
(timings and the statuses' source aside).
"""
import statistics
import sys
import time
from datetime import datetime, timedelta

import duckdb

from benchlib import END, cursor, get, p


def cursors(seed, step):
    db = duckdb.connect()
    out = []
    for days_back in range(20, 365, step):
        day = (datetime.fromisoformat(END) - timedelta(days=days_back)).date().isoformat()
        row = db.execute(
            f"SELECT epoch_us(placed_at), order_id FROM read_parquet('{seed}/orders/date={day}/*.parquet') "
            "ORDER BY placed_at DESC, order_id DESC LIMIT 1"
        ).fetchone()
        out.append((days_back, cursor(*row)))
    return out


def answer(base, path):
    return {k: v for k, v in get(base, path).items() if k not in ("elapsed_ms", "queries", "statuses_from")}


def timed_pair(old, new, path, old_first):
    times, results = [0.0, 0.0], [None, None]
    for k in ((0, 1) if old_first else (1, 0)):
        started = time.perf_counter()
        results[k] = answer((old, new)[k], path)
        times[k] = (time.perf_counter() - started) * 1000
    assert results[0] == results[1], f"the two dashboards disagree on {path}"
    return times, results[0]


def main():
    old, new, seed = sys.argv[1], sys.argv[2], sys.argv[3]
    step = int(sys.argv[4]) if len(sys.argv) > 4 else 12
    follow = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    depths = cursors(seed, step)
    cold, warm = ([], []), ([], [])
    for i, (_, c) in enumerate(depths):
        for n in range(follow + 1):
            (a, b), page = timed_pair(old, new, f"/api/admin/orders?page_size=50&cursor={c}", (i + n) % 2 == 0)
            into = cold if n == 0 else warm
            into[0].append(a)
            into[1].append(b)
            c = page["next_cursor"]
            time.sleep(1)
    for name, (a, b) in (("cold", cold), ("warm", warm)):
        print(f"{name} ({len(a)} pages, {depths[0][0]}-{depths[-1][0]} days deep): "
              f"old p50/p95 {statistics.median(a):.1f}/{p(a, 0.95):.1f} ms, "
              f"new {statistics.median(b):.1f}/{p(b, 0.95):.1f} ms")


if __name__ == "__main__":
    main()
