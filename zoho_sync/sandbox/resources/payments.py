"""Offline payments recorded against invoices: create, get, and the list Zoho's documents omit (§3.8, §12.7).

`sum(amount_applied) > amount`, or an `amount_applied` above an invoice's balance, is PAYMENT_OVER_APPLIED;
applied amounts move the invoices' `payment_made`, `balance` and `status`; the rest becomes the customer's
`unused_credits`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from zoho_sync.client import codes
from zoho_sync.sandbox import validation as v
from zoho_sync.sandbox.errors import ApiError, invalid, not_allowed
from zoho_sync.sandbox.resources import invoices
from zoho_sync.sandbox.resources.customers import adjust
from zoho_sync.sandbox.routes import Call, Reply, Router
from zoho_sync.sandbox.store import Store, public

MODES = {"check", "cash", "creditcard", "banktransfer", "bankremittance", "autotransaction", "others"}
LIST_FIELDS = ("payment_id", "payment_mode", "amount", "date", "status", "reference_number", "customer_id",
               "customer_name", "email", "currency_code", "currency_symbol")


def _applications(store: Store, customer_id: str, raw: Any) -> list[tuple[dict[str, Any], Decimal]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid("invoices")
    wanted: dict[str, Decimal] = {}
    for entry in raw:
        if not isinstance(entry, dict):
            raise invalid("invoices")
        invoice = store.get("invoices", v.text(entry, "invoice_id", required=True) or "")
        if invoice is None or invoice["customer_id"] != customer_id:
            raise invalid("invoice_id")
        if invoice["status"] == "void":
            raise not_allowed(f"invoice {invoice['invoice_number']} is void")
        amount = v.number(entry.get("amount_applied"), "amount_applied")
        wanted[invoice["invoice_id"]] = wanted.get(invoice["invoice_id"], Decimal(0)) + amount
    result = []
    for invoice_id, amount in wanted.items():
        invoice = store.tables["invoices"][invoice_id]
        if amount > v.dec(invoice["balance"]):
            raise ApiError(codes.PAYMENT_OVER_APPLIED)
        result.append((invoice, amount))
    return result


def create_payment(store: Store, body: Any, *, record_id: str | None = None, emit: bool = True) -> dict[str, Any]:
    body = v.body_object(body)
    customer = store.get("customers", v.text(body, "customer_id", required=True) or "")
    if customer is None:
        raise invalid("customer_id")
    mode = v.text(body, "payment_mode", required=True)
    if mode not in MODES:
        raise invalid("payment_mode")
    amount = v.number(body.get("amount"), "amount", positive=True)
    on = v.day(body["date"], "date").isoformat() if body.get("date") is not None else store.today().isoformat()
    bank_charges = v.number(body.get("bank_charges", 0), "bank_charges")
    applications = _applications(store, customer["customer_id"], body.get("invoices"))
    applied = sum((a for _, a in applications), Decimal(0))
    if applied > amount:
        raise ApiError(codes.PAYMENT_OVER_APPLIED)
    entries = []
    for invoice, share in applications:
        invoices.apply_payment(store, invoice, share, on)
        entries.append({"invoice_id": invoice["invoice_id"], "invoice_number": invoice["invoice_number"],
                        "date": invoice["date"], "invoice_amount": invoice["total"],
                        "amount_applied": v.money_out(share), "balance_amount": invoice["balance"]})
    adjust(store, customer["customer_id"], outstanding=-applied, credits=amount - applied)
    record = {
        "payment_id": record_id or store.new_id(), "payment_mode": mode, "amount": v.money_out(amount),
        "amount_refunded": 0, "bank_charges": v.money_out(bank_charges), "date": on, "status": "success",
        "reference_number": v.text(body, "reference_number") or "", "description": v.text(body, "description") or "",
        "customer_id": customer["customer_id"], "customer_name": customer["display_name"],
        "email": customer["email"], "invoices": entries, "currency_code": customer["currency_code"],
        "currency_symbol": store.config.currency_symbol, "custom_fields": [],
        "created_time": store.timestamp(),
    }
    store.put("payments", record["payment_id"], record)
    if emit:
        store.emit("payment_thankyou", "payment", detail(record))
    return record


def detail(rec: dict[str, Any]) -> dict[str, Any]:
    out = public(rec)
    out.pop("created_time", None)
    return out


def _create(store: Store, call: Call) -> Reply:
    rec = create_payment(store, call.body)
    return 201, {"code": 0, "message": "The payment has been created.", "payment": detail(rec)}


def _list(store: Store, call: Call) -> Reply:
    q = call.query
    rows = [r for r in store.all("payments") if not q.get("customer_id") or r["customer_id"] == q["customer_id"]]
    page, context = v.paginate(rows, q, store.config.max_per_page)
    return 200, {"code": 0, "message": "success", "payments": [{k: r[k] for k in LIST_FIELDS} for r in page],
                 "page_context": context}


def _get(store: Store, call: Call) -> Reply:
    rec = store.require("payments", call.params["payment_id"], "Payment")
    return 200, {"code": 0, "message": "success", "payment": detail(rec)}


def register(router: Router) -> None:
    router.add("POST", "/payments", _create, 201)
    router.add("GET", "/payments", _list)
    router.add("GET", "/payments/{payment_id}", _get)
