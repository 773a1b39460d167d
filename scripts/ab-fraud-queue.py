"""A/B of the fraud queue's SQL (docs/benchmarks.md, "Seventh round").

The anti-join the endpoint used before and the two steps it uses now, run
alternately through /api/sql against one running dashboard, so both see
the same machine state. Asserts both give the same rows.

    orderstream dashboard --data /tmp/orderstream-bench/seed --listen 127.0.0.1:18080 ...
    python scripts/ab-fraud-queue.py http://127.0.0.1:18080 [PAIRS]
"""
import json
import statistics
import sys
import urllib.request
from datetime import datetime, timedelta, timezone

from benchlib import alternate, p


def main():
    base = sys.argv[1]
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 30

    def post(sql):
        req = urllib.request.Request(base + "/api/sql", data=json.dumps({"sql": sql}).encode(),
                                     headers={"content-type": "application/json"})
        return json.loads(urllib.request.urlopen(req, timeout=60).read())["rows"]

    today = datetime.now(timezone.utc).date()
    days = f"date >= '{today - timedelta(days=14)}' AND date <= '{today}'"
    in_review = "is_final AND (status = 'flagged' OR from_status = 'flagged')"
    wide = "order_id, customer_id, risk_score, risk_reasons, order_total, currency, occurred_at"
    old = (f"WITH reviews AS (SELECT {wide}, status, from_status FROM fraud_reviews_1d WHERE {days} AND {in_review}) "
           f"SELECT {wide} FROM reviews WHERE status = 'flagged' AND order_id NOT IN "
           f"(SELECT order_id FROM reviews WHERE from_status = 'flagged') ORDER BY risk_score DESC, occurred_at, order_id LIMIT 100")
    step1 = (f"SELECT order_id, min(date) FILTER (WHERE status = 'flagged') AS date FROM "
             f"(SELECT order_id, status, from_status, risk_score, occurred_at, date FROM fraud_reviews_1d WHERE {days} AND {in_review}) "
             f"GROUP BY order_id HAVING count(*) FILTER (WHERE status = 'flagged') > 0 "
             f"AND count(*) FILTER (WHERE from_status = 'flagged') = 0 "
             f"ORDER BY max(risk_score) FILTER (WHERE status = 'flagged') DESC, "
             f"min(occurred_at) FILTER (WHERE status = 'flagged'), order_id LIMIT 100")

    def new():
        queue = post(step1)
        if not queue:
            return []
        ids = ", ".join(sorted({f"'{r['order_id']}'" for r in queue}))
        dates = ", ".join(sorted({f"'{r['date']}'" for r in queue}))
        return post(f"SELECT {wide} FROM fraud_reviews_1d WHERE {days} AND is_final AND status = 'flagged' "
                    f"AND date IN ({dates}) AND order_id IN ({ids}) ORDER BY risk_score DESC, occurred_at, order_id")

    a, b, rows = alternate(lambda: post(old), new, pairs)
    print(f"old p50/p95 ms: {statistics.median(a):.1f} / {p(a, 0.95):.1f}")
    print(f"new p50/p95 ms: {statistics.median(b):.1f} / {p(b, 0.95):.1f}  ({len(rows)} orders in the queue)")


if __name__ == "__main__":
    main()
