"""The sandbox's resources, one module per noun; `build_router()` registers their routes and `SEEDERS` the
functions `seed()` uses to store records through the same rules as the API (minus events)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zoho_sync.sandbox import validation as v
from zoho_sync.sandbox.errors import invalid
from zoho_sync.sandbox.resources import catalog, customers, events, invoices, payments, subscriptions
from zoho_sync.sandbox.routes import Router
from zoho_sync.sandbox.store import Store


def build_router() -> Router:
    router = Router()
    for module in (customers, catalog, subscriptions, invoices, payments, events):
        module.register(router)
    return router


def _seed_invoice(store: Store, body: Any, *, record_id: str | None = None) -> dict[str, Any]:
    """Invoices seed like POST /invoices with ignore_auto_number_generation=true when a number is given."""
    body = v.body_object(body)
    customer = store.get("customers", v.text(body, "customer_id", required=True) or "")
    if customer is None:
        raise invalid("customer_id")
    number = v.text(body, "invoice_number")
    if number:
        invoices.check_number(store, number)
    items, total = invoices.build_items(store, body.get("invoice_items"))
    on = v.day(body["date"], "date") if body.get("date") else store.today()
    return invoices.create_invoice(store, customer, items, total, on=on, number=number,
                                   emit=False, record_id=record_id)


SEEDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "customers": customers.create_customer,
    "products": catalog.create_product,
    "plans": catalog.create_plan,
    "subscriptions": lambda store, body, record_id=None: subscriptions.create_subscription(
        store, body, record_id=record_id, emit=False),
    "invoices": _seed_invoice,
    "payments": lambda store, body, record_id=None: payments.create_payment(
        store, body, record_id=record_id, emit=False),
}
ID_KEYS = {"customers": "customer_id", "products": "product_id", "plans": "plan_code",
           "subscriptions": "subscription_id", "invoices": "invoice_id", "payments": "payment_id"}
