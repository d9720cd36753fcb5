"""Payments recorded against invoices: create, get, update, the list Zoho's documents omit (§3.8, §12.7), and the
Zoho-side declines and refunds.

`sum(amount_applied) > amount`, or an `amount_applied` above an invoice's balance, is PAYMENT_OVER_APPLIED;
applied amounts move the invoices' `payment_made`, `balance` and `status`; the rest becomes the customer's
`unused_credits`. An update (PUT, payments.yml "Update a payment") is checked as a create and re-applies the
payment: its old applications are reversed and the new ones made, each invoice's balance counting what this
payment had applied there; an over-application is PAYMENT_OVER_APPLIED and changes nothing. A declined charge
is stored with status `failure` (payments.yml: "success or failure") and applies nothing. A refund is taken
from the unapplied part first, then from the invoices, last one first.
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
from zoho_sync.sandbox.zoho_side import Action, amount_argument

MODES = {"check", "cash", "creditcard", "banktransfer", "bankremittance", "autotransaction", "others"}
LIST_FIELDS = ("payment_id", "payment_mode", "amount", "amount_refunded", "date", "status", "reference_number",
               "customer_id", "customer_name", "email", "currency_code", "currency_symbol", "created_time",
               "updated_time")
GATEWAY = "test_gateway"  # subscription.yml's list of gateways names a test gateway


def _applications(store: Store, customer_id: str, raw: Any, *, returned: dict[str, Decimal] | None = None
                  ) -> list[tuple[dict[str, Any], Decimal]]:
    """The invoices a body applies the payment to, each amount checked against the invoice's balance plus what
    `returned` gives back to it (an update: what this payment applied there before)."""
    returned = returned or {}
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid("invoices")
    wanted = invoices.amounts_to_apply(store, customer_id, raw, positive=False)
    result = []
    for invoice_id, amount in wanted.items():
        invoice = store.tables["invoices"][invoice_id]
        if amount > v.dec(invoice["balance"]) + returned.get(invoice_id, Decimal(0)):
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
        entries.append(_entry(invoice, share))
    adjust(store, customer["customer_id"], outstanding=-applied, credits=amount - applied)
    record = _record(store, customer, mode=mode, amount=amount, on=on, entries=entries, record_id=record_id,
                     bank_charges=bank_charges, reference=v.text(body, "reference_number") or "",
                     description=v.text(body, "description") or "")
    store.put("payments", record["payment_id"], record)
    if emit:
        store.emit("payment_thankyou", "payment", detail(record))
    return record


def update_payment(store: Store, rec: dict[str, Any], body: Any) -> dict[str, Any]:
    """Change a payment as PUT /payments/{payment_id} does: the create's fields and checks, `invoices` required
    (payments.yml's update request); a text field left out keeps its value. Every check runs before anything
    moves, so a refused update (an over-application, an unknown invoice) leaves the payment, its invoices and
    the customer as they were. Zoho documents no event for an edited payment (events.yml): none is emitted."""
    body = v.body_object(body)
    if rec["status"] != "success" or v.dec(rec["amount_refunded"]) > 0:
        raise not_allowed(f"the payment is {rec['status']}" if rec["status"] != "success"
                          else "the payment has refunds")
    customer = store.get("customers", v.text(body, "customer_id", required=True) or "")
    if customer is None or customer["customer_id"] != rec["customer_id"]:
        raise invalid("customer_id")
    mode = v.text(body, "payment_mode", required=True)
    if mode not in MODES:
        raise invalid("payment_mode")
    amount = v.number(body.get("amount"), "amount", positive=True)
    on = v.day(body["date"], "date").isoformat() if body.get("date") is not None else rec["date"]
    bank_charges = v.number(body.get("bank_charges", rec["bank_charges"]), "bank_charges")
    if body.get("invoices") is None:
        raise invalid("invoices")
    held: dict[str, Decimal] = {}
    for entry in rec["invoices"]:
        held[entry["invoice_id"]] = held.get(entry["invoice_id"], Decimal(0)) + v.dec(entry["amount_applied"])
    applications = _applications(store, customer["customer_id"], body["invoices"], returned=held)
    applied = sum((a for _, a in applications), Decimal(0))
    if applied > amount:
        raise ApiError(codes.PAYMENT_OVER_APPLIED)
    held_total = sum(held.values(), Decimal(0))
    for invoice_id, share in held.items():  # the old application goes back...
        invoice = store.get("invoices", invoice_id)
        if share > 0 and invoice is not None:
            invoices.revert_payment(store, invoice, share)
    entries = []
    for invoice, share in applications:  # ...and the new one is made
        if share > 0:
            invoices.apply_payment(store, invoice, share, on)
        entries.append(_entry(invoice, share))
    adjust(store, customer["customer_id"], outstanding=held_total - applied,
           credits=(amount - applied) - (v.dec(rec["amount"]) - held_total))
    rec.update(payment_mode=mode, amount=v.money_out(amount), date=on, bank_charges=v.money_out(bank_charges),
               invoices=entries, **{name: v.text(body, name) or "" for name in ("reference_number", "description")
                                    if name in body})  # left out: kept as it is
    store.stamp(rec, "updated_time")
    return rec


def _entry(invoice: dict[str, Any], share: Decimal) -> dict[str, Any]:
    return {"invoice_id": invoice["invoice_id"], "invoice_number": invoice["invoice_number"],
            "date": invoice["date"], "invoice_amount": invoice["total"], "amount_applied": v.money_out(share),
            "balance_amount": invoice["balance"]}


def _record(store: Store, customer: dict[str, Any], *, mode: str, amount: Decimal, on: str,
            entries: list[dict[str, Any]], reference: str, description: str, bank_charges: Decimal = Decimal(0),
            status: str = "success", error: str = "", record_id: str | None = None) -> dict[str, Any]:
    now = store.timestamp()
    record = {
        "payment_id": record_id or store.new_id(), "payment_mode": mode, "amount": v.money_out(amount),
        "amount_refunded": 0, "bank_charges": v.money_out(bank_charges), "date": on, "status": status,
        "reference_number": reference, "description": description, "customer_id": customer["customer_id"],
        "customer_name": customer["display_name"], "email": customer["email"], "invoices": entries,
        "currency_code": customer["currency_code"], "currency_symbol": store.config.currency_symbol,
        "custom_fields": [], "created_time": now, "updated_time": now,
    }
    if mode == "autotransaction":  # payments.yml: shown only for this mode; a test card on the test gateway
        record["autotransaction"] = {
            "autotransaction_id": store.new_id(), "payment_gateway": GATEWAY,
            "gateway_transaction_id": f"txn_{record['payment_id']}", "gateway_error_message": error,
            "card_id": "", "last_four_digits": 1111, "expiry_month": 12, "expiry_year": store.today().year + 3}
    return record


def decline_payment(store: Store, invoice: dict[str, Any], amount: Decimal, mode: str) -> dict[str, Any]:
    """Store a declined charge of `invoice` (status `failure`, nothing applied) and emit `payment_declined`."""
    customer = store.require("customers", invoice["customer_id"], "Customer")
    reason = "The card was declined by the payment gateway."
    record = _record(store, customer, mode=mode, amount=amount, on=store.today().isoformat(),
                     entries=[_entry(invoice, Decimal(0))], reference="", status="failure", error=reason,
                     description=f"Payment for {invoice['invoice_number']} failed: {reason}")
    store.put("payments", record["payment_id"], record)
    store.emit("payment_declined", "payment", detail(record))
    return record


def take_back(store: Store, rec: dict[str, Any], amount: Decimal) -> None:
    """Take `amount` back out of a payment: first its unapplied part (the customer's credit), then the
    invoices it paid, last one first, which open again."""
    applied = sum((v.dec(e["amount_applied"]) for e in rec["invoices"]), Decimal(0))
    unapplied = v.dec(rec["amount"]) - v.dec(rec["amount_refunded"]) - applied
    from_credit = min(amount, max(unapplied, Decimal(0)))
    adjust(store, rec["customer_id"], credits=-from_credit)
    rest = amount - from_credit
    for entry in reversed(rec["invoices"]):
        share = min(rest, v.dec(entry["amount_applied"]))
        if share <= 0:
            continue
        invoice = store.get("invoices", entry["invoice_id"])
        if invoice is not None:
            invoices.revert_payment(store, invoice, share)
            adjust(store, rec["customer_id"], outstanding=share)
            entry["balance_amount"] = invoice["balance"]
        entry["amount_applied"] = v.money_out(v.dec(entry["amount_applied"]) - share)
        rest -= share


def refund_payment(store: Store, rec: dict[str, Any], amount: Decimal | None = None) -> dict[str, Any]:
    """Refund all (None) or part of a payment and emit `payment_refunded`; fully refunded means `refunded`."""
    if rec["status"] != "success":
        raise not_allowed(f"the payment's status is {rec['status']}")
    refundable = v.dec(rec["amount"]) - v.dec(rec["amount_refunded"])
    amount = refundable if amount is None else amount
    if amount <= 0 or amount > refundable:
        raise invalid("amount")
    take_back(store, rec, amount)
    rec["amount_refunded"] = v.money_out(v.dec(rec["amount_refunded"]) + amount)
    if amount == refundable:
        rec["status"] = "refunded"
    store.stamp(rec, "updated_time")
    store.emit("payment_refunded", "payment", detail(rec))
    return rec


def delete_payment(store: Store, rec: dict[str, Any]) -> None:
    """A person deletes a payment in Zoho's web app: what it still holds goes back (its unapplied part, then its
    invoices, which open again)."""
    if rec["status"] == "success":
        take_back(store, rec, v.dec(rec["amount"]) - v.dec(rec["amount_refunded"]))
    store.remove("payments", rec["payment_id"])


def detach_invoice(store: Store, invoice: dict[str, Any]) -> None:
    """An invoice is voided: the payments applied to it let it go (§3.7); the invoice makes their amounts
    customer credit."""
    for payment in store.tables["payments"].values():
        kept = [e for e in payment["invoices"] if e["invoice_id"] != invoice["invoice_id"]]
        if len(kept) != len(payment["invoices"]):
            payment["invoices"] = kept
            store.stamp(payment, "updated_time")


def detail(rec: dict[str, Any]) -> dict[str, Any]:
    return public(rec)


def _create(store: Store, call: Call) -> Reply:
    rec = create_payment(store, call.body)
    return 201, {"code": 0, "message": "The payment has been created.", "payment": detail(rec)}


def _update(store: Store, call: Call) -> Reply:
    rec = update_payment(store, store.require("payments", call.params["payment_id"], "Payment"), call.body)
    return 200, {"code": 0, "message": "The payment details have been updated.", "payment": detail(rec)}


def _list(store: Store, call: Call) -> Reply:
    q = call.query
    rows = [r for r in store.all("payments") if not q.get("customer_id") or r["customer_id"] == q["customer_id"]]
    page, context = v.paginate(rows, q, store.config.max_per_page)
    return 200, {"code": 0, "message": "success", "payments": [{k: r.get(k, "") for k in LIST_FIELDS} for r in page],
                 "page_context": context}


def _get(store: Store, call: Call) -> Reply:
    rec = store.require("payments", call.params["payment_id"], "Payment")
    return 200, {"code": 0, "message": "success", "payment": detail(rec)}


def register(router: Router) -> None:
    router.add("POST", "/payments", _create, 201)
    router.add("GET", "/payments", _list)
    router.add("GET", "/payments/{payment_id}", _get)
    router.add("PUT", "/payments/{payment_id}", _update)


# -- Zoho-side actions (zoho_side.py) ---------------------------------------------------------------------
def mode_argument(payment_mode: str) -> str:
    """A Zoho-side action's payment mode, checked (ValueError)."""
    if payment_mode not in MODES:
        raise ValueError(f"payment_mode must be one of {', '.join(sorted(MODES))}")
    return payment_mode


def _open_invoice(store: Store, invoice_id: str) -> dict[str, Any]:
    invoice = store.require("invoices", str(invoice_id), "Invoice")
    if invoice["status"] == "void":
        raise not_allowed("the invoice is void")
    if v.dec(invoice["balance"]) <= 0:
        raise not_allowed("the invoice is paid")
    return invoice


def _zoho_pay_invoice(store: Store, invoice_id: str, amount: Any = None, payment_mode: str = "creditcard",
                      reference_number: str = "") -> dict[str, Any]:
    """A payment through Zoho's hosted page: recorded and applied to the invoice (`paid`, or
    `partially_paid` below the balance), `payment_thankyou`. Default amount: the balance; above it is
    PAYMENT_OVER_APPLIED. Returns the payment."""
    invoice = _open_invoice(store, invoice_id)
    share = float(v.dec(invoice["balance"]) if amount is None else amount_argument(amount))
    body = {"customer_id": invoice["customer_id"], "payment_mode": mode_argument(payment_mode), "amount": share,
            "reference_number": reference_number or None,
            "description": f"Payment has been added to {invoice['invoice_number']}",
            "invoices": [{"invoice_id": invoice["invoice_id"], "amount_applied": share}]}
    return detail(create_payment(store, body))


def _zoho_decline_payment(store: Store, invoice_id: str, amount: Any = None,
                          payment_mode: str = "creditcard") -> dict[str, Any]:
    """A declined card charge: stored as a payment with status `failure` that applies nothing (the invoice
    is unchanged), `payment_declined`. Returns the failed payment."""
    invoice = _open_invoice(store, invoice_id)
    share = v.dec(invoice["balance"]) if amount is None else amount_argument(amount)
    return detail(decline_payment(store, invoice, share, mode_argument(payment_mode)))


ACTIONS = (Action("pay_invoice", "payment", _zoho_pay_invoice),
           Action("decline_payment", "payment", _zoho_decline_payment))
