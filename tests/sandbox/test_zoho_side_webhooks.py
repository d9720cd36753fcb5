"""Zoho-side actions end to end: their events delivered signed to a receiver, lost on purpose (drop_webhooks) and
recovered by event replay (GET /events), and the actions as POST hooks under /__sandbox__/ (§7.2, §12.5, §12.12)."""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from zoho_sync.client import codes
from zoho_sync.sandbox import SIGNATURE_HEADER, ZohoSandbox, sign

from .conftest import Api, WebhookReceiver

SECRET = "s3cretTokenForHooks42"
PARAMS = {"source": "zoho", "account": "acme"}


@pytest.fixture
def hooked(api: Api, zoho_sandbox: ZohoSandbox, webhook_receiver: WebhookReceiver) -> Api:
    zoho_sandbox.set_time(datetime(2025, 3, 15, 10, 0, tzinfo=UTC).timestamp())
    zoho_sandbox.configure(webhook_url=webhook_receiver.url, webhook_secret=SECRET, webhook_params=PARAMS)
    return api


def signed(delivery: dict[str, Any]) -> bool:
    params = dict(parse_qsl(urlsplit(delivery["path"]).query))
    assert params == PARAMS
    return hmac.compare_digest(delivery["headers"][SIGNATURE_HEADER], sign(SECRET, delivery["raw"], params))


def stored(api: Api, event_id: str) -> dict[str, Any]:
    return api.get(f"/events/{event_id}").json()["event"]


def test_every_action_is_delivered_signed(hooked: Api, zoho_sandbox: ZohoSandbox,
                                          webhook_receiver: WebhookReceiver) -> None:
    customer = hooked.customer()
    hooked.plan("NET-100", price=30)
    sub = hooked.subscription(customer["customer_id"], "NET-100").json()["subscription"]
    payment = zoho_sandbox.pay_invoice(sub["child_invoice_id"])
    zoho_sandbox.refund_payment(payment["payment_id"], amount=10)
    zoho_sandbox.decline_payment(sub["child_invoice_id"])
    renewed = zoho_sandbox.renew_subscription(sub["subscription_id"])
    zoho_sandbox.expire_subscription(sub["subscription_id"])
    assert zoho_sandbox.wait_for_webhooks()
    deliveries = webhook_receiver.wait_for(8)
    assert [d["json"]["event_type"] for d in deliveries] == [
        "subscription_created", "invoice_created", "payment_thankyou", "payment_refunded", "payment_declined",
        "subscription_renewed", "invoice_created", "subscription_expired"]
    for delivery in deliveries:
        assert signed(delivery)
        event = stored(hooked, delivery["json"]["event_id"])
        assert json.loads(event["payload"]) == delivery["json"]
        assert [w["status"] for w in event["webhooks"]] == ["success"]
    by_type = {d["json"]["event_type"]: d["json"]["data"] for d in deliveries}
    assert by_type["payment_thankyou"]["payment"]["invoices"][0]["invoice_id"] == sub["child_invoice_id"]
    assert by_type["payment_refunded"]["payment"]["amount_refunded"] == 10
    assert by_type["payment_declined"]["payment"]["status"] == "failure"
    assert by_type["subscription_renewed"]["subscription"]["child_invoice_id"] == renewed["child_invoice_id"]
    assert deliveries[6]["json"]["data"]["invoice"]["invoice_id"] == renewed["child_invoice_id"]
    assert by_type["subscription_expired"]["subscription"]["status"] == "expired"


def test_dropped_deliveries_are_recovered_by_event_replay(hooked: Api, zoho_sandbox: ZohoSandbox,
                                                          webhook_receiver: WebhookReceiver) -> None:
    invoice = hooked.invoice(hooked.customer()["customer_id"], amount=90)  # invoice_created: delivered
    assert zoho_sandbox.drop_webhooks(2) == 2
    assert zoho_sandbox.state()["webhook_drops_pending"] == 2
    first = zoho_sandbox.pay_invoice(invoice["invoice_id"], amount=30)
    zoho_sandbox.pay_invoice(invoice["invoice_id"], amount=30)
    zoho_sandbox.refund_payment(first["payment_id"])
    assert zoho_sandbox.wait_for_webhooks()
    received = webhook_receiver.wait_for(2)
    assert [d["json"]["event_type"] for d in received] == ["invoice_created", "payment_refunded"]
    assert zoho_sandbox.state()["webhook_drops_pending"] == 0

    listed = hooked.get("/events").json()["events"]
    assert [e["event_type"] for e in reversed(listed)] == [
        "invoice_created", "payment_thankyou", "payment_thankyou", "payment_refunded"]
    missed = [e["event_id"] for e in reversed(listed)
              if e["event_id"] not in {d["json"]["event_id"] for d in received}]
    assert len(missed) == 2
    replayed = [stored(hooked, event_id) for event_id in missed]
    assert [[w["status"] for w in e["webhooks"]] for e in replayed] == [["failure"], ["failure"]]
    bodies = [json.loads(e["payload"]) for e in replayed]
    assert [b["data"]["payment"]["payment_id"] == first["payment_id"] for b in bodies] == [True, False]
    assert all(b["data"]["payment"]["invoices"][0]["invoice_id"] == invoice["invoice_id"] for b in bodies)


def test_drops_count_deliveries_not_events(hooked: Api, zoho_sandbox: ZohoSandbox,
                                           webhook_receiver: WebhookReceiver) -> None:
    zoho_sandbox.configure(webhook_deliveries=2)
    zoho_sandbox.drop_webhooks(1)
    hooked.invoice(hooked.customer()["customer_id"])
    assert zoho_sandbox.wait_for_webhooks()
    assert len(webhook_receiver.wait_for(1)) == 1
    event_id = hooked.get("/events").json()["events"][0]["event_id"]
    assert [w["status"] for w in stored(hooked, event_id)["webhooks"]] == ["failure", "success"]
    with pytest.raises(ValueError):
        zoho_sandbox.drop_webhooks(-1)


def test_action_events_are_kept_180_days(hooked: Api, zoho_sandbox: ZohoSandbox) -> None:
    invoice = hooked.invoice(hooked.customer()["customer_id"])
    zoho_sandbox.pay_invoice(invoice["invoice_id"])
    zoho_sandbox.advance(180 * 86400 - 60)
    hooked._token = None
    assert [e["event_type"] for e in hooked.get("/events").json()["events"]] == ["payment_thankyou", "invoice_created"]
    zoho_sandbox.advance(120)
    assert hooked.get("/events").json()["events"] == []


# -- the same actions over HTTP, for other processes ------------------------------------------------------------
def admin(zoho: ZohoSandbox, name: str, **body: Any) -> requests.Response:
    return requests.post(f"{zoho.url}/__sandbox__/{name}", json=body, timeout=5)


def ok(response: requests.Response, key: str) -> Any:
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True
    return response.json()[key]


def test_admin_hooks(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    customer = api.customer()
    api.plan("NET-100", price=30)
    api.plan("TRIAL-7", price=10, trial_period=7)
    sub = api.subscription(customer["customer_id"], "NET-100").json()["subscription"]
    invoice_id = sub["child_invoice_id"]

    payment = ok(admin(zoho_sandbox, "pay_invoice", invoice_id=invoice_id, amount=10, reference_number="hp-9"),
                 "payment")
    assert (payment["amount"], payment["reference_number"]) == (10, "hp-9")
    assert ok(admin(zoho_sandbox, "decline_payment", invoice_id=invoice_id), "payment")["status"] == "failure"
    assert ok(admin(zoho_sandbox, "refund_payment", payment_id=payment["payment_id"]), "payment")["status"] \
        == "refunded"
    renewed = ok(admin(zoho_sandbox, "renew_subscription", subscription_id=sub["subscription_id"]), "subscription")
    assert renewed["current_term_starts_at"] == sub["next_billing_at"]
    assert ok(admin(zoho_sandbox, "cancel_subscription", subscription_id=sub["subscription_id"], at_end=True),
              "subscription")["status"] == "non_renewing"
    assert ok(admin(zoho_sandbox, "expire_subscription", subscription_id=sub["subscription_id"]),
              "subscription")["status"] == "expired"
    trial = api.subscription(customer["customer_id"], "TRIAL-7").json()["subscription"]
    assert ok(admin(zoho_sandbox, "activate_subscription", subscription_id=trial["subscription_id"]),
              "subscription")["status"] == "live"
    assert ok(admin(zoho_sandbox, "void_invoice", invoice_id=invoice_id), "invoice")["status"] == "void"
    edited = ok(admin(zoho_sandbox, "edit_record", resource="customers", record_id=customer["customer_id"],
                      fields={"phone": "+47 1"}), "record")
    assert edited["phone"] == "+47 1" and "_anchor" not in edited
    lone = api.customer("Lone Ltd")
    assert ok(admin(zoho_sandbox, "delete_record", resource="customers", record_id=lone["customer_id"]),
              "record")["customer_id"] == lone["customer_id"]
    assert ok(admin(zoho_sandbox, "drop_webhooks", n=3), "drops_pending") == 3
    assert requests.get(f"{zoho_sandbox.url}/__sandbox__/state", timeout=5).json()["webhook_drops_pending"] == 3

    missing = admin(zoho_sandbox, "pay_invoice", invoice_id="903999999999999")
    assert (missing.status_code, missing.json()["code"]) == (404, codes.DOES_NOT_EXIST.code)
    void = admin(zoho_sandbox, "pay_invoice", invoice_id=invoice_id)
    assert (void.status_code, void.json()["code"]) == (400, codes.ACTION_NOT_ALLOWED.code)
    assert admin(zoho_sandbox, "pay_invoice", invoice_id=invoice_id, tip=5).status_code == 400
    assert admin(zoho_sandbox, "drop_webhooks", n="many").status_code == 400
    assert requests.get(f"{zoho_sandbox.url}/__sandbox__/pay_invoice", timeout=5).status_code == 405
