"""Two-way sync end to end: Zoho (the sandbox) changes things, sends signed webhooks over HTTP to the app served by a
live server, the inbox stores them, django-q2 (a real qcluster in one test) applies them, and nothing is pushed
back. A lost webhook is recovered by event replay; a renewal brings Zoho's period invoice in."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from tests.builders import make_customer, make_invoice, make_package, make_service
from zoho_sync import inbox, services
from zoho_sync.models import CreditNote, CustomerService, Invoice, Payment, SyncStatus, ZohoEvent
from zoho_sync.replay import events_replay
from zoho_sync.webhooks import webhook_signature

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "two-way-secret-123"


@pytest.fixture
def wired(settings, live_sandbox, live_server):
    """The app (live server) and Zoho (the sandbox) wired both ways: our client points at the sandbox, the sandbox's
    webhooks at the app."""
    config = live_sandbox.config
    settings.ZOHO_API_BASE_URL, settings.ZOHO_ACCOUNTS_URL = live_sandbox.base_url, live_sandbox.accounts_url
    settings.ZOHO_CLIENT_ID, settings.ZOHO_CLIENT_SECRET = config.client_id, config.client_secret
    settings.ZOHO_REFRESH_TOKEN, settings.ZOHO_ORGANIZATION_ID = config.refresh_token, config.organization_id
    settings.ZOHO_RATE_LIMIT_PER_MINUTE, settings.REDIS_URL = 1_000_000, ""
    settings.ZOHO_WEBHOOK_SECRET = SECRET
    settings.SYNC_TRIGGERS_ENABLED = False  # pushes here are the test's own
    live_sandbox.configure(webhook_url=f"{live_server.url}/zoho/webhooks/", webhook_secret=SECRET)
    return live_sandbox


def pushed_invoice() -> Invoice:
    invoice = make_invoice()
    assert services.sync_pending(entity="all").failed == 0
    return Invoice.objects.get(pk=invoice.pk)


def our_writes(sandbox, since: int) -> list[tuple[str, str]]:
    """The calls that changed something in Zoho since `since`, made by us (the API, not the sandbox's hooks)."""
    return [(r["method"], r["api_path"]) for r in sandbox.requests()[since:]
            if r.get("api_path") and r["method"] != "GET"]


def wait_for(condition, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def apply_all() -> list[str]:
    return [inbox.event_apply(pk) for pk in ZohoEvent.objects.filter(state="received").order_by("pk")
            .values_list("pk", flat=True)]


def test_a_payment_made_in_zoho_arrives_by_webhook_and_is_applied_by_the_cluster(wired, start_cluster):
    invoice = pushed_invoice()
    cluster = start_cluster()
    mark = len(wired.requests())
    payment = wired.pay_invoice(invoice.zoho_id, payment_mode="creditcard")
    event = wait_for(lambda: ZohoEvent.objects.filter(event_type="payment_thankyou").first(), "the webhook")
    assert (event.source, event.entity, event.zoho_id) == ("webhook", "payment", payment["payment_id"])
    cluster.wait_for("the event applied", lambda: ZohoEvent.objects.filter(pk=event.pk, state="applied").exists())
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance_due, invoice.sync_status) == ("paid", Decimal("0.00"), "synced")
    assert invoice.payments.get().origin == "zoho"
    time.sleep(1.5)  # time for anything queued by mistake to run
    assert our_writes(wired, mark) == []  # Zoho's change was not pushed back
    # The same delivery again (Zoho delivers at least once): acknowledged, stored once, nothing changes.
    body = json.dumps(event.payload).encode()
    again = requests.post(f"{wired.config.webhook_url}", data=body, timeout=5, headers={
        "Content-Type": "application/json", "X-Zoho-Webhook-Signature": webhook_signature(SECRET, body, {})})
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert ZohoEvent.objects.count() == len(ZohoEvent.objects.values("event_id").distinct())
    assert our_writes(wired, mark) == []


def test_a_lost_webhook_is_recovered_by_event_replay(wired):
    invoice = pushed_invoice()
    wired.drop_webhooks(1)
    wired.pay_invoice(invoice.zoho_id, amount=20)
    wired.wait_for_webhooks()
    assert not ZohoEvent.objects.filter(event_type="payment_thankyou").exists()  # it never arrived
    report = events_replay()
    assert len(report.added) >= 1
    replayed = ZohoEvent.objects.get(event_type="payment_thankyou")
    assert replayed.source == "replay"
    apply_all()
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance_due) == ("partially_paid", Decimal("30.00"))
    # Replayed again: already in the inbox, nothing changes.
    assert events_replay().added == []


def test_a_renewal_brings_zohos_period_invoice_in(wired):
    service = make_service(customer=make_customer(), package=make_package(price=Decimal("39.00")))
    assert services.sync_pending(entity="all").failed == 0
    service = CustomerService.objects.get(pk=service.pk)
    mark = len(wired.requests())
    renewed = wired.renew_subscription(service.zoho_id)
    wait_for(lambda: ZohoEvent.objects.filter(event_type="invoice_created").exists(), "the invoice event")
    wait_for(lambda: ZohoEvent.objects.filter(event_type="subscription_renewed").exists(), "the renewal event")
    apply_all()
    service.refresh_from_db()
    assert service.current_term_starts_on.isoformat() == renewed["current_term_starts_at"]
    period = Invoice.objects.get(zoho_id=renewed["child_invoice_id"])
    assert (period.kind, period.service_id, period.origin, period.sync_status) == (
        "subscription_period", service.pk, "zoho", "synced")
    assert period.total == Decimal("39.00") and period.lines.count() >= 1
    assert services.sync_pending(entity="all").calls == 0  # the mirror is never pushed
    assert our_writes(wired, mark) == []


def test_a_cancellation_in_zoho_is_mirrored_and_not_echoed(wired):
    service = make_service()
    assert services.sync_pending(entity="all").failed == 0
    service = CustomerService.objects.get(pk=service.pk)
    mark = len(wired.requests())
    wired.cancel_subscription(service.zoho_id)
    wait_for(lambda: ZohoEvent.objects.filter(event_type="subscription_cancelled").exists(), "the cancellation")
    apply_all()
    service.refresh_from_db()
    assert (service.status, service.sync_status) == ("cancelled", SyncStatus.SYNCED) and service.cancelled_at
    assert services.sync_pending(entity="all").calls == 0
    assert our_writes(wired, mark) == []


def test_declined_and_refunded_payments(wired):
    invoice = pushed_invoice()
    wired.decline_payment(invoice.zoho_id)
    paid = wired.pay_invoice(invoice.zoho_id)
    wired.refund_payment(paid["payment_id"])
    wait_for(lambda: ZohoEvent.objects.count() >= 3, "three events")
    apply_all()
    invoice.refresh_from_db()
    statuses = dict(invoice.payments.values_list("zoho_id", "status"))
    assert statuses[paid["payment_id"]] == "refunded"
    assert "failed" in statuses.values()
    assert invoice.status == "issued" and invoice.balance_due == Decimal("50.00")


def test_query_parameters_on_zohos_webhook_url_verify_only_when_named(wired, settings):
    """Zoho signs the query parameters of its webhook URL with the body (§7.3): the sandbox's deliveries, signed
    that way over real HTTP, are stored when ZOHO_WEBHOOK_QUERY_KEYS names those parameters, and refused (401,
    Zoho records a failed delivery) when it does not."""
    wired.configure(webhook_params={"subscription_id": "90343", "name": "basic"})
    settings.ZOHO_WEBHOOK_QUERY_KEYS = ["name", "subscription_id"]
    invoice = pushed_invoice()
    wired.pay_invoice(invoice.zoho_id, amount=10)
    event = wait_for(lambda: ZohoEvent.objects.filter(event_type="payment_thankyou").first(), "the webhook")
    assert event.source == "webhook"
    settings.ZOHO_WEBHOOK_QUERY_KEYS = []
    wired.pay_invoice(invoice.zoho_id, amount=10)
    assert wired.wait_for_webhooks()
    assert ZohoEvent.objects.filter(event_type="payment_thankyou").count() == 1
    refused = [e for e in wired.records("events") if e["event_type"] == "payment_thankyou"]
    assert sorted(w["status"] for e in refused for w in e["webhooks"]) == ["failure", "success"]


def test_a_credit_note_made_in_zoho_is_mirrored_with_its_invoice_and_not_echoed(wired):
    invoice = pushed_invoice()
    mark = len(wired.requests())
    made = wired.create_credit_note(invoice.customer.zoho_id, 20, invoice_id=invoice.zoho_id)
    wait_for(lambda: ZohoEvent.objects.filter(event_type="creditnote_added").exists(), "the credit note event")
    apply_all()
    note = CreditNote.objects.get(zoho_id=made["creditnote_id"])
    assert (note.origin, note.kind, note.invoice_id, note.amount, note.status, note.balance) == (
        "zoho", "credit", invoice.pk, Decimal("20.00"), "closed", Decimal("0.00"))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance_due) == ("partially_paid", Decimal("30.00"))
    assert services.sync_pending(entity="all").calls == 0  # the mirror is never pushed
    assert our_writes(wired, mark) == []


def test_our_refund_reaches_zoho_once_and_its_event_is_not_pulled_back_as_a_change(wired):
    invoice = pushed_invoice()
    payment = Payment.objects.create(reference="PAY-2W-1", customer=invoice.customer, invoice=invoice,
                                     amount=Decimal("50.00"), status=Payment.Status.COMPLETED, paid_at=timezone.now())
    note = CreditNote.objects.create(number="RF-2W-1", kind=CreditNote.Kind.REFUND, customer=invoice.customer,
                                     payment=payment, amount=Decimal("50.00"), issued_on=timezone.localdate())
    assert services.sync_pending(entity="all").failed == 0
    note.refresh_from_db()
    assert note.sync_status == SyncStatus.SYNCED and note.zoho_refund_id
    wait_for(lambda: ZohoEvent.objects.filter(event_type="payment_refunded").exists(), "the refund event")
    apply_all()
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == ("refunded", Decimal("50.00"))
    assert len(wired.records("refunds")) == 1 and CreditNote.objects.count() == 1, "our refund, kept once"
    assert services.sync_pending(entity="all").calls == 0
