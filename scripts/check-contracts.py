#!/usr/bin/env python3
"""Every NATS subject, stream, bucket and order status is spelled in its
home only:

    python3 scripts/check-contracts.py

- subjects, stream and bucket names: `broker` (`broker/src/topology.rs`
  declares them; the rest of `broker` speaks NATS's own protocol);
- statuses, cancellation reasons and event kinds: `schemas`.

Everywhere else calls the home (`broker::order_event_subject`,
`OrderStatus::Flagged.as_str()`, `schemas::sql::status(..)`). This scans the
Rust sources of every crate and the binary, tests and `#[cfg(test)]` blocks
left out (a test may spell what it checks), and exits 1 naming each line
that spells a contract outside its home. SQL in a pipeline directory is a user's
file, not code, and is not scanned.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from rust_sources import blank_test_modules  # noqa: E402

STATUSES = "pending|flagged|reserved|confirmed|processing|shipped|delivered|cancelled"
REASONS = "out_of_stock|payment_declined|fraud_rejected|customer_cancelled|price_mismatch"
KINDS = "status_changed|refund_issued|command_rejected"
STREAMS = "ORDERS|ORDER_EVENTS|STOCK_EVENTS|ORDERS_DLQ|ADMIN_AUDIT"
BUCKETS = "IDEMPOTENCY|ORDER_VIEW|STOCK|CATALOG|PROCESSOR_LEASE|API_KEYS|RATE_LIMITS|PROCESSOR_SNAPSHOTS"

RULES = [
    ("a NATS subject", "broker", re.compile(r'"(orders\.(submitted|commands|stock|[>*])|(order_events|stock_events|orders_dlq|admin_audit)[.>*])|"\$(JS|KV)\.|"KV_')),
    ("a stream or bucket name", "broker", re.compile(r'"(' + STREAMS + "|" + BUCKETS + r')"')),
    ("an order status", "schemas", re.compile(r"""["'](""" + STATUSES + r""")["']""")),
    ("a cancellation reason", "schemas", re.compile(r"""["'](""" + REASONS + r""")["']""")),
    ("an event kind", "schemas", re.compile(r"""["'](""" + KINDS + r""")["']""")),
]


def code_files():
    for path in sorted(ROOT.rglob("*.rs")):
        rel = path.relative_to(ROOT)
        parts = rel.parts
        test_file = rel.name == "tests.rs"  # a `#[cfg(test)] mod tests;`
        if parts[0] in ("target", ".tools") or "tests" in parts or "node_modules" in parts or test_file:
            continue
        yield rel


def main():
    found = 0
    for rel in code_files():
        crate = rel.parts[0]
        text = blank_test_modules((ROOT / rel).read_text())
        for n, line in enumerate(text.splitlines(), 1):
            code = line.split("//")[0] if not line.lstrip().startswith("//") else ""
            for what, home, pattern in RULES:
                if crate == home:
                    continue
                if pattern.search(code):
                    found += 1
                    print(f"{rel}:{n}: {what} outside {home}: {line.strip()}")
    if found:
        print(f"{found} contract literals outside their home")
        sys.exit(1)
    print("every subject, stream, bucket and status is spelled in its home only")


if __name__ == "__main__":
    main()
