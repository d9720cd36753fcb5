"""PUT /payments/{payment_id} in the sandbox, over HTTP: checked as a create, re-applied to the invoices (the old
application reversed, the new one made), over-application refused with nothing changed, and no event."""

from __future__ import annotations

from typing import Any

from zoho_sync.client import codes

from .conftest import Api
from .test_resources import _error


def _pay(api: Api, cid: str, amount: float, *applications: tuple[str, float], **extra: Any) -> dict[str, Any]:
    response = api.post("/payments", {"customer_id": cid, "payment_mode": "cash", "amount": amount,
                                      "reference_number": "pay-1", "description": "At the counter",
                                      "invoices": [{"invoice_id": i, "amount_applied": a} for i, a in applications],
                                      **extra})
    assert response.status_code == 201, response.text
    return response.json()["payment"]


def _update(api: Api, payment: dict[str, Any], amount: float, *applications: tuple[str, float], **extra: Any):
    return api.put(f"/payments/{payment['payment_id']}", {
        "customer_id": payment["customer_id"], "payment_mode": payment["payment_mode"], "amount": amount,
        "invoices": [{"invoice_id": i, "amount_applied": a} for i, a in applications], **extra})


def _state(api: Api, cid: str, *invoice_ids: str) -> tuple:
    invoices = [api.get(f"/invoices/{i}").json()["invoice"] for i in invoice_ids]
    customer = api.get(f"/customers/{cid}").json()["customer"]
    return (tuple((i["status"], i["payment_made"], i["balance"]) for i in invoices),
            (customer["outstanding"], customer["unused_credits"]))


def test_an_update_re_applies_the_payment_and_keeps_what_it_leaves_out(api: Api) -> None:
    cid = api.customer()["customer_id"]
    first, second = api.invoice(cid, amount=100)["invoice_id"], api.invoice(cid, amount=40)["invoice_id"]
    payment = _pay(api, cid, 70, (first, 60))
    assert _state(api, cid, first, second) == ((("partially_paid", 60, 40), ("sent", 0, 40)), (80, 10))
    events = len(api.get("/events").json()["events"])

    # A description only: the same application, nothing moves; the reference left out is kept.
    same = _update(api, payment, 70, (first, 60), description="Corrected")
    assert same.status_code == 200, same.text
    assert (same.json()["payment"]["description"], same.json()["payment"]["reference_number"]) == ("Corrected",
                                                                                                     "pay-1")
    assert _state(api, cid, first, second) == ((("partially_paid", 60, 40), ("sent", 0, 40)), (80, 10))

    # More money, spread over both invoices: the first is paid, the second partly, no credit left.
    more = _update(api, payment, 130, (first, 100), (second, 30))
    assert more.status_code == 200, more.text
    assert [(e["invoice_id"], e["amount_applied"], e["balance_amount"]) for e in more.json()["payment"]["invoices"]] \
        == [(first, 100, 0), (second, 30, 10)]
    assert _state(api, cid, first, second) == ((("paid", 100, 0), ("partially_paid", 30, 10)), (10, 0))

    # Less money, on the second invoice only: the first opens again whole; the rest is credit.
    less = _update(api, payment, 50, (second, 40), date="2026-01-05", reference_number="pay-1b")
    assert less.status_code == 200, less.text
    got = api.get(f"/payments/{payment['payment_id']}").json()["payment"]
    assert (got["amount"], got["date"], got["reference_number"], got["description"]) == (50, "2026-01-05",
                                                                                          "pay-1b", "Corrected")
    assert _state(api, cid, first, second) == ((("sent", 0, 100), ("paid", 40, 0)), (100, 10))
    assert got["updated_time"] >= payment["updated_time"]
    assert len(api.get("/events").json()["events"]) == events, "Zoho documents no event for an edited payment"


def test_an_over_application_is_refused_and_changes_nothing(api: Api, zoho_sandbox) -> None:
    cid = api.customer()["customer_id"]
    invoice = api.invoice(cid, amount=100)["invoice_id"]
    payment = _pay(api, cid, 40, (invoice, 40))
    zoho_sandbox.pay_invoice(invoice, amount=50)  # paid in Zoho meanwhile: 10 left
    before = (_state(api, cid, invoice), api.get(f"/payments/{payment['payment_id']}").json()["payment"])

    # 40 applied here already + a balance of 10: 50 at most.
    _error(_update(api, payment, 60, (invoice, 60)), codes.PAYMENT_OVER_APPLIED)
    _error(_update(api, payment, 30, (invoice, 40)), codes.PAYMENT_OVER_APPLIED)  # more applied than paid
    assert _error(_update(api, payment, 40, (invoice, 40), payment_mode="bitcoin"),
                  codes.INVALID_VALUE).endswith("payment_mode")
    assert _error(api.put(f"/payments/{payment['payment_id']}", {
        "customer_id": cid, "payment_mode": "cash", "amount": 40}), codes.INVALID_VALUE).endswith("invoices")
    other = api.customer("Other Ltd")["customer_id"]
    assert _error(_update(api, {**payment, "customer_id": other}, 40, (invoice, 40)),
                  codes.INVALID_VALUE).endswith("customer_id")
    assert (_state(api, cid, invoice), api.get(f"/payments/{payment['payment_id']}").json()["payment"]) == before

    ok = _update(api, payment, 50, (invoice, 50))  # exactly the room there is
    assert ok.status_code == 200, ok.text
    assert _state(api, cid, invoice) == ((("paid", 100, 0),), (0, 0))


def test_a_refunded_payment_is_not_edited(api: Api, zoho_sandbox) -> None:
    cid = api.customer()["customer_id"]
    invoice = api.invoice(cid, amount=100)["invoice_id"]
    payment = _pay(api, cid, 40, (invoice, 40))
    zoho_sandbox.refund_payment(payment["payment_id"], amount=10)
    _error(_update(api, payment, 40, (invoice, 30)), codes.ACTION_NOT_ALLOWED)
