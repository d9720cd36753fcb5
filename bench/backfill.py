"""Benchmark: `manage.py zoho_backfill` of the seeded demo data against the local Zoho sandbox.

Usage: .venv/bin/python bench/backfill.py [--customers 5000] [--limit 600] [--headroom 0.05] [--rate-seconds 90]
                                           [--memory-customers 13500] [--database-url sqlite|postgres://...]
                                           [--memory-database-url URL] [--workers N] [--skip-rate] [--skip-memory]

The sandbox runs in this process; every backfill is a `manage.py zoho_backfill` subprocess on a scratch database
(a SQLite file in a temporary folder by default; with a postgres:// server URL a database created and dropped
here). Backfills run at BULK priority with ZOHO_BULK_SHARE=1.0, so they may use the whole per-minute budget: these
are pure backfill figures, with no live traffic sharing the budget.

1. Rate: sandbox limited to --limit calls per minute (sliding 60 s window, 60 s lock-out on a breach), client
   ZOHO_RATE_LIMIT_PER_MINUTE=--limit with --headroom. The backfill runs --rate-seconds, then gets SIGTERM. Calls
   the sandbox served per minute in the steady window (first and last --trim-seconds of API traffic left out),
   as a fraction of the limit; and the 429s it answered.
2. Calls per record on a first full run (unthrottled sandbox): Zoho API calls the sandbox received (token mints
   not counted) / records created or linked in Zoho; also / records examined (everything the run looked at).
3. An immediate second run: write calls (POST/PUT) and all calls.
4. Records per second of the first full run (records examined / the process's wall time), with the worker
   processes the command chose (SYNC_BACKFILL_WORKERS: one on SQLite, one per CPU up to 4 on PostgreSQL) or
   --workers.
5. Peak RSS of a backfill of about 100,000 records (--memory-customers), unthrottled: os.wait4's ru_maxrss (the
   largest process: the command or one of its workers), and the whole process tree's, sampled every 0.1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MANAGE = [sys.executable, str(ROOT / "manage.py")]
UNTHROTTLED = 10_000_000  # the client's per-minute budget when the sandbox has no limit
# The command's "This run" table (zoho_sync/management/commands/_sync_output.py RUN_COLUMNS).
SUMMARY_COLUMNS = ("created", "updated", "linked", "cancelled", "unchanged", "needs_person", "retrying", "waiting",
                   "blocked", "skipped", "pending")
SEED_LINE = re.compile(r"^\s{2}(\w[\w ]*?)\s+([\d,]+)$")
ROW_LINE = re.compile(r"^(\w+)" + r"\s+(\d+)" * len(SUMMARY_COLUMNS) + r"\s*$")
WORKERS_LINE = re.compile(r"^(\d+) worker processes push together")
TOTAL_LINE = re.compile(r"(\d+) records in ([\d.]+) s \(([\d.]+)/s\), (\d+) API calls")


# --- scratch databases and subprocesses ---------------------------------------------------------------------
@contextlib.contextmanager
def scratch_database(spec: str, name: str, folder: Path, *, prefix: str = "zoho_bench_backfill",
                     keep: bool = False) -> Iterator[str]:
    """A DATABASE_URL for an empty database: a SQLite file in `folder`, or a database on a PostgreSQL server
    (named `prefix`_pid_`name`). Dropped afterwards unless `keep`."""
    if spec == "sqlite":
        path = folder / f"{name}.sqlite3"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm") if not keep else ():
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    parts = urlsplit(spec)
    if parts.scheme not in ("postgres", "postgresql"):
        raise SystemExit(f"--database-url must be 'sqlite' or a postgres:// server URL, not {spec!r}")
    server = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    db = f"{prefix}_{os.getpid()}_{name}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        yield f"{server}/{db}"
    finally:
        if not keep:
            with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def manage(env: dict, *args: str) -> str:
    done = subprocess.run([*MANAGE, *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def seed(env: dict, args, customers: int) -> dict[str, int]:
    """Migrate and seed; return the seed's row counts by table."""
    manage(env, "migrate", "-v0")
    extra = ["--as-of", args.as_of] if args.as_of else []
    out = manage(env, "zoho_seed_demo", "--customers", str(customers), "--seed", str(args.seed), "--reset", *extra)
    return {m.group(1): int(m.group(2).replace(",", "")) for m in map(SEED_LINE.match, out.splitlines()) if m}


@dataclass
class Backfill:
    returncode: int
    wall: float  # seconds, process start to exit
    peak_rss_mb: float  # the largest single process (the command, or one of its workers)
    peak_tree_mb: float  # the command and its workers together, sampled every 0.1 s
    cpu: float  # the backfill process's user + system seconds
    sandbox_cpu: float  # this process's (the sandbox's) user + system seconds meanwhile
    output: str
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # entity -> column -> records
    done: int = 0  # records examined, as the command reports them
    seconds: float = 0.0  # the command's own timing (without Django start-up)
    calls: int = 0  # API calls as the command's budget counted them
    workers: int = 1  # worker processes the command used

    def total(self, *columns: str) -> int:
        return sum(row[c] for row in self.rows.values() for c in columns)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children now (Linux /proc; 0 elsewhere)."""
    total, pids = 0, [pid]
    while pids:
        current = pids.pop()
        try:
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in Path(f"/proc/{current}/task").iterdir():
                pids += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total / 2**20


def backfill(env: dict, log: Path, *, stop_after: float | None = None, workers: int | None = None) -> Backfill:
    """Run `manage.py zoho_backfill` to the end (or SIGTERM it after `stop_after` s). Peak RSS: the largest process
    via wait4 (its workers are its children), and the process tree's total, sampled."""
    started, own = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    extra = ["--workers", str(workers)] if workers else []
    tree_peak = 0.0
    with open(log, "w") as out:
        proc = subprocess.Popen([*MANAGE, "zoho_backfill", *extra], env=env, stdout=out, stderr=subprocess.STDOUT)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            tree_peak = max(tree_peak, tree_rss_mb(proc.pid))
            if stop_after is not None and time.monotonic() - started >= stop_after:
                proc.send_signal(signal.SIGTERM)
                stop_after = None  # now wait for it to go
            time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    now = resource.getrusage(resource.RUSAGE_SELF)
    sandbox_cpu = now.ru_utime + now.ru_stime - own.ru_utime - own.ru_stime
    result = Backfill(proc.returncode, time.monotonic() - started, usage.ru_maxrss / 1024,
                      max(tree_peak, usage.ru_maxrss / 1024), usage.ru_utime + usage.ru_stime, sandbox_cpu,
                      log.read_text())
    for line in result.output.splitlines():
        if workers_line := WORKERS_LINE.match(line):
            result.workers = int(workers_line.group(1))
        if (row := ROW_LINE.match(line)) and row.group(1) != "entity":
            result.rows[row.group(1)] = dict(zip(SUMMARY_COLUMNS, map(int, row.groups()[1:]), strict=True))
        elif total := TOTAL_LINE.search(line):
            result.done, result.seconds, result.calls = int(total.group(1)), float(total.group(2)), int(total.group(4))
    return result


def require_summary(run: Backfill, what: str, log: Path) -> None:
    # Exit 2 is expected: the demo data holds records Zoho refuses (bad email, no name), which fail.
    if run.returncode not in (0, 2) or not run.rows:
        tail = "\n".join(run.output.splitlines()[-30:])
        raise SystemExit(f"{what}: zoho_backfill exited {run.returncode} without its summary (log {log}):\n{tail}")


# --- the sandbox's side -------------------------------------------------------------------------------------
def api_calls(counters: dict) -> Counter:
    """Calls per endpoint ("POST /customers") the sandbox received, without the OAuth token endpoint."""
    return Counter({k: v for k, v in counters["by_endpoint"].items() if "/oauth/" not in k})


def writes(calls: Counter) -> int:
    return sum(v for k, v in calls.items() if k.split(" ", 1)[0] in ("POST", "PUT"))


def busiest_minute(times: list[float]) -> int:
    """The most calls in any 60 s window (what the sandbox's sliding window saw at its fullest)."""
    times, best, first = sorted(times), 0, 0
    for last, t in enumerate(times):
        while times[first] <= t - 60:
            first += 1
        best = max(best, last - first + 1)
    return best


def client_env(sandbox, database_url: str, *, per_minute: int, headroom: float) -> dict:
    config = sandbox.config
    return {
        **os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true", "DJANGO_ENV_FILE": "/nonexistent",
        "DATABASE_URL": database_url, "ZOHO_API_BASE_URL": sandbox.base_url, "ZOHO_ACCOUNTS_URL": sandbox.accounts_url,
        "ZOHO_CLIENT_ID": config.client_id, "ZOHO_CLIENT_SECRET": config.client_secret,
        "ZOHO_REFRESH_TOKEN": config.refresh_token, "ZOHO_ORGANIZATION_ID": config.organization_id,
        "ZOHO_RATE_LIMIT_PER_MINUTE": str(per_minute), "ZOHO_RATE_HEADROOM": str(headroom),
        "ZOHO_BULK_SHARE": "1.0", "ZOHO_DAILY_LIMIT": "1000000000", "ZOHO_DAILY_RESERVE": "0",
        "ZOHO_LOCKOUT_SECONDS": "60", "LOG_LEVEL": "WARNING", "REDIS_URL": "",
    }


def unthrottled(sandbox) -> None:
    sandbox.reset()
    sandbox.configure(per_minute=0, daily=0)


def describe_seed(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in counts.items())


def examinable(counts: dict[str, int]) -> int:
    """Records a backfill looks at: every seeded row except invoice lines (they travel inside their invoice)."""
    return sum(n for name, n in counts.items() if name != "invoice lines")


# --- the parts ----------------------------------------------------------------------------------------------
def part_rate(args, sandbox, tmp: Path, results: dict) -> None:
    print(f"\n1. Rate: sandbox limit {args.limit}/min (sliding 60 s window, 60 s lock-out), client budget "
          f"{args.limit}/min with headroom {args.headroom}, ZOHO_BULK_SHARE=1.0; {args.rate_seconds} s, then SIGTERM")
    with scratch_database(args.database_url, "rate", tmp) as url:
        env = client_env(sandbox, url, per_minute=args.limit, headroom=args.headroom)
        counts = seed(env, args, args.customers)
        sandbox.reset()
        sandbox.configure(per_minute=args.limit, lockout_seconds=60, daily=0)
        log = args.logs / "rate.log"
        run = backfill(env, log, stop_after=args.rate_seconds, workers=args.workers)
    if run.returncode != -signal.SIGTERM:
        print(f"   note: the backfill ended by itself (exit {run.returncode}) before {args.rate_seconds:g} s; "
              "use more --customers for a longer steady window")
    api = [e for e in sandbox.requests() if e.get("api_path") is not None]
    refused = sum(1 for e in api if e.get("status") == 429)
    admitted = [e["time"] for e in api if e.get("status") != 429]
    if len(admitted) < 2:
        raise SystemExit(f"the backfill made {len(admitted)} API calls in {args.rate_seconds} s; see {log}")
    start, end = min(admitted) + args.trim_seconds, max(admitted) - args.trim_seconds
    if end - start < 10:
        raise SystemExit(f"too short a steady window ({end - start:.1f} s); raise --rate-seconds or --customers")
    steady = sum(1 for t in admitted if start <= t <= end)
    per_minute = steady / (end - start) * 60
    fraction = per_minute / args.limit
    budget = args.limit * (1 - args.headroom)
    print(f"   seeded {describe_seed(counts)}")
    print(f"   backfill ran {run.wall:.1f} s (exit {run.returncode}); {len(api)} API calls reached the sandbox, "
          f"{len(admitted)} admitted, {refused} answered 429")
    trim = f"{args.trim_seconds:g}"
    print(f"   steady window {end - start:.1f} s (first API call +{trim} s to last -{trim} s): "
          f"{steady} calls = {per_minute:.1f}/min = {fraction:.3f} of the limit ({args.limit}/min), "
          f"{per_minute / budget:.3f} of the client's budget ({budget:.0f}/min)")
    print(f"   busiest 60 s window: {busiest_minute(admitted)} calls (the sandbox refuses call {args.limit + 1})")
    results["rate"] = (fraction, refused)


def part_full(args, sandbox, tmp: Path, results: dict) -> None:
    print(f"\n2-4. First full run and an immediate second run: {args.customers} customers, unthrottled sandbox "
          f"(per_minute=0, daily=0), ZOHO_RATE_LIMIT_PER_MINUTE={UNTHROTTLED}, headroom 0, ZOHO_BULK_SHARE=1.0")
    with scratch_database(args.database_url, "full", tmp) as url:
        env = client_env(sandbox, url, per_minute=UNTHROTTLED, headroom=0)
        counts = seed(env, args, args.customers)
        print(f"   seeded {describe_seed(counts)}: {examinable(counts)} records to examine")
        unthrottled(sandbox)
        first_log, second_log = args.logs / "first.log", args.logs / "second.log"
        first = backfill(env, first_log, workers=args.workers)
        require_summary(first, "first run", first_log)
        after_first = api_calls(sandbox.counters())
        in_zoho = sandbox.state()["counts"]
        second = backfill(env, second_log, workers=args.workers)
        require_summary(second, "second run", second_log)
        after_second = api_calls(sandbox.counters())
    calls = sum(after_first.values())
    landed = first.total("created", "linked")
    print("   first run, the command's summary:")
    print("\n".join(f"     {line}" for line in first.output.splitlines()
                     if ROW_LINE.match(line) or "failures of kind" in line or TOTAL_LINE.search(line)
                     or line.startswith("entity")))
    print(f"   first run: exit {first.returncode}, wall {first.wall:.1f} s (CPU: backfill {first.cpu:.0f} s, sandbox "
          f"{first.sandbox_cpu:.0f} s), {first.workers} worker process(es), peak RSS {first.peak_rss_mb:.0f} MB "
          f"(largest process; all together {first.peak_tree_mb:.0f} MB); "
          f"{first.done} records examined, {landed} created or linked in Zoho, "
          f"{first.total('needs_person', 'retrying')} failed, {first.total('waiting', 'blocked')} waiting or "
          f"blocked, {first.total('skipped')} skipped")
    print(f"   sandbox now holds: {', '.join(f'{n} {k}' for k, n in in_zoho.items() if n)}")
    print(f"   Zoho API calls the sandbox received: {calls} (the command counted {first.calls}); "
          f"by endpoint: {', '.join(f'{k} {v}' for k, v in after_first.most_common())}")
    per_landed = calls / max(1, landed)
    per_examined = calls / max(1, first.done)
    print(f"   calls per record created or linked: {per_landed:.3f}; calls per record examined: {per_examined:.3f}")
    rate = first.done / first.wall
    print(f"   records per second: {rate:.1f} (examined / process wall time; the command's own figure "
          f"{first.done / max(first.seconds, 1e-9):.1f}/s over {first.seconds:.1f} s); created or linked in Zoho "
          f"{landed / first.wall:.1f}/s, API calls {calls / first.wall:.1f}/s")
    second_calls = after_second - after_first
    print(f"   second run: exit {second.returncode}, wall {second.wall:.1f} s; {second.done} records examined; "
          f"{writes(second_calls)} write calls (POST/PUT), {sum(second_calls.values())} calls in all"
          + (f": {', '.join(f'{k} {v}' for k, v in second_calls.most_common())}" if second_calls else ""))
    results["calls"] = (per_landed, per_examined)
    results["second"] = (writes(second_calls), sum(second_calls.values()))
    results["speed"] = rate
    results["workers"] = first.workers


def part_memory(args, sandbox, tmp: Path, results: dict) -> None:
    where = "SQLite" if args.memory_database_url == "sqlite" else "PostgreSQL"
    print(f"\n5. Peak memory: {args.memory_customers} customers on {where}, unthrottled sandbox")
    with scratch_database(args.memory_database_url, "memory", tmp) as url:
        env = client_env(sandbox, url, per_minute=UNTHROTTLED, headroom=0)
        counts = seed(env, args, args.memory_customers)
        print(f"   seeded {describe_seed(counts)}: {examinable(counts)} records to examine")
        unthrottled(sandbox)
        log = args.logs / "memory.log"
        run = backfill(env, log, workers=args.workers)
        require_summary(run, "memory run", log)
    print(f"   backfill: exit {run.returncode}, wall {run.wall:.1f} s (CPU: backfill {run.cpu:.0f} s, sandbox "
          f"{run.sandbox_cpu:.0f} s), {run.done} records examined "
          f"({run.done / run.wall:.1f}/s), {run.total('created', 'linked')} created or linked, "
          f"{sum(api_calls(sandbox.counters()).values())} API calls; {run.workers} worker process(es); peak RSS "
          f"{run.peak_rss_mb:.0f} MB (largest process; all together {run.peak_tree_mb:.0f} MB)")
    results["memory"] = (run.peak_rss_mb, run.done, run.peak_tree_mb, run.workers)


def revision() -> str:
    """The code measured: the commit, and whether the tree differs from it (others may edit while this runs)."""
    try:
        return subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_table(args, results: dict) -> None:
    rows = [("figure", "measured", "target", "")]
    if "rate" in results:
        fraction, refused = results["rate"]
        rows.append(("1. request rate / sandbox limit", f"{fraction:.3f}, {refused} x 429", ">= 0.90, 0 x 429",
                     verdict(fraction >= 0.90 and refused == 0)))
    if "calls" in results:
        per_landed, per_examined = results["calls"]
        rows.append(("2. API calls per record created/linked", f"{per_landed:.3f}", "<= 1.05",
                     verdict(per_landed <= 1.05)))
        rows.append(("   (API calls per record examined)", f"{per_examined:.3f}", "", ""))
        written, total = results["second"]
        rows.append(("3. second run: write calls", f"{written} ({total} calls in all)", "0", verdict(written == 0)))
        on_postgres = args.database_url != "sqlite"
        rows.append((f"4. records per second (first run, {results['workers']} worker(s))", f"{results['speed']:.1f}",
                     ">= 200 on PostgreSQL", verdict(results["speed"] >= 200) if on_postgres else "(SQLite)"))
    if "memory" in results:
        peak, done, tree, workers = results["memory"]
        rows.append((f"5. peak RSS, backfill of {done:,} records", f"{peak:.0f} MB", "< 250 MB", verdict(peak < 250)))
        if workers > 1:
            rows.append((f"   ({workers} workers and the main process together)", f"{tree:.0f} MB", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    database = {"sqlite": "SQLite"}
    scope = []
    if not (args.skip_rate and args.skip_full):
        scope.append(f"parts 1-4: {args.customers} customers on "
                     f"{database.get(args.database_url, 'PostgreSQL')}")
    if not args.skip_memory:
        scope.append(f"part 5: {args.memory_customers} customers on "
                     f"{database.get(args.memory_database_url, 'PostgreSQL')}")
    print(f"\nResults ({'; '.join(scope)}; backfills at BULK priority with ZOHO_BULK_SHARE=1.0)")
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=5000, help="demo customers for parts 1-4")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--as-of", default=None, help="date the demo data ends on (default today)")
    parser.add_argument("--limit", type=int, default=600, help="the sandbox's per-minute limit in part 1")
    parser.add_argument("--headroom", type=float, default=0.05, help="ZOHO_RATE_HEADROOM in part 1")
    parser.add_argument("--rate-seconds", type=float, default=90, help="how long part 1 lets the backfill run")
    parser.add_argument("--trim-seconds", type=float, default=5, help="left out at each end of part 1's traffic")
    parser.add_argument("--memory-customers", type=int, default=13500,
                        help="demo customers for part 5 (13,500 give about 100,000 records to examine)")
    parser.add_argument("--database-url", default="sqlite",
                        help="'sqlite' (a file in a temporary folder) or a PostgreSQL server such as "
                             "postgres://postgres@127.0.0.1:5432 (a scratch database is created and dropped)")
    parser.add_argument("--memory-database-url", default=None, help="the same, for part 5 (default: --database-url)")
    parser.add_argument("--workers", type=int, default=None,
                        help="zoho_backfill --workers (default: the command's own choice, SYNC_BACKFILL_WORKERS)")
    parser.add_argument("--log-dir", default=None, help="keep each backfill's output here (default: not kept)")
    parser.add_argument("--skip-rate", action="store_true", help="skip part 1")
    parser.add_argument("--skip-full", action="store_true", help="skip parts 2-4")
    parser.add_argument("--skip-memory", action="store_true", help="skip part 5")
    args = parser.parse_args()
    args.memory_database_url = args.memory_database_url or args.database_url

    from zoho_sync.sandbox import ZohoSandbox

    results: dict = {}
    started = time.monotonic()
    print(f"code {revision()}; {os.cpu_count()} CPUs; {load()} (other work on the machine slows parts 4 and 5)")
    # The request log must hold all of part 1's calls; the other parts read the (unbounded) counters.
    log_size = max(10_000, int(args.limit * (args.rate_seconds + 60) / 60 * 2))
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as folder, \
            ZohoSandbox(request_log_size=log_size) as sandbox:
        tmp = Path(folder)
        args.logs = Path(args.log_dir) if args.log_dir else tmp
        args.logs.mkdir(parents=True, exist_ok=True)
        for skip, part in ((args.skip_rate, part_rate), (args.skip_full, part_full),
                           (args.skip_memory, part_memory)):
            if not skip:
                began = time.monotonic()
                part(args, sandbox, tmp, results)
                print(f"   (part took {time.monotonic() - began:.0f} s; code {revision()}; {load()})")
    print_table(args, results)
    print(f"\nTotal time: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
