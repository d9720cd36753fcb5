"""Benchmark: 4 processes share one rate budget against the sandbox's per-minute limit.

Usage: .venv/bin/python bench/rate_budget.py [--limit 600] [--headroom 0.05] [--seconds 60] [--processes 4]
                                              [--threads 2] [--skip-naive]

Runs the processes twice. Shared: every process paces through the budget in one database (as deployed). Naive:
each process paces alone at the full budget, as independent per-process limiters would. For each it prints the
aggregate rate as a fraction of the configured budget and of Zoho's limit, and the 429s the sandbox answered.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def worker(env: dict, naive: bool, threads: int, start_at: float, stop_at: float, results) -> None:
    """One process: `threads` callers doing GET /customers as fast as the budget lets them, until stop_at."""
    os.environ.update(env)
    import threading

    import django

    django.setup()
    from django.db import connections

    from zoho_sync.client.budget import MemoryBudgetBackend
    from zoho_sync.client.errors import ZohoError
    from zoho_sync.conf import get_zoho_settings
    from zoho_sync.zoho import client_build

    conf = get_zoho_settings()
    client = client_build(conf, budget_backend=MemoryBudgetBackend()) if naive else client_build(conf)
    client.tokens.token()
    counts = {"ok": 0, "throttled": 0, "other": 0}
    lock = threading.Lock()

    def call_loop():
        time.sleep(max(0.0, start_at - time.time()))
        while time.time() < stop_at:
            try:
                client.get("/customers", params={"per_page": 1})
                key = "ok"
            except ZohoError as exc:
                key = "throttled" if exc.status_code == 429 else "other"
            with lock:
                counts[key] += 1
        connections.close_all()

    pool = [threading.Thread(target=call_loop) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    results.put(counts)


def usage_total(database_url: str) -> int:
    """Calls the processes counted in ApiUsage (written in batches, the last at each process's exit)."""
    query = "SELECT COALESCE(SUM(calls), 0) FROM zoho_sync_apiusage"
    if database_url.startswith("sqlite:///"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as conn:
            return conn.execute(query).fetchone()[0]
    import psycopg

    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as conn:
        return conn.execute(query).fetchone()[0]


def run(mode: str, args, env: dict, sandbox) -> None:
    counted_before = usage_total(env["DATABASE_URL"])
    sandbox.reset()
    sandbox.configure(per_minute=args.limit, lockout_seconds=60, daily=0, concurrency=10)
    sandbox.recorder.clear()
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start_at = time.time() + 8  # time for every process to import Django and mint (or reuse) a token
    stop_at = start_at + args.seconds
    procs = [ctx.Process(target=worker, args=(env, mode == "naive", args.threads, start_at, stop_at, results))
             for _ in range(args.processes)]
    for p in procs:
        p.start()
    totals = {"ok": 0, "throttled": 0, "other": 0}
    for _ in procs:
        for key, value in results.get(timeout=args.seconds + 300).items():
            totals[key] += value
    for p in procs:
        p.join()
    # Only calls that arrived inside the window count: a caller still waiting for its turn at stop_at sends after.
    served = [r for r in sandbox.requests("GET", "/customers")
              if r.get("status") == 200 and start_at <= r["time"] < stop_at]
    throttled = sum(1 for r in sandbox.requests("GET", "/customers") if r.get("status") == 429)
    budget = args.limit * (1 - args.headroom)
    per_minute = len(served) / args.seconds * 60
    print(f"{mode:>6}: {args.processes} processes x {args.threads} threads for {args.seconds} s: "
          f"{len(served)} calls served = {per_minute:.1f}/min; "
          f"{per_minute / budget:.3f} of the configured budget ({budget:.0f}/min), "
          f"{per_minute / args.limit:.3f} of the limit ({args.limit}/min); 429s from the sandbox: {throttled}; "
          f"errors seen by callers: {totals['throttled'] + totals['other']}")
    if mode == "shared":
        counted = usage_total(env["DATABASE_URL"]) - counted_before
        print(f"{'':>8}API usage counted (ApiUsage rows): {counted}; calls the sandbox received: "
              f"{len(sandbox.requests('GET', '/customers'))}")
    refused = [r["time"] for r in sandbox.requests("GET", "/customers") if r.get("status") == 429]
    if refused:
        first = min(refused)
        before = sum(1 for r in served if r["time"] < first)
        rate = before / max(1e-9, first - start_at) * 60
        print(f"{'':>8}until Zoho locked the organization out after {first - start_at:.1f} s the processes sent "
              f"{rate:.0f}/min = {rate / budget:.2f} x the configured budget; then nothing for the lock-out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=600, help="the sandbox's per-minute limit")
    parser.add_argument("--headroom", type=float, default=0.05)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="callers per process")
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()

    from zoho_sync.sandbox import ZohoSandbox

    with tempfile.TemporaryDirectory() as tmp, ZohoSandbox() as sandbox:
        config = sandbox.config
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true", "DJANGO_ENV_FILE": "/nonexistent",
            "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3"),
            "ZOHO_API_BASE_URL": sandbox.base_url, "ZOHO_ACCOUNTS_URL": sandbox.accounts_url,
            "ZOHO_CLIENT_ID": config.client_id, "ZOHO_CLIENT_SECRET": config.client_secret,
            "ZOHO_REFRESH_TOKEN": config.refresh_token, "ZOHO_ORGANIZATION_ID": config.organization_id,
            "ZOHO_RATE_LIMIT_PER_MINUTE": str(args.limit), "ZOHO_RATE_HEADROOM": str(args.headroom),
            "ZOHO_DAILY_LIMIT": "10000000", "ZOHO_DAILY_RESERVE": "0", "ZOHO_RETRY_MAX_ATTEMPTS": "1",
            "ZOHO_LOCKOUT_SECONDS": "60", "LOG_LEVEL": "WARNING", "REDIS_URL": os.environ.get("BENCH_REDIS_URL", ""),
        }
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], env={**os.environ, **env},
                       check=True)
        run("shared", args, env, sandbox)
        if not args.skip_naive:
            run("naive", args, env, sandbox)


if __name__ == "__main__":
    main()
