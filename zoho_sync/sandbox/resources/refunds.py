"""Refunds (§3.8, §3.9, refunds.yml): of a credit note, and of a payment, which "creates a new credit note for the
amount to be refunded, then refunds the credit note"; their detail, and a list Zoho's documents omit.

Decisions where Zoho is silent [I]:
- `GET /creditnotes/refunds` (list) is an extension like `GET /payments`: wrapper `refunds` (items: the refund
  object as GET /creditnotes/refunds/{refund_id} answers it), `page_context`, exact filters `customer_id`,
  `creditnote_id` and `payment_id`. It is how a client finds a refund it may already have made.
- Request: `amount*` (> 0) and `description` (refunds.yml), plus Zoho Books' refund fields `date` (default
  today), `refund_mode` (a payment mode; default the payment's mode, or `cash`) and `reference_number`.
  More than the credit note's balance, or the payment's unrefunded amount, is 400 code 2 for `amount`, as the
  Zoho-side refund of a payment answers; a void credit note, or a payment that is not `success`, is refused.
- The refund object: refunds.yml's fields, `status` always `success`, plus `creditnote_id`, `payment_id` ("" for
  a credit note's own refund), `created_time` and `updated_time`. Its `creditnote` object shows the credit
  note's total (`amount`), this refund (`refund_amount`) and the credit note's balance now (`balance_amount`).
- A payment refund takes the amount back from the payment (its unapplied part first, then its invoices, which
  open again), grows `amount_refunded` and emits `payment_refunded` (data `payment`), as the Zoho-side refund
  always did; then its credit note (one line: code "", name "Refund", `payment_id` set, auto number, no
  `creditnote_added`) is made and refunded in full, so it is `closed` and the customer's credit is unchanged.
- A credit note's refund lowers its balance (`closed` at 0) and the customer's `unused_credits`; Zoho has no
  event for it. Refunds are not edited; deleting one in the web app is a Zoho-side edit (edits.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from zoho_sync.sandbox import validation as v
from zoho_sync.sandbox.errors import invalid, not_allowed
from zoho_sync.sandbox.resources import credit_notes, payments
from zoho_sync.sandbox.resources.customers import adjust
from zoho_sync.sandbox.routes import Call, Reply, Router
from zoho_sync.sandbox.store import Store, public
from zoho_sync.sandbox.zoho_side import Action, amount_argument


def _fields(store: Store, body: dict[str, Any], mode: str) -> dict[str, str]:
    """The optional fields of a refund request, checked."""
    refund_mode = v.text(body, "refund_mode") or mode
    if refund_mode not in payments.MODES:
        raise invalid("refund_mode")
    on = v.day(body["date"], "date").isoformat() if body.get("date") is not None else store.today().isoformat()
    return {"date": on, "refund_mode": refund_mode, "description": v.text(body, "description") or "",
            "reference_number": v.text(body, "reference_number") or ""}


def refund_credit_note(store: Store, note: dict[str, Any], amount: Decimal, fields: dict[str, str], *,
                       payment_id: str = "", record_id: str | None = None) -> dict[str, Any]:
    """Refund `amount` of a credit note's balance and store the refund."""
    if note["status"] == "void":
        raise not_allowed("the credit note is void")
    if amount <= 0 or amount > v.dec(note["balance"]):
        raise invalid("amount")
    credit_notes.set_balance(note, v.dec(note["balance"]) - amount)
    adjust(store, note["customer_id"], credits=-amount)
    store.stamp(note, "updated_time")
    now = store.timestamp()
    rec = {"refund_id": record_id or store.new_id(), "creditnote_id": note["creditnote_id"], "payment_id": payment_id,
           "amount": v.money_out(amount), "status": "success", "customer_id": note["customer_id"],
           "email": note["email"], "currency_code": note["currency_code"], "currency_symbol": note["currency_symbol"],
           "created_time": now, "updated_time": now, **fields}
    return store.put("refunds", rec["refund_id"], rec)


def refund_payment(store: Store, payment: dict[str, Any], amount: Decimal | None,
                   fields: dict[str, str]) -> dict[str, Any]:
    """Refund all (None) or part of a payment through a new credit note; the refund."""
    if payment["status"] != "success":
        raise not_allowed(f"the payment's status is {payment['status']}")
    amount = v.dec(payment["amount"]) - v.dec(payment["amount_refunded"]) if amount is None else amount
    payments.refund_payment(store, payment, amount)  # every check first: nothing has moved when it refuses
    line = {"item_id": store.new_id(), "code": "", "name": "Refund", "price": v.money_out(amount), "quantity": 1,
            "description": f"Refund of payment {payment['payment_id']}", "item_total": v.money_out(amount)}
    note = credit_notes.create_credit_note(store, {"customer_id": payment["customer_id"], "date": fields["date"]},
                                           emit=False, payment_id=payment["payment_id"], lines=([line], amount))
    return refund_credit_note(store, note, amount, fields, payment_id=payment["payment_id"])


def delete_refund(store: Store, rec: dict[str, Any]) -> None:
    """A person deletes a credit note's refund in Zoho's web app: the amount is credit on the credit note again.
    A payment's refund stays (the payment is not un-refunded in the sandbox)."""
    if rec["payment_id"]:
        raise not_allowed("the refund is of a payment")
    note = store.get("creditnotes", rec["creditnote_id"])
    if note is not None:
        amount = v.dec(rec["amount"])
        credit_notes.set_balance(note, v.dec(note["balance"]) + amount)
        adjust(store, note["customer_id"], credits=amount)
        store.stamp(note, "updated_time")
    del store.tables["refunds"][rec["refund_id"]]
    store.touch()


def seed_refund(store: Store, body: Any, *, record_id: str | None = None) -> dict[str, Any]:
    """Seed the refund of a stored credit note (`creditnote_id`, `amount`, the optional fields); no event."""
    body = v.body_object(body)
    note = store.get("creditnotes", v.text(body, "creditnote_id", required=True) or "")
    if note is None:
        raise invalid("creditnote_id")
    amount = v.number(body.get("amount"), "amount", positive=True)
    return refund_credit_note(store, note, amount, _fields(store, body, "cash"), record_id=record_id)


def detail(store: Store, rec: dict[str, Any]) -> dict[str, Any]:
    note = store.get("creditnotes", rec["creditnote_id"]) or {}
    return {**public(rec), "creditnote": {
        "creditnote_id": rec["creditnote_id"], "creditnote_number": note.get("creditnote_number", ""),
        "date": note.get("date", ""), "amount": note.get("total", 0), "refund_amount": rec["amount"],
        "balance_amount": note.get("balance", 0)}}


def _saved(store: Store, rec: dict[str, Any]) -> Reply:
    return 201, {"code": 0, "message": "The refund information has been saved.", "refund": detail(store, rec)}


def _refund_note(store: Store, call: Call) -> Reply:
    note = store.require("creditnotes", call.params["creditnote_id"], "Credit note")
    body = v.body_object(call.body)
    amount = v.number(body.get("amount"), "amount", positive=True)
    return _saved(store, refund_credit_note(store, note, amount, _fields(store, body, "cash")))


def _refund_payment(store: Store, call: Call) -> Reply:
    payment = store.require("payments", call.params["payment_id"], "Payment")
    body = v.body_object(call.body)
    amount = v.number(body.get("amount"), "amount", positive=True)
    return _saved(store, refund_payment(store, payment, amount, _fields(store, body, payment["payment_mode"])))


def _get(store: Store, call: Call) -> Reply:
    rec = store.require("refunds", call.params["refund_id"], "Refund")
    return 200, {"code": 0, "message": "success", "refund": detail(store, rec)}


def _list(store: Store, call: Call) -> Reply:
    q = call.query
    rows = [r for r in store.all("refunds")
            if all(not q.get(name) or r[name] == q[name] for name in ("customer_id", "creditnote_id", "payment_id"))]
    page, context = v.paginate(rows, q, store.config.max_per_page)
    return 200, {"code": 0, "message": "success", "refunds": [detail(store, r) for r in page],
                 "page_context": context}


def register(router: Router) -> None:
    router.add("POST", "/creditnotes/{creditnote_id}/refunds", _refund_note, 201)
    router.add("POST", "/payments/{payment_id}/refunds", _refund_payment, 201)
    router.add("GET", "/creditnotes/refunds", _list)
    router.add("GET", "/creditnotes/refunds/{refund_id}", _get)


# -- Zoho-side actions (zoho_side.py) ---------------------------------------------------------------------
def _zoho_refund_payment(store: Store, payment_id: str, amount: Any = None, refund_mode: str | None = None,
                         description: str = "") -> dict[str, Any]:
    """Refund all (default) or part of a payment as POST /payments/{id}/refunds does: `amount_refunded`
    grows, status `refunded` once all is refunded, the invoices it paid open again (`sent` /
    `partially_paid`), `payment_refunded`; a credit note for the amount is made and refunded (refunds.py,
    GET /creditnotes/refunds?payment_id= finds the refund). Returns the payment."""
    rec = store.require("payments", str(payment_id), "Payment")
    fields = {"date": store.today().isoformat(),
              "refund_mode": payments.mode_argument(refund_mode or rec["payment_mode"]),
              "description": description, "reference_number": ""}
    refund_payment(store, rec, None if amount is None else amount_argument(amount), fields)
    return payments.detail(rec)


def _zoho_refund_credit_note(store: Store, creditnote_id: str, amount: Any = None, refund_mode: str = "cash",
                             description: str = "") -> dict[str, Any]:
    """Refund all (default: its balance) or part of a credit note; no event (Zoho has none). Returns the
    refund as GET /creditnotes/refunds/{refund_id} shows it."""
    note = store.require("creditnotes", str(creditnote_id), "Credit note")
    value = v.dec(note["balance"]) if amount is None else amount_argument(amount)
    fields = {"date": store.today().isoformat(), "refund_mode": payments.mode_argument(refund_mode),
              "description": description, "reference_number": ""}
    return detail(store, refund_credit_note(store, note, value, fields))


ACTIONS = (Action("refund_payment", "payment", _zoho_refund_payment),
           Action("refund_credit_note", "refund", _zoho_refund_credit_note))
