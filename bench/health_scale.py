"""Benchmark: the health check and `/health/` on a large database (PostgreSQL, a scratch database dropped afterwards).

Usage: .venv/bin/python bench/health_scale.py [--customers 1000000] [--logs 10000000] [--pg postgres://...]
                                              [--repeat 5] [--keep-db NAME]

Fills the database with SQL alone (fast): --customers customers (99.5% synced, 0.3% failed, 0.1% pending, 0.1%
skipped: 3,000 failures to fix, a bad day; plus a service for every tenth customer) and --logs sync-log rows over the
last 90 days (2% failures), then VACUUM ANALYZE.
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

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FILL = """
INSERT INTO zoho_sync_customer (account_number, first_name, last_name, company_name, email, phone, account_type,
    status, billing_street, billing_city, billing_state, billing_postal_code, billing_country, currency_code,
    created_at, updated_at, zoho_id, sync_status, sync_version, last_synced_at, last_sync_error, last_error_kind,
    sync_attempts, next_retry_at, sync_fingerprint, create_intent_at, claimed_by, claimed_until, push_queued_at,
    failing_since)
SELECT 'CT-SCALE-' || lpad(n::text, 8, '0'), 'First' || n, 'Last', '', 'c' || n || '@example.com', '', 'residential',
    'active', '', '', '', '', '', 'USD', now() - interval '400 days', now() - (n % 400) * interval '1 day',
    CASE WHEN n % 1000 < 995 THEN (903000000000000 + n)::text END,
    CASE WHEN n % 1000 < 995 THEN 'synced' WHEN n % 1000 < 998 THEN 'failed' WHEN n % 1000 = 998 THEN 'pending'
         ELSE 'skipped' END,
    1, CASE WHEN n % 1000 < 995 THEN now() END,
    CASE WHEN n % 1000 BETWEEN 995 AND 997 THEN 'Email address is not valid.' ELSE '' END,
    CASE WHEN n % 1000 BETWEEN 995 AND 997 THEN 'invalid_data' ELSE '' END,
    CASE WHEN n % 1000 BETWEEN 995 AND 997 THEN 1 ELSE 0 END, NULL, '', NULL, '', NULL, NULL,
    CASE WHEN n % 1000 BETWEEN 995 AND 997 THEN now() - (n % 20) * interval '1 day' END
FROM generate_series(1, {customers}) AS n;

INSERT INTO zoho_sync_servicepackage (name, plan_code, description, price, interval, interval_unit, is_active,
    zoho_product_id, created_at, updated_at, zoho_id, sync_status, sync_version, last_sync_error, last_error_kind,
    sync_attempts, sync_fingerprint, claimed_by)
VALUES ('Scale plan', 'SCALE-1', '', 10, 1, 'months', true, '9030', now(), now(), 'SCALE-1', 'synced', 1, '', '', 0,
    '', '');

INSERT INTO zoho_sync_customerservice (customer_id, package_id, status, quantity, activated_at, created_at,
    updated_at, zoho_id, sync_status, sync_version, last_sync_error, last_error_kind, sync_attempts,
    sync_fingerprint, claimed_by)
SELECT c.id, p.id, 'active', 1, now() - interval '300 days', now(), now(),
    CASE WHEN c.zoho_id IS NOT NULL THEN 'SUB' || c.id END,
    CASE WHEN c.zoho_id IS NOT NULL THEN 'synced' ELSE 'blocked' END, 1, '', '', 0, '', ''
FROM zoho_sync_customer c CROSS JOIN zoho_sync_servicepackage p WHERE c.id % 10 = 0;

INSERT INTO zoho_sync_synclog (entity, object_pk, object_repr, zoho_entity, zoho_id, direction, action, status,
    attempt, message, error_type, error_kind, zoho_message, request_method, request_path, request_body,
    response_body, duration_ms, run_id, created_at)
SELECT (ARRAY['customer','customer_service','invoice','payment'])[1 + n % 4], (n % 1000000)::text, '', '', '',
    'push', 'create', CASE WHEN n % 50 = 0 THEN 'failed' ELSE 'success' END, 1, '', '', '', '', '', '', '', '',
    100 + n % 900, '', now() - (n % (90 * 24 * 60)) * interval '1 minute'
FROM generate_series(1, {logs}) AS n;
"""


def fill(url: str, customers: int, logs: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.monotonic()
        for statement in FILL.format(customers=customers, logs=logs).split(";\n"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("VACUUM ANALYZE")  # what autovacuum does to an append-only table soon after
        print(f"filled {customers:,} customers, {customers // 10:,} services, {logs:,} sync-log rows in "
              f"{time.monotonic() - started:.0f} s")


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
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep-db", default="", help="use (and keep) this database; filled when empty")
    args = parser.parse_args()
    db = args.keep_db or f"zoho_bench_health_{os.getpid()}"
    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{db}"')
    url = f"{args.pg}/{db}"
    os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true",
                       "DJANGO_ENV_FILE": "/nonexistent", "ALLOWED_HOSTS": "testserver", "LOG_LEVEL": "ERROR"})
    try:
        import subprocess

        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0", "--skip-checks"], check=True,
                       env=os.environ)
        with psycopg.connect(url) as conn:
            empty = conn.execute("SELECT count(*) FROM zoho_sync_customer").fetchone()[0] == 0
        if empty:
            fill(url, args.customers, args.logs)
        measure(args.repeat)
    finally:
        if not args.keep_db:
            with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
