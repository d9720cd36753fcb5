"""What a person does in Zoho's web app, for drift tests: change fields of a record, or delete one. No events
(customers have no event types, §12.13; drift is what reconciliation has to find), but every edit stamps the
record's modified time. Deleting follows Zoho's refusals: a customer with transactions, a product with plans,
a plan with subscriptions and an invoice with payments stay.
"""

from __future__ import annotations

import copy
from typing import Any

from zoho_sync.sandbox import validation as v
from zoho_sync.sandbox.errors import not_allowed
from zoho_sync.sandbox.resources import DELETERS, ID_KEYS, LABELS, MODIFIED
from zoho_sync.sandbox.resources.customers import adjust
from zoho_sync.sandbox.resources.payments import take_back
from zoho_sync.sandbox.store import Store


def _record(store: Store, resource: str, record_id: str) -> dict[str, Any]:
    if resource not in MODIFIED:
        raise ValueError(f"unknown resource {resource!r}; use one of {', '.join(MODIFIED)}")
    return store.require(resource, str(record_id), LABELS[resource])


def edit_record(store: Store, resource: str, record_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Set `fields` (named as in the record's detail) and stamp its modified time; ids, timestamps, internal
    keys and names the record does not have are refused (ValueError). Values are stored as given and served raw,
    so a test can show the app what it does with odd numbers Zoho might send (NaN and Infinity go out as JSON's
    NaN/Infinity tokens, 1e300 as a number); the sandbox's own bookkeeping is not recomputed from them."""
    rec = _record(store, resource, record_id)
    if not isinstance(fields, dict) or not fields:
        raise ValueError("fields must be a non-empty object")
    fixed = {ID_KEYS[resource], MODIFIED[resource], "created_time"}
    for name in fields:
        if name.startswith("_") or name not in rec or name in fixed:
            raise ValueError(f"cannot edit {name!r} of a {LABELS[resource].lower()}")
    rec.update(copy.deepcopy(fields))
    store.stamp(rec, MODIFIED[resource])
    return rec


def _refuse(store: Store, resource: str, rec: dict[str, Any]) -> str | None:
    """Why Zoho would refuse to delete `rec`, or None."""
    if resource == "customers":
        tables = ("subscriptions", "invoices", "payments", "creditnotes")
        if any(r["customer_id"] == rec["customer_id"] for t in tables for r in store.tables[t].values()):
            return "the customer has transactions"
    if resource == "products" and any(p["product_id"] == rec["product_id"] for p in store.tables["plans"].values()):
        return "the product has plans"
    if resource == "plans" and any(s["plan"]["plan_code"] == rec["plan_code"]
                                   for s in store.tables["subscriptions"].values()):
        return "the plan has subscriptions"
    if resource == "invoices" and v.dec(rec["payment_made"]) > 0:
        return "the invoice has payments"
    if resource == "invoices" and v.dec(rec["credits_applied"]) > 0:
        return "the invoice has credits applied"
    return None


def delete_record(store: Store, resource: str, record_id: str) -> dict[str, Any]:
    """Remove a record; what it moved goes back (an invoice's outstanding amount, a payment's applications)."""
    rec = _record(store, resource, record_id)
    reason = _refuse(store, resource, rec)
    if reason:
        raise not_allowed(reason)
    if resource in DELETERS:  # the resource's own deletion undoes what the record moved, or refuses
        DELETERS[resource](store, rec)
        return rec
    if resource == "payments" and rec["status"] == "success":
        take_back(store, rec, v.dec(rec["amount"]) - v.dec(rec["amount_refunded"]))
    if resource == "invoices":
        adjust(store, rec["customer_id"], outstanding=-v.dec(rec["balance"]))
    del store.tables[resource][rec[ID_KEYS[resource]]]
    store.touch()
    return rec
