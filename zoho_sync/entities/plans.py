"""Service packages: Zoho's plans (`/plans`), each under a Zoho product (`/products`).

Everything that is particular to this entity lives here: its payload, its remote calls, the fields Zoho
owns and how they are pulled, and its spec (SPEC), which the generic code reads through the registry.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from zoho_sync.client import codes
from zoho_sync.client.errors import ZohoNotFoundError
from zoho_sync.entities.base import EntitySpec
from zoho_sync.entities.reconciling import OURS, Field, Reconcile
from zoho_sync.models import ServicePackage
from zoho_sync.tabular.columns import Column, Ref
from zoho_sync.tabular.entity import ImportEntity
from zoho_sync.wire.payloads import drop_empty, money
from zoho_sync.wire.remote import SyncContext

PERIOD_UNITS = {"weeks": "weeks", "months": "months", "years": "years"}


# --- service package: a product and its plan ----------------------------------------------------------------
def product_to_zoho(package) -> dict[str, Any]:
    return drop_empty({"name": package.name, "description": package.description})


def plan_to_zoho(package, *, today: date | None = None, product_id: str | None = None) -> dict[str, Any]:
    """The plan's body. Its product is the package's own (created first, when it has none yet)."""
    product_id = product_id or package.zoho_product_id or None
    return drop_empty({
        "plan_code": package.plan_code,
        "name": package.name,
        "recurring_price": money(package.price),
        "interval": package.interval,
        "interval_unit": PERIOD_UNITS[package.interval_unit],
        "product_id": product_id,
        "description": package.description,
    })


def package_fingerprint_fields(package, *, today: date | None = None) -> dict[str, Any]:
    return {"name": package.name, "description": package.description, "price": str(package.price),
            "interval": package.interval, "interval_unit": package.interval_unit}


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
        package.zoho_product_id = product_ensure(ctx, product_to_zoho(package))
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


def plan_find(ctx: SyncContext, package) -> dict | None:
    try:
        plan = ctx.client.get(f"/plans/{package.plan_code}")["plan"]
    except ZohoNotFoundError:
        return None
    if plan.get("product_id") and not package.zoho_product_id:
        package.zoho_product_id = str(plan["product_id"])
        ctx.remember(package, zoho_product_id=package.zoho_product_id)
    return {"plan_code": plan["plan_code"]}


# --- zoho_import: the columns of its file -------------------------------------------------------------
PACKAGE_REF = Ref(ServicePackage, "plan_code", "service package with plan code", only=("id", "plan_code"))


SERVICE_PACKAGES = ImportEntity(
    name="service_packages", noun="service package", model=ServicePackage, key="plan_code",
    columns=(
        Column("plan_code", "plan_code", "text", "FIBER-100", required=True,
               help="the natural key: letters, digits, dashes and underscores"),
        Column("name", "name", "text", "Fiber 100", required=True),
        Column("description", "description", "text", "100 Mbit/s fiber"),
        Column("price", "price", "money", "39.00", required=True),
        Column("interval", "interval", "integer", "1", help="bill every N interval units"),
        Column("interval_unit", "interval_unit", "choice", "months"),
        Column("is_active", "is_active", "boolean", "true"),
    ),
)


SPEC = EntitySpec(
    name="service_package", order=20, model=ServicePackage, zoho_entity="plan", id_field="plan_code",
    list_path="/plans", list_key="plans", remote_key=lambda r: str(r.get("plan_code", "")).casefold(),
    local_key=lambda p: p.plan_code.casefold(),
    remote_name=lambda r: r.get("name"),
    to_zoho=plan_to_zoho, fingerprint=package_fingerprint_fields,
    create=plan_create, update=plan_update, find=plan_find, label=lambda p: p.plan_code,
    extra_create_calls=lambda p: 0 if p.zoho_product_id else 1,  # create the product (its list is cached)
    duplicate_codes=(codes.DUPLICATE_PLAN_CODE.name,),
    failure_label="plan_code", web_app_path="plans", api_resources=("plans", "products"), aliases=("plans",),
    reconcile=Reconcile(fields=(
        Field("name", lambda p: p.name, "name", OURS),
        Field("price", lambda p: p.price, "recurring_price", OURS, "amount", column="price"),
        Field("interval", lambda p: p.interval, "interval", OURS),
        Field("interval_unit", lambda p: p.interval_unit, "interval_unit", OURS),
    )),
    importing=SERVICE_PACKAGES,
)
