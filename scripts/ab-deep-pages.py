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

import duckdb

from benchlib import alternate, cursor_at, p, page_answer


def main():
    old, new, seed = sys.argv[1], sys.argv[2], sys.argv[3]
    step = int(sys.argv[4]) if len(sys.argv) > 4 else 12
    follow = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    db = duckdb.connect()
    depths = [(days_back, cursor_at(db, seed, days_back)) for days_back in range(20, 365, step)]
    cold, warm = ([], []), ([], [])
    for i, (_, c) in enumerate(depths):
        for n in range(follow + 1):
            path = f"/api/admin/orders?page_size=50&cursor={c}"
            a, b, page = alternate(lambda: page_answer(old, path), lambda: page_answer(new, path), 1, start=i + n)
            into = cold if n == 0 else warm
            into[0].extend(a)
            into[1].extend(b)
            c = page["next_cursor"]
            time.sleep(1)
    for name, (a, b) in (("cold", cold), ("warm", warm)):
        print(f"{name} ({len(a)} pages, {depths[0][0]}-{depths[-1][0]} days deep): "
              f"old p50/p95 {statistics.median(a):.1f}/{p(a, 0.95):.1f} ms, "
              f"new {statistics.median(b):.1f}/{p(b, 0.95):.1f} ms")


if __name__ == "__main__":
    main()
