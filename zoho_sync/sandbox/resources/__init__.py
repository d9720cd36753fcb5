"""The sandbox's resources, one module per noun, each registered by one `Resource` row in `RESOURCES`.

Everything generic reads these rows: the store's tables (`TABLES`), the router (`build_router()`), `seed()`
(`SEEDERS`, `ID_KEYS`), the web-app edits and deletes (edits.py: `MODIFIED`, `LABELS`, `DELETERS`), the
Zoho-side actions (`ACTIONS`: ZohoSandbox methods, actions.py, and /__sandbox__/ hooks, admin.py) and the
reactions one resource has to another's records (`REACTIONS`, run by `store.announce`).

Adding a resource:
1. Write `resources/<noun>.py` (under ~250 lines) with:
   - `register(router)`: its routes, each handler `(store, call) -> (status, body)` raising ApiError to refuse;
   - its create function: check the body with `validation` (400 code 2 naming the field), store the record
     (`store.put`, ids from `store.new_id()`, timestamps from `store.timestamp()`, every change stamped with
     `store.stamp`), and emit Zoho's events through `store.emit(event_type, key, detail)` (the webhook
     dispatcher and GET /events pick them up from there); and a seed function, `(store, body, *, record_id)`,
     storing through the same rules without events;
   - when deleting one in Zoho's web app must refuse (`not_allowed`) or undo what the record moved: a delete
     function `(store, rec)` that does so and ends with `store.remove(table, id)`;
   - its Zoho-side actions: functions `(store, <arguments>)` returning the record as its GET shows it, listed
     in a module-level `ACTIONS = (Action(name, answer_key, function), ...)` (zoho_side.py);
   - when it must react to what happens to another resource's record: a function `(store, rec)` per
     happening. Announced today: "invoice_voided" (invoices.void_invoice; payments and credit notes let go of
     the invoice). A new happening is one `store.announce(name, rec)` call in the module where it happens.
2. Add one row here: `Resource(table, id_key, seed, label, modified, routes=module.register,
   delete=module.delete_x, actions=module.ACTIONS, on={"invoice_voided": module.detach_invoice})`, in
   dependency order (the records it refers to come first; seed() also names the resources in this order).
Nothing generic changes: not store.py, actions.py, admin.py, edits.py, app.py, webhooks.py or validation.py.
Another resource's module changes only when the new one changes that resource's own rules (credit notes made
an invoice's settled amount count its `credits_applied`, a field Zoho's invoices always had). New Zoho error
codes go in client/codes.py; tests in tests/sandbox/, and OpenAPI deviations, where Zoho's documents are wrong,
in tests/sandbox/openapi_deviations.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from zoho_sync.sandbox.resources import (
    catalog,
    credit_notes,
    customers,
    events,
    invoices,
    lifecycle,
    payments,
    refunds,
    subscriptions,
)
from zoho_sync.sandbox.routes import Router
from zoho_sync.sandbox.store import Reaction
from zoho_sync.sandbox.zoho_side import Action


@dataclass(frozen=True)
class Resource:
    """One resource: its store table, the key its records' ids are under, how `seed()` stores one record, the
    label its "does not exist" message uses, the field its detail names its modified time, the function adding
    its routes, and optionally: the function deleting one in the web app (refusing, or undoing what the record
    moved; none: the record is just removed), its Zoho-side actions, and its reactions to happenings announced
    by other resources (`store.announce(happening, rec)`)."""

    name: str
    id_key: str
    seed: Callable[..., dict[str, Any]]
    label: str
    modified: str = "updated_time"
    routes: Callable[[Router], None] | None = None
    delete: Callable[..., None] | None = None
    actions: tuple[Action, ...] = ()
    on: Mapping[str, Reaction] = field(default_factory=dict)


# Order matters: seed() names the resources in this order when refusing an unknown one, routes are registered
# in it, and reactions run in it.
RESOURCES: tuple[Resource, ...] = (
    Resource("customers", "customer_id", customers.create_customer, "Customer", routes=customers.register,
             delete=customers.delete_customer),
    Resource("products", "product_id", catalog.create_product, "Product", routes=catalog.register_products,
             delete=catalog.delete_product),
    Resource("plans", "plan_code", catalog.create_plan, "Plan", routes=catalog.register_plans,
             delete=catalog.delete_plan),
    Resource("subscriptions", "subscription_id", lambda store, body, record_id=None:
             subscriptions.create_subscription(store, body, record_id=record_id, emit=False), "Subscription",
             routes=subscriptions.register, actions=(*subscriptions.ACTIONS, *lifecycle.ACTIONS)),
    Resource("invoices", "invoice_id", invoices.seed_invoice, "Invoice", "last_modified_time",
             routes=invoices.register, delete=invoices.delete_invoice, actions=invoices.ACTIONS),
    Resource("payments", "payment_id", lambda store, body, record_id=None:
             payments.create_payment(store, body, record_id=record_id, emit=False), "Payment",
             routes=payments.register, delete=payments.delete_payment, actions=payments.ACTIONS,
             on={"invoice_voided": payments.detach_invoice}),
    Resource("creditnotes", "creditnote_id", credit_notes.seed_credit_note, "Credit note",
             routes=credit_notes.register, delete=credit_notes.delete_credit_note, actions=credit_notes.ACTIONS,
             on={"invoice_voided": credit_notes.detach_invoice}),
    Resource("refunds", "refund_id", refunds.seed_refund, "Refund", routes=refunds.register,
             delete=refunds.delete_refund, actions=refunds.ACTIONS),
)
# Routes over no resource's table: the Events API (the store's own event log) and GET /organizations.
OTHER_ROUTES: tuple[Callable[[Router], None], ...] = (events.register,)

TABLES: tuple[str, ...] = tuple(r.name for r in RESOURCES)
SEEDERS: dict[str, Callable[..., dict[str, Any]]] = {r.name: r.seed for r in RESOURCES}
ID_KEYS: dict[str, str] = {r.name: r.id_key for r in RESOURCES}
MODIFIED: dict[str, str] = {r.name: r.modified for r in RESOURCES}
LABELS: dict[str, str] = {r.name: r.label for r in RESOURCES}
DELETERS: dict[str, Callable[..., None]] = {r.name: r.delete for r in RESOURCES if r.delete}
ACTIONS: dict[str, Action] = {a.name: a for r in RESOURCES for a in r.actions}
REACTIONS: dict[str, tuple[Reaction, ...]] = {
    happening: tuple(r.on[happening] for r in RESOURCES if happening in r.on)
    for happening in dict.fromkeys(h for r in RESOURCES for h in r.on)
}


def build_router() -> Router:
    router = Router()
    for resource in RESOURCES:
        if resource.routes:
            resource.routes(router)
    for routes in OTHER_ROUTES:
        routes(router)
    return router
