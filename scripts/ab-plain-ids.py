#!/usr/bin/env python3
"""A/B of one dashboard binary over two copies of the seeded history
(docs/benchmarks.md, sixth analytics round): files written before and after
a change to the Parquet layout. Requests alternate between the two
dashboards, which must give the same answers (elapsed_ms aside).

    ab-plain-ids.py http://OLD_DASHBOARD http://NEW_DASHBOARD SEED_DIR RUNS
"""
import statistics
import sys
from datetime import datetime, timedelta

import duckdb

from benchlib import END, alternate, cursor, get, p


def cursor_at(db, seed, days_back):
    """The admin page cursor at the newest order `days_back` days before END."""
    day = (datetime.fromisoformat(END) - timedelta(days=days_back)).date().isoformat()
    micros, oid = db.execute(
        f"SELECT epoch_us(placed_at), order_id FROM read_parquet('{seed}/orders/date={day}/*.parquet') "
        "ORDER BY placed_at DESC, order_id DESC LIMIT 1"
    ).fetchone()
    return cursor(micros, oid)


def main():
    old, new, seed, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    db = duckdb.connect()
    urls = {
        "page 360 days deep": f"/api/admin/orders?page_size=50&cursor={cursor_at(db, seed, 360)}",
        "status=delivered, 180 days deep": f"/api/admin/orders?page_size=50&status=delivered&cursor={cursor_at(db, seed, 180)}",
    }

    def answer(base, path):
        return {k: v for k, v in get(base, path).items() if k != "elapsed_ms"}

    for name, path in urls.items():
        a, b, _ = alternate(lambda: answer(old, path), lambda: answer(new, path), runs)
        print(f"{name}: old files p50/p95 {statistics.median(a):.1f}/{p(a, 0.95):.1f} ms, "
              f"new files {statistics.median(b):.1f}/{p(b, 0.95):.1f} ms")


if __name__ == "__main__":
    main()
