"""Zoho-side actions: the changes Zoho makes by itself, or a person makes in Zoho's web app, as ZohoSandbox methods.

    payment = zoho.pay_invoice(invoice_id)            # hosted page: paid, payment_thankyou
    note = zoho.create_credit_note(customer_id, 20)   # a credit note made in the web app: creditnote_added
    zoho.renew_subscription(subscription_id)          # next term and its invoice: subscription_renewed, invoice_created
    zoho.drop_webhooks(1)                             # the next delivery is lost; GET /events still has the event

Each takes the store lock, changes the records as Zoho would, stamps their modified times (store.stamp), emits
Zoho's event (kept for GET /events, delivered signed by the webhook dispatcher) and returns the record as the
API's GET shows it. Refusals raise ApiError (not found, not allowed) or ValueError (bad argument). The admin
prefix serves every one as a POST hook with the same keyword arguments (admin.py).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from zoho_sync.sandbox import validation as v
from zoho_sync.sandbox.errors import not_allowed
from zoho_sync.sandbox.resources import credit_notes, edits, invoices, lifecycle, payments, refunds, subscriptions
from zoho_sync.sandbox.store import public

if TYPE_CHECKING:
    from zoho_sync.sandbox.store import Store
    from zoho_sync.sandbox.webhooks import WebhookDispatcher


def _money(amount: Any) -> Decimal:
    """A positive amount (number, or a numeric string) to cents."""
    if isinstance(amount, bool):
        raise ValueError(f"invalid amount {amount!r}")
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except InvalidOperation as exc:
        raise ValueError(f"invalid amount {amount!r}") from exc
    if value <= 0:
        raise ValueError(f"the amount must be positive, not {amount!r}")
    return value


def _mode(payment_mode: str) -> str:
    if payment_mode not in payments.MODES:
        raise ValueError(f"payment_mode must be one of {', '.join(sorted(payments.MODES))}")
    return payment_mode


class ZohoSideActions:
    """Mixed into ZohoSandbox, which provides `store` and `webhooks`."""

    store: Store
    webhooks: WebhookDispatcher

    # -- payments ------------------------------------------------------------------------------------------
    def _open_invoice(self, invoice_id: str) -> dict[str, Any]:
        invoice = self.store.require("invoices", str(invoice_id), "Invoice")
        if invoice["status"] == "void":
            raise not_allowed("the invoice is void")
        if v.dec(invoice["balance"]) <= 0:
            raise not_allowed("the invoice is paid")
        return invoice

    def pay_invoice(self, invoice_id: str, amount: Any = None, payment_mode: str = "creditcard",
                    reference_number: str = "") -> dict[str, Any]:
        """A payment through Zoho's hosted page: recorded and applied to the invoice (`paid`, or
        `partially_paid` below the balance), `payment_thankyou`. Default amount: the balance; above it is
        PAYMENT_OVER_APPLIED. Returns the payment."""
        with self.store.lock:
            invoice = self._open_invoice(invoice_id)
            share = float(v.dec(invoice["balance"]) if amount is None else _money(amount))
            body = {"customer_id": invoice["customer_id"], "payment_mode": _mode(payment_mode), "amount": share,
                    "reference_number": reference_number or None,
                    "description": f"Payment has been added to {invoice['invoice_number']}",
                    "invoices": [{"invoice_id": invoice["invoice_id"], "amount_applied": share}]}
            return payments.detail(payments.create_payment(self.store, body))

    def decline_payment(self, invoice_id: str, amount: Any = None, payment_mode: str = "creditcard") -> dict[str, Any]:
        """A declined card charge: stored as a payment with status `failure` that applies nothing (the invoice
        is unchanged), `payment_declined`. Returns the failed payment."""
        with self.store.lock:
            invoice = self._open_invoice(invoice_id)
            share = v.dec(invoice["balance"]) if amount is None else _money(amount)
            return payments.detail(payments.decline_payment(self.store, invoice, share, _mode(payment_mode)))

    def refund_payment(self, payment_id: str, amount: Any = None, refund_mode: str | None = None,
                       description: str = "") -> dict[str, Any]:
        """Refund all (default) or part of a payment as POST /payments/{id}/refunds does: `amount_refunded`
        grows, status `refunded` once all is refunded, the invoices it paid open again (`sent` /
        `partially_paid`), `payment_refunded`; a credit note for the amount is made and refunded (refunds.py,
        GET /creditnotes/refunds?payment_id= finds the refund). Returns the payment."""
        with self.store.lock:
            rec = self.store.require("payments", str(payment_id), "Payment")
            fields = {"date": self.store.today().isoformat(), "refund_mode": _mode(refund_mode or rec["payment_mode"]),
                      "description": description, "reference_number": ""}
            refunds.refund_payment(self.store, rec, None if amount is None else _money(amount), fields)
            return payments.detail(rec)

    # -- credit notes --------------------------------------------------------------------------------------
    def create_credit_note(self, customer_id: str, amount: Any, invoice_id: str | None = None, code: str = "credit",
                           reference_number: str = "", description: str = "") -> dict[str, Any]:
        """A credit note made in the web app: one line of `amount` (item `code`), applied in full to
        `invoice_id` when given (above its balance is CREDIT_OVER_APPLIED), `creditnote_added`. Returns it."""
        line = {"code": code, "quantity": 1, "price": float(_money(amount)), "description": description or None}
        body = {"customer_id": str(customer_id), "creditnote_items": [line], "reference_number": reference_number,
                "invoice_id": None if invoice_id is None else str(invoice_id)}
        with self.store.lock:
            return credit_notes.detail(credit_notes.create_credit_note(self.store, body))

    def refund_credit_note(self, creditnote_id: str, amount: Any = None, refund_mode: str = "cash",
                           description: str = "") -> dict[str, Any]:
        """Refund all (default: its balance) or part of a credit note; no event (Zoho has none). Returns the
        refund as GET /creditnotes/refunds/{refund_id} shows it."""
        with self.store.lock:
            note = self.store.require("creditnotes", str(creditnote_id), "Credit note")
            value = v.dec(note["balance"]) if amount is None else _money(amount)
            fields = {"date": self.store.today().isoformat(), "refund_mode": _mode(refund_mode),
                      "description": description, "reference_number": ""}
            return refunds.detail(self.store, refunds.refund_credit_note(self.store, note, value, fields))

    # -- subscriptions -------------------------------------------------------------------------------------
    def _subscription(self, subscription_id: str) -> dict[str, Any]:
        return self.store.require("subscriptions", str(subscription_id), "Subscription")

    def renew_subscription(self, subscription_id: str) -> dict[str, Any]:
        """The next term starts: term dates move one interval and its invoice is raised (`child_invoice_id`),
        `subscription_renewed` + `invoice_created`. Cycles used up: expired instead (`subscription_expired`);
        non_renewing: cancelled (`subscription_cancelled`). Returns the subscription."""
        with self.store.lock:
            rec = self._subscription(subscription_id)
            lifecycle.renew_subscription(self.store, rec)
            return subscriptions.detail(self.store, rec)

    def cancel_subscription(self, subscription_id: str, at_end: bool = False) -> dict[str, Any]:
        """As POST /subscriptions/{id}/cancel: `subscription_cancelled`, or with at_end `non_renewing` and
        `subscription_cancellation_scheduled`."""
        if not isinstance(at_end, bool):
            raise ValueError("at_end must be true or false")
        with self.store.lock:
            rec = self._subscription(subscription_id)
            subscriptions.cancel_subscription(self.store, rec, at_end=at_end)
            return subscriptions.detail(self.store, rec)

    def expire_subscription(self, subscription_id: str) -> dict[str, Any]:
        """Status `expired`, `expires_at` today, `subscription_expired`."""
        with self.store.lock:
            rec = self._subscription(subscription_id)
            lifecycle.expire_subscription(self.store, rec)
            return subscriptions.detail(self.store, rec)

    def activate_subscription(self, subscription_id: str) -> dict[str, Any]:
        """A trial or future subscription goes live today with its first invoice: `subscription_activation`
        + `invoice_created`."""
        with self.store.lock:
            rec = self._subscription(subscription_id)
            lifecycle.activate_subscription(self.store, rec)
            return subscriptions.detail(self.store, rec)

    # -- invoices, web-app edits, webhooks -----------------------------------------------------------------
    def void_invoice(self, invoice_id: str) -> dict[str, Any]:
        """As POST /invoices/{id}/void; Zoho has no event for it (§7.1), so none is emitted."""
        with self.store.lock:
            rec = self.store.require("invoices", str(invoice_id), "Invoice")
            invoices.void_invoice(self.store, rec)
            return invoices.detail(self.store, rec)

    def edit_record(self, resource: str, record_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Change fields of a record as a person would in Zoho's web app: no event, modified time stamped."""
        with self.store.lock:
            return public(edits.edit_record(self.store, resource, record_id, fields))

    def delete_record(self, resource: str, record_id: str) -> dict[str, Any]:
        """Delete a record as a person would in Zoho's web app (no event); returns what was deleted."""
        with self.store.lock:
            return public(edits.delete_record(self.store, resource, record_id))

    def drop_webhooks(self, n: int) -> int:
        """Lose the next `n` webhook deliveries on purpose (recorded as `failure`, never sent)."""
        return self.webhooks.drop(n)
