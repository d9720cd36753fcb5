"""Credit notes (§3.9, credit-notes.yml): create, get, delete, void, converttoopen, apply to invoices, and the
list Zoho's documents omit. Refunds of credit notes and of payments are in refunds.py.

Decisions where Zoho is silent [I]:
- `GET /creditnotes` (list, §3.9 "probably exists", §11.8) is an extension like `GET /payments`: wrapper
  `creditnotes`, `page_context`, exact filters `creditnote_number`, `customer_id` and `reference_number`.
- A caller-chosen `creditnote_number` is honoured only with `ignore_auto_number_generation=true` (in the body as
  credit-notes.yml has it, or in the query as invoices take it); a number already used is
  DUPLICATE_CREDITNOTE_NUMBER. Otherwise numbers are CN-00001, CN-00002, ... (one past the highest such number).
- `date` defaults to today, as on invoices. `custom_fields`, `exchange_rate`, `template_id`, taxes and
  `contact_persons` are accepted and ignored (`custom_fields` reads []).
- `creditnote_items[]`: `code` (a plan or addon code) is required but not checked against the plans, since the
  sandbox has no addons; `name` defaults to the plan's name, or the code. `quantity` > 0 and `price` >= 0 are
  JSON numbers; a credit note totalling 0 is refused (invalid `creditnote_items`).
- Applying to invoices: the create body may name `invoices[]{invoice_id, amount_applied}` (the shape of
  POST /creditnotes/{id}/invoices) or `invoice_id` alone (the whole total goes to that invoice); neither is in
  credit-notes.yml's create body. An application above the credit note's balance or an invoice's balance is
  CREDIT_OVER_APPLIED and nothing moves; a void invoice or another customer's is refused. An application
  raises the invoice's `credits_applied`, lowers its `balance` (status `paid` / `partially_paid`) and the
  customer's `outstanding`; the credit note's `balance` falls (status `closed` at 0).
- The customer's `unused_credits` hold every open credit note's balance.
- Void: only a credit note nothing was applied from or refunded (its balance leaves `unused_credits`, the
  balance reads 0); converttoopen only from void. Delete: refused while it has refunds; its applications go
  back to the invoices first. Voiding an invoice hands its credits back to their credit notes (§3.7).
- `creditnote_added` (data `credit_note`, like the API's wrapper) on every create by the API or a Zoho-side
  action; none for the credit note a payment refund creates (refunds.py), nor for seeding.
- `payment_id` (extension): the payment a refund credit note was made for, "" otherwise. Modified time:
  `updated_time` (credit-notes.yml), stamped on every change.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from zoho_sync.client import codes
from zoho_sync.sandbox import validation as v
from zoho_sync.sandbox.errors import ApiError, invalid, not_allowed
from zoho_sync.sandbox.resources import invoices
from zoho_sync.sandbox.resources.customers import adjust
from zoho_sync.sandbox.routes import Call, Reply, Router
from zoho_sync.sandbox.store import Store, public
from zoho_sync.sandbox.zoho_side import Action, amount_argument

NUMBER_RE = re.compile(r"^CN-(\d+)$")
TEXT_FIELDS = ("reference_number", "notes", "terms")
LIST_FIELDS = ("creditnote_id", "creditnote_number", "status", "date", "customer_id", "customer_name", "email",
               "reference_number", "total", "balance", "currency_code", "currency_symbol", "payment_id",
               "created_time", "updated_time")


def check_number(store: Store, number: str) -> None:
    if any(r["creditnote_number"] == number for r in store.tables["creditnotes"].values()):
        raise ApiError(codes.DUPLICATE_CREDITNOTE_NUMBER, number=number)


def _next_number(store: Store) -> str:
    used = [int(m.group(1)) for r in store.tables["creditnotes"].values()
            if (m := NUMBER_RE.match(r["creditnote_number"]))]
    return f"CN-{max(used, default=0) + 1:05d}"


def build_items(store: Store, lines: Any) -> tuple[list[dict[str, Any]], Decimal]:
    if not isinstance(lines, list) or not lines:
        raise invalid("creditnote_items")
    items, total = [], Decimal(0)
    for line in lines:
        if not isinstance(line, dict):
            raise invalid("creditnote_items")
        code = v.text(line, "code", required=True) or ""
        quantity = v.number(line.get("quantity"), "quantity", positive=True)
        price = v.number(line.get("price"), "price")
        plan = store.get("plans", code) or {}
        line_total = (quantity * price).quantize(Decimal("0.01"))
        total += line_total
        items.append({"item_id": store.new_id(), "code": code, "name": v.text(line, "name") or plan.get("name", code),
                      "description": v.text(line, "description") or "", "quantity": v.quantity_out(quantity),
                      "price": v.money_out(price), "item_total": v.money_out(line_total)})
    if total <= 0:
        raise invalid("creditnote_items")
    return items, total


def applications(store: Store, customer_id: str, raw: Any, available: Decimal
                 ) -> list[tuple[dict[str, Any], Decimal]]:
    """The invoices `raw` ([{invoice_id, amount_applied}]) applies credit to, every amount checked: positive, the
    customer's open invoice, within its balance, and in all within `available` (the credit note's balance)."""
    if not isinstance(raw, list) or not raw:
        raise invalid("invoices")
    wanted = invoices.amounts_to_apply(store, customer_id, raw, positive=True)
    result = [(store.tables["invoices"][i], amount) for i, amount in wanted.items()]
    if any(amount > v.dec(inv["balance"]) for inv, amount in result) or sum(wanted.values()) > available:
        raise ApiError(codes.CREDIT_OVER_APPLIED)
    return result


def _settle(store: Store, invoice: dict[str, Any], credit: Decimal) -> None:
    """Move `credit` onto (positive) or off (negative) an invoice, and its status with it."""
    balance = v.dec(invoice["balance"]) - credit
    settled = v.dec(invoice["payment_made"]) + v.dec(invoice["credits_applied"]) + credit
    invoice.update(credits_applied=v.money_out(v.dec(invoice["credits_applied"]) + credit),
                   balance=v.money_out(balance),
                   status="paid" if balance == 0 else ("partially_paid" if settled > 0 else "sent"))
    store.stamp(invoice, "last_modified_time")
    adjust(store, invoice["customer_id"], outstanding=-credit)


def _move(store: Store, rec: dict[str, Any], invoice: dict[str, Any], credit: Decimal) -> None:
    """Apply (positive) or take back (negative) `credit` between a credit note and an invoice."""
    _settle(store, invoice, credit)
    adjust(store, rec["customer_id"], credits=-credit)
    entries = {e["invoice_id"]: e for e in rec["invoices"]}
    entry = entries.setdefault(invoice["invoice_id"], {"invoice_id": invoice["invoice_id"],
                                                        "invoice_number": invoice["invoice_number"], "amount": 0})
    entry["amount"] = v.money_out(v.dec(entry["amount"]) + credit)
    rec["invoices"] = [e for e in entries.values() if v.dec(e["amount"]) > 0]
    set_balance(rec, v.dec(rec["balance"]) - credit)


def set_balance(rec: dict[str, Any], balance: Decimal) -> None:
    rec.update(balance=v.money_out(balance), status="open" if balance > 0 else "closed")


def apply_credits(store: Store, rec: dict[str, Any], raw: Any) -> list[dict[str, Any]]:
    """POST /creditnotes/{id}/invoices: check everything, then apply; the applications as answered."""
    if rec["status"] == "void":
        raise not_allowed("the credit note is void")
    moves = applications(store, rec["customer_id"], raw, v.dec(rec["balance"]))
    for invoice, amount in moves:
        _move(store, rec, invoice, amount)
    store.stamp(rec, "updated_time")
    return [{"invoice_id": inv["invoice_id"], "amount_applied": v.money_out(amount)} for inv, amount in moves]


def detach_invoice(store: Store, invoice: dict[str, Any]) -> None:
    """An invoice is voided: the credits applied to it go back to their credit notes (§3.7). Registered as the
    credit notes' reaction to "invoice_voided" (their Resource row)."""
    for rec in store.tables["creditnotes"].values():
        for entry in [e for e in rec["invoices"] if e["invoice_id"] == invoice["invoice_id"]]:
            _move(store, rec, invoice, -v.dec(entry["amount"]))
            store.stamp(rec, "updated_time")


def create_credit_note(store: Store, body: Any, *, auto_number: bool = True, record_id: str | None = None,
                       emit: bool = True, payment_id: str = "",
                       lines: tuple[list[dict[str, Any]], Decimal] | None = None) -> dict[str, Any]:
    """Check the whole body, store the credit note (credit for the customer), apply it, emit `creditnote_added`.
    `lines` (items, total) replaces `creditnote_items` for the credit note a payment refund makes."""
    body = v.body_object(body)
    customer = store.get("customers", v.text(body, "customer_id", required=True) or "")
    if customer is None:
        raise invalid("customer_id")
    number = None
    if not auto_number or v.flag(body, "ignore_auto_number_generation", False):
        number = v.text(body, "creditnote_number", required=True)
        check_number(store, number or "")
    items, total = lines or build_items(store, body.get("creditnote_items"))
    on = v.day(body["date"], "date").isoformat() if body.get("date") is not None else store.today().isoformat()
    raw = body.get("invoices")
    if raw is None and body.get("invoice_id") is not None:
        raw = [{"invoice_id": body["invoice_id"], "amount_applied": float(total)}]
    moves = applications(store, customer["customer_id"], raw, total) if raw not in (None, []) else []
    now = store.timestamp()
    rec = {"creditnote_id": record_id or store.new_id(), "creditnote_number": number or _next_number(store),
           "date": on, "status": "open", "customer_id": customer["customer_id"],
           "customer_name": customer["display_name"], "email": customer["email"], "total": v.money_out(total),
           "balance": v.money_out(total), "creditnote_items": items, "invoices": [],
           "currency_code": customer["currency_code"], "currency_symbol": store.config.currency_symbol,
           "custom_fields": [], "payment_id": payment_id, "created_time": now, "updated_time": now,
           **{name: v.text(body, name) or "" for name in TEXT_FIELDS}}
    store.put("creditnotes", rec["creditnote_id"], rec)
    adjust(store, customer["customer_id"], credits=total)
    for invoice, amount in moves:
        _move(store, rec, invoice, amount)
    if emit:
        store.emit("creditnote_added", "credit_note", detail(rec))
    return rec


def seed_credit_note(store: Store, body: Any, *, record_id: str | None = None) -> dict[str, Any]:
    """Seed like POST /creditnotes, a given `creditnote_number` kept, without the event."""
    body = v.body_object(body)
    return create_credit_note(store, body, auto_number=not body.get("creditnote_number"), record_id=record_id,
                              emit=False)


def void_credit_note(store: Store, rec: dict[str, Any]) -> None:
    if rec["status"] == "void":
        raise not_allowed("the credit note is already void")
    if v.dec(rec["balance"]) != v.dec(rec["total"]):
        raise not_allowed("credits of the credit note were applied or refunded")
    adjust(store, rec["customer_id"], credits=-v.dec(rec["balance"]))
    rec.update(status="void", balance=0)
    store.stamp(rec, "updated_time")


def open_credit_note(store: Store, rec: dict[str, Any]) -> None:
    if rec["status"] != "void":
        raise not_allowed("only a void credit note is converted to open")
    set_balance(rec, v.dec(rec["total"]))
    adjust(store, rec["customer_id"], credits=v.dec(rec["total"]))
    store.stamp(rec, "updated_time")


def delete_credit_note(store: Store, rec: dict[str, Any]) -> None:
    """Remove a credit note without refunds; its applications go back to the invoices, its credit away."""
    if any(r["creditnote_id"] == rec["creditnote_id"] for r in store.tables["refunds"].values()):
        raise not_allowed("the credit note has refunds")
    for entry in list(rec["invoices"]):
        invoice = store.get("invoices", entry["invoice_id"])
        if invoice is not None:
            _move(store, rec, invoice, -v.dec(entry["amount"]))
    adjust(store, rec["customer_id"], credits=-v.dec(rec["balance"]))
    del store.tables["creditnotes"][rec["creditnote_id"]]
    store.touch()


def detail(rec: dict[str, Any]) -> dict[str, Any]:
    return public(rec)


def _one(store: Store, call: Call) -> dict[str, Any]:
    return store.require("creditnotes", call.params["creditnote_id"], "Credit note")


def _create(store: Store, call: Call) -> Reply:
    auto = not v.query_flag(call.query, "ignore_auto_number_generation")
    rec = create_credit_note(store, call.body, auto_number=auto)
    return 201, {"code": 0, "message": "Credit Note created successfully.", "credit_note": detail(rec)}


def _list(store: Store, call: Call) -> Reply:
    q = call.query
    rows = [r for r in store.all("creditnotes")
            if all(not q.get(name) or r[name] == q[name] for name in ("creditnote_number", "customer_id",
                                                                       "reference_number"))]
    page, context = v.paginate(rows, q, store.config.max_per_page)
    return 200, {"code": 0, "message": "success", "creditnotes": [{k: r[k] for k in LIST_FIELDS} for r in page],
                 "page_context": context}


def _get(store: Store, call: Call) -> Reply:
    return 200, {"code": 0, "message": "success", "credit_note": detail(_one(store, call))}


def _delete(store: Store, call: Call) -> Reply:
    delete_credit_note(store, _one(store, call))
    return 200, {"code": 0, "message": "The credit note has been deleted."}


def _void(store: Store, call: Call) -> Reply:
    void_credit_note(store, _one(store, call))
    return 200, {"code": 0, "message": "The credit note has been marked as void."}


def _open(store: Store, call: Call) -> Reply:
    open_credit_note(store, _one(store, call))
    return 200, {"code": 0, "message": "Status of the credit note has been changed to open."}


def _apply(store: Store, call: Call) -> Reply:
    rec = _one(store, call)
    applied = apply_credits(store, rec, v.body_object(call.body).get("invoices"))
    return 200, {"code": 0, "message": "Credits have been applied to the invoice(s).", "invoices": applied}


def register(router: Router) -> None:
    router.add("POST", "/creditnotes", _create, 201)
    router.add("GET", "/creditnotes", _list)
    router.add("GET", "/creditnotes/{creditnote_id}", _get)
    router.add("DELETE", "/creditnotes/{creditnote_id}", _delete)
    router.add("POST", "/creditnotes/{creditnote_id}/void", _void)
    router.add("POST", "/creditnotes/{creditnote_id}/converttoopen", _open)
    router.add("POST", "/creditnotes/{creditnote_id}/invoices", _apply)


def _zoho_create_credit_note(store: Store, customer_id: str, amount: Any, invoice_id: str | None = None,
                             code: str = "credit", reference_number: str = "", description: str = "") -> dict[str, Any]:
    """A credit note made in the web app: one line of `amount` (item `code`), applied in full to
    `invoice_id` when given (above its balance is CREDIT_OVER_APPLIED), `creditnote_added`. Returns it."""
    line = {"code": code, "quantity": 1, "price": float(amount_argument(amount)), "description": description or None}
    body = {"customer_id": str(customer_id), "creditnote_items": [line], "reference_number": reference_number,
            "invoice_id": None if invoice_id is None else str(invoice_id)}
    return detail(create_credit_note(store, body))


# Zoho-side actions (zoho_side.py)
ACTIONS = (Action("create_credit_note", "credit_note", _zoho_create_credit_note),)
