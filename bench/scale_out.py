"""Benchmark: several machines, one Zoho budget. More clusters buy trigger latency and availability, not backfill
speed: the binding limit is Zoho's per-organization rate, which every process shares.

Usage: .venv/bin/python bench/scale_out.py [--clusters 3 1] [--minutes 3] [--limit 100] [--customers 150]
                                           [--save-every 4] [--debounce 5] [--headroom 0.1] [--bulk-share 0.8]
                                           [--database-url postgres://postgres@127.0.0.1:5432]
                                           [--redis-url redis://127.0.0.1:6379/13] [--keep-db]

For each number of clusters (3, then 1), on a fresh scratch PostgreSQL database and a flushed Redis database:
1. seeds the demo data (`zoho_seed_demo --customers N`: far more than the run can push, so the backfill never
   runs dry) and starts a sandbox here limited to --limit calls in any 60 s (a 429 and a 60 s lock-out beyond),
   with the duplicate-name check off so a second create of a customer would be stored and counted;
2. starts, as separate processes, on the Redis broker (Q_BROKER=redis) with the token cache and the rate budget in
   Redis: N `manage.py qcluster` (2 workers each), 2 `manage.py zoho_backfill` (each with its worker processes;
   started again should one end), and a saver (this file, --role save) that creates a customer every
   --save-every seconds through the ORM, as the web process does, each save queuing its triggered push;
3. after --minutes stops the saver and the backfills (SIGTERM), waits for the saver's customers to reach Zoho
   and stops the clusters;
4. measures, from the sandbox's request log and the database: the busiest 60 s window and the 429 answers;
   duplicates, stale and unlinked Zoho objects (bench/concurrency.py's check); the backfill's calls per minute
   in the steady part (after --warmup seconds), that is every API call minus those of the triggered pushes (their
   sync runs count them), against the rate the budget gives it; the time from each save to its customer being
   synced (the worker's `last_synced_at`), its median, 95th percentile and maximum.

The budget: Zoho's limit times (1 - headroom) for everything, of which a backfill may take --bulk-share; a
triggered push takes the next free turn, ahead of the backfill. So the backfill's ceiling is
limit x (1 - headroom) x bulk share (72/min with the defaults), or what the triggers leave of the budget, if less.

PASS when, for every cluster count: no 60 s window holds more than --limit calls, no 429, no duplicate, stale or
unlinked object, the backfill runs within 5% of its ceiling, the 95th-percentile trigger latency is at most the
debounce plus 10 s; and the backfill's rate with 1 cluster is within 5% of its rate with 3.
Only 127.0.0.1 is talked to.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backfill import MANAGE, busiest_minute, client_env, load, manage, revision, scratch_database  # noqa: E402
from bench.backfill import seed as seed_demo  # noqa: E402
from bench.concurrency import RESOURCES, start, stop_group, tail  # noqa: E402

BACKFILLS = 2
HEARTBEAT = """
from django.utils import timezone
from django_q.models import Schedule
from monitoring.heartbeat import cluster_heartbeat
Schedule.objects.create(name="monitoring: cluster heartbeat", func="monitoring.heartbeat.cluster_heartbeat",
                        schedule_type=Schedule.MINUTES, minutes=1, next_run=timezone.now())
cluster_heartbeat()
"""
SAVED_PREFIX = "SO-"


@dataclass
class Result:
    clusters: int
    seconds: float = 0.0
    calls: int = 0
    refused: int = 0
    busiest: int = 0
    steady_seconds: float = 0.0
    steady_calls: int = 0
    trigger_calls: int = 0
    backfill_per_minute: float = 0.0
    ceiling: float = 0.0
    saved: int = 0
    latencies: list[float] = field(default_factory=list)
    unsynced: list[str] = field(default_factory=list)
    check: dict = field(default_factory=dict)

    def total(self, column: str) -> int:
        return sum(row[column] for row in self.check.get("entities", []) if isinstance(row[column], int))

    def p(self, q: float) -> float:
        values = sorted(self.latencies)
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def this_file(role: str, *args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--role", role, *args]


def flush_redis(url: str) -> None:
    import redis

    redis.from_url(url).flushdb()


def run_env(sandbox, url: str, args, clusters: int) -> dict[str, str]:
    return {
        **client_env(sandbox, url, per_minute=args.limit, headroom=args.headroom),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ZOHO_BULK_SHARE": str(args.bulk_share),
        "ZOHO_LOCKOUT_SECONDS": "60",
        "REDIS_URL": args.redis_url,
        "Q_BROKER": "redis",
        "Q_CLUSTER_NAME": f"bench-scale-{os.getpid()}-{clusters}",
        "Q_WORKERS": "2",
        "SYNC_TRIGGERS_ENABLED": "true",
        "SYNC_DEBOUNCE_SECONDS": str(args.debounce),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def one_config(args, clusters: int, folder: Path) -> Result:
    from zoho_sync.sandbox import ZohoSandbox

    result = Result(clusters)
    logs = folder / f"clusters-{clusters}"
    logs.mkdir(exist_ok=True)
    sandbox = ZohoSandbox(check_duplicate_display_name=False, per_minute=0, daily=0, request_log_size=200_000)
    with scratch_database(args.database_url, f"c{clusters}", folder, prefix="zoho_bench_scale",
                          keep=args.keep_db) as url, sandbox:
        flush_redis(args.redis_url)
        env = run_env(sandbox, url, args, clusters)
        counts = seed_demo({**env, "SYNC_TRIGGERS_ENABLED": "false"}, argparse.Namespace(seed=1, as_of=None),
                           args.customers)
        print(f"\n{clusters} cluster(s): seeded {', '.join(f'{n} {k}' for k, n in counts.items())}")
        # The clusters' heartbeat (what zoho_schedules installs, alone: no other schedule runs during the run).
        manage(env, "shell", "-c", HEARTBEAT)
        sandbox.reset()
        sandbox.configure(per_minute=args.limit, lockout_seconds=60, daily=0)
        started_clusters = [start([*MANAGE, "qcluster"], env, logs / f"qcluster-{n}.log", start_new_session=True)
                            for n in range(clusters)]
        time.sleep(3)  # the clusters are up and polling before the first trigger
        began = time.time()
        saved_file = logs / "saved.json"
        saver = start(this_file("save", "--seconds", str(args.minutes * 60), "--every", str(args.save_every),
                                "--out", str(saved_file)), env, logs / "saver.log")
        backfills: list[subprocess.Popen] = []
        restarts = 0
        try:
            while saver.poll() is None:
                backfills = [b for b in backfills if b.poll() is None]
                while len(backfills) < BACKFILLS:
                    restarts += 1
                    backfills.append(start([*MANAGE, "zoho_backfill", "-v", "0"], env,
                                           logs / f"backfill-{restarts}.log", start_new_session=True))
                for n, cluster in enumerate(started_clusters):
                    if cluster.poll() is not None:
                        raise SystemExit(f"qcluster {n} exited ({cluster.returncode}):\n"
                                         f"{tail(logs / f'qcluster-{n}.log')}")
                time.sleep(0.2)
            ended = time.time()
            if saver.returncode:
                raise SystemExit(f"the saver exited {saver.returncode}:\n{tail(logs / 'saver.log')}")
            for backfill in backfills:
                stop_group(backfill)
            # The saver's last customers: their pushes are due a debounce after the save.
            deadline = time.time() + args.debounce + 60
            while time.time() < deadline and query(url, "SELECT COUNT(*) FROM zoho_sync_customer WHERE "
                                                   "account_number LIKE %s AND sync_status <> 'synced'",
                                                   (SAVED_PREFIX + "%",))[0][0]:
                time.sleep(0.5)
        finally:
            for proc in [saver, *backfills, *started_clusters]:
                stop_group(proc)
        result.seconds = ended - began

        api = [e for e in sandbox.requests() if e.get("api_path") is not None]
        result.calls = len(api)
        result.refused = sum(1 for e in api if e.get("status") == 429)
        admitted = [e["time"] for e in api if e.get("status") != 429]
        result.busiest = busiest_minute(admitted)
        steady_from = began + args.warmup
        result.steady_seconds = ended - steady_from
        result.steady_calls = sum(1 for t in admitted if steady_from <= t < ended)
        result.trigger_calls = query(
            url, "SELECT COALESCE(SUM(api_calls), 0) FROM zoho_sync_syncrun WHERE kind = 'trigger' "
                 "AND started_at >= to_timestamp(%s) AND started_at < to_timestamp(%s)", (steady_from, ended))[0][0]
        result.backfill_per_minute = (result.steady_calls - result.trigger_calls) / result.steady_seconds * 60
        budget = args.limit * (1 - args.headroom)
        trigger_per_minute = result.trigger_calls / result.steady_seconds * 60
        result.ceiling = min(budget * args.bulk_share, budget - trigger_per_minute)

        saved = json.loads(saved_file.read_text())
        result.saved = len(saved)
        synced = dict(query(url, "SELECT account_number, EXTRACT(EPOCH FROM last_synced_at)::float FROM "
                                 "zoho_sync_customer WHERE account_number LIKE %s AND sync_status = 'synced'",
                            (SAVED_PREFIX + "%",)))
        for account, saved_at in saved:
            if account in synced:
                result.latencies.append(synced[account] - saved_at)
            else:
                result.unsynced.append(account)

        zoho_file, check_file = logs / "zoho.json", logs / "check.json"
        zoho_file.write_text(json.dumps({r: sandbox.records(r) for r in RESOURCES}))
        done = subprocess.run([sys.executable, str(ROOT / "bench" / "concurrency.py"), "--role", "check", "--zoho",
                               str(zoho_file), "--out", str(check_file)], cwd=ROOT,
                              env={**env, "DJANGO_SETTINGS_MODULE": "tests.zoho_sync.subprocess_settings"},
                              capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"the check failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        result.check = json.loads(check_file.read_text())
    print_result(args, result)
    return result


def passed(args, result: Result) -> dict[str, bool]:
    return {
        "busiest 60 s window within the limit": result.busiest <= args.limit,
        "no 429": result.refused == 0,
        "no duplicate, stale or unlinked object": not any(result.total(c) for c in ("duplicates", "stale",
                                                                                      "unlinked")),
        "backfill within 5% of its ceiling": result.backfill_per_minute >= 0.95 * result.ceiling,
        "every saved customer reached Zoho": not result.unsynced,
        f"p95 save-to-Zoho at most {args.debounce:g} + 10 s": result.p(0.95) <= args.debounce + 10,
    }


def print_result(args, result: Result) -> None:
    budget = args.limit * (1 - args.headroom)
    print(f"   ran {result.seconds:.0f} s; {result.calls} API calls reached the sandbox "
          f"({result.calls / result.seconds * 60:.1f}/min over the run), {result.refused} answered 429; "
          f"busiest 60 s window: {result.busiest} calls (limit {args.limit})")
    print(f"   steady part ({result.steady_seconds:.0f} s after {args.warmup:g} s of warm-up): "
          f"{result.steady_calls / result.steady_seconds * 60:.1f} calls/min in all, of the budget {budget:.0f}/min; "
          f"triggered pushes {result.trigger_calls / result.steady_seconds * 60:.1f}/min; backfill "
          f"{result.backfill_per_minute:.1f}/min, {result.backfill_per_minute / result.ceiling:.3f} of its ceiling "
          f"{result.ceiling:.1f}/min ({result.backfill_per_minute / args.limit:.3f} of Zoho's limit)")
    if result.latencies:
        print(f"   {result.saved} customers saved during the backfill: save to synced in Zoho median "
              f"{statistics.median(result.latencies):.1f} s, p95 {result.p(0.95):.1f} s, max "
              f"{max(result.latencies):.1f} s (debounce {args.debounce:g} s)"
              + (f"; {len(result.unsynced)} never synced: {', '.join(result.unsynced[:5])}" if result.unsynced
                 else ""))
    print(f"   Zoho objects: {result.total('zoho')}, duplicates {result.total('duplicates')}, stale "
          f"{result.total('stale')}, unlinked {result.total('unlinked')}; pushes logged {result.check['pushes']}, "
          f"failed tasks {result.check['task_failures']}")
    for name, ok in passed(args, result).items():
        print(f"   {'ok  ' if ok else 'FAIL'} {name}")


def save(*, seconds: float, every: float, out: Path) -> None:
    """The saver (--role save): a new customer every `every` seconds, as a person's save in the admin makes one."""
    import django

    django.setup()
    from zoho_sync.models import Customer

    saved, end, n = [], time.time() + seconds, 0
    while time.time() < end:
        n += 1
        account = f"{SAVED_PREFIX}{os.getpid() % 100000:05d}-{n:05d}"
        Customer.objects.create(account_number=account, email=f"scale.out{n}@example.com", first_name="Scale",
                                last_name=f"Out {n}")  # autocommit: queued for its push on return
        saved.append((account, time.time()))
        time.sleep(max(0.0, every - (time.time() - saved[-1][1])))
    out.write_text(json.dumps(saved))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, nargs="+", default=[3, 1], help="cluster counts to run, in order")
    parser.add_argument("--minutes", type=float, default=3.0, help="how long the backfills and the saver run")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds left out of the steady rate")
    parser.add_argument("--limit", type=int, default=100, help="the sandbox's calls per 60 s (Zoho's limit)")
    parser.add_argument("--headroom", type=float, default=0.1, help="ZOHO_RATE_HEADROOM")
    parser.add_argument("--bulk-share", type=float, default=0.8, help="ZOHO_BULK_SHARE")
    parser.add_argument("--customers", type=int, default=150, help="demo customers seeded for the backfill")
    parser.add_argument("--save-every", type=float, default=4.0, help="seconds between the saver's customers")
    parser.add_argument("--debounce", type=float, default=5.0, help="SYNC_DEBOUNCE_SECONDS")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432",
                        help="a PostgreSQL server (a scratch database per cluster count)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="a Redis database it may flush")
    parser.add_argument("--keep-db", action="store_true", help="keep the databases and the processes' logs")
    parser.add_argument("--role", choices=("save",), help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--every", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "save":
        save(seconds=args.seconds, every=args.every, out=Path(args.out))
        return
    for url in (args.database_url, args.redis_url):
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
            raise SystemExit("this benchmark talks to 127.0.0.1 only")
    budget = args.limit * (1 - args.headroom)
    print(f"code {revision()}; {os.cpu_count()} CPUs; {load()}; sandbox limit {args.limit} calls per 60 s; budget "
          f"{budget:.0f}/min (headroom {args.headroom:g}), backfill share {args.bulk_share:g} "
          f"({budget * args.bulk_share:.0f}/min); {args.minutes:g} min per run: {BACKFILLS} backfills + a saver "
          f"(a customer every {args.save_every:g} s, debounce {args.debounce:g} s) + N qclusters on Redis")
    folder = Path(tempfile.mkdtemp(prefix="bench-scale-out-"))
    results = [one_config(args, clusters, folder) for clusters in args.clusters]
    ok = all(all(passed(args, r).values()) for r in results)
    if len(results) > 1:
        rates = [r.backfill_per_minute for r in results]
        spread = (max(rates) - min(rates)) / max(rates)
        same = spread <= 0.05
        ok = ok and same
        print("\nbackfill calls/min by clusters: " + ", ".join(f"{r.clusters}: {r.backfill_per_minute:.1f}"
                                                                  for r in results)
              + f" (spread {spread:.1%}: {'the same within 5%' if same else 'FAIL, more than 5% apart'}); p95 "
              "trigger latency: " + ", ".join(f"{r.clusters}: {r.p(0.95):.1f} s" for r in results))
    print(f"logs: {folder}" if args.keep_db or not ok else "")
    if not (args.keep_db or not ok):
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
