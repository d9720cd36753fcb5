"""Products and plans (§3.3, §3.4). Plans are keyed by `plan_code`, which is also their URL key.

`GET /plans/{plan_code}` answers 404 code 1002 when absent (the client's dedup lookup, §12.6); a duplicate
`plan_code` is DUPLICATE_PLAN_CODE; a plan's `product_id` must name an existing product.
"""

from __future__ import annotations

from typing import Any

from zoho_sync.client import codes
from zoho_sync.sandbox import validation as v
from zoho_sync.sandbox.errors import ApiError, invalid, not_allowed
from zoho_sync.sandbox.routes import Call, Reply, Router
from zoho_sync.sandbox.store import Store, public

PRODUCT_FIELDS: dict[str, type] = {"description": str, "email_ids": str, "redirect_url": str}
PRODUCT_LIST = ("product_id", "name", "email_ids", "redirect_url", "status", "created_time", "updated_time")
PLAN_FIELDS: dict[str, type] = {"description": str, "unit": str, "tax_id": str, "product_type": str,
                                "store_markup_description": str, "hsn_or_sac": str}
PLAN_LIST = ("plan_code", "name", "recurring_price", "unit", "interval", "interval_unit", "billing_cycles",
             "trial_period", "setup_fee", "product_id", "tax_id", "product_type", "store_markup_description",
             "status", "addons", "created_time", "updated_time")
INTERVAL_UNITS = ("days", "weeks", "months", "years")


# -- products --------------------------------------------------------------------------------------------
def create_product(store: Store, body: Any, *, record_id: str | None = None) -> dict[str, Any]:
    body = v.body_object(body)
    name = v.text(body, "name", required=True)
    now = store.timestamp()
    record = {"product_id": record_id or store.new_id(), "name": name, "description": "", "email_ids": "",
              "redirect_url": "", "status": "active", "created_time": now, "updated_time": now}
    record.update(v.copy_fields(body, PRODUCT_FIELDS))
    return store.put("products", record["product_id"], record)


def _product_create(store: Store, call: Call) -> Reply:
    rec = create_product(store, call.body)
    return 201, {"code": 0, "message": "The product has been created", "product": public(rec)}


def _product_list(store: Store, call: Call) -> Reply:
    status = v.filter_by(call.query, "Status", {"Active", "Inactive"})
    rows = [r for r in store.all("products") if status is None or r["status"] == status.lower()]
    page, context = v.paginate(rows, call.query, store.config.max_per_page)
    return 200, {"code": 0, "message": "success", "products": [{k: r[k] for k in PRODUCT_LIST} for r in page],
                 "page_context": context}


def _product_get(store: Store, call: Call) -> Reply:
    rec = store.require("products", call.params["product_id"], "Product")
    return 200, {"code": 0, "message": "success", "product": public(rec)}


def _product_update(store: Store, call: Call) -> Reply:
    rec = store.require("products", call.params["product_id"], "Product")
    body = v.body_object(call.body)
    fields = v.copy_fields(body, PRODUCT_FIELDS)
    if "name" in body:
        fields["name"] = v.text(body, "name", required=True)
    rec.update(fields)
    store.stamp(rec, "updated_time")
    return 200, {"code": 0, "message": "The product details have been updated.", "product": public(rec)}


# -- plans -----------------------------------------------------------------------------------------------
def _plan_fields(store: Store, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    fields = v.copy_fields(body, PLAN_FIELDS)
    for name in ("name", "product_id"):
        if creating or name in body:
            fields[name] = v.text(body, name, required=True)
    if "product_id" in fields and fields["product_id"] not in store.tables["products"]:
        raise invalid("product_id")
    if creating or "recurring_price" in body:
        fields["recurring_price"] = v.money_out(v.number(body.get("recurring_price"), "recurring_price"))
    if creating or "interval" in body:
        fields["interval"] = v.whole(body.get("interval"), "interval", minimum=1)
    if body.get("interval_unit") is not None:
        if body["interval_unit"] not in INTERVAL_UNITS:
            raise invalid("interval_unit")
        fields["interval_unit"] = body["interval_unit"]
    if body.get("billing_cycles") is not None:
        cycles = v.whole(body["billing_cycles"], "billing_cycles", minimum=-1)
        if cycles == 0:
            raise invalid("billing_cycles")
        fields["billing_cycles"] = cycles
    if body.get("trial_period") is not None:
        fields["trial_period"] = v.whole(body["trial_period"], "trial_period", minimum=0)
    if body.get("setup_fee") is not None:
        fields["setup_fee"] = v.money_out(v.number(body["setup_fee"], "setup_fee"))
    return fields


def create_plan(store: Store, body: Any, *, record_id: str | None = None) -> dict[str, Any]:
    body = v.body_object(body)
    code = v.text(body, "plan_code", required=True)
    if "/" in code:
        raise invalid("plan_code")
    fields = _plan_fields(store, body, creating=True)
    if code in store.tables["plans"]:
        raise ApiError(codes.DUPLICATE_PLAN_CODE, code=code)
    now = store.timestamp()
    record = {"plan_code": code, "name": "", "description": "", "product_id": "", "recurring_price": 0,
              "interval": 1, "interval_unit": "months", "billing_cycles": -1, "trial_period": 0, "setup_fee": 0,
              "unit": "", "tax_id": "", "product_type": "services", "store_markup_description": "",
              "hsn_or_sac": "", "status": "active", "account_id": "", "account_name": "Sales", "addons": [],
              "url": "", "created_time": now, "updated_time": now}
    record.update(fields)
    return store.put("plans", code, record)


def _plan_create(store: Store, call: Call) -> Reply:
    rec = create_plan(store, call.body)
    return 201, {"code": 0, "message": "The plan has been created.", "plan": public(rec)}


def _plan_list(store: Store, call: Call) -> Reply:
    status = v.filter_by(call.query, "PlanStatus", {"ACTIVE", "INACTIVE"})
    product_id = call.query.get("product_id")
    rows = [r for r in store.all("plans") if (status is None or r["status"] == status.lower())
            and (not product_id or r["product_id"] == product_id)]
    page, context = v.paginate(rows, call.query, store.config.max_per_page)
    return 200, {"code": 0, "message": "success", "plans": [{k: r[k] for k in PLAN_LIST} for r in page],
                 "page_context": context}


def _plan_get(store: Store, call: Call) -> Reply:
    rec = store.require("plans", call.params["plan_code"], "Plan")
    return 200, {"code": 0, "message": "success", "plan": public(rec)}


def _plan_update(store: Store, call: Call) -> Reply:
    rec = store.require("plans", call.params["plan_code"], "Plan")
    fields = _plan_fields(store, v.body_object(call.body), creating=False)
    rec.update(fields)
    store.stamp(rec, "updated_time")
    return 200, {"code": 0, "message": "The plan details has been updated.", "plan": public(rec)}


def _mark(table: str, key: str, label: str, active: bool):
    def handler(store: Store, call: Call) -> Reply:
        rec = store.require(table, call.params[key], label)
        rec["status"] = "active" if active else "inactive"
        store.stamp(rec, "updated_time")
        state = "active" if active else "inactive"
        return 200, {"code": 0, "message": f"The {label.lower()} has been marked as {state}."}
    return handler


def delete_product(store: Store, rec: dict[str, Any]) -> None:
    """A person deletes a product in Zoho's web app; one with plans stays."""
    if any(p["product_id"] == rec["product_id"] for p in store.tables["plans"].values()):
        raise not_allowed("the product has plans")
    store.remove("products", rec["product_id"])


def delete_plan(store: Store, rec: dict[str, Any]) -> None:
    """A person deletes a plan in Zoho's web app; one with subscriptions stays."""
    if any(s["plan"]["plan_code"] == rec["plan_code"] for s in store.tables["subscriptions"].values()):
        raise not_allowed("the plan has subscriptions")
    store.remove("plans", rec["plan_code"])


def register_products(router: Router) -> None:
    router.add("POST", "/products", _product_create, 201)
    router.add("GET", "/products", _product_list)
    router.add("GET", "/products/{product_id}", _product_get)
    router.add("PUT", "/products/{product_id}", _product_update)
    for state in (True, False):
        suffix = "markasactive" if state else "markasinactive"
        router.add("POST", f"/products/{{product_id}}/{suffix}", _mark("products", "product_id", "Product", state))


def register_plans(router: Router) -> None:
    router.add("POST", "/plans", _plan_create, 201)
    router.add("GET", "/plans", _plan_list)
    router.add("GET", "/plans/{plan_code}", _plan_get)
    router.add("PUT", "/plans/{plan_code}", _plan_update)
    for state in (True, False):
        suffix = "markasactive" if state else "markasinactive"
        router.add("POST", f"/plans/{{plan_code}}/{suffix}", _mark("plans", "plan_code", "Plan", state))


def register(router: Router) -> None:
    """Both resources' routes (each row registers its own: register_products, register_plans)."""
    register_products(router)
    register_plans(router)
