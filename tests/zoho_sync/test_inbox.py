"""The webhook endpoint and the event inbox: signatures, rejections, storing once, applying, retrying and
quarantine, through Django's real request stack; the records re-read from the sandbox."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest
from django.test import Client
from django_q.models import OrmQ

from tests.builders import make_customer, make_invoice
from zoho_sync import inbox, services
from zoho_sync.models import Invoice, SyncLog, SyncStatus, ZohoEvent
from zoho_sync.webhooks import webhook_signature

pytestmark = pytest.mark.django_db
URL = "/zoho/webhooks/"
SECRET = "webhook-secret-1234"


@pytest.fixture
def secret(settings):
    settings.ZOHO_WEBHOOK_SECRET = SECRET
    return SECRET


def deliver(client, payload, *, secret=SECRET, body=None, signature=None, headers=None, query=""):
    raw = body if body is not None else json.dumps(payload).encode()
    params = dict(pair.split("=", 1) for pair in query.split("&") if pair)
    sign = signature if signature is not None else webhook_signature(secret, raw, params)
    extra = {"HTTP_X_ZOHO_WEBHOOK_SIGNATURE": sign} if sign else {}
    extra.update(headers or {})
    return client.post(URL + (f"?{query}" if query else ""), data=raw, content_type="application/json", **extra)


def zoho_stamp(**later) -> str:
    """Zoho's timestamp of a state `later` than now (a pushed record holds Zoho's modified time of its push)."""
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) + timedelta(**later)).strftime("%Y-%m-%dT%H:%M:%S+0000")


def event(event_id="ev-1", event_type="invoice_created", **data):
    return {"event_id": event_id, "event_type": event_type, "event_time": "2026-12-03T08:00:00+0000",
            "data": data or {"invoice": {"invoice_id": "903000000000001"}}}


@pytest.mark.parametrize("case", ["missing", "wrong secret", "tampered", "garbage", "base64"])
def test_unsigned_or_badly_signed_deliveries_are_refused_and_leave_nothing(client, secret, caplog, case):
    payload = event()
    raw = json.dumps(payload).encode()
    signature = {"missing": "", "wrong secret": webhook_signature("another-secret-99", raw, {}),
                 "tampered": webhook_signature(SECRET, raw.replace(b"ev-1", b"ev-2"), {}),
                 "garbage": "not-a-signature",
                 "base64": "c2lnbmF0dXJl"}[case]
    with caplog.at_level(logging.WARNING, logger="zoho_sync.views"):
        response = deliver(client, payload, signature=signature)
    assert response.status_code == 401
    assert not ZohoEvent.objects.exists() and not OrmQ.objects.exists()
    assert any("Zoho webhook rejected (401)" in r.getMessage() for r in caplog.records)
    assert SECRET not in caplog.text


def test_the_signature_covers_the_query_parameters(client, secret, settings):
    settings.ZOHO_WEBHOOK_QUERY_KEYS = ["subscription_id", "name"]  # the parameters Zoho's webhook URL carries
    payload = event()
    raw = json.dumps(payload).encode()
    good = webhook_signature(SECRET, raw, {"name": "basic", "subscription_id": "90343"})
    assert deliver(client, payload, signature=good, query="subscription_id=90343&name=basic").status_code == 200
    assert deliver(client, event("ev-2"), signature=webhook_signature(SECRET, raw, {}),
                   query="subscription_id=90343").status_code == 401
    unsigned_query = deliver(client, event("ev-3"), signature=webhook_signature(
        SECRET, json.dumps(event("ev-3")).encode(), {}), query="subscription_id=90343&name=basic")
    assert (unsigned_query.status_code, unsigned_query.json()) == (401, {"error": "the signature does not match"})
    assert list(ZohoEvent.objects.values_list("event_id", flat=True)) == ["ev-1"]


def test_oversized_malformed_and_unconfigured(client, secret, settings):
    settings.ZOHO_WEBHOOK_MAX_BYTES = 1000
    big = event(invoice={"invoice_id": "1", "notes": "x" * 2000})
    assert deliver(client, big).status_code == 413
    assert deliver(client, None, body=b"{not json").status_code == 400
    assert deliver(client, None, body=b"[1, 2]").status_code == 400
    ping = deliver(client, {"created_date": "2019-03-06"})
    assert ping.status_code == 200 and ping.json()["status"] == "ignored"
    assert client.get(URL).status_code == 405
    settings.ZOHO_WEBHOOK_SECRET = ""
    assert deliver(client, event()).status_code == 503
    assert not ZohoEvent.objects.exists()


def test_an_event_is_stored_once_however_often_it_arrives(client, secret, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = deliver(client, event())
        again = deliver(client, event())
    assert (first.status_code, first.json()["status"]) == (200, "accepted")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    stored = ZohoEvent.objects.get()
    assert (stored.event_id, stored.entity, stored.zoho_id, stored.source) == (
        "ev-1", "invoice", "903000000000001", "webhook")
    assert OrmQ.objects.count() == 1  # one task to apply it


def test_csrf_does_not_apply_to_the_signed_endpoint(secret):
    client = Client(enforce_csrf_checks=True)
    assert deliver(client, event()).status_code == 200


def synced_invoice(zoho_sandbox):
    zoho_sandbox.configure(per_minute=0)
    invoice = make_invoice()
    services.sync_object(entity="invoice", pk=invoice.pk)
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.SYNCED
    return invoice


def test_a_payment_event_marks_the_invoice_paid_and_pushes_nothing_back(zoho_settings, zoho_sandbox,
                                                                         django_capture_on_commit_callbacks):
    invoice = synced_invoice(zoho_sandbox)
    customer_id = invoice.customer.zoho_id
    from zoho_sync.zoho import get_zoho_client

    answer = get_zoho_client().post("/payments", json={
        "customer_id": customer_id, "payment_mode": "creditcard", "amount": 50.0, "reference_number": "HOSTED-1",
        "invoices": [{"invoice_id": invoice.zoho_id, "amount_applied": 50.0}]})
    payment = answer["payment"]
    before = len(zoho_sandbox.requests())
    stored, created = inbox.event_accept(
        {"event_id": "ev-pay-1", "event_type": "payment_thankyou", "event_time": "2026-12-03T08:00:00+0000",
         "data": {"payment": payment}}, source="webhook")
    assert created
    said = inbox.event_apply(stored.pk)
    assert "2 record(s) changed" in said
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance_due, invoice.sync_status) == ("paid", Decimal("0.00"), "synced")
    mirrored = invoice.payments.get()
    assert (mirrored.origin, mirrored.reference, mirrored.amount, mirrored.sync_status) == (
        "zoho", "HOSTED-1", Decimal("50.00"), "synced")
    # Only reads followed (the payment and its invoice): nothing was pushed back, nothing is queued to be.
    after = [(r["method"], r.get("api_path")) for r in zoho_sandbox.requests()[before:] if r.get("api_path")]
    assert {method for method, _ in after} == {"GET"}
    assert [q.func() for q in OrmQ.objects.all() if q.func() != "zoho_sync.tasks.apply_event"] == []
    assert services.sync_pending(entity="all").calls == 0  # a backfill finds nothing to send
    stored.refresh_from_db()
    assert stored.state == "applied" and "status issued -> paid" in stored.outcome
    assert SyncLog.objects.filter(direction="pull", entity="invoice", status="success").count() == 1


def test_an_older_state_never_overwrites_a_newer_one(zoho_settings, zoho_sandbox):
    from zoho_sync.sync.pull import pull
    from zoho_sync.sync.specs import INVOICE

    invoice = synced_invoice(zoho_sandbox)  # holds Zoho's modified time of its create: both states are newer
    newer = {"invoice_id": invoice.zoho_id, "status": "paid", "balance": 0, "last_modified_time":
             zoho_stamp(hours=2)}
    older = {"invoice_id": invoice.zoho_id, "status": "sent", "balance": 50, "last_modified_time":
             zoho_stamp(hours=1)}
    assert pull(INVOICE, newer).action == "updated"
    outcome = pull(INVOICE, older)
    assert outcome.action == "stale" and "older than the one applied" in outcome.message
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance_due) == ("paid", Decimal("0.00"))
    assert pull(INVOICE, newer).action == "unchanged"  # the same state again changes nothing


def test_a_poison_event_is_quarantined_and_the_next_ones_are_applied(zoho_settings, zoho_sandbox, settings):
    settings.INBOX_MAX_ATTEMPTS = 2
    invoice = synced_invoice(zoho_sandbox)
    poison, _ = inbox.event_accept({"event_id": "ev-bad", "event_type": "payment_thankyou",
                                    "data": {"payment": {"amount": 5}}}, source="webhook")
    good, _ = inbox.event_accept({"event_id": "ev-good", "event_type": "invoice_created",
                                  "data": {"invoice": {"invoice_id": invoice.zoho_id}}}, source="webhook")
    first = inbox.event_apply(poison.pk)
    assert "failed (attempt 1)" in first
    poison.refresh_from_db()
    assert poison.state == "failed" and poison.next_attempt_at and "has no payment_id" in poison.last_error
    assert "record(s) changed" in inbox.event_apply(good.pk)  # not held up by the failing one
    good.refresh_from_db()
    assert good.state == "applied"
    assert "quarantined after 2 attempts" in inbox.event_apply(poison.pk)
    poison.refresh_from_db()
    assert poison.state == "quarantined" and poison.attempts == 2
    assert inbox.event_apply(poison.pk).endswith("not due, or another worker applies it")
    assert inbox.event_replay([poison.pk]) == 1
    poison.refresh_from_db()
    assert (poison.state, poison.attempts) == ("received", 0)


def test_a_record_being_pushed_is_left_to_the_push(zoho_settings, zoho_sandbox):
    from django.utils import timezone

    invoice = synced_invoice(zoho_sandbox)
    Invoice.objects.filter(pk=invoice.pk).update(claimed_by="other", claimed_until=timezone.now() +
                                                 timezone.timedelta(minutes=5))
    stored, _ = inbox.event_accept({"event_id": "ev-busy", "event_type": "invoice_created",
                                    "data": {"invoice": {"invoice_id": invoice.zoho_id}}}, source="webhook")
    said = inbox.event_apply(stored.pk)
    assert "being pushed right now" in said
    stored.refresh_from_db()
    assert stored.state == "failed" and stored.attempts == 0 and stored.next_attempt_at


def test_a_customer_unknown_here_is_ignored(zoho_settings, zoho_sandbox):
    zoho_sandbox.configure(per_minute=0)
    customer = make_customer()
    services.sync_object(entity="customer", pk=customer.pk)
    stored, _ = inbox.event_accept({"event_id": "ev-x", "event_type": "card_expiring", "data": {}},
                                   source="webhook")
    assert "0 record(s) changed" in inbox.event_apply(stored.pk)
    stored.refresh_from_db()
    assert stored.state == "ignored"


def test_the_health_check_says_when_events_need_a_person():
    from datetime import timedelta

    from django.utils import timezone

    from monitoring.checks import InboxCheck

    assert InboxCheck().run().status == "ok"
    ZohoEvent.objects.create(event_id="q-1", event_type="payment_thankyou", source="webhook", payload={},
                             state="quarantined", last_error="ValueError: no payment_id")
    result = InboxCheck().run()
    assert result.status == "warning" and "1 events from Zoho are quarantined" in result.summary
    ZohoEvent.objects.filter(event_id="q-1").update(state="applied")
    ZohoEvent.objects.create(event_id="r-1", event_type="invoice_created", source="webhook", payload={},
                             received_at=timezone.now() - timedelta(minutes=30))
    result = InboxCheck().run()
    assert result.status == "warning" and "wait to be applied" in result.summary


def test_a_local_edit_during_a_pull_keeps_both_changes(zoho_settings, zoho_sandbox, monkeypatch):
    """A person saves the invoice between the pull's read and its write: the write misses (the version moved), the
    pull reads again and applies Zoho's fields; the person's change stays pending and is pushed next."""
    from zoho_sync.sync import pull as pull_module
    from zoho_sync.sync.specs import INVOICE

    invoice = synced_invoice(zoho_sandbox)
    real = pull_module.current_fingerprint
    edits = []

    def edit_once(spec, obj):
        if not edits:
            edits.append(1)
            fresh = Invoice.objects.get(pk=obj.pk)
            fresh.notes = "Edited by a person meanwhile"
            fresh.save()
        return real(spec, obj)

    monkeypatch.setattr(pull_module, "current_fingerprint", edit_once)
    outcome = pull_module.pull(INVOICE, {"invoice_id": invoice.zoho_id, "status": "paid", "balance": 0,
                                         "last_modified_time": zoho_stamp(hours=1)})
    assert outcome.action == "updated" and edits == [1]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance_due, invoice.notes) == ("paid", Decimal("0.00"),
                                                                    "Edited by a person meanwhile")
    assert invoice.sync_status == SyncStatus.PENDING  # the person's change is pushed next, not hidden
    assert services.sync_pending(entity="invoice").done == 1
    assert [i["notes"] for i in zoho_sandbox.records("invoices")] == ["Edited by a person meanwhile"]


@pytest.mark.parametrize("amount", [float("nan"), float("inf"), 1e300, "12abc"])
def test_a_payment_with_an_amount_that_cannot_be_kept_is_quarantined_and_nothing_is_written(
        client, secret, zoho_settings, zoho_sandbox, amount, caplog):
    invoice = synced_invoice(zoho_sandbox)
    paid = zoho_sandbox.pay_invoice(invoice.zoho_id)  # through Zoho's hosted page
    zoho_sandbox.edit_record("payments", paid["payment_id"], {"amount": amount})  # Zoho now answers this amount
    delivered = deliver(client, event("ev-odd", "payment_thankyou", payment={"payment_id": paid["payment_id"]}))
    assert (delivered.status_code, delivered.json()["status"]) == (200, "accepted")
    stored = ZohoEvent.objects.get(event_id="ev-odd")

    said = inbox.event_apply(stored.pk)

    stored.refresh_from_db()
    assert stored.state == "quarantined" and stored.attempts == 1  # retrying cannot help: a person corrects Zoho
    reason = {"12abc": "is not a number", 1e300: "does not fit its column here (Payment.amount: at most 10 digits "
              "before the point)"}.get(amount, "is not a finite number")
    assert f"payment {paid['payment_id']}: Zoho's amount {amount!r} {reason}; nothing was changed here" in \
        stored.last_error
    assert "quarantined" in said
    assert not invoice.payments.exists()  # no mirror with 0.00, NaN or anything else
    before = (invoice.status, invoice.balance_due, invoice.sync_status, invoice.zoho_modified_at)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance_due, invoice.sync_status, invoice.zoho_modified_at) == before
    log = SyncLog.objects.get(direction="pull", status="failed")
    assert (log.entity, log.zoho_id, log.error_type) == ("payment", paid["payment_id"], "BadZohoValue")
    assert reason in log.message
    # Corrected in Zoho, the event is replayed by a person and applied.
    zoho_sandbox.edit_record("payments", paid["payment_id"], {"amount": 50.0})
    inbox.event_replay([stored.pk])
    inbox.event_apply(stored.pk)
    stored.refresh_from_db()
    assert stored.state == "applied"
    assert invoice.payments.get().amount == Decimal("50.00")


def test_an_invoice_zoho_made_with_a_huge_total_is_not_mirrored_as_zero(client, secret, zoho_settings,
                                                                         zoho_sandbox):
    from zoho_sync.zoho import get_zoho_client

    ours = synced_invoice(zoho_sandbox)
    made = get_zoho_client().post("/invoices", json={  # a person raises an invoice in Zoho's web app
        "customer_id": ours.customer.zoho_id, "invoice_items": [{
            "product_id": zoho_sandbox.records("products")[0]["product_id"], "name": "Install", "price": 80.0,
            "quantity": 1}]})["invoice"]
    zoho_sandbox.edit_record("invoices", made["invoice_id"], {"total": 1e300})
    assert deliver(client, event("ev-huge", "invoice_created", invoice={"invoice_id": made["invoice_id"]})) \
        .status_code == 200
    stored = ZohoEvent.objects.get(event_id="ev-huge")
    inbox.event_apply(stored.pk)
    stored.refresh_from_db()
    assert stored.state == "quarantined"
    assert f"invoice {made['invoice_number']} ({made['invoice_id']}): Zoho's total 1e+300 does not fit" in \
        stored.last_error
    assert not Invoice.objects.filter(zoho_id=made["invoice_id"]).exists()
    # A balance that is NaN on one of ours: nothing changes on it either.
    zoho_sandbox.edit_record("invoices", ours.zoho_id, {"balance": float("nan")})
    deliver(client, event("ev-nan", "invoice_created", invoice={"invoice_id": ours.zoho_id}))
    nan = ZohoEvent.objects.get(event_id="ev-nan")
    inbox.event_apply(nan.pk)
    nan.refresh_from_db()
    assert nan.state == "quarantined" and "Zoho's balance nan is not a finite number" in nan.last_error
    before = (ours.status, ours.balance_due, ours.zoho_modified_at)
    ours.refresh_from_db()
    assert (ours.status, ours.balance_due, ours.zoho_modified_at) == before


@pytest.mark.parametrize(("value", "to", "expected"), [
    (None, ("invoice", "total"), None), ("", ("invoice", "total"), None),
    (50, ("invoice", "total"), Decimal("50.00")), (12.5, ("invoice", "total"), Decimal("12.50")),
    ("0.10", ("invoice", "total"), Decimal("0.10")), ("-3", ("invoice", "balance_due"), Decimal("-3.00")),
    (9999999999.99, ("invoice", "total"), Decimal("9999999999.99")),
    (3, ("customerservice", "quantity"), 3), (2.0, ("customerservice", "quantity"), 2),
    (float("nan"), ("invoice", "total"), "is not a finite number"),
    ("-Infinity", ("invoice", "total"), "is not a finite number"),
    (1e300, ("invoice", "total"), "does not fit its column here (Invoice.total: at most 10 digits before the point)"),
    (10_000_000_000, ("invoice", "total"), "does not fit its column here"),
    (12.345, ("invoice", "total"), "has more than 2 decimal places (Invoice.total keeps 2)"),
    (True, ("invoice", "total"), "is not a number"), ({"amount": 1}, ("invoice", "total"), "is not a number"),
    ("12abc", ("invoice", "total"), "is not a number"),
    ("١٢", ("invoice", "total"), "is not a number written in ASCII digits"),
    ("1_000", ("invoice", "total"), "is not a number written in ASCII digits"),
    (2.5, ("customerservice", "quantity"), "is not a whole number (CustomerService.quantity)"),
    (-1, ("customerservice", "quantity"), "does not fit its column here (CustomerService.quantity: 0 to"),
    (1e30, ("customerservice", "quantity"), "does not fit its column here"),
])
def test_every_number_from_zoho_is_read_against_its_column(value, to, expected):
    from django.apps import apps

    from zoho_sync.sync.errors import BadZohoValue
    from zoho_sync.sync.inbound import column, zoho_number

    field = column(apps.get_model("zoho_sync", to[0]), to[1])
    if not isinstance(expected, str):
        assert zoho_number(value, field, key="total") == expected
        return
    with pytest.raises(BadZohoValue) as caught:
        zoho_number(value, field, key="total")
    assert expected in str(caught.value) and str(caught.value).startswith("Zoho's total ")
