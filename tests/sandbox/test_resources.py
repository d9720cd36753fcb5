"""Resources: paging, validation errors and business rules for customers, catalog, invoices and payments."""

from __future__ import annotations

import pytest

from zoho_sync.client import codes
from zoho_sync.sandbox import ZohoSandbox

from .conftest import Api


def _error(response, row: codes.ZohoCode) -> str:
    assert (response.status_code, response.json()["code"]) == (row.http_status, row.code), response.text
    assert set(response.json()) == {"code", "message"}
    return response.json()["message"]


def test_pagination_across_pages(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.seed("customers", [{"display_name": f"Customer {i:03d}"} for i in range(450)])
    seen, page = [], 1
    while True:
        body = api.get("/customers", params={"page": page}).json()
        seen += [c["display_name"] for c in body["customers"]]
        assert body["page_context"]["per_page"] == 200
        if not body["page_context"]["has_more_page"]:
            break
        page += 1
    assert page == 3 and seen == [f"Customer {i:03d}" for i in range(450)]
    small = api.get("/customers", params={"page": 2, "per_page": 100}).json()
    assert small["page_context"] == {"page": 2, "per_page": 100, "has_more_page": True}
    assert small["customers"][0]["display_name"] == "Customer 100"
    clamped = api.get("/customers", params={"per_page": 1000}).json()["page_context"]
    assert clamped["per_page"] == 200  # clamped and reported (§12.10)
    assert api.get("/customers", params={"page": 9}).json()["customers"] == []


@pytest.mark.parametrize(("name", "value"), [("page", "0"), ("page", "x"), ("per_page", "-5"), ("per_page", "1.5")])
def test_bad_paging_values_are_invalid_value(api: Api, name: str, value: str) -> None:
    message = _error(api.get("/customers", params={name: value}), codes.INVALID_VALUE)
    assert message == f"Invalid value passed for {name}"


def test_customer_validation_and_duplicates(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    assert _error(api.post("/customers", {"email": "a@b.test"}), codes.INVALID_VALUE).endswith("display_name")
    assert _error(api.post("/customers", {"display_name": "X", "email": "nope"}), codes.INVALID_VALUE).endswith("email")
    assert _error(api.post("/customers", {"display_name": "X", "payment_terms": "30"}),
                  codes.INVALID_VALUE).endswith("payment_terms")
    assert _error(api.call("POST", "/customers", data="{not json"), codes.INVALID_VALUE).endswith("JSONString")
    api.customer("Acme Ltd", email="same@acme.test")
    assert "acme ltd" in _error(api.post("/customers", {"display_name": "acme ltd"}), codes.DUPLICATE_CUSTOMER)
    # A duplicate email is accepted (§12.3); the email filter is an exact match.
    api.customer("Acme Trading", email="same@acme.test")
    api.customer("Other", email="xsame@acme.test")
    found = api.get("/customers", params={"email": "SAME@acme.test"}).json()["customers"]
    assert sorted(c["display_name"] for c in found) == ["Acme Ltd", "Acme Trading"]
    zoho_sandbox.configure(check_duplicate_display_name=False)
    assert api.post("/customers", {"display_name": "Acme Ltd"}).status_code == 201


def test_customer_update_filters_and_status(api: Api) -> None:
    first = api.customer("First Co", company_name="First Holdings")
    api.customer("Second Co")
    cid = first["customer_id"]
    updated = api.put(f"/customers/{cid}", {"phone": "+47 22", "billing_address": {"city": "Oslo"}}).json()
    assert updated["customer"]["phone"] == "+47 22" and updated["customer"]["display_name"] == "First Co"
    assert _error(api.put(f"/customers/{cid}", {"display_name": "Second Co"}), codes.DUPLICATE_CUSTOMER)
    assert _error(api.get("/customers/1"), codes.DOES_NOT_EXIST) == "Customer does not exist."
    assert api.post(f"/customers/{cid}/markasinactive").json()["code"] == 0
    names = lambda **q: [c["display_name"] for c in api.get("/customers", params=q).json()["customers"]]  # noqa: E731
    assert names(filter_by="Status.Inactive") == ["First Co"]
    assert names(filter_by="Status.Active") == ["Second Co"]
    assert names(search_text="holdings") == ["First Co"]
    assert names(sort_column="display_name", sort_order="D") == ["Second Co", "First Co"]
    _error(api.get("/customers", params={"filter_by": "Status.Nope"}), codes.INVALID_VALUE)
    assert api.get(f"/customers/{cid}").json()["customer"]["status"] == "inactive"


def test_customer_with_a_live_subscription_cannot_be_marked_inactive(api: Api) -> None:
    customer = api.customer()
    api.plan("NET-100")
    api.subscription(customer["customer_id"], "NET-100")
    _error(api.post(f"/customers/{customer['customer_id']}/markasinactive"), codes.ACTION_NOT_ALLOWED)


def test_plans_are_keyed_by_code(api: Api) -> None:
    plan = api.plan("NET-100", price=30)
    assert api.get("/plans/NET-100").json()["plan"]["recurring_price"] == 30
    assert _error(api.get("/plans/NET-999"), codes.DOES_NOT_EXIST) == "Plan does not exist."
    body = {"plan_code": "NET-100", "name": "Again", "recurring_price": 1, "interval": 1,
            "product_id": plan["product_id"]}
    assert "NET-100" in _error(api.post("/plans", body), codes.DUPLICATE_PLAN_CODE)
    assert _error(api.post("/plans", {**body, "plan_code": "N2", "product_id": "1"}),
                  codes.INVALID_VALUE).endswith("product_id")
    for field, value in (("recurring_price", "30"), ("interval", 0), ("interval_unit", "fortnights")):
        response = api.post("/plans", {**body, "plan_code": "N3", field: value})
        assert _error(response, codes.INVALID_VALUE).endswith(field)
    assert api.put("/plans/NET-100", {"recurring_price": 35}).json()["plan"]["recurring_price"] == 35
    assert [p["plan_code"] for p in api.get("/plans", params={"filter_by": "PlanStatus.ACTIVE"}).json()["plans"]] \
        == ["NET-100"]


def test_invoice_numbering_lines_and_totals(api: Api) -> None:
    cid = api.customer(payment_terms=14)["customer_id"]
    other = api.product("Support")["product_id"]
    auto = api.post("/invoices", {"customer_id": cid, "invoice_number": "IGNORED", "date": "2025-01-10",
                                  "invoice_items": [api.line(10.25, 2, name="A"),
                                                    {"product_id": other, "price": 5, "quantity": 1}]})
    invoice = auto.json()["invoice"]
    assert [(i["product_id"], i["name"]) for i in invoice["invoice_items"]] == [(api.product_id, "A"),
                                                                                 (other, "Support")]
    assert invoice["invoice_number"] == "INV-000001"  # caller's number ignored without the flag
    totals = (invoice["sub_total"], invoice["total"], invoice["balance"], invoice["payment_made"])
    assert totals == (25.5, 25.5, 25.5, 0)
    assert invoice["due_date"] == "2025-01-24" and invoice["status"] == "overdue"  # due date passed
    chosen = api.post("/invoices", {"customer_id": cid, "invoice_number": "LOCAL-7", "invoice_items": [
        api.line(1, name="B")]}, params={"ignore_auto_number_generation": "true"})
    assert chosen.json()["invoice"]["invoice_number"] == "LOCAL-7"
    again = api.post("/invoices", {"customer_id": cid, "invoice_number": "LOCAL-7", "invoice_items": [
        api.line(1, name="B")]}, params={"ignore_auto_number_generation": "true"})
    assert "LOCAL-7" in _error(again, codes.DUPLICATE_INVOICE_NUMBER)
    listed = api.get("/invoices", params={"customer_id": cid}).json()["invoices"]
    assert [i["number"] for i in listed] == ["INV-000001", "LOCAL-7"] and "invoice_number" not in listed[0]
    assert api.get(f"/customers/{cid}").json()["customer"]["outstanding"] == 26.5


@pytest.mark.parametrize(("line", "field"), [
    ({"name": "A", "price": 1, "quantity": 1}, "product_id"),  # §12.11: a name alone no longer does
    ({"product_id": "903999999999999", "price": 1, "quantity": 1}, "product_id"),  # no such product
    ({"product_id": "", "name": "A", "price": 1, "quantity": 1}, "product_id"),
    ({"product_id": True, "price": 1, "quantity": 1}, "product_id"),
    ({"product_id": "{product}", "quantity": 1}, "price"), ({"product_id": "{product}", "price": 1}, "quantity"),
    ({"product_id": "{product}", "price": "1", "quantity": 1}, "price"),
    ({"product_id": "{product}", "price": 1, "quantity": 0}, "quantity"),
])
def test_invoice_line_rules(api: Api, line: dict, field: str) -> None:
    cid = api.customer()["customer_id"]
    line = {k: api.product_id if v == "{product}" else v for k, v in line.items()}
    response = api.post("/invoices", {"customer_id": cid, "invoice_items": [line]})
    assert _error(response, codes.INVALID_VALUE) == f"Invalid value passed for {field}"
    invoice = api.invoice(cid)  # a valid line gets through, on create and on update
    response = api.put(f"/invoices/{invoice['invoice_id']}", {"invoice_items": [line]})
    assert _error(response, codes.INVALID_VALUE) == f"Invalid value passed for {field}"


def test_invoice_line_product_rule_can_be_switched_off(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    cid = api.customer()["customer_id"]
    zoho_sandbox.configure(require_item_product_id=False)
    lines = [{"name": "Manual line", "price": 7, "quantity": 1},
             {"product_id": "903999999999999", "price": 1, "quantity": 1}]  # unknown ids pass unchecked too
    response = api.post("/invoices", {"customer_id": cid, "invoice_items": lines})
    assert response.status_code == 201, response.text
    items = response.json()["invoice"]["invoice_items"]
    assert [(i["product_id"], i["name"]) for i in items] == [("", "Manual line"), ("903999999999999", "")]
    response = api.post("/invoices", {"customer_id": cid, "invoice_items": [{"price": 1, "quantity": 1}]})
    assert _error(response, codes.INVALID_VALUE) == "Invalid value passed for name"  # the old rule: a name


def test_invoice_create_errors(api: Api) -> None:
    cid = api.customer()["customer_id"]
    items = [api.line(1, name="A")]
    assert _error(api.post("/invoices", {"invoice_items": items}), codes.INVALID_VALUE).endswith("customer_id")
    assert _error(api.post("/invoices", {"customer_id": "1", "invoice_items": items}), codes.INVALID_VALUE)
    assert _error(api.post("/invoices", {"customer_id": cid, "invoice_items": []}),
                  codes.INVALID_VALUE).endswith("invoice_items")
    assert _error(api.post("/invoices", {"customer_id": cid, "invoice_items": items, "date": "10/01/2025"}),
                  codes.INVALID_VALUE).endswith("date")
    assert _error(api.post("/invoices", {"customer_id": cid, "invoice_items": items},
                           params={"ignore_auto_number_generation": "true"}), codes.INVALID_VALUE).endswith(
        "invoice_number")


def test_payments_update_invoices_and_credits(api: Api) -> None:
    cid = api.customer()["customer_id"]
    first, second = api.invoice(cid, amount=100), api.invoice(cid, amount=40)
    payment = api.post("/payments", {"customer_id": cid, "payment_mode": "cash", "amount": 70,
                                     "reference_number": "pay-1",
                                     "invoices": [{"invoice_id": first["invoice_id"], "amount_applied": 60}]})
    assert payment.status_code == 201
    detail = api.get(f"/invoices/{first['invoice_id']}").json()["invoice"]
    assert (detail["status"], detail["payment_made"], detail["balance"]) == ("partially_paid", 60, 40)
    customer = api.get(f"/customers/{cid}").json()["customer"]
    assert (customer["unused_credits"], customer["outstanding"]) == (10, 80)
    api.post("/payments", {"customer_id": cid, "payment_mode": "banktransfer", "amount": 80, "invoices": [
        {"invoice_id": first["invoice_id"], "amount_applied": 40},
        {"invoice_id": second["invoice_id"], "amount_applied": 40}]})
    statuses = {i["invoice_id"]: i["status"] for i in api.get("/invoices").json()["invoices"]}
    assert set(statuses.values()) == {"paid"}
    assert [i["number"] for i in api.get("/invoices", params={"filter_by": "Status.Paid"}).json()["invoices"]] \
        == [first["invoice_number"], second["invoice_number"]]
    listed = api.get("/payments", params={"customer_id": cid}).json()["payments"]
    assert [p["reference_number"] for p in listed] == ["pay-1", ""]
    got = api.get(f"/payments/{payment.json()['payment']['payment_id']}").json()["payment"]
    assert got["invoices"][0]["amount_applied"] == 60


def test_payment_over_applied_and_other_errors(api: Api) -> None:
    cid = api.customer()["customer_id"]
    invoice = api.invoice(cid, amount=50)

    def pay(amount: float, applied: float, **extra: object):
        return api.post("/payments", {"customer_id": cid, "payment_mode": "cash", "amount": amount,
                                      "invoices": [{"invoice_id": invoice["invoice_id"], "amount_applied": applied}],
                                      **extra})

    _error(pay(40, 45), codes.PAYMENT_OVER_APPLIED)  # more applied than paid
    _error(pay(80, 60), codes.PAYMENT_OVER_APPLIED)  # more than the invoice's balance
    assert _error(pay(50, 50, payment_mode="bitcoin"), codes.INVALID_VALUE).endswith("payment_mode")
    assert _error(pay(0, 0), codes.INVALID_VALUE).endswith("amount")
    other = api.customer("Other Ltd")["customer_id"]
    assert _error(api.post("/payments", {"customer_id": other, "payment_mode": "cash", "amount": 5, "invoices": [
        {"invoice_id": invoice["invoice_id"], "amount_applied": 5}]}), codes.INVALID_VALUE).endswith("invoice_id")
    assert api.get(f"/invoices/{invoice['invoice_id']}").json()["invoice"]["balance"] == 50  # nothing applied


def test_void_detaches_payments_into_credit(api: Api) -> None:
    cid = api.customer()["customer_id"]
    invoice = api.invoice(cid, amount=50)
    api.post("/payments", {"customer_id": cid, "payment_mode": "cash", "amount": 20,
                           "invoices": [{"invoice_id": invoice["invoice_id"], "amount_applied": 20}]})
    assert api.post(f"/invoices/{invoice['invoice_id']}/void").json()["code"] == 0
    voided = api.get(f"/invoices/{invoice['invoice_id']}").json()["invoice"]
    assert (voided["status"], voided["balance"]) == ("void", 0)
    customer = api.get(f"/customers/{cid}").json()["customer"]
    assert (customer["unused_credits"], customer["outstanding"]) == (20, 0)
    _error(api.post(f"/invoices/{invoice['invoice_id']}/void"), codes.ACTION_NOT_ALLOWED)
    _error(api.post("/payments", {"customer_id": cid, "payment_mode": "cash", "amount": 5, "invoices": [
        {"invoice_id": invoice["invoice_id"], "amount_applied": 5}]}), codes.ACTION_NOT_ALLOWED)


def test_seed_keeps_given_ids_and_runs_the_rules(zoho_sandbox: ZohoSandbox, api: Api) -> None:
    [customer] = zoho_sandbox.seed("customers", [{"customer_id": "903000000123456", "display_name": "Seeded"}])
    assert api.get("/customers/903000000123456").json()["customer"]["display_name"] == "Seeded"
    assert customer["status"] == "active"
    with pytest.raises(ValueError, match="cannot seed"):
        zoho_sandbox.seed("widgets", [])
    assert api.get("/events").json()["events"] == []  # seeding raises no events
