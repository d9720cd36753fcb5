"""Benchmark: `manage.py zoho_import --entity customers` of 100,000 customers on PostgreSQL, then the same file again.

Usage: .venv/bin/python bench/import_scale.py [--customers 100000] [--database-url postgres://postgres@127.0.0.1:5432]
                                              [--keep-db]

A scratch database is created on the server (`bench.backfill.scratch_database`), migrated, and dropped afterwards
(unless --keep-db). The CSV (every customer column filled, about 200 bytes a row) is written to a temporary folder.
Each import is a `manage.py zoho_import` subprocess (-v0, output to a log): wall time, and peak RSS as os.wait4's
ru_maxrss of that process (this bench holds no large data, so the child's figure is its own).

1. First import: every row created. Checked: the command's totals, the customers in the database, all pending
   at sync version 0 (as created by a save).
2. The same file again: every row unchanged. Checked: the totals, and no row written (sync versions, statuses
   and the largest updated_at as before).
Target: each run under 60 s. Exit 0 when both runs meet it and every check passes, else 1.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import scale_data  # noqa: E402
from bench.backfill import scratch_database  # noqa: E402

TARGET_SECONDS = 60.0
TOTALS = re.compile(r"customers: (\d+) row\(s\) in [\d.]+ s: (\d+) created, (\d+) changed, (\d+) unchanged, "
                    r"(\d+) refused\.")
STATE = ("SELECT count(*), count(*) FILTER (WHERE sync_status = 'pending'), coalesce(max(sync_version), -1), "
         "coalesce(sum(sync_version), -1), max(updated_at) FROM zoho_sync_customer")


def write_csv(path: Path, customers: int) -> None:
    columns = ["account_number", "email", "first_name", "last_name", "company_name", "phone", "account_type",
               "status", "billing_street", "billing_city", "billing_state", "billing_postal_code", "billing_country",
               "currency_code"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for n in range(1, customers + 1):
            business = n % 5 == 0
            writer.writerow([f"CT-2025-{n:07d}", f"customer{n}@example.com", "" if business else "Ava",
                             "" if business else f"Tester{n}", f"Company {n} Ltd" if business else "",
                             f"+1 555 {n % 10000:04d}", "business" if business else "individual", "active",
                             f"{n} Main Street", "Springfield", "IL", f"{n % 100000:05d}", "US", "USD"])


def run_import(env: dict, path: Path, log: Path) -> tuple[float, int, str]:
    """One `manage.py zoho_import` run: (wall seconds, peak RSS in KB, its output)."""
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "zoho_import", "--entity", "customers",
                                 str(path), "-v0", "--skip-checks"], env=env, stdout=out, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    text = log.read_text()
    if proc.returncode:
        raise SystemExit(f"zoho_import exited {proc.returncode}:\n{text[-3000:]}")
    return wall, usage.ru_maxrss, text


def totals(text: str) -> tuple[int, ...]:
    found = TOTALS.search(text)
    if not found:
        raise SystemExit(f"no totals line in the import's output:\n{text[-2000:]}")
    return tuple(int(x) for x in found.groups())


def state(url: str) -> tuple:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(STATE).fetchone()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--database-url", default=scale_data.DEFAULT_PG, help="a postgres:// server URL")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    n = args.customers
    ok = True
    with tempfile.TemporaryDirectory(prefix="zoho_bench_import_") as tmp, \
            scratch_database(args.database_url, "import", Path(tmp), prefix="zoho_bench_import",
                             keep=args.keep_db) as url:
        env = {**os.environ, **scale_data.django_env(url), "DEBUG": "false",
               "SECRET_KEY": "bench-import-scale-not-a-secret", "SYNC_TRIGGERS_ENABLED": "true"}
        scale_data.migrate(url)
        path = Path(tmp) / "customers.csv"
        write_csv(path, n)
        print(f"zoho_import of {n:,} customers ({path.stat().st_size / 1e6:.1f} MB of CSV) on PostgreSQL "
              f"({url.rsplit('/', 1)[-1]})")

        wall, rss, text = run_import(env, path, Path(tmp) / "first.log")
        rows, created, changed, unchanged, refused = totals(text)
        count, pending, top_version, _sum, first_updated = state(url)
        good = (rows, created, count, pending, top_version) == (n, n, n, n, 0) and wall < TARGET_SECONDS
        ok &= good
        print(f"1. first import: {wall:.1f} s ({n / wall:,.0f} rows/s), peak RSS {rss / 1024:,.0f} MB; "
              f"{created:,} created, {changed} changed, {unchanged} unchanged, {refused} refused; in the database "
              f"{count:,} customers, {pending:,} pending, highest sync version {top_version}  "
              f"[{'ok' if good else 'FAILED'}]")

        wall, rss, text = run_import(env, path, Path(tmp) / "second.log")
        rows, created, changed, unchanged, refused = totals(text)
        after = state(url)
        good = (unchanged, created, changed) == (n, 0, 0) and after == (count, pending, 0, 0, first_updated) \
            and wall < TARGET_SECONDS
        ok &= good
        print(f"2. the same file again: {wall:.1f} s ({n / wall:,.0f} rows/s), peak RSS {rss / 1024:,.0f} MB; "
              f"{unchanged:,} unchanged, {created} created, {changed} changed; versions, statuses and the latest "
              f"updated_at as before: {after == (count, pending, 0, 0, first_updated)}  [{'ok' if good else 'FAILED'}]")
    print(f"target: each run under {TARGET_SECONDS:.0f} s: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
