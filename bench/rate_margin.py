"""Benchmark: a backfill at Zoho's whole per-minute limit (headroom 0) draws no 429 and keeps to the ceiling.

Usage: .venv/bin/python bench/rate_margin.py [--limit 100] [--headroom 0] [--bulk-share 1.0] [--token-ttl 30]
                                              [--seconds 180] [--customers 400] [--workers N]
                                              [--database-url sqlite|postgres://...] [--trim-seconds 5]

The sandbox runs in this process, strict as Zoho may be: --limit calls in any 60 s (a sliding window; the next
call gets 429 code 44 and a 60 s lock-out), requests refused for an expired token (401) counted too
(count_unauthorized), access tokens living --token-ttl seconds (so the client refreshes every ~27 s and any
401 replay shows). `manage.py zoho_backfill` runs as a subprocess on a scratch database seeded with the demo data
(far more than it can push in the time), with ZOHO_RATE_LIMIT_PER_MINUTE=--limit, ZOHO_RATE_HEADROOM=--headroom
and ZOHO_BULK_SHARE=--bulk-share, for --seconds, then gets SIGTERM. Keep --seconds under about 240: 30 s tokens
cost a mint every 27 s and Zoho allows 10 in 10 minutes.

Printed: the turns the client gave up because it was too late for them (its log); API calls the sandbox received,
401s and 429s; the calls admitted in the steady window (first admitted
call +--trim-seconds to the last ---trim-seconds) per minute as a ratio of the ceiling (--limit); the busiest 60 s
window; and the margin: the shortest time any --limit + 1 consecutive admitted calls took (the sandbox refuses
the last of them when under 60 s). PASS: 0 x 429 and a ratio of at least 0.95.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backfill import backfill, busiest_minute, client_env, describe_seed, revision, scratch_database, seed  # noqa: E402


def shortest_span(times: list[float], calls: int) -> float | None:
    """The least time any `calls` consecutive calls took (None with fewer calls)."""
    times = sorted(times)
    if len(times) < calls:
        return None
    return min(times[i + calls - 1] - times[i] for i in range(len(times) - calls + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=100, help="the sandbox's (Zoho's) per-minute limit")
    parser.add_argument("--headroom", type=float, default=0.0, help="ZOHO_RATE_HEADROOM")
    parser.add_argument("--bulk-share", type=float, default=1.0, help="ZOHO_BULK_SHARE")
    parser.add_argument("--token-ttl", type=int, default=30, help="seconds an access token lives")
    parser.add_argument("--seconds", type=float, default=180, help="how long the backfill runs")
    parser.add_argument("--customers", type=int, default=400, help="demo customers seeded (enough to never run dry)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="zoho_backfill --workers (default: its own choice)")
    parser.add_argument("--database-url", default="sqlite",
                        help="'sqlite' (a file in a temporary folder) or a PostgreSQL server URL (a scratch database)")
    parser.add_argument("--trim-seconds", type=float, default=5, help="left out at each end of the traffic")
    args = parser.parse_args()
    args.as_of = None

    from zoho_sync.sandbox import ZohoSandbox

    started = time.monotonic()
    print(f"code {revision()}; {os.cpu_count()} CPUs; load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"sandbox: {args.limit} calls in any 60 s (sliding window; 429 code 44 and a 60 s lock-out beyond), 401s "
          f"counted, {args.token_ttl} s access tokens; client: ZOHO_RATE_LIMIT_PER_MINUTE={args.limit}, "
          f"ZOHO_RATE_HEADROOM={args.headroom:g}, ZOHO_BULK_SHARE={args.bulk_share:g}; backfill for {args.seconds:g} s")
    log_size = max(10_000, int(args.limit * (args.seconds + 60) / 60 * 2))
    with tempfile.TemporaryDirectory(prefix="bench-rate-margin-") as folder, \
            ZohoSandbox(request_log_size=log_size) as sandbox, \
            scratch_database(args.database_url, "margin", Path(folder), prefix="zoho_bench_margin") as url:
        env = {**client_env(sandbox, url, per_minute=args.limit, headroom=args.headroom),
               "ZOHO_BULK_SHARE": str(args.bulk_share), "LOG_LEVEL": "INFO"}  # INFO: turns given up are logged
        counts = seed(env, args, args.customers)
        print(f"seeded {describe_seed(counts)}")
        sandbox.reset()
        sandbox.configure(per_minute=args.limit, lockout_seconds=60, daily=0, concurrency=10,
                          token_ttl=args.token_ttl, count_unauthorized=True)
        log = Path(folder) / "backfill.log"
        run = backfill(env, log, stop_after=args.seconds, workers=args.workers)
        output = log.read_text()
        entries = sandbox.requests()
    if run.returncode != -signal.SIGTERM:
        tail = "\n".join(output.splitlines()[-15:])
        print(f"note: the backfill ended by itself (exit {run.returncode}) before {args.seconds:g} s:\n{tail}")
    api = [e for e in entries if e.get("api_path") is not None]
    mints = sum(1 for e in entries if e["path"].endswith("/oauth/v2/token"))
    refused = [e["time"] for e in api if e.get("status") == 429]
    unauthorized = sum(1 for e in api if e.get("status") == 401)
    admitted = sorted(e["time"] for e in api if e.get("status") != 429)
    if len(admitted) < 2:
        raise SystemExit(f"the backfill made {len(admitted)} API calls; its output:\n{output[-3000:]}")
    start, end = admitted[0] + args.trim_seconds, admitted[-1] - args.trim_seconds
    steady = sum(1 for t in admitted if start <= t <= end)
    per_minute = steady / max(1e-9, end - start) * 60
    ratio = per_minute / args.limit
    span = shortest_span(admitted, args.limit + 1)
    late = output.count("late for its turn; it gives the turn up")
    print(f"backfill ran {run.wall:.1f} s (exit {run.returncode}, {run.workers} worker process(es)); "
          f"access tokens minted: {mints}; turns given up for coming over 0.5 s late: {late}")
    print(f"calls made: {len(api)} API calls reached the sandbox; {len(admitted)} admitted, {len(refused)} x 429, "
          f"{unauthorized} x 401 (expired token, replayed)")
    if refused:
        print(f"first 429 after {refused[0] - admitted[0]:.1f} s")
    print(f"steady window {end - start:.1f} s: {steady} calls = {per_minute:.1f}/min = {ratio:.3f} of the ceiling "
          f"({args.limit}/min)")
    print(f"busiest 60 s window: {busiest_minute(admitted)} calls (the sandbox refuses call {args.limit + 1})")
    if span is not None:
        print(f"margin: the fastest {args.limit + 1} consecutive calls took {span:.2f} s (refused under 60 s)")
    ok = not refused and ratio >= 0.95
    print(f"{'PASS' if ok else 'FAIL'}: {len(refused)} x 429 (target 0), ratio {ratio:.3f} (target >= 0.95); "
          f"total time {time.monotonic() - started:.0f} s")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
