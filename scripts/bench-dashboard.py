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

    # Customers and recommendations (`orderstream customers --data SEED`
    # first): ours answers from the run's tables, read once per run; DuckDB
    # runs the same SQL over the same files every time. The first answer
    # after a run (ours, cold) is printed apart.
    colds = []
    if os.path.isdir(f"{seed}/customer_segments"):
        for t in ["customer_segments", "customer_cohorts", "customers_daily", "product_affinity", "product_popularity", "customer_products"]:
            db.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{seed}/{t}/*/*.parquet', hive_partitioning = true)")
        as_of = db.execute("SELECT max(as_of) FROM customer_segments").fetchone()[0]
        on = f"as_of = '{as_of}'"
        edges = [0, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000]
        bucket = " ".join(f"WHEN lifetime_value < {e} THEN {i}" for i, e in enumerate(edges[1:]))
        pct = lambda q, n: f"percentile_cont({q}) WITHIN GROUP (ORDER BY CAST(lifetime_value AS DOUBLE)) AS {n}"
        for path in ["/api/analytics/customers/segments", "/api/analytics/customers/clv", "/api/analytics/customers/cohorts",
                     "/api/analytics/customers/new-vs-returning", "/api/recommendations?product_id=p-00000"]:
            t = time.perf_counter()
            get(base, path)
            colds.append((path, (time.perf_counter() - t) * 1000))
        add("customer segments (+ churn-risk list)", "/api/analytics/customers/segments", [
            f"SELECT currency, segment, count(*), sum(orders), sum(lifetime_value) FROM customer_segments WHERE {on} GROUP BY 1, 2",
            f"SELECT customer_id, currency, orders, lifetime_value, average_order_value, first_order_at, last_order_at, days_since_last_order, segment "
            f"FROM customer_segments WHERE {on} AND segment = 'churn_risk' ORDER BY lifetime_value DESC, customer_id LIMIT 50"])
        add("customer CLV distribution", "/api/analytics/customers/clv", [
            f"SELECT currency, count(*), avg(CAST(lifetime_value AS DOUBLE)), {pct(0.5, 'p50')}, {pct(0.75, 'p75')}, {pct(0.9, 'p90')}, {pct(0.99, 'p99')} "
            f"FROM customer_segments WHERE {on} GROUP BY currency",
            f"SELECT currency, CASE {bucket} ELSE {len(edges) - 1} END AS bucket, count(*) FROM customer_segments WHERE {on} GROUP BY 1, 2"])
        add("customer cohorts (12 months)", "/api/analytics/customers/cohorts", [
            f"SELECT cohort, month_offset, customers, active, retention FROM customer_cohorts WHERE {on} "
            f"AND cohort >= (SELECT max(cohort) FROM customer_cohorts WHERE {on}) - INTERVAL 11 MONTH ORDER BY cohort, month_offset"])
        add("customers new vs returning (90 days)", "/api/analytics/customers/new-vs-returning", [
            f"SELECT day, new_customers, returning_customers, new_customer_orders, returning_customer_orders FROM customers_daily "
            f"WHERE {on} AND day > DATE '{as_of}' - INTERVAL 90 DAY ORDER BY day"])
        add("recommendations, a product", "/api/recommendations?product_id=p-00000", [
            f"SELECT a.other_id, p.name, p.category, a.cosine, a.support FROM product_affinity a LEFT JOIN products p ON p.product_id = a.other_id "
            f"WHERE a.{on} AND a.product_id = 'p-00000' AND a.support >= 3 ORDER BY a.rank LIMIT 10"])
        # A typical customer (the median number of orders) and the busiest
        # one (the seed's skew gives it ~0.8% of all orders, on every day).
        typical = db.execute(f"SELECT customer_id FROM customer_segments WHERE {on} AND orders = "
                             f"(SELECT median(orders)::BIGINT FROM customer_segments WHERE {on}) ORDER BY customer_id LIMIT 1").fetchone()[0]
        busiest = db.execute(f"SELECT customer_id FROM customer_segments WHERE {on} ORDER BY orders DESC, customer_id LIMIT 1").fetchone()[0]
        for label, who in [("a typical customer", typical), ("the busiest customer", busiest)]:
            add(f"recommendations, {label} (personalized)", f"/api/recommendations/personalized?customer_id={who}", [
                f"WITH mine AS (SELECT product_id, last_bought AS last FROM customer_products WHERE {on} AND customer_id = '{who}'), "
                f"recent AS (SELECT product_id, row_number() OVER (ORDER BY last DESC, product_id) - 1 AS k FROM mine) "
                f"SELECT a.other_id, sum(power(0.5, r.k / 5.0) * a.cosine) AS score FROM recent r JOIN product_affinity a ON a.product_id = r.product_id "
                f"WHERE a.{on} AND r.k < 20 AND a.support >= 3 AND a.other_id NOT IN (SELECT product_id FROM mine) GROUP BY 1 ORDER BY 2 DESC LIMIT 10"])
    f30, t30 = "2026-10-23", END
    t = time.perf_counter()
    get(base, f"/api/analytics/operations?from={f30}&to={t30}")
    colds.append(("/api/analytics/operations (30 days, kept 60 s after)", (time.perf_counter() - t) * 1000))
    add("operations (30 days)", f"/api/analytics/operations?from={f30}&to={t30}", [
        f"SELECT date, count(*), sum(total) FROM orders WHERE date BETWEEN '{f30}' AND '{t30}' AND currency = 'USD' GROUP BY date",
        f"SELECT date, reason, count(*) FROM order_events WHERE date BETWEEN '{f30}' AND '{t30}' AND status = 'cancelled' AND currency = 'USD' GROUP BY 1, 2",
        f"WITH placed AS (SELECT order_id, received_at FROM orders WHERE date BETWEEN '{f30}' AND '{t30}' AND currency = 'USD'), "
        f"reached AS (SELECT order_id, status, min(occurred_at) AS at FROM order_events WHERE date BETWEEN '{f30}' AND '2026-12-05' "
        f"AND status IN ('confirmed', 'shipped', 'delivered') GROUP BY 1, 2), "
        f"took AS (SELECT r.status, (epoch(r.at) - epoch(p.received_at)) / 3600.0 AS hours FROM reached r JOIN placed p USING (order_id)) "
        f"SELECT status, count(*), avg(hours), percentile_cont(0.5) WITHIN GROUP (ORDER BY hours), percentile_cont(0.9) WITHIN GROUP (ORDER BY hours) FROM took GROUP BY status",
        f"SELECT coalesce(o.payment_method, 'unknown'), count(*), count(d.order_id) FROM orders o LEFT JOIN (SELECT DISTINCT order_id FROM order_events "
        f"WHERE date BETWEEN '{f30}' AND '2026-12-05' AND status = 'cancelled' AND reason = 'payment_declined') d USING (order_id) "
        f"WHERE o.date BETWEEN '{f30}' AND '{t30}' AND o.currency = 'USD' GROUP BY 1",
        f"SELECT i.product_id, count(*), count(s.order_id) FROM order_items i LEFT JOIN (SELECT DISTINCT order_id FROM order_events "
        f"WHERE date BETWEEN '{f30}' AND '2026-12-05' AND status = 'cancelled' AND reason = 'out_of_stock') s USING (order_id) "
        f"WHERE i.date BETWEEN '{f30}' AND '{t30}' AND i.currency = 'USD' GROUP BY 1 HAVING count(s.order_id) > 0 ORDER BY 3 DESC, 1 LIMIT 20"])

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
    for path, ms in colds:
        print(f"first answer (ours, cold): {path} {ms:.0f} ms")


if __name__ == "__main__":
    main()
