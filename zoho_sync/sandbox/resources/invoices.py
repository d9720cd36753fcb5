"""Invoices: one-time invoices with lines, numbering, totals, payments' effects, void (§3.7, §12.11).

List items carry `number` and `invoice_date`, the detail `invoice_number` and `date`, as Zoho's list and
create schemas do (§3.7). A caller-chosen `invoice_number` is honoured only with
`ignore_auto_number_generation=true`; otherwise numbers are INV-000001, INV-000002, ...
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from zoho_sync.client import codes
from zoho_sync.sandbox import validation as v
from zoho_sync.sandbox.errors import ApiError, invalid, not_allowed
from zoho_sync.sandbox.resources.customers import adjust
from zoho_sync.sandbox.routes import Call, Reply, Router
from zoho_sync.sandbox.store import Store, public
from zoho_sync.sandbox.zoho_side import Action

STATUS_FILTERS = {"Sent": {"sent"}, "Draft": {"draft"}, "OverDue": {"overdue"}, "Paid": {"paid"},
                  "PartiallyPaid": {"partially_paid"}, "Void": {"void"},
                  "Unpaid": {"sent", "partially_paid", "overdue"}}
TEXT_FIELDS = ("reference_number", "notes", "terms")


def build_items(store: Store, lines: Any) -> tuple[list[dict[str, Any]], Decimal]:
    """Check lines per §12.11 (quantity, price, and an existing product_id) and price them.

    invoices.yml lists `invoice_items[].product_id` as required: a line without one, or naming no stored
    product, is 400 code 2 "Invalid value passed for product_id". The name defaults to the product's.
    With `require_item_product_id=False` the old rule holds: product_id (not checked) or a name.
    """
    if not isinstance(lines, list) or not lines:
        raise invalid("invoice_items")
    require_product = store.config.require_item_product_id
    items, sub_total = [], Decimal(0)
    for order, line in enumerate(lines, start=1):
        if not isinstance(line, dict):
            raise invalid("invoice_items")
        quantity = v.number(line.get("quantity"), "quantity", positive=True)
        price = v.number(line.get("price"), "price")
        product_id = line.get("product_id")
        if product_id is not None and (isinstance(product_id, bool) or not isinstance(product_id, str | int)):
            raise invalid("product_id")
        product_id = str(product_id or "")
        product = store.get("products", product_id) if product_id else None
        if require_product and product is None:
            raise invalid("product_id")
        name = v.text(line, "name", required=not product_id)
        if name is None:
            name = product["name"] if product else ""
        total = (quantity * price).quantize(Decimal("0.01"))
        sub_total += total
        items.append({"item_id": store.new_id(), "product_id": product_id, "name": name,
                      "description": v.text(line, "description") or "", "price": v.money_out(price),
                      "quantity": v.quantity_out(quantity), "unit": v.text(line, "unit") or "",
                      "discount_amount": 0, "item_total": v.money_out(total), "item_order": order})
    return items, sub_total


def _next_number(store: Store) -> str:
    taken = {r["invoice_number"] for r in store.tables["invoices"].values()}
    while True:
        store.invoice_sequence += 1
        number = f"INV-{store.invoice_sequence:06d}"
        if number not in taken:
            return number


def check_number(store: Store, number: str, exclude: str | None = None) -> None:
    if any(r["invoice_number"] == number and r["invoice_id"] != exclude for r in store.tables["invoices"].values()):
        raise ApiError(codes.DUPLICATE_INVOICE_NUMBER, number=number)


def create_invoice(store: Store, customer: dict[str, Any], items: list[dict[str, Any]], sub_total: Decimal, *,
                   on: date, due: date | None = None, number: str | None = None, extra: dict[str, Any] | None = None,
                   subscription_id: str = "", emit: bool = True, record_id: str | None = None) -> dict[str, Any]:
    """Store a sent invoice, raise the customer's outstanding, and emit `invoice_created`."""
    now = store.timestamp()
    terms = customer.get("payment_terms") or 0
    record = {
        "invoice_id": record_id or store.new_id(), "invoice_number": number or _next_number(store),
        "date": on.isoformat(), "due_date": (due or on + timedelta(days=terms)).isoformat(), "status": "sent",
        "customer_id": customer["customer_id"], "customer_name": customer["display_name"],
        "reference_number": "", "notes": "", "terms": "", "currency_code": customer["currency_code"],
        "currency_id": customer["currency_id"], "exchange_rate": 1, "invoice_items": items,
        "sub_total": v.money_out(sub_total), "tax_total": 0, "total": v.money_out(sub_total), "payment_made": 0,
        "credits_applied": 0, "write_off_amount": 0, "balance": v.money_out(sub_total), "discount": 0,
        "adjustment": 0, "payment_terms": terms, "payment_terms_label": customer.get("payment_terms_label", ""),
        "price_precision": 2, "allow_partial_payments": True, "is_emailed": False, "reminders_sent": 0,
        "last_payment_date": "", "invoice_url": "", "created_time": now, "last_modified_time": now,
        "_subscription_id": subscription_id,
    }
    record.update(extra or {})
    store.put("invoices", record["invoice_id"], record)
    adjust(store, customer["customer_id"], outstanding=sub_total)
    if emit:
        store.emit("invoice_created", "invoice", detail(store, record))
    return record


def display_status(store: Store, rec: dict[str, Any]) -> str:
    """`overdue` is computed: an open invoice whose due date has passed (§3.7)."""
    if rec["status"] in ("sent", "partially_paid") and rec["due_date"] < store.today().isoformat():
        return "overdue"
    return rec["status"]


def detail(store: Store, rec: dict[str, Any]) -> dict[str, Any]:
    return {**public(rec), "status": display_status(store, rec)}


def list_item(store: Store, rec: dict[str, Any]) -> dict[str, Any]:
    customer = store.get("customers", rec["customer_id"]) or {}
    return {"invoice_id": rec["invoice_id"], "number": rec["invoice_number"], "status": display_status(store, rec),
            "invoice_date": rec["date"], "due_date": rec["due_date"], "customer_id": rec["customer_id"],
            "customer_name": rec["customer_name"], "email": customer.get("email", ""), "balance": rec["balance"],
            "total": rec["total"], "currency_code": rec["currency_code"],
            "currency_symbol": store.config.currency_symbol, "created_time": rec["created_time"],
            "updated_time": rec["last_modified_time"]}


def apply_payment(store: Store, rec: dict[str, Any], amount: Decimal, on: str) -> None:
    balance = v.dec(rec["balance"]) - amount
    rec.update(payment_made=v.money_out(v.dec(rec["payment_made"]) + amount), balance=v.money_out(balance),
               status="paid" if balance == 0 else "partially_paid", last_payment_date=on)
    store.stamp(rec, "last_modified_time")


def revert_payment(store: Store, rec: dict[str, Any], amount: Decimal) -> None:
    """Take back `amount` of the payments applied (a refund): the invoice is open again, `sent` when nothing
    stays paid, else `partially_paid` (`overdue` is still computed from the due date)."""
    paid = v.dec(rec["payment_made"]) - amount
    rec.update(payment_made=v.money_out(paid), balance=v.money_out(v.dec(rec["balance"]) + amount),
               status="partially_paid" if paid + v.dec(rec["credits_applied"]) > 0 else "sent")
    store.stamp(rec, "last_modified_time")


def _create(store: Store, call: Call) -> Reply:
    body = v.body_object(call.body)
    manual = v.query_flag(call.query, "ignore_auto_number_generation")
    send = v.query_flag(call.query, "send")
    customer = store.get("customers", v.text(body, "customer_id", required=True) or "")
    if customer is None:
        raise invalid("customer_id")
    on = v.day(body["date"], "date") if body.get("date") is not None else store.today()
    due = v.day(body["due_date"], "due_date") if body.get("due_date") is not None else None
    number = None
    if manual:  # §3.7: only then is the caller's invoice_number used
        number = v.text(body, "invoice_number", required=True)
        check_number(store, number)
    items, sub_total = build_items(store, body.get("invoice_items"))
    extra = {name: v.text(body, name) or "" for name in TEXT_FIELDS} | {"is_emailed": send}
    rec = create_invoice(store, customer, items, sub_total, on=on, due=due, number=number, extra=extra)
    return 201, {"code": 0, "message": "The invoice has been created.", "invoice": detail(store, rec)}


def _list(store: Store, call: Call) -> Reply:
    q = call.query
    raw = v.filter_by(q, "Status", set(STATUS_FILTERS))
    wanted = STATUS_FILTERS[raw] if raw else None
    rows = [r for r in store.all("invoices")
            if (not q.get("customer_id") or r["customer_id"] == q["customer_id"])
            and (not q.get("subscription_id") or r["_subscription_id"] == q["subscription_id"])
            and (wanted is None or display_status(store, r) in wanted)
            and v.search_match(r, q.get("search_text"), ("invoice_number", "reference_number", "customer_name"))]
    column = q.get("sort_column")
    if column in ("invoice_number", "date", "due_date", "total", "balance", "created_time", "customer_name"):
        rows.sort(key=lambda r: r[column], reverse=q.get("sort_order") == "D")
    page, context = v.paginate(rows, q, store.config.max_per_page)
    return 200, {"code": 0, "message": "success", "invoices": [list_item(store, r) for r in page],
                 "page_context": context}


def _get(store: Store, call: Call) -> Reply:
    rec = store.require("invoices", call.params["invoice_id"], "Invoice")
    return 200, {"code": 0, "message": "success", "invoice": detail(store, rec)}


def _update(store: Store, call: Call) -> Reply:
    rec = store.require("invoices", call.params["invoice_id"], "Invoice")
    if rec["status"] == "void":
        raise not_allowed("the invoice is void")
    body = v.body_object(call.body)
    changes: dict[str, Any] = {n: v.text(body, n) or "" for n in TEXT_FIELDS if n in body}
    for name in ("date", "due_date"):
        if body.get(name) is not None:
            changes[name] = v.day(body[name], name).isoformat()
    if body.get("invoice_number") is not None and v.query_flag(call.query, "ignore_auto_number_generation"):
        changes["invoice_number"] = v.text(body, "invoice_number", required=True)
        check_number(store, changes["invoice_number"], exclude=rec["invoice_id"])
    if "invoice_items" in body:
        items, total = build_items(store, body["invoice_items"])
        paid = v.dec(rec["payment_made"]) + v.dec(rec["credits_applied"])  # settled by payments and credits
        if total < paid:
            raise not_allowed("the new total is below the amount already paid")
        adjust(store, rec["customer_id"], outstanding=(total - paid) - v.dec(rec["balance"]))
        changes.update(invoice_items=items, sub_total=v.money_out(total), total=v.money_out(total),
                       balance=v.money_out(total - paid),
                       status="sent" if paid == 0 else ("paid" if total == paid else "partially_paid"))
    rec.update(changes)
    store.stamp(rec, "last_modified_time")
    return 200, {"code": 0, "message": "Invoice information has been updated.", "invoice": detail(store, rec)}


def void_invoice(store: Store, rec: dict[str, Any]) -> None:
    """Void an invoice. Zoho has no event for it (§7.1), so none is emitted."""
    if rec["status"] == "void":
        raise not_allowed("the invoice is already void")
    # §3.7: payments and credits attached to a voided invoice are detached and become customer credit. The
    # resources holding them let go by their reactions to "invoice_voided" (their Resource rows, `on=`).
    store.announce("invoice_voided", rec)
    adjust(store, rec["customer_id"], outstanding=-v.dec(rec["balance"]), credits=v.dec(rec["payment_made"]))
    rec.update(status="void", balance=0, payment_made=0)
    store.stamp(rec, "last_modified_time")


def delete_invoice(store: Store, rec: dict[str, Any]) -> None:
    """A person deletes an invoice in Zoho's web app: its outstanding amount leaves the customer's; one with
    payments or credits applied stays."""
    if v.dec(rec["payment_made"]) > 0:
        raise not_allowed("the invoice has payments")
    if v.dec(rec["credits_applied"]) > 0:
        raise not_allowed("the invoice has credits applied")
    adjust(store, rec["customer_id"], outstanding=-v.dec(rec["balance"]))
    store.remove("invoices", rec["invoice_id"])


def _void(store: Store, call: Call) -> Reply:
    void_invoice(store, store.require("invoices", call.params["invoice_id"], "Invoice"))
    return 200, {"code": 0, "message": "Invoice status has been changed to Void."}


def register(router: Router) -> None:
    router.add("POST", "/invoices", _create, 201)
    router.add("GET", "/invoices", _list)
    router.add("GET", "/invoices/{invoice_id}", _get)
    router.add("PUT", "/invoices/{invoice_id}", _update)
    router.add("POST", "/invoices/{invoice_id}/void", _void)


def seed_invoice(store: Store, body: Any, *, record_id: str | None = None) -> dict[str, Any]:
    """Invoices seed like POST /invoices with ignore_auto_number_generation=true when a number is given."""
    body = v.body_object(body)
    customer = store.get("customers", v.text(body, "customer_id", required=True) or "")
    if customer is None:
        raise invalid("customer_id")
    number = v.text(body, "invoice_number")
    if number:
        check_number(store, number)
    items, total = build_items(store, body.get("invoice_items"))
    on = v.day(body["date"], "date") if body.get("date") else store.today()
    return create_invoice(store, customer, items, total, on=on, number=number, emit=False, record_id=record_id)


def _zoho_void_invoice(store: Store, invoice_id: str) -> dict[str, Any]:
    """As POST /invoices/{id}/void; Zoho has no event for it (§7.1), so none is emitted."""
    rec = store.require("invoices", str(invoice_id), "Invoice")
    void_invoice(store, rec)
    return detail(store, rec)


ACTIONS = (Action("void_invoice", "invoice", _zoho_void_invoice),)  # Zoho-side actions (zoho_side.py)


def amounts_to_apply(store: Store, customer_id: str, raw: list, *, positive: bool) -> dict[str, Decimal]:
    """What a body's `invoices` ([{invoice_id, amount_applied}]) asks to apply to each invoice (repeated ids
    summed): each the customer's own invoice, not void, each amount a number (and above 0 when `positive`).
    The caller checks the amounts against the balances it knows of."""
    wanted: dict[str, Decimal] = {}
    for entry in raw:
        if not isinstance(entry, dict):
            raise invalid("invoices")
        invoice = store.get("invoices", v.text(entry, "invoice_id", required=True) or "")
        if invoice is None or invoice["customer_id"] != customer_id:
            raise invalid("invoice_id")
        if invoice["status"] == "void":
            raise not_allowed(f"invoice {invoice['invoice_number']} is void")
        amount = v.number(entry.get("amount_applied"), "amount_applied", positive=positive)
        wanted[invoice["invoice_id"]] = wanted.get(invoice["invoice_id"], Decimal(0)) + amount
    return wanted
