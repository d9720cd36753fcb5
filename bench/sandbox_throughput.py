"""Throughput of the local Zoho sandbox under a realistic client mix; prints requests/second and errors.

    .venv/bin/python bench/sandbox_throughput.py [--seconds 10] [--threads 16] [--processes 2]

The sandbox runs in this process with its limits switched off; the 16 client threads, each with its own
requests.Session, run in separate processes (--processes, default 2) so the GIL of the client side does not
throttle the server. Mix per request: 50% GET /customers?page=N, 30% GET /customers/{id}, 20% POST /customers,
after one token mint. Target: at least 500 requests/second on a 2-core machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from zoho_sync.sandbox import ZohoSandbox

ORG_HEADER = "X-com-zoho-subscriptions-organizationid"
SEEDED = 500
PER_PAGE = 25


def client_thread(index: int, job: dict[str, Any], results: list[dict[str, Any]]) -> None:
    rng = random.Random(index)
    session = requests.Session()
    headers = {"Authorization": f"Zoho-oauthtoken {job['token']}", ORG_HEADER: job["org"]}
    base = job["base_url"]
    ids = job["customer_ids"]
    done = errors = 0
    latencies: list[float] = []
    while time.time() < job["start_at"]:
        time.sleep(0.001)
    deadline = job["start_at"] + job["seconds"]
    while time.time() < deadline and done < job["max_requests"]:
        pick = rng.random()
        started = time.perf_counter()
        try:
            if pick < 0.5:
                response = session.get(f"{base}/customers", headers=headers, timeout=10,
                                       params={"page": rng.randint(1, SEEDED // PER_PAGE), "per_page": PER_PAGE})
            elif pick < 0.8:
                response = session.get(f"{base}/customers/{rng.choice(ids)}", headers=headers, timeout=10)
            else:
                response = session.post(f"{base}/customers", headers=headers, timeout=10,
                                         json={"display_name": f"Bench {index}-{done}", "email": f"b{index}@x.test"})
            ok = response.status_code in (200, 201) and response.json().get("code") == 0
        except requests.RequestException:
            ok = False
        latencies.append(time.perf_counter() - started)
        done += 1
        errors += not ok
    results.append({"requests": done, "errors": errors, "latencies": latencies})


def client_process(job: dict[str, Any], queue: Any) -> None:
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=client_thread, args=(job["first_index"] + i, job, results))
               for i in range(job["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the run (default 10)")
    parser.add_argument("--requests", type=int, default=10**9, help="stop each thread after this many requests")
    parser.add_argument("--threads", type=int, default=16, help="client threads in all (default 16)")
    parser.add_argument("--processes", type=int, default=2, help="client processes (default 2; 0 = threads here)")
    args = parser.parse_args()

    sandbox = ZohoSandbox(per_minute=0, daily=0, concurrency=0, token_mint_limit=0,
                          check_duplicate_display_name=False, request_log_size=1000).start()
    try:
        seeded = sandbox.seed("customers", [{"display_name": f"Seed {i}", "email": f"s{i}@x.test"}
                                            for i in range(SEEDED)])
        token = requests.post(f"{sandbox.accounts_url}/oauth/v2/token", timeout=10, params={
            "refresh_token": sandbox.config.refresh_token, "client_id": sandbox.config.client_id,
            "client_secret": sandbox.config.client_secret, "grant_type": "refresh_token"}).json()["access_token"]
        job = {"base_url": sandbox.base_url, "org": sandbox.config.organization_id, "token": token,
               "customer_ids": [c["customer_id"] for c in seeded], "seconds": args.seconds,
               "max_requests": args.requests, "start_at": time.time() + 1.5}
        results: list[dict[str, Any]] = []
        if args.processes <= 0:
            threads = [threading.Thread(target=client_thread, args=(i, job, results)) for i in range(args.threads)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        else:
            ctx = multiprocessing.get_context("spawn")
            queue = ctx.Queue()
            share = [args.threads // args.processes + (i < args.threads % args.processes)
                     for i in range(args.processes)]
            job["start_at"] = time.time() + 3.0  # spawned interpreters need a moment to start
            procs = [ctx.Process(target=client_process, args=({**job, "threads": n, "first_index": sum(share[:i])},
                                                               queue)) for i, n in enumerate(share)]
            for proc in procs:
                proc.start()
            for _ in procs:
                results.extend(queue.get(timeout=args.seconds + 120))
            for proc in procs:
                proc.join()
        total = sum(r["requests"] for r in results)
        errors = sum(r["errors"] for r in results)
        elapsed = min(args.seconds, max(time.time() - job["start_at"], 1e-9))
        latencies = sorted(x for r in results for x in r["latencies"])
        p95 = latencies[int(len(latencies) * 0.95)] if latencies else 0.0
        print(f"clients: {args.threads} threads in {max(args.processes, 1)} process(es), "
              f"{'separate' if args.processes > 0 else 'the server'} process")
        print(f"requests: {total} in {elapsed:.1f} s, errors: {errors}")
        print(f"throughput: {total / elapsed:.0f} requests/second")
        if latencies:
            print(f"latency: median {statistics.median(latencies) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")
        print(f"server counters: {sandbox.counters()['by_status']}")
        return 0 if errors == 0 else 1
    finally:
        sandbox.stop()


if __name__ == "__main__":
    sys.exit(main())
