"""Helpers the dashboard benchmark scripts share (bench-dashboard.py and the
ab-*.py comparisons): percentiles, GETs against a dashboard, admin page
cursors, and timing two variants alternately."""
import json
import time
import urllib.request
from datetime import datetime, timedelta

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


def page_answer(base, path):
    """An admin search page without what depends on timing (how long it
    took, whether the statuses came from the summaries or the events)."""
    return {k: v for k, v in get(base, path).items() if k not in ("elapsed_ms", "statuses_from")}


def cursor(micros, order_id):
    return f"{micros}~{order_id}".encode().hex()


def cursor_at(db, seed, days_back):
    """The admin page cursor at the newest order `days_back` days before
    END, read with the DuckDB connection `db` from the seed's files."""
    day = (datetime.fromisoformat(END) - timedelta(days=days_back)).date().isoformat()
    micros, oid = db.execute(
        f"SELECT epoch_us(placed_at), order_id FROM read_parquet('{seed}/orders/date={day}/*.parquet') "
        "ORDER BY placed_at DESC, order_id DESC LIMIT 1"
    ).fetchone()
    return cursor(micros, oid)


def alternate(run_a, run_b, pairs, same=lambda a, b: a == b, start=0):
    """Times `run_a` and `run_b` `pairs` times each, alternating which goes
    first (`run_a` on even turns, counting from `start`) so both see the
    same machine state; asserts they agree. Returns the two lists of
    milliseconds and the last result."""
    times = ([], [])
    for i in range(start, start + pairs):
        results = [None, None]
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            started = time.perf_counter()
            results[k] = (run_a, run_b)[k]()
            times[k].append((time.perf_counter() - started) * 1000)
        assert same(results[0], results[1]), "the two variants disagree"
    return times[0], times[1], results[0]
