"""How each entity is created, changed and found again in Zoho: small functions the specs point to.

They talk to Zoho only through the client and touch the database only through `ctx.remember` (an id that must
survive a crash, like a product created before its plan). Each returns the Zoho record or its id.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from zoho_sync.client.errors import ZohoNotFoundError
from zoho_sync.models import Invoice
from zoho_sync.sync import inbound, payloads
from zoho_sync.sync.errors import RemoteConflict


@dataclass
class SyncContext:
    """What a remote operation may use besides the record: the client, today, and a way to save an id now."""

    client: Any
    today: date
    remember: Any = None  # callable(obj, **bookkeeping_fields)
    # lease(name): a context manager holding `name` against every other process (creating a shared product)
    lease: Any = contextlib.nullcontext
    notes: list[str] = field(default_factory=list)  # said in the sync log's message
    sent: Any = None  # the body actually sent, when it differs from the spec's payload (payments)
    answer: Any = None  # Zoho's answer to an update, for the spec's on_created (a payment's invoice balances)


def match_one(records: list[dict], key: str | tuple[str, ...], value: str, what: str) -> dict | None:
    """The one record whose `key` (or, given several names for one field, the first of them present) equals
    `value`, ignoring case; None when there is none; RemoteConflict when there are several."""
    keys = (key,) if isinstance(key, str) else key

    def field(record: dict) -> str:
        return str(next((record[k] for k in keys if record.get(k) not in (None, "")), ""))

    found = [r for r in records if field(r).casefold() == value.casefold()]
    key = keys[0]
    if len(found) > 1:
        raise RemoteConflict(f"Zoho holds {len(found)} {what} with {key} {value!r}; link the right one by hand.")
    return found[0] if found else None


# --- customers ----------------------------------------------------------------------------------------------
def customer_create(ctx: SyncContext, customer, payload: dict) -> dict:
    return ctx.client.post("/customers", json=payload)["customer"]


# Fields Zoho keeps as they are when an update leaves them out: sent empty, so a value cleared here is cleared there.
CUSTOMER_CLEARABLE = ("first_name", "last_name", "company_name", "phone")


def customer_update(ctx: SyncContext, customer, payload: dict) -> str:
    ctx.sent = {**dict.fromkeys(CUSTOMER_CLEARABLE, ""), **payload}
    ctx.client.put(f"/customers/{customer.zoho_id}", json=ctx.sent)
    return "update"


def customer_find(ctx: SyncContext, customer) -> dict | None:
    """By the account number in the display name, which survives renames and new emails: first among the
    customers with today's email (the filter third parties confirm, §12.6), then by search (should Zoho ignore
    `search_text`, the list is read whole and matched here, as §12.6 advises)."""
    account = customer.account_number.casefold()
    lookups = ([{"email": customer.email}] if customer.email else []) + [{"search_text": customer.account_number}]
    for params in lookups:
        records = [r for r in ctx.client.paginate("/customers", "customers", params=params)
                   if payloads.account_number_of(r.get("display_name", "")) == account]
        if len(records) > 1:
            raise RemoteConflict(f"Zoho holds {len(records)} customers with account number "
                                 f"{customer.account_number}; link the right one by hand.")
        if records:
            return records[0]
    return None


# --- service packages: product + plan ------------------------------------------------------------------------
def _product_named(products: list[dict], name: str) -> dict | None:
    """The product of that name; should Zoho hold several (made before this rule), the oldest, every time."""
    named = [p for p in products if str(p.get("name", "")).casefold() == name.casefold()]
    return min(named, key=lambda p: (len(str(p["product_id"])), str(p["product_id"]))) if named else None


def product_ensure(ctx: SyncContext, body: dict) -> str:
    """The id of Zoho's product named body["name"], created once across every process.

    Products are few and rarely change: one cached list serves a whole run, but only to find one. Before a
    create is decided on, the list is read afresh under a lease every process shares, so a product another
    process created meanwhile (or one whose answer was lost) is found, and two processes never create it at once
    (both found by bench/concurrency.py: a second product)."""
    params = {"per_page": 200}
    found = _product_named(ctx.client.get_reference("/products", params=params).get("products") or [], body["name"])
    if found:
        return str(found["product_id"])
    with ctx.lease(f"product:{body['name'].casefold()}"[:100]):
        ctx.client.forget_reference()
        found = _product_named(ctx.client.get_reference("/products", params=params).get("products") or [],
                               body["name"])
        if found:
            return str(found["product_id"])
        try:
            return str(ctx.client.post("/products", json=body)["product"]["product_id"])
        finally:
            ctx.client.forget_reference()  # the next lookup must see the new product (or one a lost answer made)


def _product_id(ctx: SyncContext, package) -> str:
    if not package.zoho_product_id:
        package.zoho_product_id = product_ensure(ctx, payloads.product_to_zoho(package))
        ctx.remember(package, zoho_product_id=package.zoho_product_id)
    return package.zoho_product_id


def plan_create(ctx: SyncContext, package, payload: dict) -> dict:
    ctx.sent = {**payload, "product_id": _product_id(ctx, package)}
    plan = ctx.client.post("/plans", json=ctx.sent)["plan"]
    return {"plan_code": plan["plan_code"]}


def plan_update(ctx: SyncContext, package, payload: dict) -> str:
    if not package.zoho_product_id:  # a plan Zoho already had: keep the product it has, not one found by name
        plan_find(ctx, package)
    ctx.sent = {**payload, "product_id": _product_id(ctx, package)}
    ctx.client.put(f"/plans/{package.plan_code}", json=ctx.sent)
    return "update"


def one_off_product_id(ctx: SyncContext) -> str:
    """The Zoho product of invoice lines that sell no package of ours, created the first time it is needed."""
    return product_ensure(ctx, {"name": payloads.ONE_OFF_PRODUCT, "description": "One-off charges billed on "
                                "invoices (installations, equipment, visits)."})


def _invoice_body(ctx: SyncContext, invoice, payload: dict) -> dict:
    """The payload with every line's product filled in (the one-off product for lines selling no package)."""
    if all(item.get("product_id") for item in payload.get("invoice_items", [])):
        return payload
    product_id = one_off_product_id(ctx)
    items = [{**item, "product_id": item.get("product_id") or product_id} for item in payload["invoice_items"]]
    ctx.sent = {**payload, "invoice_items": items}
    return ctx.sent


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
    # Zoho's answer is kept (ctx.answer): the push applies it, so the event it causes is an echo (sync/pull.py).
    if service.status == "cancelled":
        answer = ctx.client.post(f"/subscriptions/{service.zoho_id}/cancel", params={"cancel_at_end": "false"},
                                 idempotent=True)
        ctx.answer = answer.get("subscription") if isinstance(answer, dict) else None
        return "cancel"
    answer = ctx.client.put(f"/subscriptions/{service.zoho_id}", json={"plan": payload["plan"]})
    ctx.answer = answer.get("subscription") if isinstance(answer, dict) else None
    return "update"


def subscription_find(ctx: SyncContext, service) -> dict | None:
    records = ctx.client.paginate("/subscriptions", "subscriptions", params={"customer_id": service.customer.zoho_id})
    return match_one(list(records), "reference_id", payloads.subscription_reference(service), "subscriptions")


# --- invoices -----------------------------------------------------------------------------------------------
def invoice_create(ctx: SyncContext, invoice, payload: dict) -> dict:
    body = _invoice_body(ctx, invoice, payload)
    created = ctx.client.post("/invoices", json=body, params={"ignore_auto_number_generation": "true"})
    record = created["invoice"]
    if invoice.status == "void":
        ctx.client.post(f"/invoices/{record['invoice_id']}/void", idempotent=True)
    return record


def invoice_update(ctx: SyncContext, invoice, payload: dict) -> str:
    if invoice.status == "void":
        ctx.client.post(f"/invoices/{invoice.zoho_id}/void", idempotent=True)
        return "cancel"
    ctx.client.put(f"/invoices/{invoice.zoho_id}", json=_invoice_body(ctx, invoice, payload))
    return "update"


def invoice_find(ctx: SyncContext, invoice) -> dict | None:
    records = ctx.client.paginate("/invoices", "invoices", params={"customer_id": invoice.customer.zoho_id})
    # Zoho's list answer names the number `number`, its other answers `invoice_number` (§12.6): accept both.
    return match_one(list(records), ("number", "invoice_number"), invoice.invoice_number, "invoices")


# --- payments -----------------------------------------------------------------------------------------------
def payment_applications(ctx: SyncContext, payment, *, left: Decimal | None = None,
                         applied: dict[str, Decimal] | None = None) -> list[tuple[str, Decimal]]:
    """Where the money goes in Zoho, never more than a balance: the payment's own invoice, else the customer's
    oldest open invoices, else nothing (it stays as customer credit). An update passes what it adds (`left`) on
    top of what the payment already applied (`applied`, by Zoho invoice id)."""
    if payment.invoice_id:
        return payloads.payment_own_invoice_application(payment)
    left = payment.amount if left is None else left
    wanted = dict(applied or {})
    if left > 0:
        params = {"customer_id": payment.customer.zoho_id, "filter_by": "Status.Unpaid"}
        open_invoices = sorted(ctx.client.paginate("/invoices", "invoices", params=params),
                               key=lambda i: (i.get("invoice_date") or i.get("date") or "", str(i.get("invoice_id"))))
        for record in open_invoices:
            if left <= 0:
                break
            label = record.get("invoice_number") or record.get("invoice_id")
            balance = inbound.zoho_number(record.get("balance"), inbound.column(Invoice, "balance_due"),
                                          key=f"invoice {label} balance")
            amount = min(left, balance or Decimal("0"))
            if amount > 0:
                invoice_id = str(record["invoice_id"])
                wanted[invoice_id] = wanted.get(invoice_id, Decimal("0")) + amount
                left -= amount
    if left > 0:
        ctx.notes.append(f"{left} stays with the customer as credit in Zoho.")
    return list(wanted.items())


def payment_create(ctx: SyncContext, payment, payload: dict) -> dict:
    if not payment.invoice_id:  # applied to the customer's oldest open Zoho invoices, known only now
        payload = ctx.sent = payloads.payment_to_zoho(payment, applications=payment_applications(ctx, payment))
    return ctx.client.post("/payments", json=payload)["payment"]


def _zoho_amount(value: Any, what: str) -> Decimal:
    """An amount Zoho answered (absent: 0); one that is not a finite number stops the update with a clear error."""
    amount = inbound.zoho_money(value)
    if amount is None and value in (None, ""):
        return Decimal("0")
    if amount is None or not amount.is_finite():
        raise RemoteConflict(f"Zoho answered {what} {value!r}, which is not an amount; nothing was changed in "
                             "Zoho. Check the record in Zoho, then queue it for sync again.")
    return amount


def _applied_by(record: dict) -> dict[str, Decimal]:
    """What a Zoho payment applies to each invoice (by Zoho invoice id)."""
    applied: dict[str, Decimal] = {}
    for entry in record.get("invoices") or []:
        amount = _zoho_amount(entry.get("amount_applied"), "an amount_applied of")
        if entry.get("invoice_id") and amount:
            applied[str(entry["invoice_id"])] = applied.get(str(entry["invoice_id"]), Decimal("0")) + amount
    return applied


def _trimmed(applied: dict[str, Decimal], amount: Decimal) -> list[tuple[str, Decimal]]:
    """`applied` cut down to `amount`, the last invoice first (as a refund takes money back)."""
    over = sum(applied.values(), Decimal("0")) - amount
    kept = list(applied.items())
    for position in range(len(kept) - 1, -1, -1):
        if over <= 0:
            break
        invoice_id, share = kept[position]
        cut = min(share, over)
        kept[position], over = (invoice_id, share - cut), over - cut
    return [(invoice_id, share) for invoice_id, share in kept if share > 0]


def payment_update(ctx: SyncContext, payment, payload: dict) -> str:
    """PUT /payments/{id} (§3.8): Zoho's payment takes what is held here. Zoho's copy is read first (one call):
    what it applied where. Where the amount (or the invoice) changed the payment is re-applied: its own invoice
    takes the new amount, never more than Zoho's balance there plus what this payment applied there already
    (one more read, only when an application grows); a payment with no invoice keeps its invoices, giving back
    from the last one when the amount shrinks and applying a raise to the oldest open invoices. A refunded
    payment, or one that would over-apply an invoice, is left for a person with the amounts: nothing is sent."""
    held = ctx.client.get(f"/payments/{payment.zoho_id}")["payment"]
    refunded = _zoho_amount(held.get("amount_refunded"), "an amount_refunded of")
    if str(held.get("status") or "success") != "success" or refunded > 0:
        raise RemoteConflict(
            f"Payment {payment.reference} changed here, but Zoho's payment {payment.zoho_id} is "
            f"{held.get('status')} with {refunded} refunded: sync edits only a payment nothing was refunded from. "
            "Nothing was changed in Zoho; correct it there, then queue it for sync again.")
    applied = _applied_by(held)
    if payment.invoice_id:
        wanted = payloads.payment_own_invoice_application(payment)
        for invoice_id, amount in wanted:
            already = applied.get(invoice_id, Decimal("0"))
            if amount <= already:
                continue
            balance = _zoho_amount(ctx.client.get(f"/invoices/{invoice_id}")["invoice"].get("balance"),
                                   f"invoice {payment.invoice.invoice_number}'s balance")
            room = balance + already
            if amount > room:
                raise RemoteConflict(
                    f"Applying {amount} of payment {payment.reference} to invoice {payment.invoice.invoice_number} "
                    f"would over-apply it: Zoho's balance there is {balance}, plus {already} this "
                    f"payment applied already, so {room} at most. Nothing was changed in Zoho; correct the amount "
                    "here or the invoice in Zoho, then queue it for sync again.")
    else:
        raise_by = max(payment.amount - _zoho_amount(held.get("amount"), "the payment's amount"), Decimal("0"))
        kept = _trimmed(applied, payment.amount)
        wanted = payment_applications(ctx, payment, left=raise_by, applied=dict(kept)) if raise_by else kept
    body = payloads.payment_to_zoho(payment, applications=wanted)
    # `invoices` is required on update (an empty list takes every application back); an emptied description
    # is sent empty, since Zoho keeps a field an update leaves out.
    ctx.sent = {**body, "description": payment.notes, "invoices": body.get("invoices", [])}
    answer = ctx.client.put(f"/payments/{payment.zoho_id}", json=ctx.sent)["payment"]
    ctx.answer = answer
    return "update"


def payment_find(ctx: SyncContext, payment) -> dict | None:
    records = ctx.client.paginate("/payments", "payments", params={"customer_id": payment.customer.zoho_id})
    return match_one(list(records), "reference_number", payment.reference, "payments")
