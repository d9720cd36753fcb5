"""Subscriptions: first invoice at creation, future, back-dated, trial, cancel, filters (§3.6)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from zoho_sync.client import codes
from zoho_sync.sandbox import ZohoSandbox

from .conftest import Api

TODAY = datetime(2025, 3, 15, 10, 0, tzinfo=UTC)


@pytest.fixture
def setup(api: Api, zoho_sandbox: ZohoSandbox) -> tuple[Api, str]:
    zoho_sandbox.set_time(TODAY.timestamp())
    customer = api.customer()
    api.plan("NET-100", price=30)
    return api, customer["customer_id"]


def _events(api: Api) -> list[str]:
    return [e["event_type"] for e in reversed(api.get("/events").json()["events"])]


def _invoices(api: Api, sub_id: str) -> list[dict]:
    return api.get("/invoices", params={"subscription_id": sub_id}).json()["invoices"]


def test_live_subscription_raises_its_first_invoice(setup: tuple[Api, str]) -> None:
    api, cid = setup
    response = api.subscription(cid, "NET-100", reference_id="cs-42", plan={"plan_code": "NET-100", "quantity": 2})
    assert response.status_code == 201
    sub = response.json()["subscription"]
    assert sub["status"] == "live" and sub["customer_id"] == cid and sub["reference_id"] == "cs-42"
    assert (sub["current_term_starts_at"], sub["current_term_ends_at"], sub["next_billing_at"]) == (
        "2025-03-15", "2025-04-14", "2025-04-15")
    assert (sub["interval"], sub["interval_unit"], sub["amount"]) == (1, "months", 60)
    assert sub["plan"]["plan_code"] == "NET-100" and sub["plan"]["quantity"] == 2
    assert sub["customer"]["customer_id"] == cid and sub["auto_collect"] is False
    [invoice] = _invoices(api, sub["subscription_id"])
    assert (invoice["total"], invoice["invoice_date"], invoice["status"]) == (60, "2025-03-15", "sent")
    assert sub["child_invoice_id"] == invoice["invoice_id"]
    assert _events(api) == ["subscription_created", "invoice_created"]


def test_starts_at_today_is_the_same_as_absent(setup: tuple[Api, str]) -> None:
    api, cid = setup
    sub = api.subscription(cid, "NET-100", starts_at="2025-03-15").json()["subscription"]
    assert sub["status"] == "live" and len(_invoices(api, sub["subscription_id"])) == 1


def test_future_start_has_no_invoice(setup: tuple[Api, str]) -> None:
    api, cid = setup
    sub = api.subscription(cid, "NET-100", starts_at="2025-04-01").json()["subscription"]
    assert (sub["status"], sub["next_billing_at"], sub["current_term_starts_at"]) == ("future", "2025-04-01",
                                                                                       "2025-04-01")
    assert _invoices(api, sub["subscription_id"]) == []
    assert _events(api) == ["subscription_created"]


def test_backdated_continues_the_cycle_without_invoices(setup: tuple[Api, str]) -> None:
    api, cid = setup
    sub = api.subscription(cid, "NET-100", starts_at="2025-01-31").json()["subscription"]
    assert sub["status"] == "live"
    assert (sub["current_term_starts_at"], sub["current_term_ends_at"], sub["next_billing_at"]) == (
        "2025-02-28", "2025-03-30", "2025-03-31")
    assert _invoices(api, sub["subscription_id"]) == []


def test_backdated_invoices_only_on_request_and_without_events(setup: tuple[Api, str]) -> None:
    api, cid = setup
    sub = api.subscription(cid, "NET-100", starts_at="2025-01-31", create_backdated_invoice=True).json()
    invoices = _invoices(api, sub["subscription"]["subscription_id"])
    assert [i["invoice_date"] for i in invoices] == ["2025-01-31", "2025-02-28"]
    assert _events(api) == ["subscription_created"]  # §7.1: no events for back-dated actions


def test_trial_plan_starts_in_trial(setup: tuple[Api, str]) -> None:
    api, cid = setup
    api.plan("TRIAL-14", price=10, trial_period=14)
    sub = api.subscription(cid, "TRIAL-14").json()["subscription"]
    assert (sub["status"], sub["next_billing_at"]) == ("trial", "2025-03-29")
    assert _invoices(api, sub["subscription_id"]) == []


def test_setup_fee_and_price_override_on_first_invoice(setup: tuple[Api, str]) -> None:
    api, cid = setup
    api.plan("FEE", price=20, setup_fee=50)
    sub = api.subscription(cid, "FEE", plan={"plan_code": "FEE", "price": 25}).json()["subscription"]
    detail = api.get(f"/invoices/{sub['child_invoice_id']}").json()["invoice"]
    assert [(i["name"], i["price"]) for i in detail["invoice_items"]] == [("Plan FEE", 25), ("Setup Fee", 50)]
    assert detail["total"] == 75


def test_cancel_at_term_end_then_now(setup: tuple[Api, str]) -> None:
    api, cid = setup
    sub_id = api.subscription(cid, "NET-100").json()["subscription"]["subscription_id"]
    at_end = api.post(f"/subscriptions/{sub_id}/cancel", params={"cancel_at_end": "true"}).json()["subscription"]
    assert (at_end["status"], at_end["expires_at"], at_end["end_of_term"]) == ("non_renewing", "2025-04-14", True)
    now = api.post(f"/subscriptions/{sub_id}/cancel", params={"cancel_at_end": "false"}).json()["subscription"]
    assert (now["status"], now["expires_at"]) == ("cancelled", "2025-03-15")
    again = api.post(f"/subscriptions/{sub_id}/cancel")
    assert again.json()["code"] == codes.ACTION_NOT_ALLOWED.code
    assert _events(api)[-2:] == ["subscription_cancellation_scheduled", "subscription_cancelled"]


def test_list_filters(setup: tuple[Api, str]) -> None:
    api, cid = setup
    other = api.customer("Other Ltd")["customer_id"]
    live = api.subscription(cid, "NET-100", reference_id="cs-1").json()["subscription"]["subscription_id"]
    api.subscription(cid, "NET-100", reference_id="cs-2", starts_at="2025-05-01")
    api.subscription(other, "NET-100", reference_id="cs-3")
    api.post(f"/subscriptions/{live}/cancel")

    def refs(**query: str) -> list[str]:
        return [s["reference_id"] for s in api.get("/subscriptions", params=query).json()["subscriptions"]]

    assert refs(customer_id=cid) == ["cs-1", "cs-2"]
    assert refs(filter_by="SubscriptionStatus.LIVE") == ["cs-3"]
    assert refs(filter_by="SubscriptionStatus.FUTURE") == ["cs-2"]
    assert refs(filter_by="SubscriptionStatus.CANCELLED", customer_id=cid) == ["cs-1"]
    assert refs(reference_contains="CS-") == ["cs-1", "cs-2", "cs-3"]
    assert api.get("/subscriptions", params={"filter_by": "Status.LIVE"}).status_code == 400


def test_validation(setup: tuple[Api, str]) -> None:
    api, cid = setup
    cases = [({"plan": {"plan_code": "NET-100"}}, codes.INVALID_VALUE, "customer_id"),
             ({"customer_id": "1", "plan": {"plan_code": "NET-100"}}, codes.INVALID_VALUE, "customer_id"),
             ({"customer_id": cid}, codes.INVALID_VALUE, "plan"),
             ({"customer_id": cid, "plan": {"plan_code": "NOPE"}}, codes.INVALID_PLAN_CODE, "NOPE"),
             ({"customer_id": cid, "plan": {"plan_code": "NET-100"}, "starts_at": "15-03-2025"}, codes.INVALID_VALUE,
              "starts_at"),
             ({"customer_id": cid, "plan": {"plan_code": "NET-100", "quantity": 0}}, codes.INVALID_VALUE, "quantity")]
    for body, row, text in cases:
        response = api.post("/subscriptions", body)
        assert (response.status_code, response.json()["code"]) == (row.http_status, row.code), body
        assert text in response.json()["message"]
    assert api.get("/subscriptions").json()["subscriptions"] == []


def test_inline_customer_and_plan_update(setup: tuple[Api, str]) -> None:
    api, _ = setup
    api.plan("NET-500", price=90)
    sub = api.post("/subscriptions", {"customer": {"display_name": "Inline Ltd", "email": "in@line.test"},
                                      "plan": {"plan_code": "NET-100"}}).json()["subscription"]
    assert sub["customer"]["display_name"] == "Inline Ltd"
    updated = api.put(f"/subscriptions/{sub['subscription_id']}", {"plan": {"plan_code": "NET-500"}}).json()
    assert (updated["subscription"]["amount"], updated["subscription"]["plan"]["plan_code"]) == (90, "NET-500")
    assert _events(api)[-1] == "subscription_upgraded"
