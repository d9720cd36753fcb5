"""Crash tests: backfills killed at random moments, and a Zoho that loses answers, fails and throttles, still leave
exactly one Zoho object per local record, and every record that should reach Zoho synced.

Each test seeds demo data, starts a sandbox on the system clock with the duplicate-name check off (a second create
would really be stored, and counted here), then runs `manage.py zoho_backfill` in a subprocess and SIGKILLs it at
seeded random moments, at least KILLS times, before letting it run to the end. The subprocesses use
tests/zoho_sync/subprocess_settings.py so retries fall due in seconds.
"""

from __future__ import annotations

import io
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.builders import make_customer, make_package
from tests.zoho_sync.test_triggers import ROOT, process_env
from zoho_sync import services
from zoho_sync.models import CreditNote, Customer, CustomerService, Invoice, Payment, ServicePackage, SyncStatus
from zoho_sync.sandbox import ZohoSandbox
from zoho_sync.sync import payloads
from zoho_sync.sync.engine import validate_for_push
from zoho_sync.sync.errors import InvalidLocalData
from zoho_sync.sync.specs import BY_NAME, SPECS

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CUSTOMERS = 100  # with their services, invoices and payments: about 280 calls to Zoho in all
DEMO_SEED = 2
KILLS = 20
KILL_AFTER = (0.05, 0.8)  # seconds after the run's first call to Zoho
CRASH_ENV = {
    "LOG_LEVEL": "WARNING",
    "SYNC_OUTCOME_RECHECK_SECONDS": "0.5",
    "SYNC_RETRY_WINDOW_SECONDS": "5",
    "ZOHO_LOCKOUT_SECONDS": "1",
    "ZOHO_RETRY_DEADLINE": "60",
}


# --- what should be in Zoho ------------------------------------------------------------------------------------
@dataclass
class Expected:
    """Per entity: the pks that must reach Zoho, and why each of the others must not."""

    synced: dict[str, set[int]]
    skipped: dict[str, set[int]]
    invalid: dict[str, set[int]]
    waiting: dict[str, set[int]]  # a dependency never reaches Zoho


def expected_outcome() -> Expected:
    """Decided from the local data alone, before any push, with the specs' own rules."""
    today = timezone.localdate()
    result = Expected({}, {}, {}, {})
    for spec in SPECS:
        for bucket in (result.synced, result.skipped, result.invalid, result.waiting):
            bucket[spec.name] = set()
        for obj in spec.prepare(spec.model.objects.all()):
            if spec.skip_reason(obj):
                result.skipped[spec.name].add(obj.pk)
                continue
            if any(getattr(obj, f"{attr}_id") is not None and getattr(obj, f"{attr}_id") not in result.synced[dep]
                   for attr, dep in spec.depends_on):
                result.waiting[spec.name].add(obj.pk)
                continue
            try:
                validate_for_push(obj)
                spec.fingerprint(obj)
                spec.payload(obj, today=today)
            except InvalidLocalData:
                result.invalid[spec.name].add(obj.pk)
                continue
            result.synced[spec.name].add(obj.pk)
    return result


def unsynced(expected: Expected) -> dict[str, set[int]]:
    left = {}
    for spec in SPECS:
        done = set(spec.model.objects.filter(sync_status=SyncStatus.SYNCED, zoho_id__isnull=False)
                   .values_list("pk", flat=True))
        if missing := expected.synced[spec.name] - done:
            left[spec.name] = missing
    return left


def assert_local_state(expected: Expected) -> None:
    left = unsynced(expected)
    where = {name: list(BY_NAME[name].model.objects.filter(pk__in=pks).values(
        "pk", "zoho_id", "sync_status", "last_error_kind", "last_sync_error", "sync_attempts", "next_retry_at",
        "create_intent_at", "claimed_by")) for name, pks in left.items()}
    assert left == {}, f"records that should be in Zoho are not synced: {where}"
    for spec in SPECS:
        rows = {r["pk"]: r for r in spec.model.objects.values("pk", "zoho_id", "sync_status", "last_error_kind")}
        assert {pk for pk, r in rows.items() if r["zoho_id"]} == expected.synced[spec.name], spec.name
        for pk in expected.skipped[spec.name]:
            assert rows[pk]["sync_status"] == SyncStatus.SKIPPED, (spec.name, rows[pk])
        for pk in expected.invalid[spec.name]:
            assert (rows[pk]["sync_status"], rows[pk]["last_error_kind"]) == ("failed", "invalid_data"), rows[pk]
        for pk in expected.waiting[spec.name]:  # its dependency needs a person: blocked until it changes
            assert (rows[pk]["sync_status"], rows[pk]["last_error_kind"]) == ("blocked", "dependency"), rows[pk]


# Zoho resource, its natural key, and the same key of a local record.
NATURAL_KEYS = (
    ("customers", "display_name", Customer, lambda c: payloads.customer_display_name(c).casefold()),
    ("plans", "plan_code", ServicePackage, lambda p: p.plan_code),
    ("subscriptions", "reference_id", CustomerService, payloads.subscription_reference),
    ("invoices", "invoice_number", Invoice, lambda i: i.invoice_number),
    ("payments", "reference_number", Payment, lambda p: p.reference),
)


def assert_one_zoho_object_per_record(sandbox: ZohoSandbox) -> None:
    for resource, key, model, local_key in NATURAL_KEYS:
        local = {local_key(obj): obj for obj in model.objects.all()}
        remote = [r for r in sandbox.records(resource) if str(r[key]).casefold() in {k.casefold() for k in local}]
        if resource != "invoices":  # Zoho also raises invoices of its own for subscriptions starting today
            assert len(remote) == len(sandbox.records(resource)), f"Zoho holds {resource} we never sent"
        counts = Counter(str(r[key]).casefold() for r in remote)
        assert {k: n for k, n in counts.items() if n > 1} == {}, f"duplicate {resource} in Zoho"
        synced = {obj.zoho_id for obj in local.values() if obj.sync_status == SyncStatus.SYNCED}
        id_key = {"customers": "customer_id", "plans": "plan_code", "subscriptions": "subscription_id",
                  "invoices": "invoice_id", "payments": "payment_id"}[resource]
        assert {str(r[id_key]) for r in remote} == synced, f"{resource}: Zoho's records and the synced rows differ"
    products = Counter(p["name"] for p in sandbox.records("products"))
    creates = [(e["json"].get("name"), e["outcome"], e["status"]) for e in sandbox.requests("POST", "/products")]
    assert {name: n for name, n in products.items() if n > 1} == {}, f"duplicate products in Zoho; creates: {creates}"
    assert set(products) - {payloads.ONE_OFF_PRODUCT} == set(
        ServicePackage.objects.filter(sync_status=SyncStatus.SYNCED).values_list("name", flat=True))


PATHS = {"customer": "/customers", "service_package": "/plans", "customer_service": "/subscriptions",
         "invoice": "/invoices", "payment": "/payments", "credit_note": "/creditnotes"}


def add_credit_notes(every: int = 4) -> None:
    """The sixth entity in the crash data: a credit on every fourth manual invoice of ours, and a partial refund
    of every fourth completed payment of ours (the demo seeds neither)."""
    package = ServicePackage.objects.order_by("pk").first()
    invoices = Invoice.objects.filter(kind=Invoice.Kind.MANUAL, origin=Invoice.Origin.LOCAL).order_by("pk")
    for n, invoice in enumerate(invoices[::every]):
        CreditNote.objects.create(number=f"CN-CRASH-{n:04d}", customer_id=invoice.customer_id, invoice=invoice,
                                  package=package, amount=min(invoice.total, Decimal("5.00")),
                                  issued_on=invoice.issued_on, reason="Crash-test credit")
    payments = Payment.objects.filter(status=Payment.Status.COMPLETED, origin=Payment.Origin.LOCAL,
                                      invoice__kind=Invoice.Kind.MANUAL).order_by("pk")
    for n, payment in enumerate(payments[::every]):
        CreditNote.objects.create(number=f"RF-CRASH-{n:04d}", kind=CreditNote.Kind.REFUND,
                                  customer_id=payment.customer_id, payment=payment,
                                  amount=min(payment.amount, Decimal("3.00")), issued_on=timezone.localdate())


def assert_one_zoho_credit_per_record(sandbox: ZohoSandbox) -> None:
    """Credit notes by our number; refunds (whose credit notes Zoho numbers) by our number in their description."""
    credits = {n.number: n for n in CreditNote.objects.filter(kind=CreditNote.Kind.CREDIT)}
    refunds = {n.number: n for n in CreditNote.objects.filter(kind=CreditNote.Kind.REFUND)}
    numbered = Counter(r["creditnote_number"] for r in sandbox.records("creditnotes") if not r.get("payment_id"))
    described = Counter(str(r["description"]).split(" ", 1)[0] for r in sandbox.records("refunds"))
    assert set(numbered) <= set(credits) and set(described) <= set(refunds), "Zoho holds credits we never sent"
    assert {k: n for k, n in (numbered + described).items() if n > 1} == {}, "a credit or refund twice in Zoho"
    synced = {n.zoho_id for n in [*credits.values(), *refunds.values()] if n.sync_status == SyncStatus.SYNCED}
    assert {r["creditnote_id"] for r in sandbox.records("creditnotes")} == synced


# --- running and killing backfills ---------------------------------------------------------------------------
@pytest.fixture
def demo_data():
    call_command("zoho_seed_demo", customers=CUSTOMERS, seed=DEMO_SEED, reset=True, stdout=io.StringIO())
    add_credit_notes()
    return expected_outcome()


def manage(env: dict, *args: str, timeout: float = 120, why: str = "") -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"manage.py {' '.join(args)} did not finish in {timeout:.0f} s{why}")


def kill_backfills(sandbox: ZohoSandbox, env: dict, rng: random.Random, *, before_run=None) -> int:
    """Start backfills and SIGKILL each at a random moment after its first call to Zoho; return the kills that
    hit a running process (at least KILLS, or the test fails)."""
    kills = 0
    for run in range(3 * KILLS):
        if kills == KILLS:
            break
        if before_run:
            before_run(run)
        calls_before = sandbox.counters()["total"]
        proc = subprocess.Popen([sys.executable, "manage.py", "zoho_backfill"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.monotonic()
        while sandbox.counters()["total"] == calls_before and proc.poll() is None and time.monotonic() - started < 30:
            time.sleep(0.005)
        time.sleep(rng.uniform(*KILL_AFTER))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)  # the killed run's call slot and claims are freed by the next run itself
    assert kills == KILLS, f"only {kills} of the backfills were still running when killed: too little work"
    return kills


def run_to_completion(env: dict, expected: Expected, rounds: int = 8) -> None:
    """Backfill until every record that should reach Zoho has; failures waiting for their retry time (a 5xx waits
    30 s and more) are sent again at once with zoho_retry_failed, as operations would."""
    for _ in range(rounds):
        for command in ("zoho_backfill", "zoho_retry_failed"):
            done = manage(env, command)
            assert done.returncode in (0, 2), f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            if not unsynced(expected):
                return


def crash_env(sandbox: ZohoSandbox) -> dict:
    return process_env(sandbox, **CRASH_ENV)


# --- the crash tests -----------------------------------------------------------------------------------------
def test_killed_backfills_push_every_record_exactly_once(crash_zoho, demo_data):
    env = crash_env(crash_zoho)
    kill_backfills(crash_zoho, env, random.Random(101))
    run_to_completion(env, demo_data)

    assert_local_state(demo_data)
    assert_one_zoho_object_per_record(crash_zoho)
    assert_one_zoho_credit_per_record(crash_zoho)
    assert sum(map(len, demo_data.synced.values())) > 250, "the demo data pushes hundreds of records"
    assert demo_data.invalid["customer"] and demo_data.skipped["customer"] and demo_data.waiting["customer_service"]
    assert len(demo_data.synced["credit_note"]) >= 10, "credits and refunds are in the crash data too"


def test_lost_answers_and_kills_still_push_every_record_exactly_once(crash_zoho, demo_data):
    crash_zoho.configure(lose_response_rate=0.05, fault_methods=("POST",))
    env = crash_env(crash_zoho)
    kill_backfills(crash_zoho, env, random.Random(202))
    run_to_completion(env, demo_data)

    assert_local_state(demo_data)
    assert_one_zoho_object_per_record(crash_zoho)
    assert_one_zoho_credit_per_record(crash_zoho)
    lost = [e for e in crash_zoho.requests("POST") if e["outcome"] == "reset"]
    assert len(lost) >= 5, "the sandbox lost some answers after applying the writes"


def test_server_errors_throttling_lost_answers_and_kills_still_push_every_record_exactly_once(crash_zoho, demo_data):
    crash_zoho.configure(error_rate=0.04, lose_response_rate=0.04)  # every method: reads are retried by the client
    rng = random.Random(303)

    def throttle(run: int) -> None:
        """Every third run: a lock-out (code 44) or too many concurrent calls (1070) on the work in progress."""
        if run % 3 == 0:
            left = unsynced(demo_data)
            entity = next((spec.name for spec in SPECS if spec.name in left), "customer")
            code = rng.choice(("RATE_LIMIT_PER_MINUTE", "TOO_MANY_CONCURRENT"))
            crash_zoho.fail_next("*", PATHS[entity], status=429, code=code)

    env = crash_env(crash_zoho)
    kill_backfills(crash_zoho, env, rng, before_run=throttle)
    throttle(0)
    run_to_completion(env, demo_data)

    assert_local_state(demo_data)
    assert_one_zoho_object_per_record(crash_zoho)
    assert_one_zoho_credit_per_record(crash_zoho)
    statuses = crash_zoho.counters()["by_status"]
    assert statuses.get("500", 0) >= 5 and statuses.get("429", 0) >= 3 and statuses.get("reset", 0) >= 5, statuses


# --- what the crash tests found, one case each ---------------------------------------------------------------
def test_a_killed_run_leaves_no_concurrency_slot_behind(crash_zoho, settings):
    """A backfill killed during a call holds its concurrency slot in the shared budget until the lease ends
    (120 s). With ZOHO_MAX_CONCURRENCY dead runs, every process then waits minutes for a call."""
    settings.SYNC_TRIGGERS_ENABLED = False
    customer = make_customer()
    crash_zoho.configure(latency=0)
    crash_zoho.fail_next("GET", "/customers", kind="latency", seconds=30)  # the index read hangs
    env = crash_env(crash_zoho) | {"ZOHO_MAX_CONCURRENCY": "1"}
    proc = subprocess.Popen([sys.executable, "manage.py", "zoho_backfill"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not any(s["in_flight"] for s in crash_zoho.limiter.stats().values()):
            assert proc.poll() is None and time.monotonic() < deadline, "the backfill never called Zoho"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    # The next backfill needs one call slot; the dead run's lease would keep it waiting for 120 s.
    done = manage(env, "zoho_backfill", timeout=20, why=": the killed run still holds the only call slot")
    assert done.returncode == 0, done.stdout + done.stderr
    assert Customer.objects.get(pk=customer.pk).sync_status == SyncStatus.SYNCED


@pytest.mark.django_db
def test_a_lost_answer_to_a_product_create_does_not_create_it_twice(zoho_settings, zoho_sandbox):
    """The retry of a package whose product create lost its answer reads the product list from the client's cache,
    taken before that create, so it creates the product again."""
    zoho_settings.SYNC_TRIGGERS_ENABLED = False
    zoho_settings.SYNC_OUTCOME_RECHECK_SECONDS = 0  # the retry falls due within the run
    package = make_package(price=Decimal("49.00"))
    zoho_sandbox.fail_next("POST", "/products", kind="lose_response")

    report = services.sync_pending(entity="plans", retry_window=5)

    package.refresh_from_db()
    assert package.sync_status == SyncStatus.SYNCED, report
    assert [p["name"] for p in zoho_sandbox.records("products")] == [package.name], "a second product was created"
    assert [p["plan_code"] for p in zoho_sandbox.records("plans")] == [package.plan_code]
