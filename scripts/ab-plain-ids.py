#!/usr/bin/env python3
"""A/B of one dashboard binary over two copies of the seeded history
(docs/benchmarks.md, sixth analytics round): files written before and after
a change to the Parquet layout. Requests alternate between the two
dashboards, which must give the same answers (elapsed_ms aside).

    ab-plain-ids.py http://OLD_DASHBOARD http://NEW_DASHBOARD SEED_DIR RUNS
"""
import json
import statistics
import sys
import time
import urllib.request
from datetime import datetime, timedelta

import duckdb

END = "2026-11-21"


def cursor_at(db, seed, days_back):
    """The admin page cursor at the newest order `days_back` days before END."""
    day = (datetime.fromisoformat(END) - timedelta(days=days_back)).date().isoformat()
    micros, oid = db.execute(
        f"SELECT epoch_us(placed_at), order_id FROM read_parquet('{seed}/orders/date={day}/*.parquet') "
        "ORDER BY placed_at DESC, order_id DESC LIMIT 1"
    ).fetchone()
    return f"{micros}~{oid}".encode().hex()


def get(base, path):
    started = time.perf_counter()
    body = urllib.request.urlopen(base + path).read()
    return (time.perf_counter() - started) * 1000, body


def answer(body):
    return {k: v for k, v in json.loads(body).items() if k != "elapsed_ms"}


def main():
    old, new, seed, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    db = duckdb.connect()
    urls = {
        "page 360 days deep": f"/api/admin/orders?page_size=50&cursor={cursor_at(db, seed, 360)}",
        "status=delivered, 180 days deep": f"/api/admin/orders?page_size=50&status=delivered&cursor={cursor_at(db, seed, 180)}",
    }
    for name, path in urls.items():
        assert answer(get(old, path)[1]) == answer(get(new, path)[1]), f"{name}: different answers"
        times = {old: [], new: []}
        for i in range(runs):
            for base in (old, new) if i % 2 == 0 else (new, old):
                times[base].append(get(base, path)[0])

        def p50_p95(v):
            return statistics.median(v), sorted(v)[int(0.95 * (len(v) - 1))]

        (a50, a95), (b50, b95) = p50_p95(times[old]), p50_p95(times[new])
        print(f"{name}: old files p50/p95 {a50:.1f}/{a95:.1f} ms, new files {b50:.1f}/{b95:.1f} ms")


if __name__ == "__main__":
    main()
