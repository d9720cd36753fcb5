"""Subscription moves Zoho makes by itself (§3.6, §7.1): a renewal when a term ends, expiry, and a trial or
future subscription going live. Each stamps `updated_time` and emits its event; a renewal or an activation also
raises the new term's invoice (`invoice_created`) and points `child_invoice_id` at it.

A renewal moves the term by one interval from the subscription's anchor (terms.py); when a plan's fixed
number of billing cycles is used up the subscription expires instead, on the last day of its last term (§3.6:
"A subscription expires on the last day of the last billing cycle"), and a `non_renewing` subscription is
cancelled when its term ends.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from zoho_sync.sandbox import validation as v
from zoho_sync.sandbox.errors import not_allowed
from zoho_sync.sandbox.resources import invoices
from zoho_sync.sandbox.resources.subscriptions import ENDED, detail, term_invoice
from zoho_sync.sandbox.resources.terms import current_term, shift, term
from zoho_sync.sandbox.store import Store
from zoho_sync.sandbox.zoho_side import Action


def _cycles(store: Store, rec: dict[str, Any]) -> int:
    """The plan's billing cycles when the subscription was created (-1: until cancelled)."""
    if rec.get("_cycles") is not None:
        return int(rec["_cycles"])
    plan = store.get("plans", rec["plan"]["plan_code"]) or {}
    return int(plan.get("billing_cycles", -1))


def _bill(store: Store, rec: dict[str, Any], index: int, event: str) -> str:
    """Raise term `index`'s invoice, stamp, and emit `event` then `invoice_created`; the invoice id."""
    customer = store.require("customers", rec["customer_id"], "Customer")
    invoice_id = term_invoice(store, rec, customer, index, emit=False)
    rec["child_invoice_id"] = invoice_id
    store.stamp(rec, "updated_time")
    store.emit(event, "subscription", detail(store, rec))
    store.emit("invoice_created", "invoice", invoices.detail(store, store.tables["invoices"][invoice_id]))
    return invoice_id


def expire_subscription(store: Store, rec: dict[str, Any], *, on: date | None = None) -> None:
    """Status `expired` (on `on`, default today) and `subscription_expired`."""
    if rec["status"] in ENDED:
        raise not_allowed(f"the subscription is already {rec['status']}")
    rec.update(status="expired", expires_at=(on or store.today()).isoformat(), next_billing_at="")
    store.stamp(rec, "updated_time")
    store.emit("subscription_expired", "subscription", detail(store, rec))


def renew_subscription(store: Store, rec: dict[str, Any]) -> str | None:
    """Start the next term and raise its invoice (`subscription_renewed`, `invoice_created`); the new invoice's
    id, or None when the subscription ended instead (cycles used up: expired; `non_renewing`: cancelled)."""
    if rec["status"] == "non_renewing":  # the cancellation scheduled for the end of the term takes effect
        rec.update(status="cancelled", expires_at=rec["current_term_ends_at"], next_billing_at="")
        store.stamp(rec, "updated_time")
        store.emit("subscription_cancelled", "subscription", detail(store, rec))
        return None
    if rec["status"] != "live":
        raise not_allowed(f"the subscription is {rec['status']}; only a live subscription renews "
                          "(a trial or future one is activated)")
    anchor, step, unit = v.day(rec["_anchor"], "starts_at"), rec["interval"], rec["interval_unit"]
    index = current_term(anchor, v.day(rec["current_term_starts_at"], "current_term_starts_at"), step, unit)[0] + 1
    cycles = _cycles(store, rec)
    if 0 < cycles <= index:
        expire_subscription(store, rec, on=v.day(rec["current_term_ends_at"], "current_term_ends_at"))
        return None
    start, end = term(anchor, index, step, unit)
    rec.update(current_term_starts_at=start.isoformat(), current_term_ends_at=end.isoformat(),
               last_billing_at=start.isoformat(), next_billing_at=shift(anchor, (index + 1) * step, unit).isoformat())
    return _bill(store, rec, index, "subscription_renewed")


def activate_subscription(store: Store, rec: dict[str, Any]) -> str:
    """A trial or future subscription goes live today: its first term starts now and is invoiced (with the
    setup fee), emitting `subscription_activation` and `invoice_created`; the invoice's id."""
    if rec["status"] not in ("trial", "future"):
        raise not_allowed(f"the subscription is {rec['status']}; only a trial or future subscription is activated")
    today, step, unit = store.today(), rec["interval"], rec["interval_unit"]
    cycles = _cycles(store, rec)
    rec.update(status="live", activated_at=today.isoformat(), _anchor=today.isoformat(),
               current_term_starts_at=today.isoformat(), last_billing_at=today.isoformat(),
               current_term_ends_at=(shift(today, step, unit) - timedelta(days=1)).isoformat(),
               next_billing_at=shift(today, step, unit).isoformat(),
               expires_at=term(today, cycles - 1, step, unit)[1].isoformat() if cycles > 0 else "")
    return _bill(store, rec, 0, "subscription_activation")


# -- Zoho-side actions (zoho_side.py), registered with the subscriptions' row -----------------------------
def _zoho_renew_subscription(store: Store, subscription_id: str) -> dict[str, Any]:
    """The next term starts: term dates move one interval and its invoice is raised (`child_invoice_id`),
    `subscription_renewed` + `invoice_created`. Cycles used up: expired instead (`subscription_expired`);
    non_renewing: cancelled (`subscription_cancelled`). Returns the subscription."""
    rec = store.require("subscriptions", str(subscription_id), "Subscription")
    renew_subscription(store, rec)
    return detail(store, rec)


def _zoho_expire_subscription(store: Store, subscription_id: str) -> dict[str, Any]:
    """Status `expired`, `expires_at` today, `subscription_expired`."""
    rec = store.require("subscriptions", str(subscription_id), "Subscription")
    expire_subscription(store, rec)
    return detail(store, rec)


def _zoho_activate_subscription(store: Store, subscription_id: str) -> dict[str, Any]:
    """A trial or future subscription goes live today with its first invoice: `subscription_activation`
    + `invoice_created`."""
    rec = store.require("subscriptions", str(subscription_id), "Subscription")
    activate_subscription(store, rec)
    return detail(store, rec)


ACTIONS = (Action("renew_subscription", "subscription", _zoho_renew_subscription),
           Action("expire_subscription", "subscription", _zoho_expire_subscription),
           Action("activate_subscription", "subscription", _zoho_activate_subscription))
