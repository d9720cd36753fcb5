"""The sandbox's resources, one module per noun, listed once in `RESOURCES`.

Each `Resource` row names the store table, the record's id key and the function `seed()` uses to store records
through the same rules as the API (minus events); `ROUTED` lists the modules whose `register(router)` adds their
routes. `SEEDERS`, `ID_KEYS` and `build_router()` are derived from these two tuples, so adding a resource is one
new module (its `register()` and seed function) plus one row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zoho_sync.sandbox.resources import (
    catalog,
    credit_notes,
    customers,
    events,
    invoices,
    payments,
    refunds,
    subscriptions,
)
from zoho_sync.sandbox.routes import Router


@dataclass(frozen=True)
class Resource:
    """One store table: its name, the key its records' ids are under, how `seed()` stores one record, the label
    its "does not exist" message uses, the field its detail names its modified time and, when deleting a record
    must undo what it moved (or refuse), the function that deletes one (edits.delete_record)."""

    name: str
    id_key: str
    seed: Callable[..., dict[str, Any]]
    label: str
    modified: str = "updated_time"
    delete: Callable[..., None] | None = None


# Order matters: seed() names the resources in this order when refusing an unknown one.
RESOURCES: tuple[Resource, ...] = (
    Resource("customers", "customer_id", customers.create_customer, "Customer"),
    Resource("products", "product_id", catalog.create_product, "Product"),
    Resource("plans", "plan_code", catalog.create_plan, "Plan"),
    Resource("subscriptions", "subscription_id", lambda store, body, record_id=None:
             subscriptions.create_subscription(store, body, record_id=record_id, emit=False), "Subscription"),
    Resource("invoices", "invoice_id", invoices.seed_invoice, "Invoice", "last_modified_time"),
    Resource("payments", "payment_id", lambda store, body, record_id=None:
             payments.create_payment(store, body, record_id=record_id, emit=False), "Payment"),
    Resource("creditnotes", "creditnote_id", credit_notes.seed_credit_note, "Credit note",
             delete=credit_notes.delete_credit_note),
    Resource("refunds", "refund_id", refunds.seed_refund, "Refund", delete=refunds.delete_refund),
)
# Modules whose register(router) adds routes, in registration order (events is a route, not a table).
ROUTED = (customers, catalog, subscriptions, invoices, payments, credit_notes, refunds, events)

SEEDERS: dict[str, Callable[..., dict[str, Any]]] = {r.name: r.seed for r in RESOURCES}
ID_KEYS: dict[str, str] = {r.name: r.id_key for r in RESOURCES}
MODIFIED: dict[str, str] = {r.name: r.modified for r in RESOURCES}
LABELS: dict[str, str] = {r.name: r.label for r in RESOURCES}
DELETERS: dict[str, Callable[..., None]] = {r.name: r.delete for r in RESOURCES if r.delete}


def build_router() -> Router:
    router = Router()
    for module in ROUTED:
        module.register(router)
    return router
