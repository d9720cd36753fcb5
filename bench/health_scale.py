"""Benchmark: the health check and `/health/` on a large database (PostgreSQL, a scratch database dropped afterwards).

Usage: .venv/bin/python bench/health_scale.py [--customers 1000000] [--logs 10000000] [--pg postgres://...]
                                              [--repeat 5] [--keep-db NAME]

Fills the database with SQL alone (fast, bench/scale_data.py): --customers customers (99.5% synced, 0.3% failed,
0.1% pending, 0.1% skipped: 3,000 failures to fix, a bad day; plus a service for every tenth customer) and --logs
sync-log rows over the last 90 days (2% failures), with the records blocked behind the failed customers, invoices and
payments, sync runs, API usage and 30 days of daily metrics; then VACUUM ANALYZE.
Measures, warm (the best of --repeat runs after one to warm the caches):
- each check of `zoho_health_check` (the Zoho connectivity check is left out: it is a network call to Zoho, whose
  time is Zoho's), with its query count;
- the whole check without it, and `GET /health/` through Django's test client (the cheap checks).
Target: at most 100 ms each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import scale_data  # noqa: E402


def measure(repeat: int) -> None:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from monitoring import checks

    chosen = [check for check in checks.CHECKS if check is not checks.ZohoConnectivityCheck]

    def best(run) -> tuple[float, int]:
        run()  # warm
        times, queries = [], 0
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                run()
                times.append((time.perf_counter() - started) * 1000)
            queries = len(captured)
        return min(times), queries

    print(f"\n{'check':<46}{'ms (best)':>10}{'queries':>9}")
    for check in chosen:
        ms, queries = best(lambda check=check: check().run())
        print(f"{check.category + ': ' + check.name:<46}{ms:>10.1f}{queries:>9}")
    whole, queries = best(lambda: checks.health_run(checks=tuple(chosen)))
    client = Client()
    endpoint, endpoint_queries = best(lambda: client.get("/health/"))
    print(f"\n{'zoho_health_check (without the Zoho call)':<46}{whole:>10.1f}{queries:>9}")
    print(f"{'GET /health/ (the cheap checks)':<46}{endpoint:>10.1f}{endpoint_queries:>9}")
    verdict = "PASS" if whole <= 100 and endpoint <= 100 else "FAIL"
    print(f"target: each at most 100 ms warm: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--logs", type=int, default=10_000_000)
    parser.add_argument("--pg", default=scale_data.DEFAULT_PG)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep-db", default="", help="use (and keep) this database; filled when empty")
    args = parser.parse_args()
    db = args.keep_db or f"zoho_bench_health_{os.getpid()}"
    scale_data.create_database(args.pg, db)
    url = f"{args.pg}/{db}"
    os.environ.update(scale_data.django_env(url))
    try:
        scale_data.migrate(url)
        scale_data.fill(url, args.customers, args.logs)
        measure(args.repeat)
    finally:
        if not args.keep_db:
            scale_data.drop_database(args.pg, db)


if __name__ == "__main__":
    main()
