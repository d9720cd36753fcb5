"""Benchmark: `zoho_seed_demo --customers N` on PostgreSQL (a scratch database, dropped afterwards).

Usage: .venv/bin/python bench/seed_demo.py [--customers 100000] [--pg postgres://postgres@127.0.0.1:5432]
Prints the wall time, rows per second and the peak memory of the seeding process.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    db = f"zoho_bench_seed_{os.getpid()}"
    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    env = {**os.environ, "DATABASE_URL": f"{args.pg}/{db}", "DEBUG": "true", "DJANGO_ENV_FILE": "/nonexistent"}
    manage = [sys.executable, str(ROOT / "manage.py")]
    try:
        subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
        started = time.monotonic()
        out = subprocess.run([*manage, "zoho_seed_demo", "--customers", str(args.customers), "--as-of", "2026-11-01"],
                             env=env, check=True, capture_output=True, text=True).stdout
        elapsed = time.monotonic() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    finally:
        with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    rows = int(re.search(r"Created ([\d,]+) rows", out).group(1).replace(",", ""))
    print(out.rstrip())
    print(f"customers: {args.customers:,}  rows: {rows:,}  wall time (process): {elapsed:.1f} s  "
          f"rows/s: {rows / elapsed:,.0f}  peak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
