"""Credit notes and refunds in the sandbox (credit_notes.py, refunds.py; zoho-billing-api.md §3.8, §3.9): every
endpoint, the refusals, the balances they move, their events and Zoho-side actions, each body checked against
Zoho's OpenAPI documents (with tests/sandbox/openapi_deviations.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.openapi_support import OpenAPIDocs
from zoho_sync.client import codes
from zoho_sync.sandbox import ZohoSandbox
from zoho_sync.sandbox.errors import ApiError

from .conftest import Api

NOTE = "/creditnotes/{creditnote_id}"


def check(docs: OpenAPIDocs, response: requests.Response, method: str, template: str, status: int,
          code: codes.ZohoCode | None = None) -> dict[str, Any]:
    """The answer has `status`, fits the documents and, for an error, carries `code`."""
    assert response.status_code == status, response.text
    body = response.json()
    docs.assert_response(method, template, status, body)
    if code is not None:
        assert body["code"] == code.code, body
    return body


def note_body(customer_id: str, price: float = 50, quantity: float = 1, **fields: Any) -> dict[str, Any]:
    return {"customer_id": customer_id, "date": "2025-03-15",
            "creditnote_items": [{"code": "NET-100", "quantity": quantity, "price": price,
                                  "description": "Goodwill"}], **fields}


def create(api: Api, docs: OpenAPIDocs, body: dict[str, Any], **params: str) -> dict[str, Any]:
    docs.assert_request("POST", "/creditnotes", body)
    return check(docs, api.post("/creditnotes", body, params=params), "POST", "/creditnotes", 201)["credit_note"]


def get(api: Api, resource: str, record_id: str) -> dict[str, Any]:
    response = api.get(f"/{resource.replace('_', '')}s/{record_id}")
    assert response.status_code == 200, response.text
    return response.json()[resource]


def money(api: Api, customer_id: str) -> tuple[float, float]:
    """The customer's (outstanding, unused_credits)."""
    customer = get(api, "customer", customer_id)
    return customer["outstanding"], customer["unused_credits"]


def events(api: Api) -> list[str]:
    return [e["event_type"] for e in reversed(api.get("/events").json()["events"])]


def last_event(api: Api, event_type: str) -> dict[str, Any]:
    listed = api.get("/events", params={"event_type": event_type}).json()["events"]
    assert listed, f"no {event_type} event"
    return json.loads(api.get(f"/events/{listed[0]['event_id']}").json()["event"]["payload"])


def pay(api: Api, customer_id: str, invoice_id: str, amount: float, applied: float) -> dict[str, Any]:
    body = {"customer_id": customer_id, "payment_mode": "banktransfer", "amount": amount, "reference_number": "p-1",
            "invoices": [{"invoice_id": invoice_id, "amount_applied": applied}]}
    response = api.post("/payments", body)
    assert response.status_code == 201, response.text
    return response.json()["payment"]


# -- create, get, list -----------------------------------------------------------------------------------------
def test_create_get_and_list(api: Api, openapi_docs: OpenAPIDocs) -> None:
    customer_id = api.customer()["customer_id"]
    api.plan("NET-100")
    first = create(api, openapi_docs, note_body(customer_id, price=20, quantity=2.5, reference_number="cn-1"))
    assert {k: first[k] for k in ("creditnote_number", "status", "total", "balance", "date", "reference_number",
                                  "payment_id", "invoices")} == {
        "creditnote_number": "CN-00001", "status": "open", "total": 50, "balance": 50, "date": "2025-03-15",
        "reference_number": "cn-1", "payment_id": "", "invoices": []}
    item = first["creditnote_items"][0]
    assert (item["code"], item["name"], item["quantity"], item["price"], item["item_total"]) == (
        "NET-100", "Plan NET-100", 2.5, 20, 50)
    assert first["created_time"] == first["updated_time"]
    assert money(api, customer_id) == (0, 50)
    second = create(api, openapi_docs, note_body(customer_id, price=10))
    assert second["creditnote_number"] == "CN-00002"

    got = check(openapi_docs, api.get(f"/creditnotes/{first['creditnote_id']}"), "GET", NOTE, 200)["credit_note"]
    assert got == first
    check(openapi_docs, api.get("/creditnotes/903999999999999"), "GET", NOTE, 404, codes.DOES_NOT_EXIST)

    listed = check(openapi_docs, api.get("/creditnotes", params={"creditnote_number": "CN-00002"}),
                   "GET", "/creditnotes", 200)
    assert [r["creditnote_id"] for r in listed["creditnotes"]] == [second["creditnote_id"]]
    assert listed["page_context"] == {"page": 1, "per_page": 200, "has_more_page": False}
    other = api.customer("Other Ltd")["customer_id"]
    create(api, openapi_docs, note_body(other))
    mine = api.get("/creditnotes", params={"customer_id": customer_id, "per_page": "1"}).json()
    assert ([r["creditnote_id"] for r in mine["creditnotes"]], mine["page_context"]["has_more_page"]) == (
        [first["creditnote_id"]], True)
    by_reference = api.get("/creditnotes", params={"reference_number": "cn-1"}).json()["creditnotes"]
    assert [r["creditnote_id"] for r in by_reference] == [first["creditnote_id"]]


def test_a_chosen_number_needs_the_flag_and_is_unique(api: Api, openapi_docs: OpenAPIDocs) -> None:
    customer_id = api.customer()["customer_id"]
    ignored = create(api, openapi_docs, note_body(customer_id, creditnote_number="LOCAL-1"))
    assert ignored["creditnote_number"] == "CN-00001"  # without the flag Zoho numbers it
    mine = create(api, openapi_docs, note_body(customer_id, creditnote_number="LOCAL-1",
                                               ignore_auto_number_generation=True))
    assert mine["creditnote_number"] == "LOCAL-1"
    by_query = create(api, openapi_docs, note_body(customer_id, creditnote_number="LOCAL-2"),
                      ignore_auto_number_generation="true")
    assert by_query["creditnote_number"] == "LOCAL-2"
    again = api.post("/creditnotes", note_body(customer_id, creditnote_number="LOCAL-1",
                                               ignore_auto_number_generation=True))
    body = check(openapi_docs, again, "POST", "/creditnotes", 400, codes.DUPLICATE_CREDITNOTE_NUMBER)
    assert "LOCAL-1" in body["message"]
    no_number = api.post("/creditnotes", note_body(customer_id, ignore_auto_number_generation=True))
    check(openapi_docs, no_number, "POST", "/creditnotes", 400, codes.INVALID_VALUE)
    assert len(api.get("/creditnotes").json()["creditnotes"]) == 3
    assert money(api, customer_id) == (0, 150)


@pytest.mark.parametrize(("change", "field"), [
    ({"customer_id": None}, "customer_id"),
    ({"customer_id": "903999999999999"}, "customer_id"),
    ({"creditnote_items": []}, "creditnote_items"),
    ({"creditnote_items": [{"quantity": 1, "price": 5}]}, "code"),
    ({"creditnote_items": [{"code": "X", "quantity": "1", "price": 5}]}, "quantity"),
    ({"creditnote_items": [{"code": "X", "quantity": 1, "price": -5}]}, "price"),
    ({"creditnote_items": [{"code": "X", "quantity": 1, "price": 0}]}, "creditnote_items"),
    ({"date": "15/03/2025"}, "date"),
    ({"invoices": "all"}, "invoices"),
    ({"invoice_id": "903999999999999"}, "invoice_id"),
])
def test_bad_bodies_are_refused_and_store_nothing(api: Api, openapi_docs: OpenAPIDocs, change: dict[str, Any],
                                                   field: str) -> None:
    customer_id = api.customer()["customer_id"]
    body = check(openapi_docs, api.post("/creditnotes", {**note_body(customer_id), **change}),
                 "POST", "/creditnotes", 400, codes.INVALID_VALUE)
    assert body["message"] == f"Invalid value passed for {field}"
    assert api.get("/creditnotes").json()["creditnotes"] == []
    assert money(api, customer_id) == (0, 0)


# -- applying credit to invoices ---------------------------------------------------------------------------------
def test_apply_credits_to_invoices(api: Api, openapi_docs: OpenAPIDocs) -> None:
    customer_id = api.customer()["customer_id"]
    first, second = api.invoice(customer_id, amount=100), api.invoice(customer_id, amount=20)
    note = create(api, openapi_docs, note_body(customer_id, price=60))
    path = f"/creditnotes/{note['creditnote_id']}/invoices"
    apply = {"invoices": [{"invoice_id": first["invoice_id"], "amount_applied": 30},
                          {"invoice_id": second["invoice_id"], "amount_applied": 20}]}
    openapi_docs.assert_request("POST", f"{NOTE}/invoices", apply)
    body = check(openapi_docs, api.post(path, apply), "POST", f"{NOTE}/invoices", 200)
    assert body["invoices"] == [{"invoice_id": first["invoice_id"], "amount_applied": 30},
                                {"invoice_id": second["invoice_id"], "amount_applied": 20}]
    invoice = get(api, "invoice", first["invoice_id"])
    assert (invoice["credits_applied"], invoice["balance"], invoice["status"]) == (30, 70, "partially_paid")
    invoice = get(api, "invoice", second["invoice_id"])
    assert (invoice["credits_applied"], invoice["balance"], invoice["status"]) == (20, 0, "paid")
    note_now = get(api, "credit_note", note["creditnote_id"])
    assert (note_now["balance"], note_now["status"]) == (10, "open")
    assert note_now["invoices"] == [
        {"invoice_id": first["invoice_id"], "invoice_number": first["invoice_number"], "amount": 30},
        {"invoice_id": second["invoice_id"], "invoice_number": second["invoice_number"], "amount": 20}]
    assert note_now["updated_time"] > note["updated_time"]
    assert money(api, customer_id) == (70, 10)

    over_note = api.post(path, {"invoices": [{"invoice_id": first["invoice_id"], "amount_applied": 10.01}]})
    check(openapi_docs, over_note, "POST", f"{NOTE}/invoices", 400, codes.CREDIT_OVER_APPLIED)
    third = api.invoice(customer_id, amount=5)
    over_invoice = api.post(path, {"invoices": [{"invoice_id": third["invoice_id"], "amount_applied": 6}]})
    check(openapi_docs, over_invoice, "POST", f"{NOTE}/invoices", 400, codes.CREDIT_OVER_APPLIED)
    assert (get(api, "credit_note", note["creditnote_id"])["balance"], money(api, customer_id)) == (10, (75, 10))

    api.post(path, {"invoices": [{"invoice_id": first["invoice_id"], "amount_applied": 10}]})
    closed = get(api, "credit_note", note["creditnote_id"])
    assert (closed["status"], closed["balance"], closed["invoices"][0]["amount"]) == ("closed", 0, 40)
    check(openapi_docs, api.post(path, {"invoices": [{"invoice_id": third["invoice_id"], "amount_applied": 1}]}),
          "POST", f"{NOTE}/invoices", 400, codes.CREDIT_OVER_APPLIED)


def test_applying_is_refused_for_other_customers_void_invoices_and_bad_bodies(api: Api,
                                                                             openapi_docs: OpenAPIDocs) -> None:
    customer_id = api.customer()["customer_id"]
    note = create(api, openapi_docs, note_body(customer_id))
    path = f"/creditnotes/{note['creditnote_id']}/invoices"
    theirs = api.invoice(api.customer("Other Ltd")["customer_id"])
    for body, code in [({"invoices": [{"invoice_id": theirs["invoice_id"], "amount_applied": 1}]}, codes.INVALID_VALUE),
                       ({}, codes.INVALID_VALUE), ({"invoices": []}, codes.INVALID_VALUE)]:
        check(openapi_docs, api.post(path, body), "POST", f"{NOTE}/invoices", 400, code)
    void = api.invoice(customer_id)
    api.post(f"/invoices/{void['invoice_id']}/void")
    check(openapi_docs, api.post(path, {"invoices": [{"invoice_id": void["invoice_id"], "amount_applied": 1}]}),
          "POST", f"{NOTE}/invoices", 400, codes.ACTION_NOT_ALLOWED)
    zero = api.invoice(customer_id)
    check(openapi_docs, api.post(path, {"invoices": [{"invoice_id": zero["invoice_id"], "amount_applied": 0}]}),
          "POST", f"{NOTE}/invoices", 400, codes.INVALID_VALUE)
    check(openapi_docs, api.post("/creditnotes/903999999999999/invoices", {"invoices": []}),
          "POST", f"{NOTE}/invoices", 404, codes.DOES_NOT_EXIST)


def test_create_applied_to_an_invoice(api: Api, openapi_docs: OpenAPIDocs) -> None:
    customer_id = api.customer()["customer_id"]
    invoice = api.invoice(customer_id, amount=40)
    note = create(api, openapi_docs, note_body(customer_id, price=40, invoice_id=invoice["invoice_id"]))
    assert (note["status"], note["balance"], note["invoices"][0]["amount"]) == ("closed", 0, 40)
    assert get(api, "invoice", invoice["invoice_id"])["status"] == "paid"
    assert money(api, customer_id) == (0, 0)
    other = api.invoice(customer_id, amount=100)
    split = create(api, openapi_docs, note_body(customer_id, price=30, invoices=[
        {"invoice_id": other["invoice_id"], "amount_applied": 25}]))
    assert (split["balance"], get(api, "invoice", other["invoice_id"])["balance"]) == (5, 75)
    too_much = api.post("/creditnotes", note_body(customer_id, price=80, invoice_id=other["invoice_id"]))
    check(openapi_docs, too_much, "POST", "/creditnotes", 400, codes.CREDIT_OVER_APPLIED)
    above_total = api.post("/creditnotes", note_body(customer_id, price=10, invoices=[
        {"invoice_id": other["invoice_id"], "amount_applied": 11}]))
    check(openapi_docs, above_total, "POST", "/creditnotes", 400, codes.CREDIT_OVER_APPLIED)
    assert len(api.get("/creditnotes").json()["creditnotes"]) == 2
    assert money(api, customer_id) == (75, 5)


def test_voiding_an_invoice_gives_its_credits_back(api: Api, openapi_docs: OpenAPIDocs) -> None:
    customer_id = api.customer()["customer_id"]
    invoice = api.invoice(customer_id, amount=100)
    note = create(api, openapi_docs, note_body(customer_id, price=30, invoice_id=invoice["invoice_id"]))
    pay(api, customer_id, invoice["invoice_id"], 50, 50)
    assert money(api, customer_id) == (20, 0)
    api.post(f"/invoices/{invoice['invoice_id']}/void")
    voided = get(api, "invoice", invoice["invoice_id"])
    assert (voided["status"], voided["balance"], voided["credits_applied"]) == ("void", 0, 0)
    back = get(api, "credit_note", note["creditnote_id"])
    assert (back["status"], back["balance"], back["invoices"]) == ("open", 30, [])
    assert money(api, customer_id) == (0, 80)


# -- void, converttoopen, delete ----------------------------------------------------------------------------------
def test_void_and_convert_to_open(api: Api, openapi_docs: OpenAPIDocs) -> None:
    customer_id = api.customer()["customer_id"]
    note = create(api, openapi_docs, note_body(customer_id, price=50))
    path = f"/creditnotes/{note['creditnote_id']}"
    body = check(openapi_docs, api.post(f"{path}/void"), "POST", f"{NOTE}/void", 200)
    assert body["message"] == "The credit note has been marked as void."
    void = get(api, "credit_note", note["creditnote_id"])
    assert (void["status"], void["balance"], money(api, customer_id)) == ("void", 0, (0, 0))
    check(openapi_docs, api.post(f"{path}/void"), "POST", f"{NOTE}/void", 400, codes.ACTION_NOT_ALLOWED)
    invoice = api.invoice(customer_id)
    check(openapi_docs, api.post(f"{path}/invoices", {"invoices": [{"invoice_id": invoice["invoice_id"],
                                                                     "amount_applied": 1}]}),
          "POST", f"{NOTE}/invoices", 400, codes.ACTION_NOT_ALLOWED)
    check(openapi_docs, api.post(f"{path}/converttoopen"), "POST", f"{NOTE}/converttoopen", 200)
    reopened = get(api, "credit_note", note["creditnote_id"])
    assert (reopened["status"], reopened["balance"], money(api, customer_id)) == ("open", 50, (100, 50))
    check(openapi_docs, api.post(f"{path}/converttoopen"), "POST", f"{NOTE}/converttoopen", 400,
          codes.ACTION_NOT_ALLOWED)
    api.post(f"{path}/invoices", {"invoices": [{"invoice_id": invoice["invoice_id"], "amount_applied": 1}]})
    check(openapi_docs, api.post(f"{path}/void"), "POST", f"{NOTE}/void", 400, codes.ACTION_NOT_ALLOWED)
    check(openapi_docs, api.post("/creditnotes/903999999999999/void"), "POST", f"{NOTE}/void", 404)
    check(openapi_docs, api.post("/creditnotes/903999999999999/converttoopen"), "POST", f"{NOTE}/converttoopen", 404)


def test_delete(api: Api, openapi_docs: OpenAPIDocs) -> None:
    customer_id = api.customer()["customer_id"]
    invoice = api.invoice(customer_id, amount=100)
    note = create(api, openapi_docs, note_body(customer_id, price=50, invoices=[
        {"invoice_id": invoice["invoice_id"], "amount_applied": 40}]))
    body = check(openapi_docs, api.delete(f"/creditnotes/{note['creditnote_id']}"), "DELETE", NOTE, 200)
    assert body == {"code": 0, "message": "The credit note has been deleted."}
    check(openapi_docs, api.get(f"/creditnotes/{note['creditnote_id']}"), "GET", NOTE, 404)
    back = get(api, "invoice", invoice["invoice_id"])
    assert (back["balance"], back["credits_applied"], back["status"]) == (100, 0, "sent")
    assert money(api, customer_id) == (100, 0)
    check(openapi_docs, api.delete(f"/creditnotes/{note['creditnote_id']}"), "DELETE", NOTE, 404)
    refunded = create(api, openapi_docs, note_body(customer_id, price=10))
    api.post(f"/creditnotes/{refunded['creditnote_id']}/refunds", {"amount": 5})
    check(openapi_docs, api.delete(f"/creditnotes/{refunded['creditnote_id']}"), "DELETE", NOTE, 400,
          codes.ACTION_NOT_ALLOWED)


# -- refunds ---------------------------------------------------------------------------------------------------------
def test_refund_a_credit_note(api: Api, openapi_docs: OpenAPIDocs, zoho_sandbox: ZohoSandbox) -> None:
    customer_id = api.customer()["customer_id"]
    note = create(api, openapi_docs, note_body(customer_id, price=50))
    path = f"/creditnotes/{note['creditnote_id']}/refunds"
    request = {"amount": 20, "description": "refund-7", "refund_mode": "banktransfer", "reference_number": "r-7",
               "date": "2025-03-16"}
    openapi_docs.assert_request("POST", f"{NOTE}/refunds", request)
    refund = check(openapi_docs, api.post(path, request), "POST", f"{NOTE}/refunds", 201)["refund"]
    assert {k: refund[k] for k in ("creditnote_id", "payment_id", "amount", "date", "description",
                                   "reference_number", "refund_mode", "status", "customer_id")} == {
        "creditnote_id": note["creditnote_id"], "payment_id": "", "amount": 20, "date": "2025-03-16",
        "description": "refund-7", "reference_number": "r-7", "refund_mode": "banktransfer", "status": "success",
        "customer_id": customer_id}
    assert refund["creditnote"] == {"creditnote_id": note["creditnote_id"], "creditnote_number": "CN-00001",
                                    "date": "2025-03-15", "amount": 50, "refund_amount": 20, "balance_amount": 30}
    assert (get(api, "credit_note", note["creditnote_id"])["balance"], money(api, customer_id)) == (30, (0, 30))
    got = check(openapi_docs, api.get(f"/creditnotes/refunds/{refund['refund_id']}"),
                "GET", "/creditnotes/refunds/{refund_id}", 200)["refund"]
    assert got == refund
    check(openapi_docs, api.get("/creditnotes/refunds/903999999999999"), "GET", "/creditnotes/refunds/{refund_id}",
          404, codes.DOES_NOT_EXIST)

    bad = ({"amount": 30.01}, {}, {"amount": 0}, {"amount": 5, "refund_mode": "gold"}, {"amount": 5, "date": "x"})
    for body in bad:
        check(openapi_docs, api.post(path, body), "POST", f"{NOTE}/refunds", 400, codes.INVALID_VALUE)
    rest = check(openapi_docs, api.post(path, {"amount": 30}), "POST", f"{NOTE}/refunds", 201)["refund"]
    assert (rest["refund_mode"], rest["date"], rest["description"]) == ("cash", zoho_sandbox.store.today().isoformat(),
                                                                         "")
    assert get(api, "credit_note", note["creditnote_id"])["status"] == "closed"
    check(openapi_docs, api.post("/creditnotes/903999999999999/refunds", {"amount": 1}), "POST", f"{NOTE}/refunds", 404)
    void = create(api, openapi_docs, note_body(customer_id, price=5))
    api.post(f"/creditnotes/{void['creditnote_id']}/void")
    check(openapi_docs, api.post(f"/creditnotes/{void['creditnote_id']}/refunds", {"amount": 1}),
          "POST", f"{NOTE}/refunds", 400, codes.ACTION_NOT_ALLOWED)

    listed = check(openapi_docs, api.get("/creditnotes/refunds", params={"creditnote_id": note["creditnote_id"]}),
                   "GET", "/creditnotes/refunds", 200)
    assert [r["refund_id"] for r in listed["refunds"]] == [refund["refund_id"], rest["refund_id"]]
    assert listed["refunds"][0]["creditnote"]["balance_amount"] == 0  # the credit note's balance now
    assert api.get("/creditnotes/refunds", params={"customer_id": "903999999999999"}).json()["refunds"] == []


def test_refund_a_payment(api: Api, openapi_docs: OpenAPIDocs) -> None:
    customer_id = api.customer()["customer_id"]
    invoice = api.invoice(customer_id, amount=100)
    payment = pay(api, customer_id, invoice["invoice_id"], 120, 100)
    assert money(api, customer_id) == (0, 20)
    path, template = f"/payments/{payment['payment_id']}/refunds", "/payments/{payment_id}/refunds"
    request = {"amount": 50, "description": "refund-9"}
    openapi_docs.assert_request("POST", template, request)
    refund = check(openapi_docs, api.post(path, request), "POST", template, 201)["refund"]
    assert (refund["payment_id"], refund["amount"], refund["refund_mode"], refund["description"]) == (
        payment["payment_id"], 50, "banktransfer", "refund-9")
    refunded = get(api, "payment", payment["payment_id"])
    assert (refunded["amount_refunded"], refunded["status"], refunded["invoices"][0]["amount_applied"]) == (
        50, "success", 70)
    assert get(api, "invoice", invoice["invoice_id"])["balance"] == 30  # the unapplied 20 went first, then 30
    assert money(api, customer_id) == (30, 0)
    note = get(api, "credit_note", refund["creditnote_id"])
    assert {k: note[k] for k in ("payment_id", "status", "total", "balance", "customer_id")} == {
        "payment_id": payment["payment_id"], "status": "closed", "total": 50, "balance": 0,
        "customer_id": customer_id}
    assert refund["creditnote"]["creditnote_number"] == note["creditnote_number"]
    found = api.get("/creditnotes/refunds", params={"payment_id": payment["payment_id"]}).json()["refunds"]
    assert [r["refund_id"] for r in found] == [refund["refund_id"]]
    assert events(api)[-1] == "payment_refunded" and "creditnote_added" not in events(api)
    assert last_event(api, "payment_refunded")["data"]["payment"]["amount_refunded"] == 50

    check(openapi_docs, api.post(path, {"amount": 70.01}), "POST", template, 400, codes.INVALID_VALUE)
    check(openapi_docs, api.post(path, {"amount": 5, "refund_mode": "gold"}), "POST", template, 400,
          codes.INVALID_VALUE)
    assert get(api, "payment", payment["payment_id"])["amount_refunded"] == 50  # refused: nothing moved
    check(openapi_docs, api.post(path, {"amount": 70}), "POST", template, 201)
    assert get(api, "payment", payment["payment_id"])["status"] == "refunded"
    check(openapi_docs, api.post(path, {"amount": 1}), "POST", template, 400, codes.ACTION_NOT_ALLOWED)
    check(openapi_docs, api.post("/payments/903999999999999/refunds", {"amount": 1}), "POST", template, 404)
    assert len(api.get("/creditnotes/refunds", params={"customer_id": customer_id}).json()["refunds"]) == 2


# -- events, Zoho-side actions, edits, seeding, persistence ------------------------------------------------------------
def test_creditnote_added_carries_the_credit_note(api: Api, openapi_docs: OpenAPIDocs, zoho_sandbox: ZohoSandbox,
                                                  webhook_receiver: Any) -> None:
    zoho_sandbox.configure(webhook_url=webhook_receiver.url)
    customer_id = api.customer()["customer_id"]
    note = create(api, openapi_docs, note_body(customer_id))
    payload = last_event(api, "creditnote_added")
    assert payload["data"]["credit_note"] == note
    delivered = webhook_receiver.wait_for(1)
    assert delivered[-1]["json"]["event_type"] == "creditnote_added"
    assert delivered[-1]["json"]["data"]["credit_note"]["creditnote_id"] == note["creditnote_id"]


def test_zoho_side_credit_notes_and_refunds(api: Api, openapi_docs: OpenAPIDocs, zoho_sandbox: ZohoSandbox) -> None:
    customer_id = api.customer()["customer_id"]
    invoice = api.invoice(customer_id, amount=100)
    note = zoho_sandbox.create_credit_note(customer_id, 30, invoice_id=invoice["invoice_id"], reference_number="z-1")
    openapi_docs.assert_response("GET", NOTE, 200, {"code": 0, "message": "success", "credit_note": note})
    assert (note["status"], note["reference_number"], get(api, "invoice", invoice["invoice_id"])["balance"]) == (
        "closed", "z-1", 70)
    assert last_event(api, "creditnote_added")["data"]["credit_note"] == note
    with pytest.raises(ApiError) as caught:
        zoho_sandbox.create_credit_note(customer_id, 71, invoice_id=invoice["invoice_id"])
    assert caught.value.code is codes.CREDIT_OVER_APPLIED
    with pytest.raises(ValueError):
        zoho_sandbox.create_credit_note(customer_id, -1)

    spare = zoho_sandbox.create_credit_note(customer_id, 25)
    part = zoho_sandbox.refund_credit_note(spare["creditnote_id"], 10, refund_mode="check")
    openapi_docs.assert_response("GET", "/creditnotes/refunds/{refund_id}", 200,
                                 {"code": 0, "message": "success", "refund": part})
    assert (part["amount"], part["refund_mode"], part["creditnote"]["balance_amount"]) == (10, "check", 15)
    assert zoho_sandbox.refund_credit_note(spare["creditnote_id"])["amount"] == 15

    payment = pay(api, customer_id, invoice["invoice_id"], 70, 70)
    refunded = zoho_sandbox.refund_payment(payment["payment_id"], amount=20, description="chargeback")
    assert refunded["amount_refunded"] == 20
    refund = api.get("/creditnotes/refunds", params={"payment_id": payment["payment_id"]}).json()["refunds"][0]
    assert (refund["amount"], refund["description"], refund["refund_mode"]) == (20, "chargeback", "banktransfer")

    def admin(name: str, **body: Any) -> requests.Response:
        return requests.post(f"{zoho_sandbox.url}/__sandbox__/{name}", json=body, timeout=5)

    made = admin("create_credit_note", customer_id=customer_id, amount=12, code="NET-100")
    assert made.status_code == 200 and made.json()["credit_note"]["total"] == 12
    paid_back = admin("refund_credit_note", creditnote_id=made.json()["credit_note"]["creditnote_id"])
    assert paid_back.status_code == 200 and paid_back.json()["refund"]["amount"] == 12
    assert admin("refund_credit_note", creditnote_id="903999999999999").status_code == 404


def test_web_app_edits_and_deletes(api: Api, openapi_docs: OpenAPIDocs, zoho_sandbox: ZohoSandbox) -> None:
    customer_id = api.customer()["customer_id"]
    invoice = api.invoice(customer_id, amount=100)
    note = create(api, openapi_docs, note_body(customer_id, price=50, invoices=[
        {"invoice_id": invoice["invoice_id"], "amount_applied": 10}]))
    zoho_sandbox.advance(5)
    edited = zoho_sandbox.edit_record("creditnotes", note["creditnote_id"], {"reference_number": "edited"})
    assert edited["reference_number"] == "edited" and edited["updated_time"] > note["updated_time"]
    refund = api.post(f"/creditnotes/{note['creditnote_id']}/refunds", {"amount": 15}).json()["refund"]
    with pytest.raises(ApiError):
        zoho_sandbox.delete_record("creditnotes", note["creditnote_id"])  # it has a refund
    with pytest.raises(ApiError):
        zoho_sandbox.delete_record("invoices", invoice["invoice_id"])  # credits applied
    lone = api.customer("Lone Ltd")["customer_id"]
    create(api, openapi_docs, note_body(lone))
    with pytest.raises(ApiError):
        zoho_sandbox.delete_record("customers", lone)  # a credit note is a transaction
    zoho_sandbox.delete_record("refunds", refund["refund_id"])
    assert (get(api, "credit_note", note["creditnote_id"])["balance"], money(api, customer_id)) == (40, (90, 40))
    zoho_sandbox.delete_record("creditnotes", note["creditnote_id"])
    assert money(api, customer_id) == (100, 0)
    assert get(api, "invoice", invoice["invoice_id"])["status"] == "sent"

    payment = pay(api, customer_id, invoice["invoice_id"], 10, 10)
    api.post(f"/payments/{payment['payment_id']}/refunds", {"amount": 5})
    payment_refund = api.get("/creditnotes/refunds", params={"payment_id": payment["payment_id"]}).json()["refunds"][0]
    with pytest.raises(ApiError):
        zoho_sandbox.delete_record("refunds", payment_refund["refund_id"])


def test_seed_and_state_file(api: Api, openapi_docs: OpenAPIDocs, zoho_sandbox: ZohoSandbox, tmp_path: Any) -> None:
    customer_id = api.customer()["customer_id"]
    [note] = zoho_sandbox.seed("creditnotes", [{**note_body(customer_id, price=40), "creditnote_number": "OLD-1",
                                                "creditnote_id": "903000000777001"}])
    assert (note["creditnote_id"], note["creditnote_number"], note["balance"]) == ("903000000777001", "OLD-1", 40)
    [refund] = zoho_sandbox.seed("refunds", [{"creditnote_id": note["creditnote_id"], "amount": 15}])
    assert get(api, "credit_note", note["creditnote_id"])["balance"] == 25
    assert "creditnote_added" not in events(api)
    snapshot = zoho_sandbox.store.snapshot()
    zoho_sandbox.store.clear()
    zoho_sandbox.store.restore(snapshot)
    assert get(api, "credit_note", note["creditnote_id"])["balance"] == 25
    assert api.get(f"/creditnotes/refunds/{refund['refund_id']}").status_code == 200
    old = {**snapshot, "tables": {k: v for k, v in snapshot["tables"].items() if k not in ("creditnotes", "refunds")}}
    zoho_sandbox.store.restore(old)  # a state file saved before credit notes existed still loads
    assert api.get("/creditnotes").json()["creditnotes"] == []
