"""Benchmark: reconciliation (`zoho_sync.reconcile.reconcile`) of 10,000 customers with their services, invoices
and payments against the local Zoho sandbox, on a scratch PostgreSQL database (dropped afterwards).

Usage: .venv/bin/python bench/reconcile_scale.py [--customers 10000] [--setup seed|engine] [--keep-db NAME]
                                                  [--pg postgres://postgres@127.0.0.1:5432]

The sandbox runs in this process (limits off); the database is created and migrated as bench/scale_data.py does.

1. Setup, the data in step on both sides as after a backfill. Per customer: a customer, an active service (a Zoho
   subscription, starting today), a one-off invoice with one line (25.00, paid) and its payment; plus one service
   package (a Zoho product and plan) and the one-off product. A live subscription that starts today makes Zoho
   raise the invoice of its first term itself, so Zoho also holds one invoice per customer that we did not send;
   the app mirrors those from Zoho's invoice_created events through its pull step, and so does the setup (the
   pull step applied to each, as an applied webhook would; no HTTP). Records: 5 per customer, plus the package.
   --setup seed (default): the sandbox is seeded through its API rules (`ZohoSandbox.seed`) with the bodies the
   engine would send (the payload functions on the spec's prepared objects), and the local rows get the Zoho ids,
   sync_status 'synced' and the engine's fingerprint (`fingerprint_of(spec.fingerprint(obj))` on the prepared
   objects), as a push leaves them. --setup engine: the local rows are pushed once through the real engine
   (`services.sync_pending(entity="all")`, one worker, in a child process). Measured with 10,000 customers on 2
   CPUs: the engine's push of the 40,001 records took 579 s (69 records/s, slowing as Zoho fills: 123/s at 1,000
   records, 91/s at 8,000) and the whole setup 735 s; the seed 94 s and the whole setup 277 s. Both give the same
   reconciliation (no difference in step, the same calls, the same drift found), so the seed is the default.
2. `reconcile(specs=SPECS)` on the in-step data, in a child process (so its peak RSS is its own, not the
   sandbox's): records per entity (here, in Zoho, matched), differences (must be 0), API calls (the report's
   count and the sandbox's log), calls per 10,000 records (records: the local records of every entity), wall
   time (and the sandbox's share of it), peak RSS (VmHWM; see peak_rss_kb for why not getrusage's).
3. Known drift: 1% of the customers' emails edited in Zoho's web app (`edit_record`: conflicts), 1% of Zoho's
   term invoices paid in Zoho by a payment created through the API (each: the invoice's status and balance, and
   a payment missing here), 0.5% of the customers' phones changed here without a push (fields changed here).
   The report must name exactly those, at the same cost (one call per 200 records Zoho lists: the payments made
   in Zoho may add a page). Then `reconcile(repair=True)` (its calls, by the report and by the sandbox, and its
   time), and a last reconcile must find only the conflicts (left for a person by default).
Target: at most 60 API calls per 10,000 records. Exit 0 when the target and every check pass, else 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import scale_data  # noqa: E402

TARGET_PER_10K = 60
CHUNK = 2000
ONE_OFF_PRICE = Decimal("25.00")
PLAN_PRICE = Decimal("10.00")
UNTHROTTLED = 10_000_000


def mb(kilobytes: float) -> str:
    return f"{kilobytes / 1024:,.0f} MB"


def peak_rss_kb() -> int:
    """This process's peak RSS. On Linux, VmHWM: getrusage's ru_maxrss of a process started by a large one
    carries the parent's peak over (exec records the old, shared address space's high-water mark), so in a
    child of this bench (which holds the sandbox) it says the parent's size, not the child's."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def bench_env(url: str, sandbox) -> dict[str, str]:
    """Django against the scratch database, the Zoho client against the sandbox with every limit off."""
    config = sandbox.config
    return {
        **scale_data.django_env(url), "DEBUG": "false", "SECRET_KEY": "bench-reconcile-scale-not-a-secret",
        "ZOHO_API_BASE_URL": sandbox.base_url, "ZOHO_ACCOUNTS_URL": sandbox.accounts_url,
        "ZOHO_CLIENT_ID": config.client_id, "ZOHO_CLIENT_SECRET": config.client_secret,
        "ZOHO_REFRESH_TOKEN": config.refresh_token, "ZOHO_ORGANIZATION_ID": config.organization_id,
        "ZOHO_RATE_LIMIT_PER_MINUTE": str(UNTHROTTLED), "ZOHO_RATE_HEADROOM": "0", "ZOHO_BULK_SHARE": "1.0",
        "ZOHO_DAILY_LIMIT": "1000000000", "ZOHO_DAILY_RESERVE": "0", "REDIS_URL": "",
        "SYNC_TRIGGERS_ENABLED": "false", "LOG_LEVEL": "ERROR",
    }


# --- child processes: the engine's push, and each reconciliation (own process: own peak RSS) -------------------
def child(mode: str) -> None:
    import django

    django.setup()
    started = time.perf_counter()
    if mode == "backfill":
        from zoho_sync import services

        report = services.sync_pending(entity="all", workers=1)
        out = {"calls": report.calls, "scope": _jsonable(report.scope), "stopped": report.stopped}
    else:
        from zoho_sync.entities import SPECS
        from zoho_sync.reconcile import reconcile

        report = reconcile(specs=SPECS, repair=mode == "repair")
        out = {"report": report.as_dict()}
    out.update(wall=time.perf_counter() - started, hwm_kb=peak_rss_kb(),
               maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print("BENCH-JSON " + json.dumps(out, default=str))


def _jsonable(value):
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


def run_child(mode: str) -> tuple[dict, float, float]:
    """(its JSON, wall seconds of the whole process, peak RSS of the process in kB)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", mode], capture_output=True, text=True)
    wall = time.perf_counter() - started
    line = next((x for x in reversed(proc.stdout.splitlines()) if x.startswith("BENCH-JSON ")), None)
    if proc.returncode or line is None:
        raise SystemExit(f"child {mode} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    data = json.loads(line[len("BENCH-JSON "):])
    return data, wall, data["hwm_kb"]


# --- the sandbox's side ----------------------------------------------------------------------------------------
def api_calls(sandbox) -> int:
    """API calls the sandbox has answered so far (OAuth token calls are not API calls)."""
    return sum(n for key, n in sandbox.counters()["by_endpoint"].items() if "/oauth/" not in key)


def api_entries_since(sandbox, seq: int) -> list[dict]:
    return [e for e in sandbox.requests(since=seq) if e.get("api_path")]


def last_seq(sandbox) -> int:
    entries = sandbox.requests()
    return entries[-1]["seq"] if entries else 0


# --- setup -----------------------------------------------------------------------------------------------------
def build_local(n: int) -> None:
    """The local rows, pending as after data entry (bulk_create: no signals, nothing queued)."""
    from datetime import timedelta

    from django.utils import timezone

    from zoho_sync.models import Customer, CustomerService, Invoice, InvoiceLine, Payment, ServicePackage

    now = timezone.now()
    today = timezone.localdate()
    package = ServicePackage.objects.create(name="Reconcile plan", plan_code="RECON-1", price=PLAN_PRICE,
                                            interval=1, interval_unit="months", description="Bench plan")
    for start in range(1, n + 1, CHUNK):
        numbers = range(start, min(n, start + CHUNK - 1) + 1)
        customers = Customer.objects.bulk_create([
            Customer(account_number=f"CT-R-{i:07d}", first_name=f"Reco{i}", last_name="Scale",
                     email=f"reco{i}@example.com", phone=f"+1-555-{i:07d}", account_type="individual",
                     currency_code="USD") for i in numbers])
        CustomerService.objects.bulk_create([
            CustomerService(customer=c, package=package, status="active", quantity=1, activated_at=now)
            for c in customers])
        invoices = Invoice.objects.bulk_create([
            Invoice(invoice_number=f"INV-R-{i:07d}", customer=c, kind="manual", origin="local", status="paid",
                    issued_on=today - timedelta(days=10), due_on=today + timedelta(days=4), currency_code="USD",
                    subtotal=ONE_OFF_PRICE, tax_total=Decimal("0.00"), total=ONE_OFF_PRICE)
            for i, c in zip(numbers, customers, strict=True)])
        InvoiceLine.objects.bulk_create([
            InvoiceLine(invoice=inv, position=1, description="Installation visit", quantity=Decimal("1.00"),
                        unit_price=ONE_OFF_PRICE, amount=ONE_OFF_PRICE) for inv in invoices])
        Payment.objects.bulk_create([
            Payment(reference=f"PAY-R-{i:07d}", customer=c, invoice=inv, amount=ONE_OFF_PRICE, currency_code="USD",
                    method="banktransfer", status="completed", paid_at=now - timedelta(days=2))
            for i, c, inv in zip(numbers, customers, invoices, strict=True)])


def setup_engine(sandbox) -> dict:
    """Push everything once through the real engine (a child process: sync_pending(entity="all"), one worker)."""
    before = api_calls(sandbox)
    data, wall, _rss = run_child("backfill")
    if data.get("stopped"):
        raise SystemExit(f"the engine's run stopped: {data['stopped']}")
    return {"push_seconds": wall, "push_calls": api_calls(sandbox) - before, "engine_calls": data.get("calls"),
            "scope": {name: {state: n for state, n in counts.items() if n}
                      for name, counts in (data.get("scope") or {}).items()}}


def setup_seed(sandbox) -> dict:
    """Seed the sandbox with the bodies the engine would send and mark the local rows as a push leaves them."""
    from django.utils import timezone

    from zoho_sync.entities import CUSTOMER, CUSTOMER_SERVICE, INVOICE, PAYMENT
    from zoho_sync.models import Customer, CustomerService, Invoice, Payment, ServicePackage
    from zoho_sync.sync import payloads

    started = time.perf_counter()
    today = timezone.localdate()
    package = ServicePackage.objects.get()
    product = sandbox.seed("products", [payloads.product_to_zoho(package)])[0]
    package.zoho_product_id = str(product["product_id"])
    plan = sandbox.seed("plans", [payloads.plan_to_zoho(package, product_id=package.zoho_product_id)])[0]
    ServicePackage.objects.filter(pk=package.pk).update(zoho_product_id=package.zoho_product_id,
                                                        zoho_id=str(plan["plan_code"]))
    one_off = sandbox.seed("products", [{"name": payloads.ONE_OFF_PRODUCT, "description": "One-off charges billed "
                                         "on invoices (installations, equipment, visits)."}])[0]["product_id"]

    def seed_entity(spec, model, resource_name: str, body) -> None:
        last = 0
        while chunk := list(spec.prepare(model.objects.filter(pk__gt=last, zoho_id__isnull=True).order_by("pk"))
                            [:CHUNK]):
            last = chunk[-1].pk
            records = sandbox.seed(resource_name, [body(obj) for obj in chunk])
            for obj, rec in zip(chunk, records, strict=True):
                obj.zoho_id = str(rec[spec.id_field])
            model.objects.bulk_update(chunk, ["zoho_id"])

    seed_entity(CUSTOMER, Customer, "customers", lambda c: CUSTOMER.payload(c, today=today))
    seed_entity(CUSTOMER_SERVICE, CustomerService, "subscriptions", lambda s: CUSTOMER_SERVICE.payload(s, today=today))

    def invoice_body(invoice) -> dict:
        body = payloads.invoice_to_zoho(invoice, today=today, one_off_product_id=str(one_off))
        for item in body["invoice_items"]:  # as remote._invoice_body fills the lines' products
            item["product_id"] = item.get("product_id") or str(one_off)
        return body

    seed_entity(INVOICE, Invoice, "invoices", invoice_body)
    seed_entity(PAYMENT, Payment, "payments", lambda p: PAYMENT.payload(p, today=today))
    mark_synced()
    return {"push_seconds": time.perf_counter() - started, "push_calls": 0}


def mark_synced() -> None:
    """sync_status 'synced', last_synced_at and the fingerprint the engine stores after a push, per record."""
    from django.utils import timezone

    from zoho_sync.entities import SPECS
    from zoho_sync.sync.engine import fingerprint_of

    now = timezone.now()
    for spec in SPECS:
        last = 0
        while chunk := list(spec.prepare(spec.model.objects.filter(pk__gt=last, zoho_id__isnull=False)
                                         .order_by("pk"))[:CHUNK]):
            last = chunk[-1].pk
            for obj in chunk:
                obj.sync_fingerprint = fingerprint_of(spec.fingerprint(obj))
                obj.sync_status, obj.last_synced_at, obj.create_intent_at = "synced", now, None
            spec.model.objects.bulk_update(chunk, ["sync_fingerprint", "sync_status", "last_synced_at",
                                                   "create_intent_at"])


def mirror_zoho_invoices(sandbox) -> tuple[int, float]:
    """Zoho's own invoices (each subscription's first term) mirrored here by the app's pull step, as the
    invoice_created webhooks would have them (the records read from the sandbox's store: no HTTP)."""
    from zoho_sync.entities import INVOICE
    from zoho_sync.models import Invoice
    from zoho_sync.sandbox.resources import invoices as sandbox_invoices
    from zoho_sync.sync.pull import pull

    started = time.perf_counter()
    known = set(Invoice.objects.filter(zoho_id__isnull=False).values_list("zoho_id", flat=True))
    with sandbox.store.lock:
        theirs = [sandbox_invoices.detail(sandbox.store, r) for r in sandbox.store.all("invoices")
                  if r["invoice_id"] not in known]
    outcomes: dict[str, int] = {}
    for remote in theirs:
        action = pull(INVOICE, remote, note="bench setup: Zoho's invoice_created").action
        outcomes[action] = outcomes.get(action, 0) + 1
    if set(outcomes) - {"created"}:
        print(f"  mirroring Zoho's invoices: {outcomes}")
    return len(theirs), time.perf_counter() - started


def app_version() -> str:
    """The commit the app code is at (other people change it meanwhile), and whether files differ from it."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"commit {head[:100]}" + (f"; changed since: {', '.join(changed[:8])}" if changed else "")


def vacuum_analyze(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def sync_states() -> dict[str, dict[str, int]]:
    from django.db.models import Count

    from zoho_sync.entities import SPECS

    return {spec.name: dict(spec.model.objects.values_list("sync_status").annotate(n=Count("pk")).order_by())
            for spec in SPECS}


# --- drift ------------------------------------------------------------------------------------------------------
def introduce_drift(sandbox) -> set[tuple[str, str, str, str]]:
    """Known drift; returns what a report must say: (entity, kind, Zoho id, field)."""
    import requests
    from django.utils import timezone

    from zoho_sync.models import Customer, Invoice

    expected: set[tuple[str, str, str, str]] = set()
    customers = list(Customer.objects.order_by("pk").values_list("pk", "zoho_id"))
    # 1%: an email edited in Zoho's web app (the record is in step here: a conflict).
    for index, (_pk, zoho_id) in enumerate(customers):
        if index % 100 == 7:
            sandbox.edit_record("customers", zoho_id, {"email": f"changed.in.zoho.{index}@example.org"})
            expected.add(("customer", "conflict", zoho_id, "email"))
    # 0.5%: a phone changed here and not pushed (save(): pending, version bumped; triggers are off).
    changed_here = [pk for index, (pk, _z) in enumerate(customers) if index % 200 == 51]
    for customer in Customer.objects.filter(pk__in=changed_here):
        customer.phone = f"+1-555-9{customer.pk:06d}"
        customer.save()
        expected.add(("customer", "field", customer.zoho_id, "phone"))
    # 1% of Zoho's own (term) invoices paid in Zoho, by a payment created through the API.
    term = list(Invoice.objects.filter(origin="zoho").order_by("pk").values_list("zoho_id", "customer__zoho_id",
                                                                                   "balance_due"))
    headers = sandbox.headers()
    today = timezone.now().date().isoformat()
    paid = 0
    for index, (zoho_id, customer_id, balance) in enumerate(term):
        if index % 100 != 13:
            continue
        body = {"customer_id": customer_id, "payment_mode": "cash", "amount": float(balance), "date": today,
                "reference_number": f"ZP-{index:07d}",
                "invoices": [{"invoice_id": zoho_id, "amount_applied": float(balance)}]}
        answer = requests.post(f"{sandbox.base_url}/payments", json=body, headers=headers, timeout=30)
        answer.raise_for_status()
        paid += 1
        expected.add(("invoice", "status", zoho_id, "status"))
        expected.add(("invoice", "amount", zoho_id, "balance_due"))
        expected.add(("payment", "missing_locally", str(answer.json()["payment"]["payment_id"]), ""))
    print(f"drift introduced: {sum(1 for e in expected if e[3] == 'email'):,} customer emails edited in Zoho, "
          f"{len(changed_here):,} customer phones changed here (not pushed), {paid:,} Zoho invoices paid in Zoho")
    return expected


def found(report: dict) -> set[tuple[str, str, str, str]]:
    return {(name, d["kind"], str(d.get("zoho_id", "")), d.get("field", ""))
            for name, e in report["entities"].items() for d in e["drift"]}


def list_pages(report: dict) -> int:
    """The calls a comparison by listing needs: a page of 200 per entity, at least one."""
    return sum(max(1, math.ceil(e["zoho"] / 200)) for e in report["entities"].values())


@dataclass
class Run:
    """One child run of reconcile(): its report, times, memory, and what the sandbox saw meanwhile."""

    data: dict
    wall: float  # the child process, start to exit
    rss_kb: int  # the child's peak RSS (VmHWM)
    calls_logged: int  # API calls the sandbox answered meanwhile
    zoho_seconds: float  # the sandbox's own time answering them
    by_endpoint: dict[str, int]

    @property
    def report(self) -> dict:
        return self.data["report"]


def measure(sandbox, mode: str) -> Run:
    seq, before = last_seq(sandbox), api_calls(sandbox)
    data, wall, rss = run_child(mode)
    logged = api_calls(sandbox) - before
    entries = api_entries_since(sandbox, seq)  # the log keeps the last 10,000 requests: enough for one run
    by_endpoint: dict[str, int] = {}
    for entry in entries:
        key = f"{entry['method']} {entry.get('route') or entry['api_path']}"
        by_endpoint[key] = by_endpoint.get(key, 0) + 1
    return Run(data, wall, rss, logged, sum(e.get("duration") or 0 for e in entries), by_endpoint)


def show_report(title: str, run: Run, *, limit: int = 5) -> None:
    report = run.report
    print(f"\n{title}")
    print(f"  {'entity':<18}{'here':>9}{'in Zoho':>9}{'matched':>9}  differences")
    for name, e in report["entities"].items():
        counts = ", ".join(f"{k} {n}" for k, n in sorted(e["counts"].items())) or "-"
        print(f"  {name:<18}{e['local']:>9,}{e['zoho']:>9,}{e['matched']:>9,}  {counts}")
    print(f"  differences: {report['drift']:,}; API calls: {report['api_calls']:,} (report), {run.calls_logged:,} "
          f"(sandbox log)")
    print(f"  reconcile() {run.data['wall']:.2f} s (the sandbox answering: {run.zoho_seconds:.2f} s; the child "
          f"process {run.wall:.2f} s); peak RSS {mb(run.rss_kb)} (VmHWM; getrusage's ru_maxrss says "
          f"{mb(run.data['maxrss_kb'])}: this bench's own peak, carried over into its child)")
    for name, d in [(name, d) for name, e in report["entities"].items() for d in e["drift"]][:limit]:
        print(f"    {name}: {d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--setup", choices=("engine", "seed"), default="seed")
    parser.add_argument("--pg", default=scale_data.DEFAULT_PG, help="PostgreSQL server URL (no database)")
    parser.add_argument("--keep-db", default="", metavar="NAME", help="create (it must not exist or be empty) "
                        "and keep this database")
    parser.add_argument("--child", choices=("backfill", "reconcile", "repair"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)

    from zoho_sync.sandbox import ZohoSandbox

    db = args.keep_db or f"zoho_bench_reconcile_{os.getpid()}"
    scale_data.create_database(args.pg, db)
    url = f"{args.pg}/{db}"
    sandbox = ZohoSandbox(per_minute=0, daily=0).start()
    os.environ.update(bench_env(url, sandbox))
    ok = True
    try:
        started = time.perf_counter()
        scale_data.migrate(url)
        import django

        django.setup()
        from zoho_sync.models import Customer

        if Customer.objects.exists():
            raise SystemExit(f"database {db} already holds customers; the sandbox starts empty on every run, so "
                             "name a new database (or drop this one)")
        n = args.customers
        print(f"app: {app_version()}")
        print(f"setup ({args.setup}): {n:,} customers, each with an active service, a one-off invoice (one line) "
              f"and its payment; sandbox {sandbox.base_url} (limits off), database {db}")
        t = time.perf_counter()
        build_local(n)
        built = time.perf_counter() - t
        print(f"  local rows bulk-created in {built:.1f} s")
        setup = setup_engine(sandbox) if args.setup == "engine" else setup_seed(sandbox)
        how = ("pushed through the engine (sync_pending, 1 worker)" if args.setup == "engine" else
               "seeded into the sandbox and marked synced")
        print(f"  {how} in {setup['push_seconds']:.1f} s, {setup['push_calls']:,} API calls"
              + (f" (the engine counted {setup['engine_calls']:,}); states after it: {setup['scope']}"
                 if args.setup == "engine" else ""))
        mirrored, mirror_seconds = mirror_zoho_invoices(sandbox)
        print(f"  Zoho's own invoices (first terms) mirrored here by the pull step: {mirrored:,} in "
              f"{mirror_seconds:.1f} s")
        t = time.perf_counter()
        vacuum_analyze(url)
        print(f"  VACUUM ANALYZE in {time.perf_counter() - t:.1f} s (what autovacuum does soon after a bulk load: "
              "without fresh statistics the planner's choices make reconcile()'s payment pages ~12x slower)")
        states = sync_states()
        print(f"  sync states here: {states}")
        print(f"  sandbox holds: { {k: v for k, v in sandbox.state()['counts'].items() if v} }")
        setup_seconds = time.perf_counter() - started
        print(f"setup took {setup_seconds:.1f} s in all (migrate, build, push or seed, mirror); this process's "
              f"peak RSS so far {mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)} (sandbox included)")
        in_step = all(set(s) <= {"synced"} for s in states.values())
        if not in_step:
            print("  CHECK FAILED: not every record is synced after the setup")
            ok = False

        # 2. The in-step reconciliation.
        clean = measure(sandbox, "reconcile")
        show_report("reconcile(specs=SPECS) on the in-step data", clean)
        records = sum(e["local"] for e in clean.report["entities"].values())
        calls = clean.report["api_calls"]
        per_10k = calls / records * 10_000 if records else float("inf")
        print(f"  records here (every entity, with a Zoho id): {records:,}; calls per 10,000 records: "
              f"{per_10k:.1f} (report) / {clean.calls_logged / max(records, 1) * 10_000:.1f} (sandbox log)")
        if clean.report["drift"]:
            print("  CHECK FAILED: differences found on in-step data (the first ones are listed above)")
            ok = False
        if calls != clean.calls_logged:
            print(f"  CHECK FAILED: the report counts {calls:,} calls, the sandbox answered {clean.calls_logged:,}")
            ok = False

        # 3. Known drift, found exactly, at the same cost.
        print()
        expected = introduce_drift(sandbox)
        drifted = measure(sandbox, "reconcile")
        show_report("reconcile(specs=SPECS) after the drift", drifted, limit=0)
        got = found(drifted.report)
        missed, extra = expected - got, got - expected
        print(f"  expected {len(expected):,} differences, found {len(got):,}: {len(expected & got):,} as expected, "
              f"{len(missed):,} missed, {len(extra):,} unexpected")
        for item in sorted(missed)[:5]:
            print(f"    missed: {item}")
        for item in sorted(extra)[:5]:
            print(f"    unexpected: {item}")
        if missed or extra or len(got) != drifted.report["drift"]:
            print("  CHECK FAILED: the report does not name exactly the drift introduced")
            ok = False
        # The cost must not depend on the differences: one call per 200 records Zoho lists, per entity (Zoho
        # now lists the payments made there too, which may take one more page).
        pages, pages_clean = list_pages(drifted.report), list_pages(clean.report)
        print(f"  API calls: {drifted.report['api_calls']:,} with the drift, {calls:,} in step; one per 200 records "
              f"Zoho lists: {pages:,} and {pages_clean:,}")
        if drifted.report["api_calls"] != pages or drifted.calls_logged != pages or calls != pages_clean:
            print("  CHECK FAILED: the calls are not one per 200 records Zoho lists")
            ok = False

        repaired = measure(sandbox, "repair")
        show_report("reconcile(specs=SPECS, repair=True)", repaired, limit=0)
        outcomes: dict[str, int] = {}
        for e in repaired.report["entities"].values():
            for d in e["drift"]:
                what = f" ({d['field']})" if d.get("field") and d["field"] != d["kind"] else ""
                key = f"{d['entity']} {d['kind']}{what}: {d.get('repaired', '(nothing done)')}"
                outcomes[key] = outcomes.get(key, 0) + 1
        for key, count in sorted(outcomes.items()):
            print(f"    {count:>6,} {key}")
        print(f"  repair's calls by endpoint (the comparison's list pages included): {repaired.by_endpoint}")
        if repaired.report["api_calls"] != repaired.calls_logged:
            print(f"  CHECK FAILED: the report counts {repaired.report['api_calls']:,} calls, the sandbox answered "
                  f"{repaired.calls_logged:,}")
            ok = False

        final = measure(sandbox, "reconcile")
        show_report("reconcile(specs=SPECS) after the repair", final, limit=3)
        conflicts = {item for item in expected if item[1] == "conflict"}
        left = found(final.report)
        if left != conflicts:
            print(f"  CHECK FAILED: after the repair {len(left):,} differences are left; only the {len(conflicts):,} "
                  f"conflicts should be ({len(left - conflicts):,} others, {len(conflicts - left):,} conflicts gone)")
            for item in sorted(left - conflicts)[:5]:
                print(f"    left: {item}")
            ok = False
        else:
            print(f"  only the {len(conflicts):,} conflicts are left, for a person")

        print(f"\nsetup {setup_seconds:.0f} s; reconcile of {records:,} records: {calls:,} API calls, "
              f"{clean.data['wall']:.1f} s, peak RSS {mb(clean.rss_kb)}; repair: {repaired.calls_logged:,} calls "
              f"({repaired.report['api_calls']:,} by its report), {repaired.data['wall']:.1f} s")
        verdict = "PASS" if per_10k <= TARGET_PER_10K else "FAIL"
        print(f"target: at most {TARGET_PER_10K} API calls per 10,000 records: {verdict} ({per_10k:.1f})")
        print(f"checks (in step, drift found exactly at the same cost, calls counted right, clean after repair): "
              f"{'PASS' if ok else 'FAIL'}")
        exit_code = 0 if verdict == "PASS" and ok else 1
    finally:
        sandbox.stop()
        if not args.keep_db:
            from django.db import connections

            connections.close_all()
            scale_data.drop_database(args.pg, db)
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
