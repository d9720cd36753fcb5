"""How each entity is created, changed and found again in Zoho: small functions the specs point to.

They talk to Zoho only through the client and touch the database only through `ctx.remember` (an id that must
survive a crash, like a product created before its plan). Each returns the Zoho record or its id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from zoho_sync.client.errors import ZohoError, ZohoNotFoundError
from zoho_sync.sync import payloads
from zoho_sync.sync.errors import RemoteConflict


@dataclass
class SyncContext:
    """What a remote operation may use besides the record: the client, today, and a way to save an id now."""

    client: Any
    today: date
    remember: Any = None  # callable(obj, **bookkeeping_fields)
    notes: list[str] = field(default_factory=list)  # said in the sync log's message
    sent: Any = None  # the body actually sent, when it differs from the spec's payload (payments)


def match_one(records: list[dict], key: str, value: str, what: str) -> dict | None:
    found = [r for r in records if str(r.get(key, "")).casefold() == value.casefold()]
    if len(found) > 1:
        raise RemoteConflict(f"Zoho holds {len(found)} {what} with {key} {value!r}; link the right one by hand.")
    return found[0] if found else None


# --- customers ----------------------------------------------------------------------------------------------
def customer_create(ctx: SyncContext, customer, payload: dict) -> dict:
    return ctx.client.post("/customers", json=payload)["customer"]


def customer_update(ctx: SyncContext, customer, payload: dict) -> str:
    ctx.client.put(f"/customers/{customer.zoho_id}", json=payload)
    return "update"


def customer_find(ctx: SyncContext, customer) -> dict | None:
    """By email (the documented filter, §12.6), re-checked on the display name; without email, by search."""
    name = payloads.customer_display_name(customer)
    params = {"email": customer.email} if customer.email else {"search_text": name}
    records = list(ctx.client.paginate("/customers", "customers", params=params))
    return match_one(records, "display_name", name, "customers")


# --- service packages: product + plan ------------------------------------------------------------------------
def _product_id(ctx: SyncContext, package) -> str:
    if package.zoho_product_id:
        return package.zoho_product_id
    # Products are few and rarely change: one cached list call serves every package of the run.
    products = ctx.client.get_reference("/products", params={"per_page": 200}).get("products") or []
    existing = match_one(products, "name", package.name, "products")
    if existing is None:
        try:
            existing = ctx.client.post("/products", json=payloads.product_to_zoho(package))["product"]
        except ZohoError:
            ctx.client.forget_reference()  # the create may have landed: the next try must read the list afresh
            raise
    package.zoho_product_id = str(existing["product_id"])
    ctx.remember(package, zoho_product_id=package.zoho_product_id)
    return package.zoho_product_id


def plan_create(ctx: SyncContext, package, payload: dict) -> dict:
    product_id = _product_id(ctx, package)
    ctx.sent = payloads.plan_to_zoho(package, product_id=product_id)
    plan = ctx.client.post("/plans", json=ctx.sent)["plan"]
    return {"plan_code": plan["plan_code"]}


def plan_update(ctx: SyncContext, package, payload: dict) -> str:
    body = payloads.plan_to_zoho(package, product_id=_product_id(ctx, package))
    ctx.client.put(f"/plans/{package.plan_code}", json=body)
    return "update"


def plan_find(ctx: SyncContext, package) -> dict | None:
    try:
        plan = ctx.client.get(f"/plans/{package.plan_code}")["plan"]
    except ZohoNotFoundError:
        return None
    if plan.get("product_id") and not package.zoho_product_id:
        package.zoho_product_id = str(plan["product_id"])
        ctx.remember(package, zoho_product_id=package.zoho_product_id)
    return {"plan_code": plan["plan_code"]}


# --- customer services: subscriptions -----------------------------------------------------------------------
def subscription_create(ctx: SyncContext, service, payload: dict) -> dict:
    subscription = ctx.client.post("/subscriptions", json=payload)["subscription"]
    ctx.notes.append(f"Zoho bills it next on {subscription.get('next_billing_at') or payload['starts_at']}.")
    return subscription


def subscription_update(ctx: SyncContext, service, payload: dict) -> str:
    if service.status == "cancelled":
        ctx.client.post(f"/subscriptions/{service.zoho_id}/cancel", params={"cancel_at_end": "false"},
                        idempotent=True)
        return "cancel"
    ctx.client.put(f"/subscriptions/{service.zoho_id}", json={"plan": payload["plan"]})
    return "update"


def subscription_find(ctx: SyncContext, service) -> dict | None:
    records = ctx.client.paginate("/subscriptions", "subscriptions", params={"customer_id": service.customer.zoho_id})
    return match_one(list(records), "reference_id", payloads.subscription_reference(service), "subscriptions")


# --- invoices -----------------------------------------------------------------------------------------------
def invoice_create(ctx: SyncContext, invoice, payload: dict) -> dict:
    created = ctx.client.post("/invoices", json=payload, params={"ignore_auto_number_generation": "true"})
    record = created["invoice"]
    if invoice.status == "void":
        ctx.client.post(f"/invoices/{record['invoice_id']}/void", idempotent=True)
    return record


def invoice_update(ctx: SyncContext, invoice, payload: dict) -> str:
    if invoice.status == "void":
        ctx.client.post(f"/invoices/{invoice.zoho_id}/void", idempotent=True)
        return "cancel"
    ctx.client.put(f"/invoices/{invoice.zoho_id}", json=payload)
    return "update"


def invoice_find(ctx: SyncContext, invoice) -> dict | None:
    records = ctx.client.paginate("/invoices", "invoices", params={"customer_id": invoice.customer.zoho_id})
    return match_one(list(records), "number", invoice.invoice_number, "invoices")


# --- payments -----------------------------------------------------------------------------------------------
def payment_applications(ctx: SyncContext, payment) -> list[tuple[str, Decimal]]:
    """Where the money goes in Zoho, never more than a balance: the payment's own invoice, else the customer's
    oldest open invoices, else nothing (it stays as customer credit)."""
    if payment.invoice_id:
        balance = payment.invoice.total - getattr(payment, "paid_before", Decimal("0"))
        return [(payment.invoice.zoho_id, min(payment.amount, max(balance, Decimal("0"))))]
    left, applications = payment.amount, []
    params = {"customer_id": payment.customer.zoho_id, "filter_by": "Status.Unpaid"}
    open_invoices = sorted(ctx.client.paginate("/invoices", "invoices", params=params),
                           key=lambda i: (i.get("invoice_date") or i.get("date") or "", str(i.get("invoice_id"))))
    for record in open_invoices:
        if left <= 0:
            break
        amount = min(left, Decimal(str(record.get("balance", 0))))
        if amount > 0:
            applications.append((str(record["invoice_id"]), amount))
            left -= amount
    if left > 0:
        ctx.notes.append(f"{left} stays with the customer as credit in Zoho.")
    return applications


def payment_create(ctx: SyncContext, payment, payload: dict) -> dict:
    ctx.sent = payloads.payment_to_zoho(payment, applications=payment_applications(ctx, payment))
    return ctx.client.post("/payments", json=ctx.sent)["payment"]


def payment_update(ctx: SyncContext, payment, payload: dict) -> str:
    raise RemoteConflict(
        f"Payment {payment.reference} changed after it reached Zoho (payment {payment.zoho_id}); Zoho payments are "
        "not changed by sync. Correct it in Zoho (or record a refund), then queue it for sync again."
    )


def payment_find(ctx: SyncContext, payment) -> dict | None:
    records = ctx.client.paginate("/payments", "payments", params={"customer_id": payment.customer.zoho_id})
    return match_one(list(records), "reference_number", payment.reference, "payments")
