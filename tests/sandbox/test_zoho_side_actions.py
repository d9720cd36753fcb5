"""Zoho-side actions (actions.py): what Zoho changes by itself, the events it emits, and the modified times the
two-way sync's stale-write guard compares (§3.6-3.10, §7, §12.5, §12.12)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.openapi_support import OpenAPIDocs
from zoho_sync.client import codes
from zoho_sync.sandbox import ZohoSandbox
from zoho_sync.sandbox.errors import ApiError

from .conftest import Api

TODAY = datetime(2025, 3, 15, 10, 0, tzinfo=UTC)
ZOHO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}$")  # "2026-12-03T08:20:01+0000"


@pytest.fixture
def api(api: Api, zoho_sandbox: ZohoSandbox) -> Api:
    zoho_sandbox.set_time(TODAY.timestamp())
    return api


def events(api: Api) -> list[str]:
    """Event types, oldest first."""
    return [e["event_type"] for e in reversed(api.get("/events").json()["events"])]


def last_event(api: Api, docs: OpenAPIDocs, event_type: str) -> dict[str, Any]:
    """The newest event of a type as GET /events/{id} serves it (checked against the documents), payload parsed."""
    listed = api.get("/events", params={"event_type": event_type}).json()["events"]
    assert listed, f"no {event_type} event"
    response = api.get(f"/events/{listed[0]['event_id']}")
    docs.assert_response("GET", "/events/{event_id}", 200, response.json())
    return json.loads(response.json()["event"]["payload"])


def fits(docs: OpenAPIDocs, key: str, entity: dict[str, Any]) -> None:
    """An event's `data.<key>` has the shape GET /<key>s/{id} answers with (Zoho's documents + deviations)."""
    docs.assert_response("GET", f"/{key}s/{entity[f'{key}_id']}", 200, {"code": 0, "message": "success", key: entity})


def get(api: Api, resource: str, record_id: str) -> dict[str, Any]:
    response = api.get(f"/{resource}s/{record_id}")
    assert response.status_code == 200, response.text
    return response.json()[resource]


def refused(call: Any, code: codes.ZohoCode) -> None:
    with pytest.raises(ApiError) as caught:
        call()
    assert caught.value.code is code


# -- payments ----------------------------------------------------------------------------------------------
def test_pay_invoice_in_part_then_in_full(api: Api, zoho_sandbox: ZohoSandbox, openapi_docs: OpenAPIDocs) -> None:
    customer = api.customer()
    invoice = api.invoice(customer["customer_id"], amount=100)
    part = zoho_sandbox.pay_invoice(invoice["invoice_id"], amount=40, reference_number="hp-1")
    assert (part["status"], part["amount"], part["payment_mode"], part["reference_number"]) == (
        "success", 40, "creditcard", "hp-1")
    assert part["customer_id"] == customer["customer_id"]
    assert [(e["invoice_id"], e["amount_applied"], e["balance_amount"]) for e in part["invoices"]] == [
        (invoice["invoice_id"], 40, 60)]
    assert part == get(api, "payment", part["payment_id"])
    after = get(api, "invoice", invoice["invoice_id"])
    assert (after["status"], after["balance"], after["payment_made"]) == ("partially_paid", 60, 40)
    assert after["last_modified_time"] > invoice["last_modified_time"]
    event = last_event(api, openapi_docs, "payment_thankyou")
    assert event["data"]["payment"] == part
    fits(openapi_docs, "payment", event["data"]["payment"])

    rest = zoho_sandbox.pay_invoice(invoice["invoice_id"], payment_mode="autotransaction")
    assert rest["amount"] == 60 and rest["autotransaction"]["gateway_error_message"] == ""
    fits(openapi_docs, "payment", rest)
    paid = get(api, "invoice", invoice["invoice_id"])
    assert (paid["status"], paid["balance"], paid["payment_made"]) == ("paid", 0, 100)
    assert get(api, "customer", customer["customer_id"])["outstanding"] == 0
    listed = api.get("/payments", params={"customer_id": customer["customer_id"]}).json()["payments"]
    assert {p["payment_id"] for p in listed} == {part["payment_id"], rest["payment_id"]}
    assert events(api)[-2:] == ["payment_thankyou", "payment_thankyou"]


def test_pay_invoice_refusals(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    customer = api.customer()
    invoice = api.invoice(customer["customer_id"], amount=50)
    refused(lambda: zoho_sandbox.pay_invoice(invoice["invoice_id"], amount=50.01), codes.PAYMENT_OVER_APPLIED)
    refused(lambda: zoho_sandbox.pay_invoice("903999999999999"), codes.DOES_NOT_EXIST)
    with pytest.raises(ValueError, match="positive"):
        zoho_sandbox.pay_invoice(invoice["invoice_id"], amount=0)
    with pytest.raises(ValueError, match="payment_mode"):
        zoho_sandbox.pay_invoice(invoice["invoice_id"], payment_mode="bitcoin")
    zoho_sandbox.pay_invoice(invoice["invoice_id"])
    refused(lambda: zoho_sandbox.pay_invoice(invoice["invoice_id"]), codes.ACTION_NOT_ALLOWED)  # paid already
    other = api.invoice(customer["customer_id"], amount=20)
    zoho_sandbox.void_invoice(other["invoice_id"])
    refused(lambda: zoho_sandbox.decline_payment(other["invoice_id"]), codes.ACTION_NOT_ALLOWED)  # void


def test_decline_is_a_failed_payment_that_changes_nothing_else(api: Api, zoho_sandbox: ZohoSandbox,
                                                               openapi_docs: OpenAPIDocs) -> None:
    customer = api.customer()
    invoice = api.invoice(customer["customer_id"], amount=80)
    zoho_sandbox.advance(5)
    failed = zoho_sandbox.decline_payment(invoice["invoice_id"], payment_mode="autotransaction")
    assert (failed["status"], failed["amount"], failed["amount_refunded"]) == ("failure", 80, 0)
    assert [(e["invoice_id"], e["amount_applied"]) for e in failed["invoices"]] == [(invoice["invoice_id"], 0)]
    assert "declined" in failed["autotransaction"]["gateway_error_message"]
    assert get(api, "invoice", invoice["invoice_id"]) == invoice  # balance, status and modified time unchanged
    assert get(api, "customer", customer["customer_id"])["outstanding"] == 80
    listed = api.get("/payments", params={"customer_id": customer["customer_id"]}).json()["payments"]
    assert [(p["payment_id"], p["status"]) for p in listed] == [(failed["payment_id"], "failure")]
    event = last_event(api, openapi_docs, "payment_declined")
    assert event["data"]["payment"] == failed
    fits(openapi_docs, "payment", failed)
    refused(lambda: zoho_sandbox.refund_payment(failed["payment_id"]), codes.ACTION_NOT_ALLOWED)


def test_refund_in_part_then_in_full_reopens_the_invoice(api: Api, zoho_sandbox: ZohoSandbox,
                                                          openapi_docs: OpenAPIDocs) -> None:
    customer = api.customer()
    invoice = api.invoice(customer["customer_id"], amount=100)
    payment = zoho_sandbox.pay_invoice(invoice["invoice_id"])
    part = zoho_sandbox.refund_payment(payment["payment_id"], amount=30)
    assert (part["status"], part["amount_refunded"], part["invoices"][0]["amount_applied"]) == ("success", 30, 70)
    assert part["updated_time"] > payment["updated_time"]
    reopened = get(api, "invoice", invoice["invoice_id"])
    assert (reopened["status"], reopened["balance"], reopened["payment_made"]) == ("partially_paid", 30, 70)
    assert last_event(api, openapi_docs, "payment_refunded")["data"]["payment"] == part

    full = zoho_sandbox.refund_payment(payment["payment_id"])
    assert (full["status"], full["amount_refunded"], full["invoices"][0]["invoice_id"]) == (
        "refunded", 100, invoice["invoice_id"])
    fits(openapi_docs, "payment", full)
    sent = get(api, "invoice", invoice["invoice_id"])
    assert (sent["status"], sent["balance"], sent["payment_made"]) == ("sent", 100, 0)
    assert get(api, "customer", customer["customer_id"])["outstanding"] == 100
    assert events(api)[-3:] == ["payment_thankyou", "payment_refunded", "payment_refunded"]
    refused(lambda: zoho_sandbox.refund_payment(payment["payment_id"]), codes.ACTION_NOT_ALLOWED)


def test_refund_takes_the_unapplied_part_first(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    customer = api.customer()
    invoice = api.invoice(customer["customer_id"], amount=100)
    body = {"customer_id": customer["customer_id"], "payment_mode": "cash", "amount": 150,
            "invoices": [{"invoice_id": invoice["invoice_id"], "amount_applied": 100}]}
    payment = api.post("/payments", body).json()["payment"]
    assert get(api, "customer", customer["customer_id"])["unused_credits"] == 50
    with pytest.raises(ApiError):
        zoho_sandbox.refund_payment(payment["payment_id"], amount=150.01)
    zoho_sandbox.refund_payment(payment["payment_id"], amount=50)
    assert get(api, "invoice", invoice["invoice_id"])["status"] == "paid"
    assert get(api, "customer", customer["customer_id"])["unused_credits"] == 0
    zoho_sandbox.refund_payment(payment["payment_id"], amount=20)
    assert get(api, "invoice", invoice["invoice_id"])["balance"] == 20


# -- subscriptions -----------------------------------------------------------------------------------------
def subscribe(api: Api, plan: str = "NET-100", **plan_fields: Any) -> dict[str, Any]:
    customer = api.customer()
    api.plan(plan, price=30, **plan_fields)
    return api.subscription(customer["customer_id"], plan).json()["subscription"]


def test_renewal_moves_the_term_and_raises_its_invoice(api: Api, zoho_sandbox: ZohoSandbox,
                                                        openapi_docs: OpenAPIDocs) -> None:
    sub = subscribe(api)
    zoho_sandbox.advance(31 * 86400)
    api._token = None  # the token expired with the month
    renewed = zoho_sandbox.renew_subscription(sub["subscription_id"])
    assert (renewed["status"], renewed["current_term_starts_at"], renewed["current_term_ends_at"],
            renewed["last_billing_at"], renewed["next_billing_at"]) == (
        "live", "2025-04-15", "2025-05-14", "2025-04-15", "2025-05-15")
    assert renewed["updated_time"] > sub["updated_time"]
    assert renewed == get(api, "subscription", sub["subscription_id"])
    invoices = api.get("/invoices", params={"subscription_id": sub["subscription_id"]}).json()["invoices"]
    assert [(i["invoice_date"], i["total"], i["status"]) for i in invoices] == [
        ("2025-03-15", 30, "overdue"), ("2025-04-15", 30, "sent")]
    assert renewed["child_invoice_id"] == invoices[1]["invoice_id"] != sub["child_invoice_id"]
    assert events(api)[-2:] == ["subscription_renewed", "invoice_created"]
    data = last_event(api, openapi_docs, "subscription_renewed")["data"]["subscription"]
    assert data == renewed and data["customer"]["customer_id"] == data["customer_id"]
    fits(openapi_docs, "subscription", data)
    invoice = last_event(api, openapi_docs, "invoice_created")["data"]["invoice"]
    assert invoice == get(api, "invoice", renewed["child_invoice_id"])
    assert invoice["customer_id"] == sub["customer_id"]
    assert invoice["invoice_items"][0]["description"] == "Charges for this duration (from 2025-04-15 to 2025-05-14)"
    fits(openapi_docs, "invoice", invoice)


def test_renewal_expires_a_subscription_whose_cycles_are_used_up(api: Api, zoho_sandbox: ZohoSandbox,
                                                                 openapi_docs: OpenAPIDocs) -> None:
    sub = subscribe(api, billing_cycles=2)
    assert sub["expires_at"] == "2025-05-14"
    zoho_sandbox.renew_subscription(sub["subscription_id"])
    ended = zoho_sandbox.renew_subscription(sub["subscription_id"])
    assert (ended["status"], ended["expires_at"], ended["next_billing_at"]) == ("expired", "2025-05-14", "")
    assert len(api.get("/invoices", params={"subscription_id": sub["subscription_id"]}).json()["invoices"]) == 2
    assert events(api)[-1] == "subscription_expired"
    assert last_event(api, openapi_docs, "subscription_expired")["data"]["subscription"] == ended
    refused(lambda: zoho_sandbox.renew_subscription(sub["subscription_id"]), codes.ACTION_NOT_ALLOWED)


def test_a_non_renewing_subscription_is_cancelled_when_its_term_ends(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    sub = subscribe(api)
    scheduled = zoho_sandbox.cancel_subscription(sub["subscription_id"], at_end=True)
    assert (scheduled["status"], scheduled["expires_at"]) == ("non_renewing", "2025-04-14")
    ended = zoho_sandbox.renew_subscription(sub["subscription_id"])
    assert (ended["status"], ended["expires_at"]) == ("cancelled", "2025-04-14")
    assert events(api)[-2:] == ["subscription_cancellation_scheduled", "subscription_cancelled"]


def test_cancel_now_is_the_api_cancel(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    sub = subscribe(api)
    cancelled = zoho_sandbox.cancel_subscription(sub["subscription_id"])
    assert (cancelled["status"], cancelled["expires_at"], cancelled["next_billing_at"]) == (
        "cancelled", "2025-03-15", "")
    assert events(api)[-1] == "subscription_cancelled"
    refused(lambda: zoho_sandbox.cancel_subscription(sub["subscription_id"]), codes.ACTION_NOT_ALLOWED)


def test_expire_subscription(api: Api, zoho_sandbox: ZohoSandbox, openapi_docs: OpenAPIDocs) -> None:
    sub = subscribe(api)
    zoho_sandbox.advance(86400)
    api._token = None
    expired = zoho_sandbox.expire_subscription(sub["subscription_id"])
    assert (expired["status"], expired["expires_at"], expired["next_billing_at"]) == ("expired", "2025-03-16", "")
    fits(openapi_docs, "subscription", last_event(api, openapi_docs, "subscription_expired")["data"]["subscription"])
    refused(lambda: zoho_sandbox.expire_subscription(sub["subscription_id"]), codes.ACTION_NOT_ALLOWED)


def test_activate_a_trial_and_a_future_subscription(api: Api, zoho_sandbox: ZohoSandbox,
                                                     openapi_docs: OpenAPIDocs) -> None:
    trial = subscribe(api, "TRIAL-14", trial_period=14, setup_fee=5)
    assert trial["status"] == "trial"
    refused(lambda: zoho_sandbox.renew_subscription(trial["subscription_id"]), codes.ACTION_NOT_ALLOWED)
    zoho_sandbox.advance(3 * 86400)
    api._token = None
    live = zoho_sandbox.activate_subscription(trial["subscription_id"])
    assert (live["status"], live["activated_at"], live["current_term_starts_at"], live["current_term_ends_at"],
            live["next_billing_at"]) == ("live", "2025-03-18", "2025-03-18", "2025-04-17", "2025-04-18")
    [invoice] = api.get("/invoices", params={"subscription_id": trial["subscription_id"]}).json()["invoices"]
    assert (invoice["invoice_date"], invoice["total"], invoice["invoice_id"]) == (
        "2025-03-18", 35, live["child_invoice_id"])  # the setup fee comes with the first term
    assert events(api)[-2:] == ["subscription_activation", "invoice_created"]
    fits(openapi_docs, "subscription", last_event(api, openapi_docs, "subscription_activation")["data"]["subscription"])
    refused(lambda: zoho_sandbox.activate_subscription(trial["subscription_id"]), codes.ACTION_NOT_ALLOWED)

    future = api.subscription(trial["customer_id"], "TRIAL-14", starts_at="2025-06-01").json()["subscription"]
    assert future["status"] == "future"
    assert zoho_sandbox.activate_subscription(future["subscription_id"])["status"] == "live"


# -- invoices, web-app edits, modified times -------------------------------------------------------------
def test_void_invoice_emits_nothing_and_detaches_payments(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    customer = api.customer()
    invoice = api.invoice(customer["customer_id"], amount=100)
    payment = zoho_sandbox.pay_invoice(invoice["invoice_id"], amount=25)
    before = events(api)
    voided = zoho_sandbox.void_invoice(invoice["invoice_id"])
    assert (voided["status"], voided["balance"], voided["payment_made"]) == ("void", 0, 0)
    assert events(api) == before  # §7.1: Zoho has no invoice_voided event
    detached = get(api, "payment", payment["payment_id"])
    assert detached["invoices"] == [] and detached["updated_time"] > payment["updated_time"]
    assert get(api, "customer", customer["customer_id"])["unused_credits"] == 25
    refused(lambda: zoho_sandbox.void_invoice(invoice["invoice_id"]), codes.ACTION_NOT_ALLOWED)


def test_edit_record_changes_fields_and_modified_time_without_events(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    invoice = api.invoice(api.customer()["customer_id"])
    customer = get(api, "customer", invoice["customer_id"])
    before = events(api)
    edited = zoho_sandbox.edit_record("customers", customer["customer_id"], {"phone": "+47 555", "display_name": "B"})
    assert get(api, "customer", customer["customer_id"]) == {**customer, "phone": "+47 555", "display_name": "B",
                                                             "updated_time": edited["updated_time"]}
    assert edited["updated_time"] > customer["updated_time"]
    changed = zoho_sandbox.edit_record("invoices", invoice["invoice_id"], {"reference_number": "typed in Zoho"})
    assert changed["last_modified_time"] > invoice["last_modified_time"]
    assert get(api, "invoice", invoice["invoice_id"])["reference_number"] == "typed in Zoho"
    assert events(api) == before
    for resource, fields in (("customers", {"nickname": "x"}), ("customers", {"customer_id": "1"}),
                             ("customers", {"updated_time": "2030-01-01T00:00:00+0000"}), ("customers", {}),
                             ("invoices", {"_subscription_id": "1"}), ("events", {"event_type": "x"})):
        with pytest.raises(ValueError):
            zoho_sandbox.edit_record(resource, customer["customer_id"] if resource != "invoices"
                                     else invoice["invoice_id"], fields)


def test_delete_record_as_zoho_allows_it(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    customer = api.customer()
    invoice = api.invoice(customer["customer_id"], amount=100)
    payment = zoho_sandbox.pay_invoice(invoice["invoice_id"], amount=60)
    before = events(api)
    refused(lambda: zoho_sandbox.delete_record("customers", customer["customer_id"]), codes.ACTION_NOT_ALLOWED)
    refused(lambda: zoho_sandbox.delete_record("invoices", invoice["invoice_id"]), codes.ACTION_NOT_ALLOWED)
    assert zoho_sandbox.delete_record("payments", payment["payment_id"])["payment_id"] == payment["payment_id"]
    assert api.get(f"/payments/{payment['payment_id']}").status_code == 404
    assert get(api, "invoice", invoice["invoice_id"])["balance"] == 100  # the payment's effect goes with it
    zoho_sandbox.delete_record("invoices", invoice["invoice_id"])
    assert get(api, "customer", customer["customer_id"])["outstanding"] == 0
    zoho_sandbox.delete_record("customers", customer["customer_id"])
    assert api.get(f"/customers/{customer['customer_id']}").json()["code"] == codes.DOES_NOT_EXIST.code
    sub = subscribe(api)
    zoho_sandbox.delete_record("subscriptions", sub["subscription_id"])
    assert api.get(f"/subscriptions/{sub['subscription_id']}").status_code == 404
    assert events(api)[len(before):] == ["subscription_created", "invoice_created"]  # none for the deletions


def test_modified_times_strictly_increase_within_one_second(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    """The clock does not move: each change of a record still gets a later stamp, in Zoho's format."""
    sub = subscribe(api)
    invoice_id = sub["child_invoice_id"]
    stamps = [get(api, "invoice", invoice_id)["last_modified_time"]]
    payment = zoho_sandbox.pay_invoice(invoice_id, amount=10)
    stamps.append(get(api, "invoice", invoice_id)["last_modified_time"])
    zoho_sandbox.pay_invoice(invoice_id, amount=10)
    stamps.append(get(api, "invoice", invoice_id)["last_modified_time"])
    zoho_sandbox.refund_payment(payment["payment_id"], amount=5)
    stamps.append(get(api, "invoice", invoice_id)["last_modified_time"])
    stamps.append(zoho_sandbox.edit_record("invoices", invoice_id, {"notes": "n"})["last_modified_time"])
    assert all(ZOHO_TIME.match(s) for s in stamps) and stamps == sorted(set(stamps))

    times = [sub["updated_time"]]
    edited = zoho_sandbox.edit_record("subscriptions", sub["subscription_id"], {"reference_id": "x"})
    times.append(edited["updated_time"])
    times.append(api.put(f"/subscriptions/{sub['subscription_id']}", {"auto_collect": True}).json()
                 ["subscription"]["updated_time"])
    times.append(zoho_sandbox.renew_subscription(sub["subscription_id"])["updated_time"])
    times.append(zoho_sandbox.cancel_subscription(sub["subscription_id"])["updated_time"])
    assert all(ZOHO_TIME.match(s) for s in times) and times == sorted(set(times))
    refunds = [payment["updated_time"], zoho_sandbox.refund_payment(payment["payment_id"], 1)["updated_time"],
               zoho_sandbox.refund_payment(payment["payment_id"], 1)["updated_time"]]
    assert refunds == sorted(set(refunds))
    zoho_sandbox.advance(60)  # once the clock passes the stamps, they follow the clock again
    later = zoho_sandbox.edit_record("subscriptions", sub["subscription_id"], {"reference_id": "y"})
    assert later["updated_time"] == "2025-03-15T10:01:00+0000"
