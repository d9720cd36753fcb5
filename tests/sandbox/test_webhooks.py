"""Events API and outgoing webhooks, verified by a local receiver (§3.10, §7, §12.5, §12.12)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qsl, urlsplit

from zoho_sync.client import codes
from zoho_sync.sandbox import SIGNATURE_HEADER, ZohoSandbox

from .conftest import Api, WebhookReceiver

SECRET = "s3cretTokenForHooks42"


def _expected_signature(delivery: dict, secret: str = SECRET, encoding: str = "hex") -> str:
    """Computed here independently of the sandbox: sorted query params as key+value, then the raw body."""
    params = sorted(parse_qsl(urlsplit(delivery["path"]).query))
    message = "".join(k + v for k, v in params).encode() + delivery["raw"]
    digest = hmac.new(secret.encode(), message, hashlib.sha256)
    return digest.hexdigest() if encoding == "hex" else base64.b64encode(digest.digest()).decode()


def _subscribe(api: Api) -> dict:
    customer = api.customer()
    api.plan("NET-100")
    return api.subscription(customer["customer_id"], "NET-100").json()["subscription"]


def test_events_are_signed_and_delivered_once(api: Api, zoho_sandbox: ZohoSandbox,
                                              webhook_receiver: WebhookReceiver) -> None:
    zoho_sandbox.configure(webhook_url=webhook_receiver.url, webhook_secret=SECRET,
                           webhook_params={"subscription_id": "90343", "name": "basic"})
    sub = _subscribe(api)
    deliveries = webhook_receiver.wait_for(2)
    assert zoho_sandbox.wait_for_webhooks()
    assert [d["json"]["event_type"] for d in deliveries] == ["subscription_created", "invoice_created"]
    for delivery in deliveries:
        assert set(delivery["json"]) == {"event_id", "event_type", "event_time", "data"}
        assert hmac.compare_digest(delivery["headers"][SIGNATURE_HEADER], _expected_signature(delivery))
        assert delivery["headers"][SIGNATURE_HEADER] == delivery["headers"][SIGNATURE_HEADER].lower()
    assert deliveries[0]["json"]["data"]["subscription"]["subscription_id"] == sub["subscription_id"]
    event = api.get(f"/events/{deliveries[0]['json']['event_id']}").json()["event"]
    assert json.loads(event["payload"]) == deliveries[0]["json"]
    assert [(w["status"], w["url"]) for w in event["webhooks"]] == [("success", webhook_receiver.url)]
    time.sleep(0.1)
    assert len(webhook_receiver.received) == 2


def test_a_wrong_secret_does_not_verify(api: Api, zoho_sandbox: ZohoSandbox, webhook_receiver: WebhookReceiver) -> None:
    zoho_sandbox.configure(webhook_url=webhook_receiver.url, webhook_secret=SECRET)
    _subscribe(api)
    delivery = webhook_receiver.wait_for(1)[0]
    assert delivery["headers"][SIGNATURE_HEADER] != _expected_signature(delivery, secret="another-secret-123")


def test_base64_encoding_is_configurable(api: Api, zoho_sandbox: ZohoSandbox,
                                         webhook_receiver: WebhookReceiver) -> None:
    zoho_sandbox.configure(webhook_url=webhook_receiver.url, webhook_secret=SECRET, webhook_encoding="base64")
    _subscribe(api)
    delivery = webhook_receiver.wait_for(1)[0]
    assert delivery["headers"][SIGNATURE_HEADER] == _expected_signature(delivery, encoding="base64")


def test_delivered_twice_when_configured(api: Api, zoho_sandbox: ZohoSandbox,
                                         webhook_receiver: WebhookReceiver) -> None:
    zoho_sandbox.configure(webhook_url=webhook_receiver.url, webhook_deliveries=2)
    customer = api.customer()
    invoice = api.invoice(customer["customer_id"])
    deliveries = webhook_receiver.wait_for(2)
    assert zoho_sandbox.wait_for_webhooks()
    assert {d["json"]["event_id"] for d in deliveries} == {deliveries[0]["json"]["event_id"]}
    assert deliveries[0]["json"]["data"]["invoice"]["invoice_id"] == invoice["invoice_id"]
    assert SIGNATURE_HEADER not in deliveries[0]["headers"]  # no secret, no signature
    event = api.get(f"/events/{deliveries[0]['json']['event_id']}").json()["event"]
    assert [w["status"] for w in event["webhooks"]] == ["success", "success"]


def test_late_delivery_and_failure_status(api: Api, zoho_sandbox: ZohoSandbox,
                                          webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.status = 500
    zoho_sandbox.configure(webhook_url=webhook_receiver.url, webhook_delay=0.3)
    customer = api.customer()
    api.invoice(customer["customer_id"])
    event_id = api.get("/events").json()["events"][0]["event_id"]
    assert api.get(f"/events/{event_id}").json()["event"]["webhooks"][0]["status"] == "scheduled"
    assert webhook_receiver.received == []
    assert len(webhook_receiver.wait_for(1, timeout=3)) == 1
    assert zoho_sandbox.wait_for_webhooks()
    assert api.get(f"/events/{event_id}").json()["event"]["webhooks"][0]["status"] == "failure"


def test_unreachable_receiver_is_a_failure(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.configure(webhook_url="http://127.0.0.1:9/nothing-listens", webhook_timeout=1)
    customer = api.customer()
    api.invoice(customer["customer_id"])
    assert zoho_sandbox.wait_for_webhooks()
    event = api.get("/events").json()["events"][0]
    assert api.get(f"/events/{event['event_id']}").json()["event"]["webhooks"][0]["status"] == "failure"


def test_events_are_kept_180_days(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    _subscribe(api)
    events = api.get("/events").json()["events"]
    assert len(events) == 2
    assert [e["event_type"] for e in api.get("/events", params={"event_type": "invoice_created"}).json()["events"]] \
        == ["invoice_created"]
    zoho_sandbox.advance(180 * 86400 - 60)
    api._token = None  # the old token has long expired
    assert len(api.get("/events").json()["events"]) == 2
    zoho_sandbox.advance(120)
    assert api.get("/events").json()["events"] == []
    gone = api.get(f"/events/{events[0]['event_id']}")
    assert (gone.status_code, gone.json()["code"]) == (404, codes.DOES_NOT_EXIST.code)


def test_retention_is_configurable(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.configure(events_retention_days=1)
    customer = api.customer()
    api.invoice(customer["customer_id"])
    zoho_sandbox.advance(86400 + 1)
    api._token = None
    assert api.get("/events").json()["events"] == []
