"""Conformance: the sandbox's routes and its success and error bodies against Zoho's OpenAPI documents.

The documents are read in place (../shared/zoho-billing-openapi/); without them these tests skip, or fail
when CI=true. Known defects are corrected only through tests/sandbox/openapi_deviations.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.openapi_support import OpenAPIDocs, normalise
from tests.sandbox.conftest import Api
from tests.sandbox.openapi_deviations import DEVIATIONS
from zoho_sync.sandbox import ZohoSandbox


def check(docs: OpenAPIDocs, response: requests.Response, method: str, template: str, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    docs.assert_response(method, template, status, body)
    return body


def test_every_route_is_documented_with_the_same_success_status(openapi_docs: OpenAPIDocs,
                                                                 zoho_sandbox: ZohoSandbox) -> None:
    added = {op for d in DEVIATIONS if d.kind == "add_route" for op in d.operations}
    for route in zoho_sandbox.router.routes:
        operation = f"{route.method} {route.template}"
        if operation in added:
            assert not openapi_docs.documented(operation), f"{operation} is documented now: drop its deviation"
            continue
        found = openapi_docs.find(route.method, route.template)
        assert found is not None, f"{operation} is not in Zoho's documents"
        assert normalise(found.split(" ", 1)[1]) == normalise(route.template)
        assert openapi_docs.success_status(found) == route.status, operation


def test_every_deviation_names_a_real_operation(openapi_docs: OpenAPIDocs) -> None:
    added = {op for d in DEVIATIONS if d.kind == "add_route" for op in d.operations}
    for deviation in DEVIATIONS:
        assert deviation.reason.strip()
        for operation in deviation.operations:
            if operation != "*" and deviation.kind != "add_route":
                assert openapi_docs.documented(operation) or operation in added, \
                    f"{operation} in a deviation is neither documented nor added by an add_route row"


def test_the_validator_catches_invented_fields_wrong_types_and_bad_envelopes(openapi_docs: OpenAPIDocs) -> None:
    good = {"code": 0, "message": "success", "customer": {"customer_id": "903000000000001", "display_name": "A"}}
    assert openapi_docs.response_errors("GET", "/customers/903000000000001", 200, good) == []
    invented = {**good, "customer": {**good["customer"], "nickname": "Al"}}
    assert "nickname" in " ".join(openapi_docs.response_errors("GET", "/customers/1", 200, invented))
    wrong_type = {**good, "customer": {**good["customer"], "unused_credits": "0.00"}}
    assert openapi_docs.response_errors("GET", "/customers/1", 200, wrong_type)
    assert openapi_docs.response_errors("GET", "/customers/1", 200, {"code": 0, "message": "success"})
    assert openapi_docs.response_errors("GET", "/customers", 200, {"code": 0, "message": "success", "customers": []})
    assert openapi_docs.response_errors("GET", "/customers/1", 404, {"code": 0, "message": "x"})
    assert openapi_docs.response_errors("GET", "/customers/1", 404, {"code": 1002, "message": "x", "extra": 1})
    assert openapi_docs.response_errors("GET", "/nowhere", 200, good)
    assert openapi_docs.request_errors("POST", "/customers", {"display_nme": "typo"})
    assert openapi_docs.request_errors("POST", "/plans", {"plan_code": "P", "interval": "monthly"})


def test_request_bodies_used_by_these_tests_fit_the_documents(openapi_docs: OpenAPIDocs) -> None:
    openapi_docs.assert_request("POST", "/customers", {"display_name": "Acme Ltd", "email": "billing@acme.test",
                                                       "billing_address": {"street": "1 Main St", "city": "Oslo"}})
    openapi_docs.assert_request("POST", "/plans", {"plan_code": "NET-100", "name": "Net 100", "recurring_price": 30,
                                                   "interval": 1, "product_id": "903000000000001"})
    openapi_docs.assert_request("POST", "/subscriptions", {
        "customer_id": "903000000000002", "plan": {"plan_code": "NET-100", "quantity": 1}, "auto_collect": False,
        "reference_id": "cs-1", "starts_at": "2025-01-01"})
    openapi_docs.assert_request("POST", "/payments", {
        "customer_id": "903000000000002", "payment_mode": "cash", "amount": 30, "date": "2025-01-01",
        "reference_number": "pay-1", "invoices": [{"invoice_id": "903000000000009", "amount_applied": 30}]})
    openapi_docs.assert_request("PUT", "/payments/903000000000010", {
        "customer_id": "903000000000002", "payment_mode": "cash", "amount": 25, "date": "2025-01-02",
        "reference_number": "pay-1", "description": "", "invoices": [
            {"invoice_id": "903000000000009", "amount_applied": 25}]})
    assert openapi_docs.request_errors("PUT", "/payments/903000000000010", {
        "customer_id": "903000000000002", "payment_mode": "cash", "amount": 25, "notes": "typo"})


def test_customers(openapi_docs: OpenAPIDocs, api: Api) -> None:
    body = check(openapi_docs, api.post("/customers", {"display_name": "Acme Ltd", "email": "a@acme.test",
                                                      "billing_address": {"street": "1 Main St"}}),
                 "POST", "/customers", 201)
    customer_id = body["customer"]["customer_id"]
    check(openapi_docs, api.post("/customers", {"email": "x@acme.test"}), "POST", "/customers", 400)
    check(openapi_docs, api.post("/customers", {"display_name": "Acme Ltd"}), "POST", "/customers", 400)
    check(openapi_docs, api.get("/customers", params={"email": "a@acme.test"}), "GET", "/customers", 200)
    check(openapi_docs, api.get("/customers", params={"per_page": "0"}), "GET", "/customers", 400)
    path = "/customers/{customer_id}"
    check(openapi_docs, api.get(f"/customers/{customer_id}"), "GET", path, 200)
    check(openapi_docs, api.get("/customers/903999999999999"), "GET", path, 404)
    check(openapi_docs, api.put(f"/customers/{customer_id}", {"phone": "+47 1234"}), "PUT", path, 200)
    check(openapi_docs, api.put(f"/customers/{customer_id}", {"display_name": ""}), "PUT", path, 400)
    check(openapi_docs, api.post(f"/customers/{customer_id}/markasinactive"), "POST", f"{path}/markasinactive", 200)
    check(openapi_docs, api.post("/customers/903999999999999/markasinactive"), "POST", f"{path}/markasinactive", 404)
    check(openapi_docs, api.post(f"/customers/{customer_id}/markasactive"), "POST", f"{path}/markasactive", 200)


def test_products_and_plans(openapi_docs: OpenAPIDocs, api: Api) -> None:
    product = check(openapi_docs, api.post("/products", {"name": "Fibre"}), "POST", "/products", 201)["product"]
    check(openapi_docs, api.post("/products", {}), "POST", "/products", 400)
    check(openapi_docs, api.get("/products"), "GET", "/products", 200)
    check(openapi_docs, api.get(f"/products/{product['product_id']}"), "GET", "/products/{product_id}", 200)
    plan = {"plan_code": "F-100", "name": "Fibre 100", "recurring_price": 30, "interval": 1,
            "product_id": product["product_id"]}
    check(openapi_docs, api.post("/plans", plan), "POST", "/plans", 201)
    check(openapi_docs, api.post("/plans", plan), "POST", "/plans", 400)
    check(openapi_docs, api.get("/plans"), "GET", "/plans", 200)
    check(openapi_docs, api.get("/plans/F-100"), "GET", "/plans/{plan_code}", 200)
    check(openapi_docs, api.get("/plans/NOPE"), "GET", "/plans/{plan_code}", 404)
    check(openapi_docs, api.put("/plans/F-100", {"recurring_price": 35}), "PUT", "/plans/{plan_code}", 200)


def test_subscriptions(openapi_docs: OpenAPIDocs, api: Api) -> None:
    customer = api.customer()
    api.plan("NET-100")
    body = check(openapi_docs, api.subscription(customer["customer_id"], "NET-100", reference_id="cs-1"),
                 "POST", "/subscriptions", 201)
    sub_id = body["subscription"]["subscription_id"]
    check(openapi_docs, api.subscription(customer["customer_id"], "MISSING"), "POST", "/subscriptions", 400)
    check(openapi_docs, api.get("/subscriptions", params={"customer_id": customer["customer_id"]}),
          "GET", "/subscriptions", 200)
    check(openapi_docs, api.get("/subscriptions", params={"filter_by": "SubscriptionStatus.BOGUS"}),
          "GET", "/subscriptions", 400)
    path = "/subscriptions/{subscription_id}"
    check(openapi_docs, api.get(f"/subscriptions/{sub_id}"), "GET", path, 200)
    check(openapi_docs, api.get("/subscriptions/903999999999999"), "GET", path, 404)
    check(openapi_docs, api.put(f"/subscriptions/{sub_id}", {"reference_id": "cs-1b"}), "PUT", path, 200)
    check(openapi_docs, api.post(f"/subscriptions/{sub_id}/cancel", params={"cancel_at_end": "true"}),
          "POST", f"{path}/cancel", 200)
    check(openapi_docs, api.post(f"/subscriptions/{sub_id}/cancel", params={"cancel_at_end": "maybe"}),
          "POST", f"{path}/cancel", 400)
    check(openapi_docs, api.post("/subscriptions/903999999999999/cancel"), "POST", f"{path}/cancel", 404)


def test_invoices(openapi_docs: OpenAPIDocs, api: Api) -> None:
    customer = api.customer()
    body = {"customer_id": customer["customer_id"], "invoice_number": "LOCAL-1", "reference_number": "inv-1",
            "invoice_items": [api.line(99.5, 2, name="Installation", description="On site")]}
    created = check(openapi_docs, api.post("/invoices", body, params={"ignore_auto_number_generation": "true"}),
                    "POST", "/invoices", 201)["invoice"]
    check(openapi_docs, api.post("/invoices", body, params={"ignore_auto_number_generation": "true"}),
          "POST", "/invoices", 400)
    check(openapi_docs, api.post("/invoices", {**body, "invoice_items": [{"price": 1, "quantity": 1}]}),
          "POST", "/invoices", 400)  # no product_id
    check(openapi_docs, api.post("/invoices", {**body, "invoice_items": [{"product_id": "903999999999999",
                                                                          "price": 1, "quantity": 1}]}),
          "POST", "/invoices", 400)  # no such product
    check(openapi_docs, api.get("/invoices", params={"customer_id": customer["customer_id"]}), "GET", "/invoices", 200)
    path = "/invoices/{invoice_id}"
    check(openapi_docs, api.get(f"/invoices/{created['invoice_id']}"), "GET", path, 200)
    check(openapi_docs, api.get("/invoices/903999999999999"), "GET", path, 404)
    check(openapi_docs, api.put(f"/invoices/{created['invoice_id']}", {"reference_number": "inv-1b"}), "PUT", path, 200)
    check(openapi_docs, api.post(f"/invoices/{created['invoice_id']}/void"), "POST", f"{path}/void", 200)
    check(openapi_docs, api.post(f"/invoices/{created['invoice_id']}/void"), "POST", f"{path}/void", 400)


def test_payments(openapi_docs: OpenAPIDocs, api: Api) -> None:
    customer = api.customer()
    invoice = api.invoice(customer["customer_id"], amount=50)
    body = {"customer_id": customer["customer_id"], "payment_mode": "banktransfer", "amount": 60,
            "reference_number": "pay-1", "invoices": [{"invoice_id": invoice["invoice_id"], "amount_applied": 50}]}
    payment = check(openapi_docs, api.post("/payments", body), "POST", "/payments", 201)["payment"]
    check(openapi_docs, api.post("/payments", body), "POST", "/payments", 400)  # the invoice is paid now
    check(openapi_docs, api.get(f"/payments/{payment['payment_id']}"), "GET", "/payments/{payment_id}", 200)
    check(openapi_docs, api.get("/payments/903999999999999"), "GET", "/payments/{payment_id}", 404)
    check(openapi_docs, api.get("/payments", params={"customer_id": customer["customer_id"]}), "GET", "/payments", 200)
    path, update = "/payments/{payment_id}", {**body, "amount": 40, "description": "Corrected",
                                              "invoices": [{"invoice_id": invoice["invoice_id"], "amount_applied": 40}]}
    openapi_docs.assert_request("PUT", path, update)
    updated = check(openapi_docs, api.put(f"/payments/{payment['payment_id']}", update), "PUT", path, 200)["payment"]
    assert (updated["amount"], updated["description"]) == (40, "Corrected")
    over = {**update, "invoices": [{"invoice_id": invoice["invoice_id"], "amount_applied": 50.01}]}
    check(openapi_docs, api.put(f"/payments/{payment['payment_id']}", over), "PUT", path, 400)
    check(openapi_docs, api.put(f"/payments/{payment['payment_id']}", {**update, "invoices": None}), "PUT", path, 400)
    check(openapi_docs, api.put("/payments/903999999999999", update), "PUT", path, 404)


def test_events_and_organizations(openapi_docs: OpenAPIDocs, api: Api) -> None:
    customer = api.customer()
    api.plan("NET-100")
    api.subscription(customer["customer_id"], "NET-100")
    events = check(openapi_docs, api.get("/events"), "GET", "/events", 200)["events"]
    assert events
    check(openapi_docs, api.get(f"/events/{events[0]['event_id']}"), "GET", "/events/{event_id}", 200)
    check(openapi_docs, api.get("/events/903999999999999"), "GET", "/events/{event_id}", 404)
    check(openapi_docs, api.get("/organizations"), "GET", "/organizations", 200)


@pytest.mark.parametrize(("case", "status"), [("no_token", 401), ("bearer", 401), ("no_org", 400),
                                              ("unknown_path", 404), ("wrong_method", 405)])
def test_gateway_errors_fit_the_error_envelope(openapi_docs: OpenAPIDocs, api: Api, case: str, status: int) -> None:
    headers = api.headers()
    if case == "no_token":
        headers.pop("Authorization")
    if case == "bearer":
        headers["Authorization"] = f"Bearer {api.token}"
    if case == "no_org":
        headers.pop("X-com-zoho-subscriptions-organizationid")
    method, path = {"unknown_path": ("GET", "/customerz"), "wrong_method": ("DELETE", "/customers")}.get(
        case, ("GET", "/customers"))
    response = api.call(method, path, headers=headers)
    assert response.status_code == status
    openapi_docs.assert_response("GET", "/customers", status, response.json())
