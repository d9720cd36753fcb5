"""Subscriptions: create (live, future, trial, back-dated), list, get, update, cancel (§3.6).

Like Zoho, a live subscription raises the invoice of its first term itself when it starts today; a future
`starts_at` gives status `future` and no invoice; a past one gives a live subscription whose current term
continues the billing cycle, with invoices for past terms only when `create_backdated_invoice=true` (and no
events for those back-dated actions, §7.1).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from zoho_sync.client import codes
from zoho_sync.sandbox import validation as v
from zoho_sync.sandbox.errors import ApiError, invalid, not_allowed
from zoho_sync.sandbox.resources import invoices
from zoho_sync.sandbox.resources.customers import address, create_customer
from zoho_sync.sandbox.resources.terms import current_term, shift, term
from zoho_sync.sandbox.routes import Call, Reply, Router
from zoho_sync.sandbox.store import Store, public
from zoho_sync.sandbox.zoho_side import Action

LIST_FIELDS = ("subscription_id", "name", "status", "amount", "created_at", "activated_at",
               "current_term_ends_at", "current_term_starts_at", "last_billing_at", "next_billing_at",
               "expires_at", "interval", "interval_unit", "auto_collect", "created_time", "updated_time",
               "reference_id", "salesperson_id", "salesperson_name", "currency_code", "currency_symbol")
STATUS_FILTERS = {"ACTIVE": {"live", "trial", "non_renewing"}, "LIVE": {"live"}, "FUTURE": {"future"},
                  "TRIAL": {"trial"}, "PAST_DUE": {"dunning"}, "UNPAID": {"unpaid"},
                  "NON_RENEWING": {"non_renewing"}, "CANCELLED_FROM_DUNNING": {"cancelled_from_dunning"},
                  "CANCELLED": {"cancelled"}, "EXPIRED": {"expired"}, "TRIAL_EXPIRED": {"trial_expired"}}
ENDED = {"cancelled", "expired", "cancelled_from_dunning", "trial_expired"}
CUSTOMER_KEYS = ("customer_id", "display_name", "salutation", "first_name", "last_name", "email", "company_name",
                 "payment_terms", "payment_terms_label")
ADDRESS_KEYS = ("attention", "street", "city", "state", "country", "zip", "fax")


def _plan_part(store: Store, plan_in: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate `plan{plan_code, quantity, price, ...}`: (the stored plan, the subscription's plan block)."""
    if not isinstance(plan_in, dict):
        raise invalid("plan")
    code = v.text(plan_in, "plan_code", required=True)
    plan = store.get("plans", code)
    if plan is None or plan["status"] != "active":
        raise ApiError(codes.INVALID_PLAN_CODE, code=code)
    quantity = v.whole(plan_in.get("quantity", 1), "quantity", minimum=1)
    price = v.number(plan_in["price"], "price") if plan_in.get("price") is not None else v.dec(plan["recurring_price"])
    trial = plan["trial_period"] if plan_in.get("trial_days") is None else v.whole(plan_in["trial_days"], "trial_days",
                                                                                   minimum=0)
    fee = plan["setup_fee"] if plan_in.get("setup_fee") is None else v.number(plan_in["setup_fee"], "setup_fee")
    block = {"plan_code": code, "name": plan["name"], "quantity": quantity, "price": v.money_out(price),
             "discount": 0, "total": v.money_out(price * quantity), "tax_id": plan["tax_id"],
             "setup_fee": 0 if v.flag(plan_in, "exclude_setup_fee", False) else v.money_out(fee),
             "trial_days": 0 if v.flag(plan_in, "exclude_trial", False) else trial,
             "plan_description": plan["description"]}
    return plan, block


def _apply_plan(store: Store, rec: dict[str, Any], plan: dict[str, Any], block: dict[str, Any]) -> None:
    product = store.get("products", plan["product_id"]) or {"name": ""}
    rec.update(plan=block, amount=block["total"], interval=plan["interval"], interval_unit=plan["interval_unit"],
               product_id=plan["product_id"], product_name=product["name"],
               name=f"{product['name']}-{plan['name']}" if product["name"] else plan["name"])


def term_invoice(store: Store, rec: dict[str, Any], customer: dict[str, Any], index: int, emit: bool) -> str:
    """Raise the invoice of term `index` (the setup fee with term 0), dated the term's first day; its id."""
    block, anchor = rec["plan"], v.day(rec["_anchor"], "starts_at")
    start, end = term(anchor, index, rec["interval"], rec["interval_unit"])
    lines = [{"product_id": rec["product_id"], "name": block["name"], "price": block["price"],
              "quantity": block["quantity"], "description": f"Charges for this duration (from {start} to {end})"}]
    if index == 0 and block["setup_fee"]:
        lines.append({"product_id": rec["product_id"], "name": "Setup Fee", "price": block["setup_fee"], "quantity": 1})
    items, total = invoices.build_items(store, lines)
    inv = invoices.create_invoice(store, customer, items, total, on=start, subscription_id=rec["subscription_id"],
                                  emit=emit)
    return inv["invoice_id"]


def create_subscription(store: Store, body: Any, *, record_id: str | None = None, emit: bool = True) -> dict[str, Any]:
    body = v.body_object(body)
    customer_id = v.text(body, "customer_id")
    customer = store.get("customers", customer_id) if customer_id else None
    if customer is None and (customer_id or not isinstance(body.get("customer"), dict)):
        raise invalid("customer_id")
    plan, block = _plan_part(store, body.get("plan"))
    today = store.today()
    starts = v.day(body["starts_at"], "starts_at") if body.get("starts_at") is not None else today
    auto_collect, backdated = v.flag(body, "auto_collect", True), v.flag(body, "create_backdated_invoice", False)
    reference_id = v.text(body, "reference_id") or ""
    if customer is None:  # §3.6: an inline customer instead of customer_id, created once the rest is valid
        customer = create_customer(store, body["customer"])
    cycles = plan["billing_cycles"]
    rec: dict[str, Any] = {
        "subscription_id": record_id or store.new_id(), "status": "live", "created_at": today.isoformat(),
        "activated_at": starts.isoformat(), "last_billing_at": "", "expires_at": "",
        "auto_collect": auto_collect, "reference_id": reference_id,
        "child_invoice_id": "", "currency_code": customer["currency_code"],
        "currency_symbol": store.config.currency_symbol, "end_of_term": False, "customer_id": customer["customer_id"],
        "payment_terms": customer["payment_terms"], "payment_terms_label": customer["payment_terms_label"],
        "salesperson_id": "", "salesperson_name": "", "addons": [], "custom_fields": [], "taxes": [],
        "contactpersons": [], "notes": [], "created_time": store.timestamp(), "updated_time": store.timestamp(),
    }
    _apply_plan(store, rec, plan, block)
    unit, step, trial = rec["interval_unit"], rec["interval"], block["trial_days"]
    anchor = starts + timedelta(days=trial)
    rec.update(_anchor=anchor.isoformat(), _cycles=cycles)
    terms_to_bill: list[int] = []
    if starts > today:
        rec.update(status="future", current_term_starts_at=starts.isoformat(), next_billing_at=anchor.isoformat(),
                   current_term_ends_at=(shift(starts, step, unit) - timedelta(days=1)).isoformat())
    elif today < anchor:
        rec.update(status="trial", current_term_starts_at=starts.isoformat(), next_billing_at=anchor.isoformat(),
                   current_term_ends_at=(anchor - timedelta(days=1)).isoformat())
    else:
        index, start, next_start = current_term(anchor, today, step, unit)
        rec.update(current_term_starts_at=start.isoformat(), next_billing_at=next_start.isoformat(),
                   current_term_ends_at=(next_start - timedelta(days=1)).isoformat(), last_billing_at=start.isoformat())
        if cycles > 0:
            rec["expires_at"] = term(anchor, cycles - 1, step, unit)[1].isoformat()
            if index >= cycles:
                rec.update(status="expired", next_billing_at="")
        if anchor == today:
            terms_to_bill = [0]
        elif backdated:
            terms_to_bill = list(range(min(index + 1, cycles if cycles > 0 else index + 1)))
    store.put("subscriptions", rec["subscription_id"], rec)
    invoice_ids = [term_invoice(store, rec, customer, i, emit=False) for i in terms_to_bill]
    rec["child_invoice_id"] = invoice_ids[-1] if invoice_ids else ""
    if emit:
        store.emit("subscription_created", "subscription", detail(store, rec))
        if anchor == today:  # back-dated invoices raise no events (§7.1)
            for invoice_id in invoice_ids:
                store.emit("invoice_created", "invoice", invoices.detail(store, store.tables["invoices"][invoice_id]))
    return rec


def detail(store: Store, rec: dict[str, Any]) -> dict[str, Any]:
    customer = store.get("customers", rec["customer_id"]) or {}
    embedded = {k: customer[k] for k in CUSTOMER_KEYS if k in customer}
    for name in ("billing_address", "shipping_address"):
        embedded[name] = address(customer.get(name) or {}, name, ADDRESS_KEYS)
    return {**public(rec), "customer": embedded}


def list_item(store: Store, rec: dict[str, Any]) -> dict[str, Any]:
    customer = store.get("customers", rec["customer_id"]) or {}
    return {"customer_id": rec["customer_id"], "customer_name": customer.get("display_name", ""),
            "email": customer.get("email", ""), "plan_name": rec["plan"]["name"], **{k: rec[k] for k in LIST_FIELDS}}


def _create(store: Store, call: Call) -> Reply:
    rec = create_subscription(store, call.body)
    return 201, {"code": 0, "message": "Subscription has been created successfully.",
                 "subscription": detail(store, rec)}


def _list(store: Store, call: Call) -> Reply:
    q = call.query
    mode = q.get("filter_by", "") if q.get("filter_by", "").startswith("SubscriptionMode.") else None
    if mode not in (None, "SubscriptionMode.ONLINE", "SubscriptionMode.OFFLINE"):
        raise invalid("filter_by")
    status = None if mode else v.filter_by(q, "SubscriptionStatus", set(STATUS_FILTERS))
    wanted = STATUS_FILTERS[status] if status else None
    needle = (q.get("reference_contains") or "").lower()
    rows = [r for r in store.all("subscriptions")
            if (not q.get("customer_id") or r["customer_id"] == q["customer_id"])
            and (wanted is None or r["status"] in wanted) and needle in r["reference_id"].lower()
            and (mode is None or r["auto_collect"] == (mode == "SubscriptionMode.ONLINE"))]
    page, context = v.paginate(rows, q, store.config.max_per_page)
    return 200, {"code": 0, "message": "success", "subscriptions": [list_item(store, r) for r in page],
                 "page_context": context}


def _get(store: Store, call: Call) -> Reply:
    rec = store.require("subscriptions", call.params["subscription_id"], "Subscription")
    return 200, {"code": 0, "message": "success", "subscription": detail(store, rec)}


def _update(store: Store, call: Call) -> Reply:
    rec = store.require("subscriptions", call.params["subscription_id"], "Subscription")
    if rec["status"] in ENDED:
        raise not_allowed(f"the subscription is {rec['status']}")
    body = v.body_object(call.body)
    before = Decimal(str(rec["amount"]))
    if "plan" in body:
        plan, block = _plan_part(store, body["plan"])
        _apply_plan(store, rec, plan, block)
    if "reference_id" in body:
        rec["reference_id"] = v.text(body, "reference_id") or ""
    rec["auto_collect"] = v.flag(body, "auto_collect", rec["auto_collect"])
    store.stamp(rec, "updated_time")
    after = Decimal(str(rec["amount"]))
    if after != before:  # no proration invoice is simulated, only the event
        store.emit("subscription_upgraded" if after > before else "subscription_downgraded", "subscription",
                   detail(store, rec))
    return 200, {"code": 0, "message": "Subscription has been updated successfully.",
                 "subscription": detail(store, rec)}


def cancel_subscription(store: Store, rec: dict[str, Any], *, at_end: bool) -> str:
    """Cancel now, or at the end of the term (§3.6), and emit the matching event; returns Zoho's message."""
    if rec["status"] in ENDED:
        raise not_allowed(f"the subscription is already {rec['status']}")
    if at_end:  # §3.6: non_renewing now, ends with the current term
        rec.update(status="non_renewing", end_of_term=True, expires_at=rec["current_term_ends_at"])
        event = "subscription_cancellation_scheduled"
        message = "Your subscription will be canceled at the end of this term."
    else:
        rec.update(status="cancelled", expires_at=store.today().isoformat(), next_billing_at="")
        event, message = "subscription_cancelled", "Your subscription has been canceled."
    store.stamp(rec, "updated_time")
    store.emit(event, "subscription", detail(store, rec))
    return message


def _cancel(store: Store, call: Call) -> Reply:
    rec = store.require("subscriptions", call.params["subscription_id"], "Subscription")
    message = cancel_subscription(store, rec, at_end=v.query_flag(call.query, "cancel_at_end", default=False))
    return 200, {"code": 0, "message": message, "subscription": detail(store, rec)}


def register(router: Router) -> None:
    router.add("POST", "/subscriptions", _create, 201)
    router.add("GET", "/subscriptions", _list)
    router.add("GET", "/subscriptions/{subscription_id}", _get)
    router.add("PUT", "/subscriptions/{subscription_id}", _update)
    router.add("POST", "/subscriptions/{subscription_id}/cancel", _cancel)


def _zoho_cancel_subscription(store: Store, subscription_id: str, at_end: bool = False) -> dict[str, Any]:
    """As POST /subscriptions/{id}/cancel: `subscription_cancelled`, or with at_end `non_renewing` and
    `subscription_cancellation_scheduled`."""
    if not isinstance(at_end, bool):
        raise ValueError("at_end must be true or false")
    rec = store.require("subscriptions", str(subscription_id), "Subscription")
    cancel_subscription(store, rec, at_end=at_end)
    return detail(store, rec)


# Zoho-side actions (zoho_side.py); renewals, expiry and activation are in lifecycle.py.
ACTIONS = (Action("cancel_subscription", "subscription", _zoho_cancel_subscription),)
