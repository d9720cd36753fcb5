"""Benchmark: exactly once under concurrent edits and workers, randomized, with real processes on PostgreSQL.

Usage: .venv/bin/python bench/concurrency.py [--runs 3] [--customers 200] [--edit-seconds 40] [--seed 1]
                                             [--latency 0.03] [--lose-rate 0.05] [--keep-db]
                                             [--database-url postgres://postgres@127.0.0.1:5432 | sqlite | sqlite:///f]

Each run, on a fresh scratch database (dropped afterwards unless --keep-db):
1. seeds the demo data (`manage.py zoho_seed_demo --customers N --seed S`);
2. starts a sandbox here (system clock, no limits, the duplicate-name check off so a second create of a customer
   is stored and counted, --latency per write so work overlaps, --lose-rate of the POST/PUT answers lost after
   the write was applied);
3. runs, as separate processes: two `manage.py zoho_backfill` loops (each started again when it ends), one
   `manage.py qcluster` (2 workers, 0.5 s debounce) and one editor (this file, --role edit) that edits random
   records for --edit-seconds through the ORM with `.save()`, as a person would: customers' phones, names and
   emails, services' quantities, manual invoices' notes, activating pending services and completing failed
   prepayments; half of its picks are records some worker holds at that moment (claimed_by set);
4. stops the editor, lets the backfills end and the cluster drain, then runs `zoho_backfill` and
   `zoho_retry_failed` until the sync log stops growing (at most --final-rounds), and stops the cluster;
5. checks (this file, --role check) per entity: local records, records that must reach Zoho (the specs' own
   rules: not skipped, valid, dependencies reaching Zoho; see tests/zoho_sync/test_crash.py), synced records,
   Zoho objects, duplicates (more than one Zoho object for one local record, by natural key), stale records
   (synced, but Zoho's copy differs from what the payload would send now) and lost records (must reach Zoho,
   not synced); Zoho's products too (one per name); and prints the sync log of every record found wrong.

Exit status 1 when any run found a duplicate, a stale or lost record (or a Zoho object no record is linked to).
Only 127.0.0.1 is talked to.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.backfill import MANAGE, UNTHROTTLED, api_calls, client_env, load, revision, scratch_database  # noqa: E402
from bench.backfill import seed as seed_demo  # noqa: E402

SETTINGS = "tests.zoho_sync.subprocess_settings"  # lets the environment set the SYNC_* timings
RESOURCES = ("customers", "plans", "products", "subscriptions", "invoices", "payments")
SYNCED_TABLES = ("customer", "servicepackage", "customerservice", "invoice", "payment")
BACKFILLS = 2


# --- the run's processes -----------------------------------------------------------------------------------------
def run_env(sandbox, database_url: str, args) -> dict[str, str]:
    return {
        **client_env(sandbox, database_url, per_minute=UNTHROTTLED, headroom=0),
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "SYNC_TRIGGERS_ENABLED": "true",
        "SYNC_DEBOUNCE_SECONDS": str(args.debounce),
        "SYNC_OUTCOME_RECHECK_SECONDS": "0.5",  # a lost answer is looked up again half a second later
        "SYNC_RETRY_WINDOW_SECONDS": "5",  # a backfill waits that long for retries, then ends (and is restarted)
        "SYNC_RETRY_BASE_SECONDS": "1",
        "SYNC_DEPENDENCY_RETRY_SECONDS": "2",
        "Q_WORKERS": "2",
        "Q_POLL": "0.1",
        "ZOHO_LOCKOUT_SECONDS": "1",
        "ZOHO_RETRY_DEADLINE": "60",
        "LOG_LEVEL": "WARNING",
    }


def start(command: list[str], env: dict, log: Path, **kwargs) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, **kwargs)


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM a process started in its own session (the cluster), then SIGKILL whatever is left of it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def this_file(role: str, *args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--role", role, *args]


class Database:
    """A few read-only counts straight from the run's database, without Django in this process."""

    def __init__(self, url: str):
        self.url = url

    def scalar(self, sql: str) -> int:
        if self.url.startswith("sqlite:"):
            import sqlite3

            with contextlib.closing(sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=30)) as conn:
                return conn.execute(sql).fetchone()[0]
        import psycopg

        with psycopg.connect(self.url) as conn:
            return conn.execute(sql).fetchone()[0]

    def queued(self) -> int:
        return self.scalar("SELECT COUNT(*) FROM django_q_ormq")

    def claimed(self) -> int:
        counts = [f"(SELECT COUNT(*) FROM zoho_sync_{table} WHERE claimed_by <> '')"  # noqa: S608 - constants
                  for table in SYNCED_TABLES]
        return self.scalar("SELECT " + " + ".join(counts))

    def log_rows(self) -> int:
        return self.scalar("SELECT COUNT(*) FROM zoho_sync_synclog")


def wait_drained(db: Database, cluster: subprocess.Popen, log: Path, timeout: float = 180) -> float:
    """Wait until the queue is empty and nobody holds a record (twice in a row); return the seconds it took."""
    started, quiet = time.monotonic(), 0
    while quiet < 2:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"the cluster did not drain in {timeout:.0f} s ({db.queued()} queued, {db.claimed()} "
                             f"claimed); its log:\n{tail(log)}")
        if cluster.poll() is not None:
            raise SystemExit(f"qcluster exited ({cluster.returncode}):\n{tail(log)}")
        quiet = quiet + 1 if db.queued() == 0 and db.claimed() == 0 else 0
        time.sleep(0.5)
    return time.monotonic() - started


def reaped(running: tuple[subprocess.Popen, Path], result: RunResult) -> bool:
    """Whether the backfill has ended (counted by exit code); one that crashed stops the benchmark."""
    proc, log = running
    if proc.poll() is None:
        return False
    result.backfills[proc.returncode] += 1
    if proc.returncode not in (0, 2):  # 2: some records failed (the demo data holds invalid ones on purpose)
        raise SystemExit(f"zoho_backfill exited {proc.returncode}:\n{tail(log)}")
    return True


@dataclass
class RunResult:
    number: int
    seed: int
    seconds: float = 0.0
    edits: dict = field(default_factory=dict)
    check: dict = field(default_factory=dict)
    backfills: Counter = field(default_factory=Counter)  # exit code -> runs
    final_rounds: int = 0
    lost_answers: int = 0
    calls: int = 0

    def total(self, column: str) -> int:
        return sum(row[column] for row in self.check["entities"] if isinstance(row[column], int))

    @property
    def failed(self) -> bool:
        return any(self.total(c) for c in ("duplicates", "stale", "lost", "unlinked"))


@contextlib.contextmanager
def run_database(args, number: int, tmp: Path) -> Iterator[str]:
    if args.database_url.startswith("sqlite:///"):
        yield args.database_url  # the file given: seeded afresh (--reset) every run, left in place
        return
    with scratch_database(args.database_url, f"run{number}", tmp, prefix="zoho_bench_concurrency",
                          keep=args.keep_db) as url:
        yield url
        if args.keep_db:
            print(f"   kept the database: {url}")


def one_run(args, number: int, tmp: Path) -> RunResult:
    from zoho_sync.sandbox import ZohoSandbox

    result = RunResult(number, seed=args.seed + number - 1)
    began = time.monotonic()
    logs = tmp / f"run{number}"
    logs.mkdir(exist_ok=True)
    sandbox = ZohoSandbox(check_duplicate_display_name=False, per_minute=0, daily=0, concurrency=0,
                          latency=args.latency, lose_response_rate=args.lose_rate, fault_methods=("POST", "PUT"),
                          seed=result.seed, request_log_size=1000)
    with run_database(args, number, tmp) as url, sandbox:
        env = run_env(sandbox, url, args)
        counts = seed_demo(env, argparse.Namespace(seed=result.seed, as_of=None), args.customers)
        print(f"run {number} (seed {result.seed}): seeded {', '.join(f'{n} {k}' for k, n in counts.items())}")
        db = Database(url)
        cluster_log, editor_log, edits_file = logs / "qcluster.log", logs / "editor.log", logs / "edits.json"
        cluster = start([*MANAGE, "qcluster"], env, cluster_log, start_new_session=True)
        editor = start(this_file("edit", "--seconds", str(args.edit_seconds), "--seed", str(result.seed),
                                 "--out", str(edits_file)), env, editor_log)
        backfills: list[tuple[subprocess.Popen, Path] | None] = [None] * BACKFILLS
        numbers = itertools.count(1)
        try:
            while editor.poll() is None:
                for slot in range(BACKFILLS):
                    if backfills[slot] is None or reaped(backfills[slot], result):
                        log = logs / f"backfill-{next(numbers)}.log"
                        backfills[slot] = (start([*MANAGE, "zoho_backfill", "--verbosity", "0"], env, log), log)
                if cluster.poll() is not None:
                    raise SystemExit(f"qcluster exited ({cluster.returncode}):\n{tail(cluster_log)}")
                time.sleep(0.1)
            if editor.returncode:
                raise SystemExit(f"the editor exited {editor.returncode}:\n{tail(editor_log)}")
            result.edits = json.loads(edits_file.read_text())
            for running in filter(None, backfills):
                running[0].wait(timeout=300)
                reaped(running, result)
            wait_drained(db, cluster, cluster_log)
            # Then as operations would: backfill and retry until the sync log stops growing.
            for result.final_rounds in range(1, args.final_rounds + 1):
                before = db.log_rows()
                for command in ("zoho_backfill", "zoho_retry_failed"):
                    log = logs / f"final-{result.final_rounds}-{command}.log"
                    with log.open("wb") as out:
                        done = subprocess.run([*MANAGE, command, "--verbosity", "0"], cwd=ROOT, env=env, stdout=out,
                                              stderr=subprocess.STDOUT, timeout=600)
                    if done.returncode not in (0, 2):
                        raise SystemExit(f"{command} exited {done.returncode}:\n{tail(log)}")
                wait_drained(db, cluster, cluster_log)
                if db.log_rows() == before:
                    break
        finally:
            stop_group(cluster)
            for proc in [editor, *(running[0] for running in filter(None, backfills))]:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        zoho_file = logs / "zoho.json"
        zoho_file.write_text(json.dumps({r: sandbox.records(r) for r in RESOURCES}))
        check_file = logs / "check.json"
        done = subprocess.run(this_file("check", "--zoho", str(zoho_file), "--out", str(check_file)), cwd=ROOT,
                              env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"the check failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        result.check = json.loads(check_file.read_text())
        counters = sandbox.counters()
        result.lost_answers = counters["by_status"].get("reset", 0)
        result.calls = sum(api_calls(counters).values())
    result.seconds = time.monotonic() - began
    return result


# --- printing ------------------------------------------------------------------------------------------------------
COLUMNS = ("records", "must_sync", "synced", "zoho", "duplicates", "stale", "lost", "unlinked")


def print_run(result: RunResult) -> None:
    rows = [("entity", *COLUMNS)] + [(e["name"], *(str(e[c]) for c in COLUMNS)) for e in result.check["entities"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   " + "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in
                                enumerate(zip(row, widths, strict=True))))
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(result.edits["by_kind"].items()))
    print(f"   edits: {kinds}; {result.edits['in_flight']} of them on a record a worker held")
    check = result.check
    print(f"   sync log: {check['pushes']} pushes, {check['changed_meanwhile']} of them found the record changed "
          f"meanwhile (left due), {check['linked']} linked a Zoho record instead of creating it")
    print(f"   backfills: {sum(result.backfills.values())} runs (exit codes "
          f"{', '.join(f'{c}: {n}' for c, n in sorted(result.backfills.items()))}); final rounds "
          f"{result.final_rounds}; failed cluster tasks {result.check['task_failures']}")
    for problem in result.check["problems"]:
        print(f"   ! {problem['entity']} {problem['pk']} ({problem['label']}): {problem['problem']}")
        for line in problem.get("detail", []):
            print(f"       {line}")
        for row in problem["logs"]:
            print(f"       log {row}")
    for sample in result.check["task_failure_samples"]:
        print(f"   ! failed task: {sample}")


def summary(result: RunResult | None, results: list[RunResult], label: str) -> str:
    runs = [result] if result else results
    total = lambda column: sum(r.total(column) for r in runs)  # noqa: E731
    edits = sum(r.edits["edits"] for r in runs)
    in_flight = sum(r.edits["in_flight"] for r in runs)
    unlinked = total("unlinked")
    return (f"{label}: {total('duplicates')} duplicates, {total('stale')} stale, {total('lost')} lost"
            + (f", {unlinked} unlinked Zoho objects" if unlinked else "")
            + f"; {edits} edits ({in_flight} in flight), {sum(r.lost_answers for r in runs)} lost answers, "
              f"{sum(r.calls for r in runs)} calls, {sum(r.seconds for r in runs):.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--customers", type=int, default=200, help="demo customers per run")
    parser.add_argument("--edit-seconds", type=float, default=40, help="how long the editor edits, per run")
    parser.add_argument("--seed", type=int, default=1, help="run n uses seed+n-1 (demo data, edits, faults)")
    parser.add_argument("--latency", type=float, default=0.03, help="the sandbox's delay per write, seconds")
    parser.add_argument("--lose-rate", type=float, default=0.05, help="share of POST/PUT answers lost")
    parser.add_argument("--debounce", type=float, default=0.5, help="SYNC_DEBOUNCE_SECONDS of the triggers")
    parser.add_argument("--final-rounds", type=int, default=6, help="at most this many backfill+retry rounds")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432",
                        help="a PostgreSQL server (a scratch database per run), 'sqlite' (a scratch file per "
                             "run) or sqlite:///path (that file, reset every run)")
    parser.add_argument("--keep-db", action="store_true", help="keep each run's database (and the logs)")
    parser.add_argument("--role", choices=("edit", "check"), help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--zoho", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "edit":
        edit(seconds=args.seconds, seed=args.seed, out=Path(args.out))
        return
    if args.role == "check":
        check(zoho=Path(args.zoho), out=Path(args.out))
        return
    host = urlsplit(args.database_url).hostname
    if host not in (None, "", "127.0.0.1", "localhost"):
        raise SystemExit("--database-url: this benchmark talks to 127.0.0.1 only")

    print(f"code {revision()}; {os.cpu_count()} CPUs; {load()}; seed {args.seed}; {args.runs} runs of "
          f"{args.customers} customers, {args.edit_seconds:g} s of edits, 2 backfill loops + qcluster (2 workers) "
          f"+ 1 editor; sandbox latency {args.latency:g} s per write, {args.lose_rate:.0%} of POST/PUT answers lost")
    results: list[RunResult] = []
    folder = tempfile.mkdtemp(prefix="bench-concurrency-")
    try:
        for number in range(1, args.runs + 1):
            result = one_run(args, number, Path(folder))
            results.append(result)
            print_run(result)
            print(summary(result, results, f"run {number}"))
    finally:
        failed = [r.number for r in results if r.failed]
        if args.keep_db or failed or len(results) < args.runs:
            print(f"logs of the processes: {folder}")
        else:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    print(summary(None, results, f"all {len(results)} runs") + ("; FAIL (runs " + ", ".join(map(str, failed)) + ")"
                                                                 if failed else "; PASS"))
    sys.exit(1 if failed else 0)


# --- the editor (--role edit): a person editing records through the ORM ---------------------------------------------
FIRST = ("Ava", "Liam", "Maya", "Noah", "Zoe", "Omar", "Lena", "Ivan", "Sara", "Diego", "Mei", "Tom", "Anna", "Raj")
LAST = ("Smith", "Garcia", "Chen", "Novak", "Okafor", "Muller", "Rossi", "Kim", "Silva", "Haddad", "Berg", "Patel")
NOTES = ("Called about the bill.", "Pays by bank transfer.", "Discount agreed by phone.", "Second reminder sent.")
CHANGED_MEANWHILE = "The record changed while it was pushed"  # the engine's words, in the sync log
IN_FLIGHT_SHARE = 0.5  # of the picks: a record some worker holds right now, when there is one


def edit(*, seconds: float, seed: int, out: Path) -> None:
    import django

    django.setup()
    from django.utils import timezone

    from zoho_sync.models import Customer, CustomerService, Invoice, Payment

    rng = random.Random(seed)
    stats = {"edits": 0, "in_flight": 0, "by_kind": Counter()}

    def phone(c):
        c.phone = f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"

    def names(c):
        c.first_name, c.last_name = rng.choice(FIRST), rng.choice(LAST)

    def email(c):
        c.email = f"{c.first_name or 'x'}.{c.last_name or 'y'}.{rng.randint(1, 10**6)}@example.net".lower()

    def quantity(s):
        s.quantity = rng.choice([q for q in range(1, 6) if q != s.quantity])

    def notes(i):
        i.notes = f"{rng.choice(NOTES)} ({rng.randint(1, 10**6)})"

    def activate(s):
        s.status, s.activated_at = CustomerService.Status.ACTIVE, timezone.now()

    def complete(p):
        p.status, p.paid_at = Payment.Status.COMPLETED, timezone.now()

    manual = Invoice.objects.filter(kind=Invoice.Kind.MANUAL, origin=Invoice.Origin.LOCAL,
                                    status__in=(Invoice.Status.ISSUED, Invoice.Status.PARTIALLY_PAID,
                                                Invoice.Status.PAID))
    # kind, weight, the records it picks from, the change
    kinds = (
        ("customer phone", 3, Customer.objects.all(), phone),
        ("customer names", 2, Customer.objects.all(), names),
        ("customer email", 2, Customer.objects.all(), email),
        ("service quantity", 3, CustomerService.objects.filter(status=CustomerService.Status.ACTIVE), quantity),
        ("invoice notes", 2, manual, notes),
        ("service activated", 1, CustomerService.objects.filter(status=CustomerService.Status.PENDING,
                                                                customer__status=Customer.Status.ACTIVE), activate),
        ("payment completed", 1, Payment.objects.filter(status=Payment.Status.FAILED, invoice__isnull=True), complete),
    )

    def held(qs):
        return qs.exclude(claimed_by="").filter(claimed_until__gt=timezone.now())

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        kind, _, qs, change = rng.choices(kinds, weights=[k[1] for k in kinds])[0]
        pks = list(held(qs).values_list("pk", flat=True)) if rng.random() < IN_FLIGHT_SHARE else []
        pks = pks or list(qs.values_list("pk", flat=True))
        if not pks:
            continue  # none left of that kind (every pending service activated)
        obj = qs.model.objects.get(pk=rng.choice(pks))  # as an admin form loads it
        change(obj)
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0.05, 0.3))  # a person looks at the form before saving
        stats["in_flight"] += held(qs.model.objects.filter(pk=obj.pk)).exists()
        obj.save()
        stats["edits"] += 1
        stats["by_kind"][kind] += 1
        time.sleep(rng.uniform(0.02, 0.12))
    out.write_text(json.dumps(stats))


# --- the check (--role check): what Zoho holds against what it must hold -------------------------------------------
def check(*, zoho: Path, out: Path) -> None:
    import django

    django.setup()
    from django_q.models import Task

    from tests.zoho_sync.test_crash import expected_outcome
    from zoho_sync.entities import BY_NAME
    from zoho_sync.models import SyncLog, SyncStatus
    from zoho_sync.sync import payloads
    from zoho_sync.wire.errors import InvalidLocalData

    remote_all = json.loads(zoho.read_text())
    expected = expected_outcome()

    def dec(value) -> Decimal:
        return Decimal(str(value if value not in (None, "") else 0))

    def customer_diff(c, r):
        try:
            sent = payloads.customer_to_zoho(c)
        except InvalidLocalData as exc:
            return [f"synced, but invalid now: {exc}"]
        keys = ("display_name", "first_name", "last_name", "company_name", "email", "phone")
        return [f"{k}: Zoho {r.get(k) or ''!r}, here {sent.get(k) or ''!r}" for k in keys
                if (r.get(k) or "") != (sent.get(k) or "")]

    def plan_diff(p, r):
        diffs = [] if r.get("name") == p.name else [f"name: Zoho {r.get('name')!r}, here {p.name!r}"]
        if dec(r.get("recurring_price")) != p.price:
            diffs.append(f"recurring_price: Zoho {r.get('recurring_price')}, here {p.price}")
        return diffs

    def subscription_diff(s, r):
        if s.status == "cancelled":
            return [] if r.get("status") == "cancelled" else [f"status: Zoho {r.get('status')!r}, here cancelled"]
        plan = r.get("plan") or {}
        here = (s.package.plan_code, s.quantity)
        there = (plan.get("plan_code"), int(plan.get("quantity") or 0))
        return [] if here == there else [f"plan (code, quantity): Zoho {there}, here {here}"]

    def invoice_diff(i, r):
        diffs = []
        here = [(line.unit_price, line.quantity) for line in i.lines.all()]
        there = [(dec(item.get("price")), dec(item.get("quantity"))) for item in r.get("invoice_items") or []]
        if here != there:
            diffs.append(f"items (price, quantity): Zoho {there}, here {here}")
        if (r.get("notes") or "") != i.notes:
            diffs.append(f"notes: Zoho {r.get('notes')!r}, here {i.notes!r}")
        if (i.status == "void") != (r.get("status") == "void"):
            diffs.append(f"status: Zoho {r.get('status')!r}, here {i.status!r}")
        return diffs

    def payment_diff(p, r):
        diffs = [] if dec(r.get("amount")) == p.amount else [f"amount: Zoho {r.get('amount')}, here {p.amount}"]
        if r.get("reference_number") != p.reference:
            diffs.append(f"reference_number: Zoho {r.get('reference_number')!r}, here {p.reference!r}")
        return diffs

    # spec, Zoho resource, id key, natural key of a Zoho record and of a local one, what must agree
    checks = (
        ("customer", "customers", "customer_id", lambda r: payloads.account_number_of(r.get("display_name", "")),
         lambda c: c.account_number.casefold(), customer_diff),
        ("service_package", "plans", "plan_code", lambda r: str(r.get("plan_code", "")).casefold(),
         lambda p: p.plan_code.casefold(), plan_diff),
        ("customer_service", "subscriptions", "subscription_id", lambda r: str(r.get("reference_id", "")),
         payloads.subscription_reference, subscription_diff),
        ("invoice", "invoices", "invoice_id", lambda r: str(r.get("invoice_number", "")),
         lambda i: i.invoice_number, invoice_diff),
        ("payment", "payments", "payment_id", lambda r: str(r.get("reference_number", "")),
         lambda p: p.reference, payment_diff),
    )
    entities, problems = [], []

    def problem(entity: str, obj, what: str, detail: list[str] | None = None) -> None:
        logs = SyncLog.objects.filter(entity=entity, object_pk=str(obj.pk)).order_by("created_at", "id")
        problems.append({
            "entity": entity, "pk": obj.pk, "label": BY_NAME[entity].label(obj), "problem": what,
            "detail": detail or [],
            "logs": [f"{row.created_at:%H:%M:%S.%f} run {row.run_id[:8]} {row.action} {row.status} "
                     f"attempt {row.attempt} zoho {row.zoho_id or '-'}: {row.message[:200]}" for row in logs],
        })

    for entity, resource, id_key, remote_key, local_key, diff in checks:
        spec = BY_NAME[entity]
        local = list(spec.prepare(spec.model.objects.all()))
        by_key = {local_key(obj): obj for obj in local}
        remote = [r for r in remote_all[resource] if resource != "invoices" or remote_key(r) in by_key]
        by_id = {str(r[id_key]): r for r in remote}
        groups: dict[str, list[dict]] = {}
        for r in remote:
            groups.setdefault(remote_key(r), []).append(r)
        row = {"name": entity, "records": len(local), "must_sync": len(expected.synced[entity]), "synced": 0,
               "zoho": len(remote), "duplicates": 0, "stale": 0, "lost": 0, "unlinked": 0}
        for key, found in groups.items():
            obj = by_key.get(key)
            if obj is None:  # Zoho holds a record of ours no local record has the key of
                row["unlinked"] += len(found)
                problems.append({"entity": entity, "pk": "-", "label": key, "problem": "Zoho holds records with a "
                                 "key no local record has", "detail": [json.dumps(found)[:500]], "logs": []})
            elif len(found) > 1:
                row["duplicates"] += 1
                problem(entity, obj, f"{len(found)} Zoho {resource} for one record",
                        [f"{r[id_key]}: {json.dumps({k: r.get(k) for k in list(r)[:8]})[:300]}" for r in found])
            elif str(found[0][id_key]) != (obj.zoho_id or ""):
                row["unlinked"] += 1
                problem(entity, obj, f"Zoho holds {resource[:-1]} {found[0][id_key]}, the record is linked to "
                                     f"{obj.zoho_id or 'nothing'} ({obj.sync_status})")
        for obj in local:
            if obj.sync_status != SyncStatus.SYNCED or not obj.zoho_id:
                if obj.pk in expected.synced[entity]:
                    row["lost"] += 1
                    problem(entity, obj, f"must reach Zoho but is {obj.sync_state} (Zoho id {obj.zoho_id or '-'}, "
                                         f"claimed by {obj.claimed_by or 'nobody'}): {obj.last_sync_error[:200]}")
                continue
            row["synced"] += 1
            there = by_id.get(obj.zoho_id)
            differences = ["Zoho has no record with its id"] if there is None else diff(obj, there)
            if differences:
                row["stale"] += 1
                problem(entity, obj, "synced, but Zoho's copy differs", differences)
        entities.append(row)
    # Products are no local records: one per package (by its name) and the one-off product; a second of a name
    # is a duplicate all the same.
    products = Counter(p["name"] for p in remote_all["products"])
    entities.append({"name": "product", "records": "-", "must_sync": "-", "synced": "-",
                     "zoho": sum(products.values()), "duplicates": sum(1 for n in products.values() if n > 1),
                     "stale": "-", "lost": "-", "unlinked": "-"})
    for name, n in products.items():
        if n > 1:
            problems.append({"entity": "product", "pk": "-", "label": name, "problem": f"{n} Zoho products",
                             "detail": [], "logs": []})
    failures = Task.objects.filter(success=False)
    pushes = SyncLog.objects.exclude(status=SyncLog.Status.SKIPPED)
    out.write_text(json.dumps({
        "entities": entities, "problems": problems, "task_failures": failures.count(),
        "pushes": pushes.count(), "changed_meanwhile": pushes.filter(message__contains=CHANGED_MEANWHILE).count(),
        "linked": pushes.filter(action=SyncLog.Action.LINK).count(),
        "task_failure_samples": [f"{t.name}: {str(t.result)[-300:]}" for t in failures[:5]],
    }))


if __name__ == "__main__":
    main()
