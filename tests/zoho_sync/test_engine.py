"""The sync engine through the real client and the sandbox: each entity, updates, cancellation, ordering, bad
input, exactly-once repair, billing semantics, the daily quota, the dry run and the sync log."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.builders import make_customer, make_invoice, make_package, make_payment, make_service
from zoho_sync import services
from zoho_sync.client import codes
from zoho_sync.models import (
    CreditNote,
    Customer,
    CustomerService,
    Invoice,
    Payment,
    ServicePackage,
    SyncLog,
    SyncStatus,
)
from zoho_sync.sync import payloads, specs
from zoho_sync.sync.engine import fingerprint_of
from zoho_sync.sync.plan import plan_backfill
from zoho_sync.zoho import get_zoho_client

pytestmark = pytest.mark.django_db


def backfill(**kwargs):
    return services.sync_pending(**kwargs)


def writes(sandbox, path=None):
    return [r for r in sandbox.requests(path=path) if r["method"] in ("POST", "PUT") and "oauth" not in r["path"]]


@pytest.fixture
def book():
    """A customer with a plan, an active service billed here up to the end of last month, a manual invoice
    paid in part, and a prepayment with no invoice."""
    customer = make_customer(first_name="Ava", last_name="Smith", account_number="CT-2025-00002")
    package = make_package(name="Fiber 100", plan_code="FIBER-100", price=Decimal("39.00"))
    service = make_service(customer=customer, package=package, activated_at=timezone.now() - timedelta(days=90))
    today = timezone.localdate()
    period_end = today + timedelta(days=9)
    period = make_invoice(customer=customer, service=service, kind=Invoice.Kind.SUBSCRIPTION_PERIOD,
                          period_start=period_end - timedelta(days=29), period_end=period_end,
                          lines=((Decimal("1"), Decimal("39.00")),))
    period_payment = make_payment(invoice=period, amount=Decimal("39.00"))
    manual = make_invoice(customer=customer, lines=((Decimal("1"), Decimal("99.00")), (Decimal("2"), Decimal("12.50"))))
    paid = make_payment(invoice=manual, amount=Decimal("100.00"))
    prepay = make_payment(customer=customer, amount=Decimal("20.00"))
    return locals()


class TestEntities:
    def test_every_entity_reaches_zoho_once_in_dependency_order(self, zoho, book):
        report = backfill()
        assert report.failed == 0 and not report.stopped
        for obj in (book["customer"], book["package"], book["service"], book["manual"], book["paid"],
                    book["prepay"]):
            obj.refresh_from_db()
            assert obj.sync_status == SyncStatus.SYNCED and obj.zoho_id, obj
        created = [r["path"].removeprefix("/billing/v1") for r in writes(zoho)]
        assert created == ["/customers", "/products", "/plans", "/subscriptions", "/products", "/invoices",
                           "/payments", "/payments"], ("dependencies first: customer and plan, then subscription and "
                                                       "invoice (its lines' one-off product first)")
        assert [len(zoho.records(r)) for r in ("customers", "plans", "products", "subscriptions", "payments")] == \
               [1, 1, 2, 1, 2], "one product for the plan, one for one-off invoice lines"
        customer = zoho.records("customers")[0]
        assert customer["display_name"] == "Ava Smith (CT-2025-00002)" and customer["email"] == book["customer"].email

    def test_subscription_continues_the_local_billing_cycle(self, zoho, book):
        backfill()
        subscription = zoho.records("subscriptions")[0]
        expected_start = (book["period"].period_end + timedelta(days=1)).isoformat()
        assert subscription["reference_id"] == f"CS-{book['service'].pk}"
        assert subscription["status"] == "future" and subscription["next_billing_at"] == expected_start
        invoices = zoho.records("invoices")
        assert [i["invoice_number"] for i in invoices] == [book["manual"].invoice_number], \
            "no period billed here is billed again by Zoho, and the period invoice itself is not pushed"
        log = SyncLog.objects.get(entity="customer_service", action="create")
        assert f"Zoho bills it next on {expected_start}" in log.message

    def test_period_invoice_and_its_payment_are_skipped_with_the_reason(self, zoho, book):
        backfill()
        book["period"].refresh_from_db()
        book["period_payment"].refresh_from_db()
        assert book["period"].sync_status == SyncStatus.SKIPPED and not book["period"].zoho_id
        assert "Zoho bills subscription periods itself" in book["period"].last_sync_error
        assert book["period_payment"].sync_status == SyncStatus.SKIPPED
        skipped = SyncLog.objects.get(entity="invoice", object_pk=str(book["period"].pk))
        assert skipped.status == SyncLog.Status.SKIPPED and "bill the customer twice" in skipped.message

    def test_payments_are_applied_without_over_applying(self, zoho, book):
        backfill()
        payments = {p["reference_number"]: p for p in zoho.records("payments")}
        manual_zoho = next(i for i in zoho.records("invoices") if i["invoice_number"] == book["manual"].invoice_number)
        assert payments[book["paid"].reference]["invoices"][0]["amount_applied"] == 100.0
        prepay = payments[book["prepay"].reference]
        assert prepay["invoices"][0]["invoice_id"] == manual_zoho["invoice_id"], "oldest open invoice first"
        assert prepay["invoices"][0]["amount_applied"] == 20.0
        assert float(manual_zoho["balance"]) == 124.0 - 100.0 - 20.0

    def test_prepayment_with_no_open_invoice_stays_as_credit(self, zoho):
        payment = make_payment(amount=Decimal("50.00"))
        backfill()
        payment.refresh_from_db()
        assert payment.sync_status == SyncStatus.SYNCED
        zoho_payment = zoho.records("payments")[0]
        assert zoho_payment["invoices"] == [] and float(zoho.records("customers")[0]["unused_credits"]) == 50.0
        assert "stays with the customer as credit" in SyncLog.objects.get(entity="payment").message

    def test_internal_test_accounts_are_excluded(self, zoho):
        tester = make_customer(account_type=Customer.AccountType.INTERNAL_TEST)
        make_service(customer=tester)
        backfill()
        assert zoho.records("customers") == [] and zoho.records("subscriptions") == []
        tester.refresh_from_db()
        assert tester.sync_status == SyncStatus.SKIPPED and "excluded" in tester.last_sync_error


class TestChanges:
    def test_changed_record_is_updated_and_unchanged_costs_nothing(self, zoho, book):
        backfill()
        before = len(zoho.requests())
        customer = Customer.objects.get(pk=book["customer"].pk)
        customer.save()  # saved without a change: pending, but the payload is the same
        backfill()
        assert len(zoho.requests()) == before, "an unchanged record costs no call"
        customer.phone = "+1-555-123-4567"
        customer.save()
        backfill()
        assert [r["method"] for r in zoho.requests()[before:]] == ["PUT"]
        assert zoho.records("customers")[0]["phone"] == "+1-555-123-4567"

    def test_cancelled_service_cancels_its_subscription(self, zoho, book):
        backfill()
        service = CustomerService.objects.get(pk=book["service"].pk)
        service.status, service.cancelled_at = CustomerService.Status.CANCELLED, timezone.now()
        service.save()
        backfill()
        assert zoho.records("subscriptions")[0]["status"] == "cancelled"
        assert SyncLog.objects.filter(entity="customer_service", action="cancel", status="success").count() == 1

    def test_second_run_makes_no_call_at_all(self, zoho, book):
        backfill()
        before = len(zoho.requests())
        report = backfill()
        assert report.calls == 0 and len(zoho.requests()) == before


class TestFailures:
    def test_bad_input_fails_clearly_and_the_run_goes_on(self, zoho):
        bad = make_customer(email="ava.example.com")
        nameless = make_customer(first_name="", last_name="", company_name="")
        good = make_customer()
        report = backfill()
        for obj, words in ((bad, "Email address 'ava.example.com' is not valid."), (nameless, "display name")):
            obj.refresh_from_db()
            assert obj.sync_status == SyncStatus.FAILED and words in obj.last_sync_error
            assert obj.last_error_kind == "invalid_data" and obj.next_retry_at is None
        good.refresh_from_db()
        assert good.sync_status == SyncStatus.SYNCED and report.failed == 2
        assert len(zoho.requests("POST", "/customers")) == 1, "nothing Zoho would refuse was sent"

    def test_zoho_validation_error_is_recorded_and_not_retried(self, zoho):
        customer = make_customer()
        zoho.fail_next("POST", "/customers", status=400, code=codes.INVALID_VALUE)
        backfill()
        customer.refresh_from_db()
        assert customer.sync_status == SyncStatus.FAILED and customer.last_error_kind == "validation"
        assert customer.next_retry_at is None and "Invalid value" in customer.last_sync_error
        log = SyncLog.objects.get(entity="customer")
        assert (log.http_status, log.zoho_code, log.error_type) == (400, 2, "ZohoValidationError")
        services.sync_retry_failed()
        customer.refresh_from_db()
        assert customer.sync_status == SyncStatus.FAILED, "validation failures wait for a person"
        services.sync_retry_failed(include_validation=True)
        customer.refresh_from_db()
        assert customer.sync_status == SyncStatus.SYNCED

    def test_server_error_gets_a_retry_time_and_retry_failed_fixes_it(self, zoho):
        customer = make_customer()
        zoho.fail_next("POST", "/customers", status=500, code=codes.INTERNAL_ERROR)
        backfill()
        customer.refresh_from_db()
        assert customer.sync_status == SyncStatus.FAILED and customer.last_error_kind == "server"
        assert customer.next_retry_at > timezone.now()
        report = services.sync_retry_failed()
        customer.refresh_from_db()
        assert customer.sync_status == SyncStatus.SYNCED and report.failed == 0
        assert len(zoho.records("customers")) == 1

    def test_dependents_wait_for_a_failed_customer_and_follow_it(self, zoho):
        customer = make_customer(email="broken")
        invoice = make_invoice(customer=customer)
        backfill()
        invoice.refresh_from_db()
        assert invoice.sync_status == SyncStatus.BLOCKED and invoice.last_error_kind == "dependency"
        assert invoice.next_retry_at is None and invoice.sync_attempts == 0, "a wait is not an attempt of its own"
        assert f"Blocked until a person fixes its customer {customer.account_number}" in invoice.last_sync_error
        assert "not valid" in invoice.last_sync_error
        services.sync_retry_failed()
        assert SyncLog.objects.filter(entity="invoice").count() == 1, "a blocked dependent is not retried"
        customer.email = "fixed@example.com"
        customer.save()
        services.sync_object(entity="invoice", pk=invoice.pk)
        invoice.refresh_from_db()
        assert invoice.sync_status == SyncStatus.SYNCED, "the trigger path pushes the customer first"
        assert len(zoho.records("invoices")) == 1

    def test_failing_since_is_kept_through_retries_and_cleared_by_a_success(self, zoho):
        customer = make_customer()
        zoho.fail_next("POST", "/customers", status=500, code=codes.INTERNAL_ERROR, times=2)
        backfill()
        first = Customer.objects.get(pk=customer.pk).failing_since
        assert first is not None
        Customer.objects.filter(pk=customer.pk).update(next_retry_at=timezone.now())
        backfill()
        again = Customer.objects.get(pk=customer.pk)
        assert again.sync_attempts == 2 and again.failing_since == first, "the first failure's time is kept"
        services.sync_retry_failed()
        done = Customer.objects.get(pk=customer.pk)
        assert done.sync_status == SyncStatus.SYNCED and done.failing_since is None

    def test_a_dependent_woken_by_its_dependency_landing_is_pushed_in_the_same_run(self, zoho, zoho_settings):
        """A backfill wakes the dependents of the records it pushed once per batch, not once per record."""
        zoho_settings.SYNC_RETRY_WINDOW_SECONDS = 5
        zoho_settings.SYNC_RETRY_BASE_SECONDS = 0.5  # the customer is tried again after its dependents
        customer = make_customer()
        invoice = make_invoice(customer=customer)
        zoho.fail_next("POST", "/customers", status=500, code=codes.INTERNAL_ERROR)
        report = backfill()
        invoice.refresh_from_db()
        assert invoice.sync_status == SyncStatus.SYNCED and report.entities["invoice"].last == {invoice.pk: "created"}
        assert list(SyncLog.objects.filter(entity="invoice").order_by("id").values_list("status", flat=True)) == [
            "waiting", "success"]

    def test_a_backfill_wakes_records_whose_dependency_landed_without_waking_them(self, zoho):
        """A process that dies between a dependency's push and its batch's end leaves the dependents blocked or
        waiting while the dependency is in Zoho: the next backfill wakes and pushes them."""
        customer = make_customer(email="broken")
        invoice = make_invoice(customer=customer)
        backfill()
        customer.email = "fixed@example.com"
        customer.save()
        landed = get_zoho_client().post("/customers", json=payloads.customer_to_zoho(customer))["customer"]
        Customer.objects.filter(pk=customer.pk).update(zoho_id=landed["customer_id"], sync_status=SyncStatus.SYNCED)
        assert Invoice.objects.get(pk=invoice.pk).sync_status == SyncStatus.BLOCKED
        plan = plan_backfill(specs=specs.SPECS)
        assert [e.create for e in plan.entities if e.name == "invoice"] == [1], "the dry run says so too"
        backfill()
        invoice.refresh_from_db()
        assert invoice.sync_status == SyncStatus.SYNCED and len(zoho.records("invoices")) == 1

    def test_a_sync_log_that_cannot_be_written_stops_the_run_and_loses_nothing(self, zoho, monkeypatch):
        customer = make_customer()

        def broken_save(self, *args, **kwargs):
            raise RuntimeError("disk full")

        with monkeypatch.context() as patch:
            patch.setattr(SyncLog, "save", broken_save)
            with pytest.raises(RuntimeError, match="disk full"):
                backfill()
        customer.refresh_from_db()
        assert customer.sync_status != SyncStatus.SYNCED and customer.create_intent_at, "the failure shows"
        backfill()
        customer.refresh_from_db()
        assert customer.sync_status == SyncStatus.SYNCED and len(zoho.records("customers")) == 1


class TestExactlyOnce:
    def test_lost_response_is_repaired_by_lookup_not_by_a_second_create(self, zoho):
        zoho.configure(check_duplicate_display_name=False)
        customer = make_customer()
        zoho.fail_next("POST", "/customers", kind="lose_response")
        backfill()  # the lost answer is due for a lookup at once here (SYNC_OUTCOME_RECHECK_SECONDS=0)
        customer.refresh_from_db()
        outcomes = list(SyncLog.objects.filter(entity="customer").order_by("pk").values_list("action", "status"))
        assert outcomes == [("create", "failed"), ("link", "success")]
        assert customer.sync_status == SyncStatus.SYNCED
        assert len(zoho.records("customers")) == 1 and len(zoho.requests("POST", "/customers")) == 1
        assert SyncLog.objects.filter(entity="customer", action="link").exists()

    def test_crash_after_zoho_answered_is_repaired_on_the_next_run(self, zoho):
        zoho.configure(check_duplicate_display_name=False)
        invoice = make_invoice()
        backfill(entity="customers")
        client = get_zoho_client()
        invoice.refresh_from_db()
        # What a killed worker leaves: the intent and what it sent committed, Zoho holding the invoice, no local id.
        loaded = specs.INVOICE.prepare(Invoice.objects.filter(pk=invoice.pk)).get()
        Invoice.objects.filter(pk=invoice.pk).update(create_intent_at=timezone.now(),
                                                     sync_fingerprint=fingerprint_of(specs.INVOICE.fingerprint(loaded)))
        product = client.post("/products", json={"name": payloads.ONE_OFF_PRODUCT})["product"]
        client.post("/invoices", params={"ignore_auto_number_generation": "true"},
                    json=specs.INVOICE.to_zoho(loaded, one_off_product_id=product["product_id"]))
        services.sync_object(entity="invoice", pk=invoice.pk)
        invoice.refresh_from_db()
        assert invoice.sync_status == SyncStatus.SYNCED and len(zoho.records("invoices")) == 1
        assert zoho.requests("PUT", "/invoices") == [], "Zoho holds what the intent says was sent: no update"

    def test_backfill_links_records_zoho_already_has(self, zoho):
        customer = make_customer(first_name="Bo", last_name="Berg", account_number="CT-2020-00007")
        zoho.seed("customers", [{"display_name": "Bo Berg (CT-2020-00007)", "email": customer.email}])
        backfill()
        customer.refresh_from_db()
        assert customer.zoho_id == zoho.records("customers")[0]["customer_id"]
        assert zoho.requests("POST", "/customers") == []

    def test_duplicate_answer_is_adopted_when_clearly_the_same(self, zoho):
        customer = make_customer(first_name="Cy", last_name="Kim", account_number="CT-2021-00001")
        zoho.seed("customers", [{"display_name": "Cy Kim (CT-2021-00001)", "email": customer.email}])
        services.sync_object(entity="customer", pk=customer.pk)  # no index on the trigger path: Zoho says dup
        customer.refresh_from_db()
        assert customer.sync_status == SyncStatus.SYNCED and len(zoho.records("customers")) == 1

    def test_two_claimers_never_hold_the_same_record(self):
        from zoho_sync.sync.claims import claim

        for _ in range(10):
            make_customer()
        first = claim(Customer.objects.all(), claimer="a", limit=6)
        second = claim(Customer.objects.all(), claimer="b", limit=6)
        assert len(first) == 6 and len(second) == 4 and not set(first) & set(second)


class TestQuotaAndPlan:
    def test_daily_quota_stops_the_backfill_cleanly(self, zoho, zoho_settings):
        zoho_settings.ZOHO_DAILY_LIMIT, zoho_settings.ZOHO_DAILY_RESERVE = 6, 2
        for _ in range(8):
            make_customer()
        report = backfill()
        assert "Stopped:" in report.stopped and "kept for live triggers" in report.stopped
        assert "can go on after" in report.stopped
        assert Customer.objects.filter(sync_status=SyncStatus.SYNCING).count() == 0, "claims were given back"
        synced = Customer.objects.filter(sync_status=SyncStatus.SYNCED).count()
        assert synced == 3 and Customer.objects.filter(sync_status=SyncStatus.PENDING).count() == 5

    def test_dry_run_says_what_would_be_sent_and_sends_nothing(self, zoho, book, zoho_settings):
        zoho_settings.ZOHO_DAILY_LIMIT, zoho_settings.ZOHO_DAILY_RESERVE = 4, 1
        text = plan_backfill(specs=specs.SPECS).as_text()
        assert zoho.requests() == []
        assert "customer: create 1" in text and "customer_service: create 1" in text
        assert f"Zoho will invoice CS-{book['service'].pk} next on" in text
        assert "Zoho bills subscription periods itself" in text
        assert '"display_name": "Ava Smith (CT-2025-00002)"' in text
        assert "Estimated API calls:" in text
        assert re.search(r"spreads it over [2-9] days", text), "the estimate is in days when the quota says so"


def test_engine_request_bodies_fit_zohos_documents(zoho, book, openapi_docs_or_skip):
    backfill()
    for request in writes(zoho):
        path = request["path"].removeprefix("/billing/v1")
        openapi_docs_or_skip.assert_request(request["method"], path, request["json"])


@pytest.fixture
def openapi_docs_or_skip():
    from tests.openapi_support import load_docs, require_spec_dir
    from tests.sandbox.openapi_deviations import DEVIATIONS

    return load_docs(str(require_spec_dir()), DEVIATIONS)


def test_models_without_specs_are_not_synced():
    assert {spec.model for spec in specs.SPECS} == {Customer, ServicePackage, CustomerService, Invoice, Payment,
                                                    CreditNote}


def test_quota_stopped_backfill_task_schedules_its_continuation(zoho, zoho_settings):
    from django_q.models import Schedule

    from zoho_sync.tasks import CONTINUE_SCHEDULE
    from zoho_sync.tasks import backfill as backfill_task

    zoho_settings.ZOHO_DAILY_LIMIT, zoho_settings.ZOHO_DAILY_RESERVE = 3, 1
    for _ in range(4):
        make_customer()
    assert "Stopped:" in backfill_task("customers")
    schedule = Schedule.objects.get(name=CONTINUE_SCHEDULE)
    tomorrow = (timezone.now() + timedelta(days=1)).date()
    assert schedule.func == "zoho_sync.tasks.backfill" and schedule.schedule_type == Schedule.ONCE
    assert schedule.next_run.date() == tomorrow and schedule.next_run.time().hour == 0


# --- a backfill beside live triggers -------------------------------------------------------------------------------
def beat_cluster(seconds_ago: float = 0) -> None:
    from monitoring.heartbeat import KEY
    from zoho_sync.models import SharedState

    at = timezone.now() - timedelta(seconds=seconds_ago)
    SharedState.objects.update_or_create(key=KEY, defaults={"data": at.isoformat()})


def test_a_backfill_leaves_a_record_to_its_queued_trigger_while_a_cluster_runs(zoho):
    waiting_for_trigger, plain = make_customer(), make_customer()
    Customer.objects.filter(pk=waiting_for_trigger.pk).update(push_queued_at=timezone.now())
    beat_cluster()
    dry_run = plan_backfill(specs=specs.specs_for("customers")).as_text()
    assert "1 of them have their triggered push queued: the running cluster sends those first" in dry_run

    report = backfill(entity="customers")
    assert report.done == 1
    assert Customer.objects.get(pk=plain.pk).sync_status == SyncStatus.SYNCED
    left = Customer.objects.get(pk=waiting_for_trigger.pk)
    assert left.sync_status == SyncStatus.PENDING and not left.claimed_by  # its trigger pushes it, ahead of us
    assert [r["display_name"] for r in zoho.records("customers")] == [payloads.customer_to_zoho(plain)["display_name"]]


@pytest.mark.parametrize("why", ["no cluster beats", "the trigger is overdue"])
def test_a_backfill_pushes_a_triggered_record_no_cluster_will_push(zoho, why):
    customer = make_customer()
    queued_at = timezone.now() - (timedelta(minutes=5) if why == "the trigger is overdue" else timedelta(0))
    Customer.objects.filter(pk=customer.pk).update(push_queued_at=queued_at)
    if why == "the trigger is overdue":
        beat_cluster()
    else:
        beat_cluster(seconds_ago=3600)

    assert "triggered push queued" not in plan_backfill(specs=specs.specs_for("customers")).as_text()
    assert backfill(entity="customers").done == 1
    assert Customer.objects.get(pk=customer.pk).sync_status == SyncStatus.SYNCED


def test_a_batch_holds_a_few_seconds_of_work_at_the_pace_the_run_goes():
    from zoho_sync.sync.backfill import BATCH_SECONDS, MAX_BATCH, next_batch_size

    assert next_batch_size(100, 0.0, 0.001) == 200  # unthrottled: grows as before
    assert next_batch_size(800, 0.0, 0.001) == MAX_BATCH
    assert next_batch_size(100, 0.0, 0.001, most=200) == 200
    # At the rate budget's pace (a backfill worker's turn every 3.3 s), a batch is three records, not hundreds:
    # a person's edit of a claimed record waits at most about BATCH_SECONDS for its push.
    assert next_batch_size(100, 0.0, 3.3) == int(BATCH_SECONDS / 3.3) == 3
    assert next_batch_size(100, 0.0, 30.0) == 1
    assert next_batch_size(100, 0.5, 0.001) == 50  # failures still halve it
