#!/usr/bin/env python3
"""A/B of one dashboard binary over two copies of the seeded history
(docs/benchmarks.md, sixth analytics round): files written before and after
a change to the Parquet layout. Requests alternate between the two
dashboards, which must give the same answers (timings aside).

    ab-plain-ids.py http://OLD_DASHBOARD http://NEW_DASHBOARD SEED_DIR RUNS
"""
import statistics
import sys

import duckdb

from benchlib import alternate, cursor_at, p, page_answer


def main():
    old, new, seed, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    db = duckdb.connect()
    urls = {
        "page 360 days deep": f"/api/admin/orders?page_size=50&cursor={cursor_at(db, seed, 360)}",
        "status=delivered, 180 days deep": f"/api/admin/orders?page_size=50&status=delivered&cursor={cursor_at(db, seed, 180)}",
    }

    for name, path in urls.items():
        a, b, _ = alternate(lambda: page_answer(old, path), lambda: page_answer(new, path), runs)
        print(f"{name}: old files p50/p95 {statistics.median(a):.1f}/{p(a, 0.95):.1f} ms, "
              f"new files {statistics.median(b):.1f}/{p(b, 0.95):.1f} ms")


if __name__ == "__main__":
    main()
