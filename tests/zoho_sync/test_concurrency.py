"""Exactly once under concurrent edits and workers, made to happen rather than hoped for.

The sandbox holds a write in flight (`hold_next`) while the test saves the record and lets a second worker (a
trigger task, "Push now", a backfill) at it; then lets the write go on. Afterwards, on SQLite and PostgreSQL alike:
at most one Zoho object per local record, and every record marked synced equals Zoho's copy, field by field,
against what its payload would send now.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from tests.builders import make_credit_note, make_customer, make_invoice, make_package, make_payment, make_service
from zoho_sync import inbox, services
from zoho_sync.conf import get_zoho_settings
from zoho_sync.models import (
    CreditNote,
    Customer,
    CustomerService,
    Invoice,
    Payment,
    SyncLog,
    SyncState,
    SyncStatus,
    ZohoEvent,
)
from zoho_sync.sync import specs
from zoho_sync.sync.payloads import ONE_OFF_PRODUCT
from zoho_sync.zoho import client_build

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def zoho(zoho_settings, zoho_sandbox):
    zoho_settings.SYNC_TRIGGERS_ENABLED = False
    zoho_settings.SYNC_RETRY_WINDOW_SECONDS = 0
    zoho_settings.SYNC_OUTCOME_RECHECK_SECONDS = 0
    zoho_sandbox.configure(per_minute=0, daily=0, check_duplicate_display_name=False)
    return zoho_sandbox


class Worker(threading.Thread):
    """Runs one service call in its own thread (and database connection), keeping its result or error."""

    def __init__(self, call, **kwargs):
        super().__init__(daemon=True)
        self.call, self.kwargs, self.result, self.error = call, kwargs, None, None
        self.start()

    def run(self):
        try:
            self.result = self.call(**self.kwargs)
        except BaseException as exc:  # reported by finish()
            self.error = exc
        finally:
            connection.close()

    def finish(self):
        self.join(timeout=30)
        assert not self.is_alive(), "the worker did not finish"
        if self.error:
            raise self.error
        return self.result


def zoho_record(sandbox, resource: str, id_key: str, zoho_id: str) -> dict:
    (record,) = [r for r in sandbox.records(resource) if str(r[id_key]) == zoho_id]
    return record


def assert_customer_in_step(sandbox, pk: int) -> None:
    customer = Customer.objects.get(pk=pk)
    remote = [r for r in sandbox.records("customers") if r["display_name"].endswith(f"({customer.account_number})")]
    assert len(remote) == 1, f"{len(remote)} Zoho customers for one local customer"
    assert customer.sync_status == SyncStatus.SYNCED and customer.zoho_id == remote[0]["customer_id"]
    sent = specs.CUSTOMER.payload(customer, today=timezone.localdate())
    for key in ("display_name", "first_name", "last_name", "email", "phone"):
        assert (remote[0].get(key) or "") == (sent.get(key) or ""), f"Zoho's {key} is stale"


def test_a_save_during_a_create_never_lets_a_second_worker_create_again(zoho):
    customer = make_customer(phone="+1-555-000-0001")
    hold = zoho.hold_next("POST", "/customers", when="before")
    first = Worker(services.sync_object, entity="customer", pk=customer.pk)
    assert hold.wait_arrived(), "the first worker's create never reached Zoho"

    edited = Customer.objects.get(pk=customer.pk)
    edited.phone = "+1-555-000-0002"
    edited.save()  # the record is pending again, but still held by the first worker
    assert services.sync_object(entity="customer", pk=customer.pk) is None, "a trigger pushed a held record"
    report = services.sync_pending()  # a backfill passes it by too
    assert report.done == 0 and zoho.requests("POST", "/customers") == [], "only the held create was sent"

    hold.release()
    assert first.finish().action == SyncLog.Action.CREATE
    customer.refresh_from_db()
    assert customer.zoho_id and customer.sync_status == SyncStatus.PENDING, "changed meanwhile: still due"
    services.sync_pending()
    assert_customer_in_step(zoho, customer.pk)
    assert [r["method"] for r in zoho.requests(path="/customers")] == ["POST", "PUT"]


def test_a_save_during_a_subscription_create_costs_no_second_subscription(zoho):
    service = make_service()
    services.sync_object(entity="customer", pk=service.customer_id)
    services.sync_object(entity="service_package", pk=service.package_id)
    hold = zoho.hold_next("POST", "/subscriptions", when="before")
    first = Worker(services.sync_object, entity="customer_service", pk=service.pk)
    assert hold.wait_arrived()
    edited = CustomerService.objects.get(pk=service.pk)
    edited.quantity = 3
    edited.save()
    second = Worker(services.sync_object, entity="customer_service", pk=service.pk)  # "Push now"
    assert second.finish() is None
    hold.release()
    first.finish()
    services.sync_pending()

    (subscription,) = zoho.records("subscriptions")
    service.refresh_from_db()
    assert service.sync_status == SyncStatus.SYNCED and service.zoho_id == subscription["subscription_id"]
    assert subscription["plan"]["quantity"] == 3, "Zoho bills the quantity held here"


def test_a_save_during_a_payment_create_never_records_the_money_twice(zoho):
    invoice = make_invoice(lines=((Decimal("1"), Decimal("12.34")),))
    payment = make_payment(invoice=invoice, amount=Decimal("12.34"))
    services.sync_object(entity="invoice", pk=invoice.pk)
    hold = zoho.hold_next("POST", "/payments", when="before")
    first = Worker(services.sync_object, entity="payment", pk=payment.pk)
    assert hold.wait_arrived()
    edited = Payment.objects.get(pk=payment.pk)
    edited.notes = "Paid at the counter"
    edited.save()
    assert services.sync_object(entity="payment", pk=payment.pk) is None
    services.sync_pending()
    hold.release()
    first.finish()
    services.sync_pending()

    assert len(zoho.records("payments")) == 1, "two Zoho payments for one local payment"
    payment.refresh_from_db()
    assert payment.zoho_id == zoho.records("payments")[0]["payment_id"]
    # The note changed while the create was in flight: the next push updates Zoho's payment (PUT /payments/{id},
    # issue 18 item 9; it used to fail as "needs a person"), and the money is recorded once, applied once.
    assert payment.sync_state == SyncState.SYNCED, payment.last_sync_error
    invoice.refresh_from_db()
    (record,) = zoho.records("payments")
    assert record["description"] == "Paid at the counter"
    assert [(e["invoice_id"], e["amount_applied"]) for e in record["invoices"]] == [(invoice.zoho_id, 12.34)]
    assert [r["method"] for r in zoho.requests(path="/payments") if r["method"] != "GET"] == ["POST", "PUT"]


def test_a_lost_answer_then_an_edit_links_and_brings_zoho_up_to_date(zoho, zoho_settings):
    zoho_settings.SYNC_OUTCOME_RECHECK_SECONDS = 3600  # the edit comes before the lookup
    customer = make_customer(phone="+1-555-000-0001")
    zoho.fail_next("POST", "/customers", kind="lose_response")
    services.sync_pending()
    customer.refresh_from_db()
    assert customer.sync_state == SyncState.RETRYING and customer.create_intent_at

    customer.phone, customer.email = "+1-555-000-0009", "moved@example.com"
    customer.save()
    services.sync_pending()
    assert_customer_in_step(zoho, customer.pk)
    link = SyncLog.objects.filter(entity="customer", action="link").get()
    assert "brought up to date" in link.message
    assert len(zoho.requests("POST", "/customers")) == 1 and len(zoho.requests("PUT", "/customers")) == 1


def test_a_lost_answer_without_an_edit_links_with_no_further_write(zoho):
    customer = make_customer()
    zoho.fail_next("POST", "/customers", kind="lose_response")
    services.sync_pending(retry_window=0)
    services.sync_pending()
    assert_customer_in_step(zoho, customer.pk)
    assert zoho.requests("PUT", "/customers") == [], "Zoho already held exactly this data"


def test_two_workers_updating_one_record_land_in_order_and_the_last_state_wins(zoho):
    customer = make_customer(phone="+1-555-000-0001")
    services.sync_pending()
    edited = Customer.objects.get(pk=customer.pk)
    edited.phone = "+1-555-000-0002"
    edited.save()
    hold = zoho.hold_next("PUT", "/customers/{id}", when="before")
    first = Worker(services.sync_object, entity="customer", pk=customer.pk)
    assert hold.wait_arrived()
    edited = Customer.objects.get(pk=customer.pk)
    edited.phone = "+1-555-000-0003"
    edited.save()
    second = Worker(services.sync_object, entity="customer", pk=customer.pk)
    assert second.finish() is None, "updates of one record are serialized"
    hold.release()
    first.finish()
    assert Customer.objects.get(pk=customer.pk).sync_status == SyncStatus.PENDING
    services.sync_pending()
    assert_customer_in_step(zoho, customer.pk)
    assert zoho.records("customers")[0]["phone"] == "+1-555-000-0003"


def test_a_stalled_worker_whose_lease_ran_out_sends_nothing_stale(zoho):
    """Worker A's create lands in Zoho but its answer is held; its lease runs out; the record is edited and worker
    B takes it over (finding A's create by lookup). A's late answer changes nothing but the id."""
    customer = make_customer(phone="+1-555-000-0001")
    hold = zoho.hold_next("POST", "/customers", when="after")
    first = Worker(services.sync_object, entity="customer", pk=customer.pk)
    assert hold.wait_arrived()
    Customer.objects.filter(pk=customer.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    edited = Customer.objects.get(pk=customer.pk)
    edited.phone = "+1-555-000-0002"
    edited.save()
    taken_over = services.sync_object(entity="customer", pk=customer.pk)
    assert taken_over.action == SyncLog.Action.LINK and "brought up to date" in taken_over.message
    hold.release()
    first.finish()
    assert_customer_in_step(zoho, customer.pk)
    assert len(zoho.requests("POST", "/customers")) == 1


def test_a_record_waiting_for_a_dependency_is_never_pushed_in_a_loop(zoho, zoho_settings):
    """At SYNC_MAX_ATTEMPTS a waiting record used to be left due for ever: one backfill wrote thousands of log rows.
    A wait is not an attempt of its own, and it is not due again until its time or its dependency lands."""
    zoho_settings.SYNC_RETRY_WINDOW_SECONDS = 2
    customer = make_customer()
    invoice = make_invoice(customer=customer)
    services.sync_pending(entity="customers")
    Customer.objects.filter(pk=customer.pk).update(zoho_id=None, sync_status=SyncStatus.FAILED,
                                                   next_retry_at=timezone.now() + timedelta(hours=1),
                                                   last_sync_error="HTTP 500")
    from zoho_sync.models import Invoice

    Invoice.objects.filter(pk=invoice.pk).update(sync_attempts=7)
    services.sync_pending()
    invoice.refresh_from_db()
    assert invoice.sync_state == SyncState.WAITING and invoice.next_retry_at > timezone.now()
    assert invoice.sync_attempts == 7, "waiting is not counted as an attempt of the invoice"
    assert SyncLog.objects.filter(entity="invoice").count() == 1


# --- a product list cached by one process while another creates the product ---------------------------------------
def other_process_client():
    """A second process's client: its own cache of Zoho's reference lists (products, plans)."""
    return client_build(get_zoho_settings())


def read_products(client) -> None:
    client.get_reference("/products", params={"per_page": 200})  # as its earlier package pushes did


def test_a_stale_product_list_never_makes_a_second_one_off_product(zoho):
    """Found by bench/concurrency.py: a backfill cached Zoho's product list while pushing packages; a trigger task
    then created the one-off product for an invoice; 17 s later the backfill pushed an invoice with a one-off line
    and, trusting its cached list, created a second "One-off charges" product."""
    backfill = other_process_client()
    read_products(backfill)
    first, second = make_invoice(), make_invoice()
    services.sync_object(entity="invoice", pk=first.pk)  # the trigger task creates the one-off product
    outcome = services.sync_object(entity="invoice", pk=second.pk, client=backfill)

    assert outcome.state == SyncState.SYNCED
    assert [p["name"] for p in zoho.records("products")] == [ONE_OFF_PRODUCT], "a second one-off product"


def test_a_package_retried_in_another_process_after_a_lost_product_answer_gets_no_second_product(zoho):
    """The product create lands but its answer is lost, so the package never learns the product's id; the retry
    runs in another process whose product list was cached before that create."""
    package = make_package()
    backfill = other_process_client()
    read_products(backfill)
    zoho.fail_next("POST", "/products", kind="lose_response")
    assert services.sync_object(entity="service_package", pk=package.pk).state == SyncState.RETRYING
    outcome = services.sync_object(entity="service_package", pk=package.pk, client=backfill)

    assert outcome.state == SyncState.SYNCED
    assert [p["name"] for p in zoho.records("products")] == [package.name], "a second product for one package"


def test_two_processes_needing_the_one_off_product_at_once_create_it_once(zoho):
    """Both read the product list before either create landed: the second waits on the shared lease, then finds
    the product the first created."""
    from zoho_sync.sync.payloads import ONE_OFF_PRODUCT

    first_invoice, second_invoice = make_invoice(), make_invoice()
    for invoice in (first_invoice, second_invoice):
        services.sync_object(entity="customer", pk=invoice.customer_id)
    hold = zoho.hold_next("POST", "/products", when="before")
    first = Worker(services.sync_object, entity="invoice", pk=first_invoice.pk)
    assert hold.wait_arrived()
    second = Worker(services.sync_object, entity="invoice", pk=second_invoice.pk, client=other_process_client())
    second.join(timeout=1.0)
    assert second.is_alive(), "the second process did not wait for the first one's product"
    hold.release()
    assert first.finish().state == SyncState.SYNCED and second.finish().state == SyncState.SYNCED
    assert [p["name"] for p in zoho.records("products")] == [ONE_OFF_PRODUCT]
    assert len(zoho.requests("POST", "/products")) == 1


def test_a_save_during_a_refund_never_refunds_twice(zoho):
    """The sixth entity under the same race: a refund's create held in flight while the record is edited and a
    second worker tries it; one refund in Zoho, the money given back once."""
    payment = make_payment(amount=Decimal("30.00"))
    note = make_credit_note(kind=CreditNote.Kind.REFUND, payment=payment, amount=Decimal("12.00"))
    services.sync_pending(entity="payments")
    hold = zoho.hold_next("POST", "/payments/*/refunds", when="before")
    first = Worker(services.sync_object, entity="credit_note", pk=note.pk)
    assert hold.wait_arrived(), "the refund never reached Zoho"
    edited = CreditNote.objects.get(pk=note.pk)
    edited.reason = "Goodwill, agreed by phone"
    edited.save()
    assert services.sync_object(entity="credit_note", pk=note.pk) is None, "a trigger pushed a held record"
    services.sync_pending()
    hold.release()
    first.finish()
    services.sync_pending()

    (refund,) = zoho.records("refunds")
    note.refresh_from_db()
    assert note.sync_state == SyncState.SYNCED and note.zoho_id == refund["creditnote_id"], note.last_sync_error
    (held,) = zoho.records("payments")
    assert held["amount_refunded"] == 12.0
    assert len(zoho.requests("POST", "/payments/*/refunds")) == 1


def test_a_save_during_a_credit_note_create_applies_the_credit_once(zoho):
    invoice = make_invoice(lines=((Decimal("1"), Decimal("40.00")),))
    note = make_credit_note(invoice=invoice, amount=Decimal("15.00"))
    for entity in ("customers", "service_packages", "invoices"):
        services.sync_pending(entity=entity)
    hold = zoho.hold_next("POST", "/creditnotes", when="after")  # written in Zoho, the answer held
    first = Worker(services.sync_object, entity="credit_note", pk=note.pk)
    assert hold.wait_arrived()
    edited = CreditNote.objects.get(pk=note.pk)
    edited.reason = "Outage, 3 days"
    edited.save()
    second = Worker(services.sync_object, entity="credit_note", pk=note.pk)  # "Push now"
    assert second.finish() is None
    hold.release()
    first.finish()
    services.sync_pending()

    (credit,) = zoho.records("creditnotes")
    note.refresh_from_db()
    assert note.sync_state == SyncState.SYNCED and note.zoho_id == credit["creditnote_id"], note.last_sync_error
    (held,) = [i for i in zoho.records("invoices") if i["invoice_id"] == Invoice.objects.get(pk=invoice.pk).zoho_id]
    assert (held["balance"], credit["balance"]) == (25.0, 0.0), "the credit was applied exactly once"


def test_a_refund_event_arriving_before_our_create_answers_is_not_kept_twice(zoho):
    """Zoho made our refund and sent payment_refunded; the inbox applies it while our create's answer is still
    on its way: the refund's credit note is ours in flight, never mirrored as a second record."""
    payment = make_payment(amount=Decimal("20.00"))
    note = make_credit_note(kind=CreditNote.Kind.REFUND, payment=payment, amount=Decimal("5.00"))
    for entity in ("customers", "payments"):
        services.sync_pending(entity=entity)
    payment.refresh_from_db()
    hold = zoho.hold_next("POST", "/payments/*/refunds", when="after")  # refunded in Zoho, the answer held
    first = Worker(services.sync_object, entity="credit_note", pk=note.pk)
    assert hold.wait_arrived()
    (held,) = [p for p in zoho.records("payments") if p["payment_id"] == payment.zoho_id]
    event, _ = inbox.event_accept({"event_id": "904", "event_type": "payment_refunded",
                                   "event_time": held["updated_time"], "data": {"payment": held}},
                                  source=ZohoEvent.Source.REPLAY)
    inbox.event_apply(event.pk)
    assert list(CreditNote.objects.values_list("pk", flat=True)) == [note.pk], "one refund, one record"
    hold.release()
    first.finish()
    note.refresh_from_db()
    assert note.sync_status == SyncStatus.SYNCED and note.zoho_id == zoho.records("refunds")[0]["creditnote_id"]
