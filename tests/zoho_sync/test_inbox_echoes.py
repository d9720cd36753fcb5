"""Our own writes are never pulled back: the events our pushes cause (a webhook, or Zoho's events list read by
replay) are settled as "ignored: our own write" without any API call beyond the list, without a sync-log row and
out of Recent activity; a change made in Zoho after our push is still read and applied; and event replay spends at
most SYNC_REPLAY_QUOTA_SHARE of the daily quota, stopping with its cursor kept and saying so.

Everything runs through the real stack: the sandbox over HTTP (its request log is the count of API calls), the
webhook door through Django's test client, the real database."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from monitoring.dashboard import recent_activity
from tests.builders import make_customer, make_invoice, make_package, make_payment, make_service
from zoho_sync import inbox, services
from zoho_sync.models import CustomerService, Invoice, Payment, SharedState, SyncLog, ZohoEvent
from zoho_sync.replay import SPENT_KEY, cursor_read, events_replay
from zoho_sync.webhooks import webhook_signature

pytestmark = pytest.mark.django_db
SECRET = "echo-webhook-secret-1234"


def api_calls(sandbox, since: int = 0) -> list[tuple[str, str]]:
    """(method, API path) of the calls the sandbox answered after request number `since` (not token mints)."""
    return [(e["method"], e["api_path"]) for e in sandbox.requests(since=since) if e.get("api_path")]


def mark(sandbox) -> int:
    entries = sandbox.requests()
    return entries[-1]["seq"] if entries else 0


@pytest.fixture
def pushed(zoho_settings, zoho_sandbox):
    """A customer's subscription, invoice and payment, pushed by us (triggers off: only these pushes). The
    subscription starts in ten days, as the demo's do (billed here until their current period ends), so every
    event here is one our pushes caused about our own records; a subscription starting today raises the event of
    the period invoice Zoho makes as well, Zoho's own record, read and mirrored (last test)."""
    zoho_settings.SYNC_TRIGGERS_ENABLED = False
    zoho_sandbox.configure(per_minute=0, daily=0)
    customer = make_customer()
    service = make_service(customer=customer, package=make_package(price=Decimal("39.00")),
                           activated_at=timezone.now() + timedelta(days=10))
    invoice = make_invoice(customer=customer)
    payment = make_payment(invoice=invoice, amount=Decimal("20.00"))
    assert services.sync_pending(entity="all").failed == 0
    return (CustomerService.objects.get(pk=service.pk), Invoice.objects.get(pk=invoice.pk),
            Payment.objects.get(pk=payment.pk))


def zoho_events(sandbox) -> list[dict]:
    """The events the sandbox raised, as its webhooks carry them (the payload)."""
    return [json.loads(e["payload"]) for e in sandbox.records("events")]


def test_a_push_keeps_zohos_modified_time_and_fields_from_its_answer(pushed, zoho_sandbox):
    service, invoice, payment = pushed
    remote = {s["subscription_id"]: s for s in zoho_sandbox.records("subscriptions")}[service.zoho_id]
    assert service.zoho_modified_at is not None and invoice.zoho_modified_at and payment.zoho_modified_at
    # Zoho's fields of the subscription came with the answer to the create: no event was needed for them.
    assert remote["status"] == "future" and remote["next_billing_at"]
    assert str(service.next_billing_on) == remote["next_billing_at"]
    assert service.sync_status == "synced"
    assert services.sync_pending(entity="all").calls == 0  # and nothing is sent back


def test_the_webhook_of_our_own_push_is_settled_without_a_call(pushed, zoho_sandbox, client, settings):
    settings.ZOHO_WEBHOOK_SECRET = SECRET
    caused = zoho_events(zoho_sandbox)
    assert {e["event_type"] for e in caused} >= {"subscription_created", "invoice_created", "payment_thankyou"}
    logs_before = SyncLog.objects.count()
    since = mark(zoho_sandbox)
    for event in caused:
        raw = json.dumps(event).encode()
        answer = client.post("/zoho/webhooks/", data=raw, content_type="application/json",
                             HTTP_X_ZOHO_WEBHOOK_SIGNATURE=webhook_signature(SECRET, raw, {}))
        assert answer.status_code == 200
    for stored in ZohoEvent.objects.all():
        said = inbox.event_apply(stored.pk)
        assert "0 record(s) changed" in said, said
    assert api_calls(zoho_sandbox, since) == []  # no GET of the record, no GET of the invoice a payment paid
    states = {e.event_type: (e.state, e.outcome) for e in ZohoEvent.objects.all()}
    for kind in ("subscription_created", "invoice_created", "payment_thankyou"):
        state, outcome = states[kind]
        assert state == ZohoEvent.State.IGNORED and outcome.startswith("ignored: our own write"), (kind, outcome)
    assert SyncLog.objects.count() == logs_before  # no "Pulled from Zoho ... already as Zoho has it"
    assert not [row for row in recent_activity(timezone.now()) if row.direction == SyncLog.Direction.PULL]


def test_replay_settles_our_own_events_from_the_list_alone(pushed, zoho_sandbox):
    listed = len(zoho_sandbox.records("events"))
    since = mark(zoho_sandbox)
    report = events_replay()
    assert api_calls(zoho_sandbox, since) == [("GET", "/events")]  # the list, nothing per event
    assert (report.calls, report.own, report.added) == (1, listed, [])
    assert "our own writes" in report.as_text()
    assert set(ZohoEvent.objects.values_list("state", flat=True)) == {ZohoEvent.State.IGNORED}
    assert not SyncLog.objects.filter(direction=SyncLog.Direction.PULL).exists()
    assert cursor_read() is not None
    again = events_replay()  # the overlap lists them again: already in the inbox, nothing read
    assert (again.calls, again.added, again.already) == (1, [], listed)


def test_a_change_made_in_zoho_after_our_push_is_still_read_and_applied(pushed, zoho_sandbox,
                                                                       django_capture_on_commit_callbacks):
    _service, invoice, _payment = pushed
    zoho_sandbox.advance(5)  # a little later, someone pays the rest on Zoho's hosted page
    zoho_sandbox.pay_invoice(invoice.zoho_id, amount=30)
    since = mark(zoho_sandbox)
    with django_capture_on_commit_callbacks(execute=False):
        report = events_replay()
    assert report.own == 3 and len(report.added) == 1  # ours settled, Zoho's read (one GET /events/{id})
    assert api_calls(zoho_sandbox, since) == [("GET", "/events"), ("GET", f"/events/{report.added[0]}")]
    said = inbox.event_apply(ZohoEvent.objects.get(event_id=report.added[0]).pk)
    assert "record(s) changed" in said and not said.startswith("ignored")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.balance_due) == ("paid", Decimal("0.00"))
    pulls = [row for row in recent_activity(timezone.now()) if row.direction == SyncLog.Direction.PULL]
    assert pulls and all(row.action != SyncLog.Action.NONE for row in pulls)  # changes are activity


def test_replay_spends_at_most_its_share_of_the_daily_quota(zoho_settings, zoho_sandbox,
                                                             django_capture_on_commit_callbacks):
    zoho_settings.SYNC_TRIGGERS_ENABLED = False
    zoho_sandbox.configure(per_minute=0, daily=0)
    invoices = [make_invoice(customer=make_customer()) for _ in range(4)]
    assert services.sync_pending(entity="all").failed == 0
    zoho_sandbox.advance(5)
    for invoice in invoices:  # four changes made in Zoho, each needing a read
        zoho_sandbox.pay_invoice(Invoice.objects.get(pk=invoice.pk).zoho_id, amount=10)
        zoho_sandbox.advance(2)
    zoho_settings.ZOHO_DAILY_LIMIT, zoho_settings.SYNC_REPLAY_QUOTA_SHARE = 1000, 0.003  # 3 calls a day
    since = mark(zoho_sandbox)
    with django_capture_on_commit_callbacks(execute=False):
        first = events_replay()
    assert first.calls == 3 == len(api_calls(zoho_sandbox, since))  # the list and two reads, then it stopped
    assert len(first.added) == 2 and first.own == 4
    assert "share of the daily quota is spent: 3 of 3 calls today" in first.as_text()
    assert "SYNC_REPLAY_QUOTA_SHARE=0.003" in first.as_text() and "cursor kept" in first.as_text()
    assert cursor_read() is None  # kept where it was: the events not reached yet are older

    since = mark(zoho_sandbox)
    spent = events_replay()  # the same day: no call at all
    assert (spent.calls, api_calls(zoho_sandbox, since)) == (0, [])
    assert "share of the daily quota is spent" in spent.as_text()

    zoho_settings.SYNC_REPLAY_QUOTA_SHARE = 0.01  # read at call time: 10 calls a day, 7 left
    with django_capture_on_commit_callbacks(execute=False):
        rest = events_replay()
    assert not rest.share_spent and len(rest.added) == 2 and rest.calls == 3  # what it added costs nothing again
    assert cursor_read() is not None
    assert ZohoEvent.objects.filter(event_type="payment_thankyou", state="received").count() == 4
    key = f"{SPENT_KEY}:{timezone.now():%Y-%m-%d}"
    assert json.loads(SharedState.objects.get(key=key).data) == {"calls": 6}


def test_the_period_invoice_zoho_makes_for_our_subscription_is_read_and_mirrored(zoho_settings, zoho_sandbox):
    """Our push caused it, but the invoice is Zoho's own: its event is read (one GET /events/{id}) and the invoice
    mirrored (one GET /invoices/{id}); the subscription's own event is ours, settled from the list."""
    zoho_settings.SYNC_TRIGGERS_ENABLED = False
    service = make_service(package=make_package(price=Decimal("39.00")))  # starts today: Zoho bills it now
    assert services.sync_pending(entity="all").failed == 0
    service.refresh_from_db()
    assert service.zoho_child_invoice_id  # from the answer to the create
    since = mark(zoho_sandbox)
    report = events_replay()
    assert (report.own, len(report.added)) == (1, 1)
    event = ZohoEvent.objects.get(event_id=report.added[0])
    assert "mirrored here" in inbox.event_apply(event.pk)
    assert api_calls(zoho_sandbox, since) == [("GET", "/events"), ("GET", f"/events/{event.event_id}"),
                                              ("GET", f"/invoices/{service.zoho_child_invoice_id}")]
    assert Invoice.objects.get(zoho_id=service.zoho_child_invoice_id).origin == "zoho"
