"""Customers: create, list (email, filter_by, search_text), get, update, mark active/inactive (§3.1, §12.3).

A duplicate `display_name` is refused with DUPLICATE_CUSTOMER unless that check is switched off; a duplicate
`email` is accepted (§12.3), and `GET /customers?email=` is an exact, case-insensitive match (§12.6).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from zoho_sync.client import codes
from zoho_sync.sandbox import validation as v
from zoho_sync.sandbox.errors import ApiError, invalid, not_allowed
from zoho_sync.sandbox.routes import Call, Reply, Router
from zoho_sync.sandbox.store import Store, public

CURRENCY_ID = "460000000000097"
ADDRESS_KEYS = ("attention", "street", "city", "state", "zip", "country", "state_code", "fax")
FIELDS: dict[str, type] = {
    "salutation": str, "first_name": str, "last_name": str, "company_name": str, "phone": str, "mobile": str,
    "department": str, "designation": str, "website": str, "twitter": str, "facebook": str, "skype": str,
    "notes": str, "payment_terms": int, "payment_terms_label": str, "currency_code": str, "ach_supported": bool,
    "is_portal_enabled": bool, "custom_fields": list, "tags": list, "default_templates": dict,
    "billing_address": dict, "shipping_address": dict, "place_of_contact": str, "gst_no": str,
    "gst_treatment": str, "tax_reg_no": str, "tds_tax_id": str, "tax_treatment": str, "tax_regime": str,
    "is_tds_registered": bool,
}
LIST_FIELDS = ("customer_id", "display_name", "first_name", "last_name", "email", "company_name", "phone",
               "mobile", "website", "currency_code", "unused_credits", "outstanding", "is_gapps_customer",
               "created_time", "updated_time", "has_attachment")
LIVE_SUBSCRIPTION = {"live", "trial", "non_renewing", "dunning", "unpaid", "future"}
STATUS_FILTERS = {"Active", "Inactive", "Gapps", "Crm", "NonSubscribers", "PortalEnabled", "PortalDisabled"}


def address(value: dict[str, Any], name: str, keys: tuple[str, ...] = ADDRESS_KEYS) -> dict[str, str]:
    if any(not isinstance(value.get(k, ""), str) for k in ADDRESS_KEYS):
        raise invalid(name)
    return {k: value[k] for k in keys if k in value}


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    fields = v.copy_fields(body, FIELDS)
    for name in ("billing_address", "shipping_address"):
        if name in fields:
            fields[name] = address(fields[name], name)
    if "custom_fields" in fields:
        fields["custom_fields"] = [
            {"index": i, "label": str(cf.get("label", "")), "value": str(cf.get("value", "")), "data_type": "string"}
            for i, cf in enumerate(fields["custom_fields"], start=1) if isinstance(cf, dict)
        ]
    email = v.text(body, "email")
    if email is not None:
        if "@" not in email:
            raise invalid("email")
        fields["email"] = email
    return fields


def _check_name(store: Store, name: str, exclude: str | None = None) -> None:
    if not store.config.check_duplicate_display_name:
        return
    wanted = name.casefold()
    for rec in store.tables["customers"].values():
        if rec["customer_id"] != exclude and rec["display_name"].casefold() == wanted:
            raise ApiError(codes.DUPLICATE_CUSTOMER, name=name)


def create_customer(store: Store, body: Any, *, record_id: str | None = None) -> dict[str, Any]:
    body = v.body_object(body)
    name = v.text(body, "display_name", required=True)
    fields = _clean(body)
    _check_name(store, name)
    now = store.timestamp()
    record = {
        "customer_id": record_id or store.new_id(), "display_name": name, "salutation": "", "first_name": "",
        "last_name": "", "email": "", "company_name": "", "phone": "", "mobile": "", "website": "",
        "currency_code": store.config.currency_code, "currency_id": CURRENCY_ID, "price_precision": 2,
        "payment_terms": 0, "payment_terms_label": "Due on Receipt", "status": "active", "source": "api",
        "unused_credits": 0, "outstanding": 0, "is_linked_with_zohocrm": False, "zcrm_account_id": "",
        "zcrm_contact_id": "", "primary_contactperson_id": "", "can_add_card": True, "can_add_bank_account": True,
        "ach_supported": False, "is_portal_enabled": False, "notes": "", "billing_address": {},
        "shipping_address": {}, "custom_fields": [], "tags": [], "default_templates": {}, "documents": [],
        "is_gapps_customer": False, "has_attachment": False, "created_time": now, "updated_time": now,
    }
    record.update(fields)
    return store.put("customers", record["customer_id"], record)


def adjust(store: Store, customer_id: str, *, outstanding: Decimal = Decimal(0), credits: Decimal = Decimal(0)) -> None:
    """Move a customer's `outstanding` and `unused_credits` (invoices raise one, payments and voids the other)."""
    rec = store.tables["customers"][customer_id]
    rec["outstanding"] = v.money_out(v.dec(rec["outstanding"]) + outstanding)
    rec["unused_credits"] = v.money_out(v.dec(rec["unused_credits"]) + credits)


def delete_customer(store: Store, rec: dict[str, Any]) -> None:
    """A person deletes a customer in Zoho's web app; one with transactions (a record of any other table naming
    it: subscriptions, invoices, payments, credit notes, ...) stays."""
    if any(r.get("customer_id") == rec["customer_id"]
           for name, table in store.tables.items() if name != "customers" for r in table.values()):
        raise not_allowed("the customer has transactions")
    store.remove("customers", rec["customer_id"])


def detail(rec: dict[str, Any]) -> dict[str, Any]:
    out = public(rec)
    for name in ("is_gapps_customer", "has_attachment"):
        out.pop(name, None)
    return out


def _create(store: Store, call: Call) -> Reply:
    rec = create_customer(store, call.body)
    return 201, {"code": 0, "message": "The customer has been created", "customer": detail(rec)}


def _list(store: Store, call: Call) -> Reply:
    q = call.query
    status = v.filter_by(q, "Status", STATUS_FILTERS)
    email = (q.get("email") or "").strip().casefold()
    live = {s["customer_id"] for s in store.tables["subscriptions"].values() if s["status"] in LIVE_SUBSCRIPTION}
    tests = {
        "Active": lambda r: r["status"] == "active", "Inactive": lambda r: r["status"] == "inactive",
        "Gapps": lambda r: r["is_gapps_customer"], "Crm": lambda r: r["is_linked_with_zohocrm"],
        "NonSubscribers": lambda r: r["customer_id"] not in live,
        "PortalEnabled": lambda r: r["is_portal_enabled"], "PortalDisabled": lambda r: not r["is_portal_enabled"],
    }
    rows = [r for r in store.all("customers")
            if (not email or r["email"].casefold() == email) and (status is None or tests[status](r))
            and v.search_match(r, q.get("search_text"), ("display_name", "company_name", "email", "first_name",
                                                          "last_name"))]
    column = q.get("sort_column")
    if column in ("display_name", "email", "company_name", "created_time", "updated_time", "outstanding"):
        rows.sort(key=lambda r: r[column], reverse=q.get("sort_order") == "D")
    page, context = v.paginate(rows, q, store.config.max_per_page)
    return 200, {"code": 0, "message": "success", "customers": [{k: r[k] for k in LIST_FIELDS} for r in page],
                 "page_context": context}


def _get(store: Store, call: Call) -> Reply:
    rec = store.require("customers", call.params["customer_id"], "Customer")
    return 200, {"code": 0, "message": "success", "customer": detail(rec)}


def _update(store: Store, call: Call) -> Reply:
    rec = store.require("customers", call.params["customer_id"], "Customer")
    body = v.body_object(call.body)
    name = v.text(body, "display_name") if "display_name" in body else None
    if "display_name" in body and name is None:
        raise invalid("display_name")
    fields = _clean(body)
    if name is not None:
        _check_name(store, name, exclude=rec["customer_id"])
        fields["display_name"] = name
    rec.update(fields)
    store.stamp(rec, "updated_time")
    return 200, {"code": 0, "message": "The customer details have been updated.", "customer": detail(rec)}


def _mark(active: bool):
    def handler(store: Store, call: Call) -> Reply:
        rec = store.require("customers", call.params["customer_id"], "Customer")
        if not active and any(s["customer_id"] == rec["customer_id"] and s["status"] in LIVE_SUBSCRIPTION
                              for s in store.tables["subscriptions"].values()):
            # §3.1: a customer can be marked inactive only when it has no active subscription.
            raise not_allowed("the customer has active subscriptions")
        rec["status"] = "active" if active else "inactive"
        store.stamp(rec, "updated_time")
        return 200, {"code": 0, "message": f"The customer has been marked as {'active' if active else 'inactive'}."}
    return handler


def register(router: Router) -> None:
    router.add("POST", "/customers", _create, 201)
    router.add("GET", "/customers", _list)
    router.add("GET", "/customers/{customer_id}", _get)
    router.add("PUT", "/customers/{customer_id}", _update)
    router.add("POST", "/customers/{customer_id}/markasactive", _mark(True))
    router.add("POST", "/customers/{customer_id}/markasinactive", _mark(False))
