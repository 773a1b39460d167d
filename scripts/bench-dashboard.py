#!/usr/bin/env python3
"""Dashboard latency on seeded history, and DuckDB on the same files.

    bench-dashboard.py BASE_URL SEED_DIR [RUNS]

Each dashboard endpoint (and admin order pages at several depths) is called
3 times to warm up, then RUNS times (default 20); p50 and p95 are of the
whole HTTP round trip. The same queries run in DuckDB (from PyPI, 2
threads, like our 2 query workers) over the same Parquet files with hive
partitioning; the ratio is ours / DuckDB at p95. Where ours reads a
pipeline output the seed wrote (revenue windows, best sellers, the fraud queue), DuckDB reads
the same output. Prints a Markdown table. BENCH_ONLY="fraud,customer" runs
only the endpoints whose name holds one of those words.
"""
import os
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

import duckdb

from benchlib import END, cursor, get, p


def timed(fn, runs):
    for _ in range(3):
        fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main():
    base, seed = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    db = duckdb.connect()
    db.execute("SET threads = 2")
    for t in ["orders", "order_items", "order_events", "products"]:
        pattern = f"{seed}/{t}/*/*.parquet" if t != "products" else f"{seed}/{t}/**/*.parquet"
        db.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{pattern}', hive_partitioning = true)")
    # The pipeline outputs the seed writes; ours reads closed windows from
    # them, so DuckDB does too (same files, same work).
    rollups = [t for t in ["revenue_by_category_1h", "revenue_by_category_1d", "revenue_by_product_1d", "fraud_reviews_1d"]
               if os.path.isdir(f"{seed}/{t}")]
    for t in rollups:
        db.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{seed}/{t}/*/*.parquet', hive_partitioning = true)")

    def latest_final(table, columns, where):
        return (f"SELECT {columns} FROM (SELECT *, max(window_version) OVER (PARTITION BY window_start) AS latest "
                f"FROM {table} WHERE {where} AND is_final) WHERE window_version = latest")
    ts = lambda s: f"TIMESTAMPTZ '{s}'"
    since = (datetime.now(timezone.utc) - timedelta(days=14)).date().isoformat()

    # Cursors at depth: the newest order of a day N days before the end.
    def depth_cursor(days_back):
        day = (datetime.fromisoformat(END) - timedelta(days=days_back)).date().isoformat()
        row = db.execute(
            f"SELECT epoch_us(placed_at), order_id FROM orders WHERE date = '{day}' ORDER BY placed_at DESC, order_id DESC LIMIT 1"
        ).fetchone()
        return day, row[0], row[1]

    cases = []

    def add(name, path, duck_sqls):
        cases.append((name, path, duck_sqls))

    add("summary (a day)", f"/api/dashboard/summary?date={END}", [
        f"SELECT count(*), sum(total) FROM orders WHERE date = '{END}' AND currency = 'USD'",
        f"SELECT count(*) FILTER (WHERE status = 'confirmed'), sum(order_total) FILTER (WHERE status = 'confirmed'), "
        f"sum(refund_amount) FILTER (WHERE kind = 'refund_issued') FROM order_events WHERE date = '{END}' AND currency = 'USD'",
        f"SELECT reason, count(*) FROM order_events WHERE date = '{END}' AND currency = 'USD' AND status = 'cancelled' GROUP BY reason",
    ])
    for window, interval, frm, to in [
        ("1m", "1 minute", "2026-11-21T18:00:00Z", "2026-11-21T19:00:00Z"),
        ("1h", "1 hour", "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"),
        ("1d", "1 day", "2026-10-22T00:00:00Z", "2026-11-21T00:00:00Z"),
    ]:
        f, t = datetime.fromisoformat(frm.replace("Z", "+00:00")), datetime.fromisoformat(to.replace("Z", "+00:00"))
        pf = f - (t - f)
        last = (t - timedelta(microseconds=1)).date().isoformat()
        table = f"revenue_by_category_{window}"
        if table in rollups:
            # Every window of the range is closed seeded history.
            where = (f"date BETWEEN '{pf.date().isoformat()}' AND '{last}' AND window_start >= {ts(pf.isoformat())} "
                     f"AND window_end <= {ts(to)} AND currency = 'USD'")
            duck = [f"SELECT window_start, category, sum(revenue), sum(units) FROM ({latest_final(table, 'window_start, category, revenue, units', where)}) "
                    f"GROUP BY 1, 2 ORDER BY 1, 2"]
        else:
            duck = [f"SELECT time_bucket(INTERVAL '{interval}', placed_at::TIMESTAMP) AS w, category, sum(line_total), sum(quantity) FROM order_items "
                    f"WHERE date BETWEEN '{pf.date().isoformat()}' AND '{last}' AND placed_at >= {ts(pf.isoformat())} AND placed_at < {ts(to)} "
                    f"AND currency = 'USD' GROUP BY 1, 2 ORDER BY 1, 2"]
        add(f"revenue {window} by category + previous", f"/api/dashboard/revenue?window={window}&from={frm}&to={to}", duck)
    f28 = "2026-10-24T00:00:00Z"
    # Ours folds the hourly revenue windows onto the week: the same files here.
    if "revenue_by_category_1h" in rollups:
        where = (f"date BETWEEN '2026-10-24' AND '2026-11-20' AND window_start >= {ts(f28)} "
                 f"AND window_end <= {ts('2026-11-21T00:00:00Z')} AND currency = 'USD'")
        hours = f"({latest_final('revenue_by_category_1h', 'window_start, revenue, units', where)})"
        heat = (f"SELECT date_part('dow', window_start::TIMESTAMP), date_part('hour', window_start::TIMESTAMP), sum(revenue), sum(units) "
                f"FROM {hours} GROUP BY 1, 2 ORDER BY 1, 2")
    else:
        heat = (f"SELECT date_part('dow', placed_at::TIMESTAMP), date_part('hour', placed_at::TIMESTAMP), sum(line_total), sum(quantity) "
                f"FROM order_items WHERE date BETWEEN '2026-10-24' AND '2026-11-20' AND placed_at >= {ts(f28)} "
                f"AND placed_at < {ts('2026-11-21T00:00:00Z')} AND currency = 'USD' GROUP BY 1, 2 ORDER BY 1, 2")
    add("heatmap (28 days)", f"/api/dashboard/heatmap?from={f28}&to=2026-11-21T00:00:00Z", [heat])
    f7 = "2026-11-14T00:00:00Z"
    if "revenue_by_product_1d" in rollups:
        where = (f"date BETWEEN '2026-11-14' AND '2026-11-20' AND window_start >= {ts(f7)} "
                 f"AND window_end <= {ts('2026-11-21T00:00:00Z')} AND currency = 'USD'")
        top = f"({latest_final('revenue_by_product_1d', 'product_id, units, revenue', where)})"
    else:
        top = (f"(SELECT product_id, quantity AS units, line_total AS revenue FROM order_items WHERE date BETWEEN '2026-11-14' AND '2026-11-20' "
               f"AND placed_at >= {ts(f7)} AND placed_at < {ts('2026-11-21T00:00:00Z')} AND currency = 'USD')")
    add("top products (7 days)", f"/api/dashboard/top-products?from={f7}&to=2026-11-21T00:00:00Z", [
        f"SELECT t.product_id, p.name, p.category, t.units, t.revenue FROM (SELECT product_id, sum(units) AS units, "
        f"sum(revenue) AS revenue FROM {top} GROUP BY product_id ORDER BY revenue DESC, product_id LIMIT 10) t "
        f"LEFT JOIN products p ON p.product_id = t.product_id ORDER BY t.revenue DESC"])
    add("status funnel (7 days)", f"/api/dashboard/funnel?from={f7}&to=2026-11-21T00:00:00Z", [
        f"SELECT count(*) FROM orders WHERE date BETWEEN '2026-11-14' AND '2026-11-20' AND placed_at >= {ts(f7)} AND placed_at < {ts('2026-11-21T00:00:00Z')}",
        f"SELECT status, reason, count(*) FROM order_events WHERE date BETWEEN '2026-11-14' AND '2026-11-20' AND occurred_at >= {ts(f7)} "
        f"AND occurred_at < {ts('2026-11-21T00:00:00Z')} AND status IS NOT NULL GROUP BY 1, 2"])
    if "fraud_reviews_1d" in rollups:
        # Every day of the range is closed seeded history.
        reviews = latest_final("fraud_reviews_1d",
                               "order_id, customer_id, status, from_status, risk_score, risk_reasons, order_total, currency, occurred_at",
                               f"date >= '{since}' AND (status = 'flagged' OR from_status = 'flagged')")
    else:
        reviews = (f"SELECT order_id, customer_id, status, from_status, risk_score, risk_reasons, order_total, currency, occurred_at "
                   f"FROM order_events WHERE date >= '{since}' AND (status = 'flagged' OR from_status = 'flagged')")
    add("fraud queue (14 days)", "/api/dashboard/fraud-queue?days=14", [
        f"WITH reviews AS ({reviews}) SELECT order_id, customer_id, risk_score, risk_reasons, order_total, currency, occurred_at "
        f"FROM reviews WHERE status = 'flagged' AND order_id NOT IN (SELECT order_id FROM reviews WHERE from_status = 'flagged') "
        f"ORDER BY risk_score DESC, occurred_at, order_id LIMIT 100"])

    def page_sqls(day, micros, oid, status=None):
        span_end = (datetime.fromisoformat(day) + timedelta(days=10)).date().isoformat()
        cond = f"date <= '{day}' AND (placed_at < make_timestamp({micros}) OR (placed_at = make_timestamp({micros}) AND order_id < '{oid}'))"
        if status:
            cond += f" AND order_id IN (SELECT order_id FROM order_events WHERE date BETWEEN '{day}' AND '{span_end}' AND status = '{status}')"
            # As ours: nothing leaves a terminal status, so only the others
            # need the second scan.
            if status not in ("delivered", "cancelled"):
                cond += f" AND order_id NOT IN (SELECT order_id FROM order_events WHERE date BETWEEN '{day}' AND '{span_end}' AND from_status = '{status}')"
        page = (f"SELECT order_id, customer_id, placed_at, total, currency, item_count, payment_method, country, date FROM orders "
                f"WHERE {cond} ORDER BY placed_at DESC, order_id DESC LIMIT 51")
        statuses = (f"SELECT order_id, arg_max(status, occurred_at) FROM order_events WHERE date BETWEEN '{day}' AND '{span_end}' "
                    f"AND status IS NOT NULL AND order_id IN (SELECT order_id FROM ({page})) GROUP BY order_id")
        return [page] if status else [page, statuses]

    first = db.execute(f"SELECT epoch_us(placed_at), order_id FROM orders WHERE date = '{END}' ORDER BY placed_at DESC, order_id DESC LIMIT 1").fetchone()
    add("admin orders, first page", "/api/admin/orders?page_size=50", page_sqls(END, first[0] + 1, "ffffffff"))
    for days_back in [30, 180, 360]:
        day, micros, oid = depth_cursor(days_back)
        add(f"admin orders, page {days_back} days deep", f"/api/admin/orders?page_size=50&cursor={cursor(micros, oid)}", page_sqls(day, micros, oid))
    day, micros, oid = depth_cursor(180)
    add("admin orders, status=delivered, 180 days deep", f"/api/admin/orders?page_size=50&status=delivered&cursor={cursor(micros, oid)}",
        page_sqls(day, micros, oid, "delivered"))
    customer = db.execute(f"SELECT customer_id FROM orders WHERE date = '2026-06-01' LIMIT 1").fetchone()[0]
    # The page, then each order's latest status from the events of its own
    # days (placed day and STATUS_SPAN_DAYS after), as the search does.
    def customer_sqls():
        page = db.execute(
            f"SELECT order_id, customer_id, placed_at, total, currency, item_count, payment_method, country, date FROM orders "
            f"WHERE customer_id = '{customer}' ORDER BY placed_at DESC, order_id DESC LIMIT 51").fetchall()
        days = sorted({(row[8] + timedelta(days=n)).isoformat() for row in page for n in range(11)})
        ids = ", ".join(f"'{row[0]}'" for row in page)
        if ids:
            db.execute(
                f"SELECT order_id, arg_max(status, occurred_at) FROM order_events WHERE date IN ({', '.join(repr(d) for d in days)}) "
                f"AND status IS NOT NULL AND order_id IN ({ids}) GROUP BY order_id").fetchall()
    add("admin orders, one customer (all history)", f"/api/admin/orders?page_size=50&customer_id={customer}", customer_sqls)
    # The Orders side panel: one order, its items and its timeline, by id
    # alone (the date is not known to the caller).
    order = db.execute(f"SELECT order_id FROM orders WHERE date = '2026-06-01' ORDER BY order_id LIMIT 1").fetchone()[0]
    add("order detail (side panel)", f"/api/admin/orders/{order}/detail", [
        f"SELECT * FROM orders WHERE order_id = '{order}'",
        f"SELECT * FROM order_items WHERE order_id = '{order}' ORDER BY line_no",
        f"SELECT * FROM order_events WHERE order_id = '{order}' ORDER BY occurred_at, stream_seq"])

    print("| endpoint | ours p50 ms | ours p95 ms | DuckDB p50 ms | DuckDB p95 ms | ours/DuckDB (p95) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    worst = 0.0
    # BENCH_ONLY="fraud,customer": only the endpoints whose name holds one of these.
    only = [w for w in os.environ.get("BENCH_ONLY", "").split(",") if w]
    for name, path, sqls in cases:
        if only and not any(w in name for w in only):
            continue
        ours = timed(lambda: get(base, path), runs)
        theirs = timed(sqls if callable(sqls) else lambda: [db.execute(s).fetchall() for s in sqls], runs)
        ratio = p(ours, 0.95) / max(p(theirs, 0.95), 1e-9)
        worst = max(worst, p(ours, 0.95))
        print(f"| {name} | {statistics.median(ours):.1f} | {p(ours, 0.95):.1f} | {statistics.median(theirs):.1f} | {p(theirs, 0.95):.1f} | {ratio:.2f} |")
        sys.stdout.flush()
    print(f"\nworst p95 of ours: {worst:.1f} ms")


if __name__ == "__main__":
    main()
