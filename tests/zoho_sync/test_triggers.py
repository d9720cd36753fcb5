"""Triggers: a save queues one debounced push once its transaction commits, never an HTTP call.

The first part checks the queue itself (django-q2's ORM broker rows) with pytest-django's
`django_capture_on_commit_callbacks`. The second starts a real `manage.py qcluster` against the test database and
a sandbox on the system clock, and checks what reaches Zoho when the queued tasks run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ, Task

from tests.builders import make_customer, make_invoice, make_payment, make_service
from zoho_sync import services, tasks
from zoho_sync.models import Customer, CustomerService, Invoice, InvoiceLine, Payment, SyncLog, SyncStatus
from zoho_sync.sandbox import ZohoSandbox
from zoho_sync.sync import specs
from zoho_sync.sync.engine import Engine
from zoho_sync.zoho import get_zoho_client

ROOT = Path(__file__).resolve().parents[2]
PUSH_TASK = "zoho_sync.tasks.push_record"


def queued_pushes(entity: str | None = None) -> list[tuple[str, int]]:
    """The pushes waiting in django-q2's queue, oldest first, as (entity, pk)."""
    pushes = []
    for row in OrmQ.objects.order_by("id"):
        assert row.task["func"] == PUSH_TASK, row.task
        pushes.append(tuple(row.task["args"]))
    return [p for p in pushes if entity is None or p[0] == entity]


def run_queued_pushes() -> list[str]:
    """Run the queued pushes here, oldest first, as a worker would, until the queue is empty."""
    results = []
    while row := OrmQ.objects.order_by("id").first():
        row.delete()
        results.append(tasks.push_record(*row.task["args"]))
    return results


# --- the queue ------------------------------------------------------------------------------------------------
@pytest.mark.django_db
class TestQueueing:
    def test_a_new_customer_is_queued_once_and_only_after_commit(self, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            customer = make_customer()
            assert queued_pushes() == [], "nothing may be queued before the transaction commits"
        assert len(callbacks) == 1
        assert queued_pushes() == [("customer", customer.pk)]
        customer.refresh_from_db()
        assert customer.push_queued_at is not None and customer.sync_status == SyncStatus.PENDING

    def test_five_saves_in_one_transaction_queue_one_push(self, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            customer = make_customer()
            for n in range(4):
                customer.phone = f"+1-555-010-{n:04d}"
                customer.save()
        assert len(callbacks) == 5
        assert queued_pushes() == [("customer", customer.pk)]

    @pytest.mark.parametrize("instance", ["reloaded", "kept"])
    def test_five_commits_inside_the_window_queue_one_push(self, django_capture_on_commit_callbacks, instance):
        """`reloaded`: each edit loads the row first, as an admin form does; `kept`: a script keeps one instance.
        Either way the queued push must be found and joined, not queued again."""
        with django_capture_on_commit_callbacks(execute=True):
            customer = make_customer()
        for n in range(4):
            if instance == "reloaded":
                customer = Customer.objects.get(pk=customer.pk)
            with django_capture_on_commit_callbacks(execute=True) as callbacks:
                customer.last_name = f"Burst{n}"
                customer.save()
            assert len(callbacks) == 1
        assert queued_pushes() == [("customer", customer.pk)], "a save wrote back a stale push_queued_at"

    def test_a_save_after_the_push_started_queues_another(self, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            customer = make_customer()
        Customer.objects.filter(pk=customer.pk).update(push_queued_at=None)  # what push_record does first
        with django_capture_on_commit_callbacks(execute=True):
            customer.phone = "+1-555-010-9999"
            customer.save()
        assert queued_pushes() == [("customer", customer.pk)] * 2

    def test_the_push_becomes_due_after_the_debounce_window_without_a_sleeping_worker(
            self, django_capture_on_commit_callbacks, settings):
        settings.SYNC_DEBOUNCE_SECONDS = 30
        before = timezone.now()
        with django_capture_on_commit_callbacks(execute=True):
            customer = make_customer()
        (row,) = OrmQ.objects.all()
        assert row.lock >= before + timedelta(seconds=30), "a worker would take it before the window ends"
        assert OrmQ.objects.filter(lock__lt=timezone.now()).count() == 0, "nothing is visible to workers yet"
        assert queued_pushes() == [("customer", customer.pk)]

    def test_a_lost_queue_entry_does_not_block_pushes_forever(self, django_capture_on_commit_callbacks, settings):
        with django_capture_on_commit_callbacks(execute=True):
            customer = make_customer()
        OrmQ.objects.all().delete()  # the queued task vanished (a broker wiped, a cluster reset)
        # Queued more than the debounce window plus the queue's retry time ago, and never run.
        lost_at = timezone.now() - timedelta(seconds=settings.Q_CLUSTER["retry"] + settings.SYNC_DEBOUNCE_SECONDS + 1)
        Customer.objects.filter(pk=customer.pk).update(push_queued_at=lost_at)
        with django_capture_on_commit_callbacks(execute=True):
            customer.phone = "+1-555-010-1234"
            customer.save()
        assert queued_pushes() == [("customer", customer.pk)]

    def test_an_activated_service_is_queued_and_a_pending_one_is_not(self, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            service = make_service(status=CustomerService.Status.PENDING, activated_at=None)
        assert queued_pushes("customer_service") == []
        with django_capture_on_commit_callbacks(execute=True):
            service.status = CustomerService.Status.ACTIVE
            service.activated_at = timezone.now()
            service.save()
        assert queued_pushes("customer_service") == [("customer_service", service.pk)]

    def test_an_issued_manual_invoice_is_queued_once(self, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            invoice = make_invoice(lines=((Decimal("1"), Decimal("99.00")), (Decimal("2"), Decimal("12.50"))))
        assert queued_pushes("invoice") == [("invoice", invoice.pk)], "the invoice and its lines: one push"

    @pytest.mark.parametrize("kind", ["subscription_period", "draft"])
    def test_an_invoice_that_is_never_pushed_is_not_queued(self, django_capture_on_commit_callbacks, kind):
        service = make_service()
        with django_capture_on_commit_callbacks(execute=True):
            if kind == "subscription_period":
                invoice = make_invoice(customer=service.customer, service=service,
                                       kind=Invoice.Kind.SUBSCRIPTION_PERIOD, period_start=date(2026, 11, 1),
                                       period_end=date(2026, 11, 30))
            else:
                invoice = make_invoice(customer=service.customer, status=Invoice.Status.DRAFT)
        assert specs.INVOICE.skip_reason(invoice) is not None
        assert queued_pushes("invoice") == [], "its lines queued a push of an invoice that is never pushed"
        invoice.refresh_from_db()
        assert invoice.push_queued_at is None

    def test_a_completed_payment_is_queued_and_a_pending_one_is_not(self, django_capture_on_commit_callbacks):
        invoice = make_invoice()
        with django_capture_on_commit_callbacks(execute=True):
            waiting = make_payment(invoice=invoice, status=Payment.Status.PENDING, paid_at=None)
        assert queued_pushes("payment") == []
        with django_capture_on_commit_callbacks(execute=True):
            paid = make_payment(invoice=invoice, amount=Decimal("20.00"))
        assert queued_pushes("payment") == [("payment", paid.pk)]
        with django_capture_on_commit_callbacks(execute=True):
            waiting.status, waiting.paid_at = Payment.Status.COMPLETED, timezone.now()
            waiting.save()
        assert queued_pushes("payment") == [("payment", paid.pk), ("payment", waiting.pk)]

    def test_an_internal_test_account_is_not_queued(self, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            make_customer(account_type=Customer.AccountType.INTERNAL_TEST)
        assert queued_pushes() == []

    def test_saves_make_no_http_call(self, django_capture_on_commit_callbacks, zoho_settings, zoho_sandbox):
        with django_capture_on_commit_callbacks(execute=True):
            service = make_service()
            invoice = make_invoice(customer=service.customer)
            make_payment(invoice=invoice, amount=Decimal("50.00"))
        assert {entity for entity, _ in queued_pushes()} == {"customer", "service_package", "customer_service",
                                                             "invoice", "payment"}
        assert zoho_sandbox.requests() == [], "a save talked to Zoho"

    def test_a_changed_line_queues_its_invoice_again(self, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            invoice = make_invoice()
        OrmQ.objects.all().delete()
        Invoice.objects.filter(pk=invoice.pk).update(sync_status=SyncStatus.SYNCED, zoho_id="903000000000777",
                                                     push_queued_at=None)
        line = invoice.lines.get()
        with django_capture_on_commit_callbacks(execute=True):
            line.unit_price = Decimal("55.00")
            line.save()
            Invoice.objects.filter(pk=invoice.pk).update(subtotal=Decimal("55.00"), total=Decimal("55.00"))
        invoice.refresh_from_db()
        assert invoice.sync_status == SyncStatus.PENDING
        assert queued_pushes() == [("invoice", invoice.pk)]

    def test_a_deleted_or_added_line_queues_its_invoice_again(self, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            invoice = make_invoice(lines=((Decimal("1"), Decimal("10.00")), (Decimal("1"), Decimal("5.00"))))
        for change in ("delete", "add"):
            OrmQ.objects.all().delete()
            Invoice.objects.filter(pk=invoice.pk).update(sync_status=SyncStatus.SYNCED, push_queued_at=None)
            with django_capture_on_commit_callbacks(execute=True):
                if change == "delete":
                    invoice.lines.order_by("position").last().delete()
                else:
                    InvoiceLine.objects.create(invoice=invoice, position=3, description="Cable",
                                               unit_price=Decimal("5.00"))
            assert Invoice.objects.get(pk=invoice.pk).sync_status == SyncStatus.PENDING, change
            assert queued_pushes() == [("invoice", invoice.pk)], change

    def test_switched_off_triggers_queue_nothing(self, django_capture_on_commit_callbacks, settings):
        settings.SYNC_TRIGGERS_ENABLED = False
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            invoice = make_invoice()
            make_payment(invoice=invoice)
        assert callbacks == [] and queued_pushes() == []


@pytest.mark.django_db
def test_a_dependent_that_lost_the_race_is_pushed_once_its_dependency_lands(
        django_capture_on_commit_callbacks, zoho_settings, zoho_sandbox):
    """Two workers: the payment's task finds its customer claimed by the customer's own task, so it records
    'waiting for a dependency' for the invoice and the payment. When the customer lands, they must be pushed
    without waiting for a backfill (there is no other task left to push them)."""
    zoho_settings.SYNC_DEBOUNCE_SECONDS = 0
    zoho_settings.SYNC_TRIGGERS_ENABLED = False
    customer = make_customer()
    invoice = make_invoice(customer=customer)
    zoho_settings.SYNC_TRIGGERS_ENABLED = True
    with django_capture_on_commit_callbacks(execute=True):
        payment = make_payment(invoice=invoice, amount=Decimal("50.00"))
    other_worker = "other-host:4242:0123456789ab"
    Customer.objects.filter(pk=customer.pk).update(sync_status=SyncStatus.SYNCING, claimed_by=other_worker,
                                                   claimed_until=timezone.now() + timedelta(minutes=15))

    run_queued_pushes()  # the payment's task, while the other worker holds the customer
    assert Payment.objects.get(pk=payment.pk).sync_status == SyncStatus.WAITING

    with django_capture_on_commit_callbacks(execute=True):  # the other worker's push of the customer lands
        held = specs.CUSTOMER.prepare(Customer.objects.filter(pk=customer.pk)).get()
        Engine(client=get_zoho_client(), run_id="other-run", claimer=other_worker,
               enqueue=lambda entity, pk: services.sync_enqueue(entity=entity, pk=pk)).push(specs.CUSTOMER, held)
    assert Customer.objects.get(pk=customer.pk).sync_status == SyncStatus.SYNCED
    run_queued_pushes()

    assert Invoice.objects.get(pk=invoice.pk).sync_status == SyncStatus.SYNCED
    assert Payment.objects.get(pk=payment.pk).sync_status == SyncStatus.SYNCED, (
        "the payment still waits for a dependency that landed; nothing queued it again")


@pytest.mark.django_db
def test_an_instance_saved_after_its_push_keeps_its_zoho_id(zoho_settings, zoho_sandbox):
    """A save must not write back the sync bookkeeping the instance held when it was loaded: here the Zoho id the
    push stored meanwhile. Lost, the next push creates a second subscription, and Zoho bills the customer twice."""
    zoho_settings.SYNC_TRIGGERS_ENABLED = False
    service = make_service()  # kept in memory, as a script or a slow admin request holds it
    assert services.sync_object(entity="customer_service", pk=service.pk).action == SyncLog.Action.CREATE
    service.quantity = 2
    service.save()
    service.refresh_from_db()
    assert service.zoho_id, "the save erased the Zoho id the push had stored"
    services.sync_object(entity="customer_service", pk=service.pk)
    assert len(zoho_sandbox.records("subscriptions")) == 1
    assert [c for c in api_calls(zoho_sandbox) if c[1].startswith("/subscriptions")] == [
        ("POST", "/subscriptions"), ("PUT", f"/subscriptions/{service.zoho_id}")]


# --- a real django-q2 cluster --------------------------------------------------------------------------------
def database_url() -> str:
    """The test database, for another process (a file for SQLite; the test_ database on PostgreSQL)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def process_env(sandbox: ZohoSandbox, **extra: str) -> dict[str, str]:
    config = sandbox.config
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "tests.zoho_sync.subprocess_settings",
        "DJANGO_ENV_FILE": "/nonexistent",
        "DEBUG": "true",
        "LOG_LEVEL": "INFO",
        "ZOHO_API_BASE_URL": sandbox.base_url,
        "ZOHO_ACCOUNTS_URL": sandbox.accounts_url,
        "ZOHO_CLIENT_ID": config.client_id,
        "ZOHO_CLIENT_SECRET": config.client_secret,
        "ZOHO_REFRESH_TOKEN": config.refresh_token,
        "ZOHO_ORGANIZATION_ID": config.organization_id,
        "ZOHO_RATE_LIMIT_PER_MINUTE": "1000000",
        "ZOHO_DAILY_LIMIT": "1000000",
        "REDIS_URL": "",
        **extra,
    }


class Cluster:
    def __init__(self, proc: subprocess.Popen, log: Path):
        self.proc, self.log = proc, log

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_for(self, what: str, condition, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := condition():
                return value
            assert self.proc.poll() is None, f"qcluster exited ({self.proc.returncode}):\n{self.output()}"
            time.sleep(0.1)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; qcluster said:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):  # whatever the cluster left behind, in its own session
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def start_cluster(transactional_db, live_sandbox, tmp_path):
    """Start `manage.py qcluster` on the test database; stopped (SIGTERM, then SIGKILL) before the database is
    flushed."""
    started: list[Cluster] = []

    def start(*, workers: int = 1, debounce: float = 1.0, **extra_env: str) -> Cluster:
        log = tmp_path / f"qcluster-{len(started)}.log"
        env = process_env(live_sandbox, Q_POLL="0.2", Q_WORKERS=str(workers), SYNC_DEBOUNCE_SECONDS=str(debounce),
                          **extra_env)
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        started.append(Cluster(proc, log))
        return started[-1]

    yield start
    for cluster in started:
        cluster.stop()


def synced(model, pk):
    return model.objects.filter(pk=pk, sync_status=SyncStatus.SYNCED).exists()


def api_calls(sandbox: ZohoSandbox, method: str | None = None) -> list[tuple[str, str]]:
    """(method, API path) of the calls the sandbox answered or dropped, oldest first (not the token endpoint)."""
    return [(e["method"], e["api_path"]) for e in sandbox.requests(method) if e.get("api_path")]


@pytest.mark.django_db(transaction=True)
class TestCluster:
    def test_a_saved_customer_reaches_zoho_once(self, start_cluster, live_sandbox):
        cluster = start_cluster()
        customer = make_customer()  # autocommit: the push is queued at once
        cluster.wait_for("the customer to be synced", lambda: synced(Customer, customer.pk))

        customer.refresh_from_db()
        remote = live_sandbox.records("customers")
        assert [r["customer_id"] for r in remote] == [customer.zoho_id]
        assert api_calls(live_sandbox, "POST") == [("POST", "/customers")]
        cluster.wait_for("the queue to drain", lambda: not OrmQ.objects.exists())

    def test_a_payment_pushes_its_customer_and_invoice_first(self, start_cluster, live_sandbox, settings):
        settings.SYNC_TRIGGERS_ENABLED = False  # only the payment's save queues a push
        customer = make_customer()
        invoice = make_invoice(customer=customer)
        settings.SYNC_TRIGGERS_ENABLED = True
        payment = make_payment(invoice=invoice, amount=invoice.total)
        assert queued_pushes() == [("payment", payment.pk)]
        cluster = start_cluster()
        cluster.wait_for("the payment to be synced", lambda: synced(Payment, payment.pk))

        assert synced(Customer, customer.pk) and synced(Invoice, invoice.pk)
        assert api_calls(live_sandbox, "POST") == [("POST", "/customers"), ("POST", "/products"),
                                                   ("POST", "/invoices"), ("POST", "/payments")]
        assert [len(live_sandbox.records(r)) for r in ("customers", "invoices", "payments")] == [1, 1, 1]
        logs = SyncLog.objects.filter(status=SyncLog.Status.SUCCESS)
        assert sorted(logs.values_list("entity", flat=True)) == ["customer", "invoice", "payment"]
        assert logs.values("run_id").distinct().count() == 1, "one task pushed all three"
        assert live_sandbox.records("payments")[0]["invoices"][0]["invoice_id"] == Invoice.objects.get(
            pk=invoice.pk).zoho_id

    def test_each_save_queues_its_push_and_zoho_gets_one_of_each(self, start_cluster, live_sandbox):
        cluster = start_cluster()
        service = make_service()
        invoice = make_invoice(customer=service.customer)
        payment = make_payment(invoice=invoice, amount=Decimal("20.00"))
        cluster.wait_for("every record to be synced", lambda: all(
            synced(model, pk) for model, pk in ((Customer, service.customer_id), (CustomerService, service.pk),
                                                (Invoice, invoice.pk), (Payment, payment.pk))))

        counts = {r: len(live_sandbox.records(r)) for r in ("customers", "plans", "subscriptions", "payments")}
        assert counts == {"customers": 1, "plans": 1, "subscriptions": 1, "payments": 1}
        numbers = [r["invoice_number"] for r in live_sandbox.records("invoices")]
        assert numbers.count(invoice.invoice_number) == 1
        assert SyncLog.objects.filter(status=SyncLog.Status.FAILED).count() == 0

    def test_a_debounced_push_never_holds_a_worker(self, start_cluster, live_sandbox):
        """One worker, a 4-second window: a task queued right after a save runs at once, and the push follows
        when its window ends (a worker sleeping out the window would have made the other task wait)."""
        from django_q.tasks import async_task

        cluster = start_cluster(workers=1, debounce=4.0)
        saved_at = time.monotonic()
        customer = make_customer()
        other = async_task("math.floor", 2.5)
        done = cluster.wait_for("the other task", lambda: Task.objects.filter(id=other).first(), timeout=20)
        assert done.success and time.monotonic() - saved_at < 3.5, "the other task waited behind the window"
        assert not synced(Customer, customer.pk), "pushed before its debounce window ended"
        cluster.wait_for("the customer to be synced", lambda: synced(Customer, customer.pk))
        assert time.monotonic() - saved_at >= 4.0

    def test_a_burst_of_edits_inside_the_debounce_window_costs_one_push(self, start_cluster, live_sandbox):
        cluster = start_cluster(debounce=2.0)
        customer = make_customer()
        for n in range(4):  # each save commits on its own, well inside the window, as admin saves do
            customer = Customer.objects.get(pk=customer.pk)
            customer.last_name = f"Burst{n}"
            customer.phone = f"+1-555-020-{n:04d}"
            customer.save()
        cluster.wait_for("the customer to be synced", lambda: synced(Customer, customer.pk))
        cluster.wait_for("the queue to drain", lambda: not OrmQ.objects.exists())

        writes = [call for call in api_calls(live_sandbox) if call[0] in ("POST", "PUT")]
        assert writes == [("POST", "/customers")], "the burst cost more than one push"
        (remote,) = live_sandbox.records("customers")
        assert remote["last_name"] == "Burst3" and remote["phone"] == "+1-555-020-0003", "the push sent the last edit"
        assert Task.objects.filter(name=f"zoho push customer {customer.pk}").count() == 1
