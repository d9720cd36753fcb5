"""Pure functions from Zoho records to local fields: what Zoho owns (payment status, invoice balance and status,
subscription status and term), and the local mirror of a record Zoho created (a period invoice raised by a renewal,
a payment made through Zoho's hosted page). No queries, no HTTP: the pull step loads and writes.

Every number Zoho sends is read by zoho_number(), against the local column it goes to: one that is not a number, not
finite or does not fit the column raises BadZohoValue naming the field and the value (never a silent 0.00)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection, models

from zoho_sync.models import Invoice, InvoiceLine, Payment
from zoho_sync.sync.errors import BadZohoValue

# Zoho's subscription statuses (§3.6) in the local vocabulary; a status not listed leaves the local one alone.
SUBSCRIPTION_STATUS = {"live": "active", "non_renewing": "active", "cancelled": "cancelled", "expired": "expired",
                       "unpaid": "suspended", "paused": "suspended", "trial": "active", "future": "pending",
                       "dunning": "active"}
# Zoho's invoice statuses (§3.7): overdue and unpaid are still issued here.
INVOICE_STATUS = {"sent": "issued", "overdue": "issued", "unpaid": "issued", "partially_paid": "partially_paid",
                  "paid": "paid", "void": "void"}
PAYMENT_MODES = {"check", "cash", "creditcard", "banktransfer", "bankremittance", "others"}


def zoho_time(value: Any) -> datetime | None:
    """Zoho's timestamps ("2026-12-03T08:20:01+0000", ISO 8601 with an offset or Z) and dates, as aware UTC."""
    if not value:
        return None
    text = str(value).strip()
    if len(text) == 10:
        try:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        except ValueError:
            return None
    text = text.replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":  # +0000 -> +00:00
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def zoho_date(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")  # ASCII digits only


def column(model: type[models.Model], name: str) -> models.Field:
    """The local column a Zoho number goes to (its shape bounds the number)."""
    return model._meta.get_field(name)


def zoho_number(value: Any, to: models.Field | None = None, *, key: str) -> Decimal | None:
    """The number Zoho sent under `key` (a JSON number or a numeric string), for the local column `to`: None when
    Zoho sent none (absent, null, ""). A decimal column keeps at most its max_digits, decimal_places of them after the
    point; an integer column a whole number in its database range. Anything else raises BadZohoValue."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise BadZohoValue(key, value, "is not a number")
    text = value.strip() if isinstance(value, str) else str(value)
    try:
        number = value if isinstance(value, Decimal) else Decimal(text)
    except (InvalidOperation, ValueError):
        raise BadZohoValue(key, value, "is not a number") from None
    if not number.is_finite():
        raise BadZohoValue(key, value, "is not a finite number")
    if isinstance(value, str) and not NUMBER_TEXT.fullmatch(text):
        raise BadZohoValue(key, value, "is not a number written in ASCII digits")
    if to is None:
        return number
    digits = number.adjusted() + 1 if number else 0  # digits before the point
    if isinstance(to, models.DecimalField):
        whole = to.max_digits - to.decimal_places
        if digits > whole:
            raise BadZohoValue(key, value, f"does not fit its column here ({to.model.__name__}.{to.name}: at most "
                                           f"{whole} digits before the point)")
        kept = number.quantize(Decimal(1).scaleb(-to.decimal_places))
        if kept != number:
            raise BadZohoValue(key, value, f"has more than {to.decimal_places} decimal places "
                                           f"({to.model.__name__}.{to.name} keeps {to.decimal_places})")
        return kept
    if isinstance(to, models.IntegerField):
        low, high = connection.ops.integer_field_range(to.get_internal_type())
        if number != number.to_integral_value():
            raise BadZohoValue(key, value, f"is not a whole number ({to.model.__name__}.{to.name})")
        if digits > 20 or (low is not None and number < low) or (high is not None and number > high):
            raise BadZohoValue(key, value, f"does not fit its column here ({to.model.__name__}.{to.name}: "
                                           f"{low} to {high})")
        return number.quantize(Decimal(1))
    return number


def zoho_money(value: Any) -> Decimal | None:
    """An amount Zoho sent, to the cent, for a caller that handles an unreadable one itself (None: absent or
    unreadable). The sync's own readers use zoho_number(), which says why."""
    try:
        return zoho_number(value, column(Invoice, "total"), key="amount")
    except BadZohoValue:
        return None


def modified_time(remote: dict) -> datetime | None:
    """When Zoho last changed the record: invoices say last_modified_time, the rest updated_time."""
    return zoho_time(remote.get("last_modified_time") or remote.get("updated_time"))


# --- what Zoho owns, per entity: {field: value} for the fields the record carries --------------------------
def subscription_from_zoho(remote: dict, current) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "current_term_starts_on": zoho_date(remote.get("current_term_starts_at")),
        "current_term_ends_on": zoho_date(remote.get("current_term_ends_at")),
        "next_billing_on": zoho_date(remote.get("next_billing_at")),
    }
    if remote.get("child_invoice_id"):
        fields["zoho_child_invoice_id"] = str(remote["child_invoice_id"])[:64]
    status = SUBSCRIPTION_STATUS.get(str(remote.get("status", "")))
    if status and status != "pending":
        fields["status"] = status
        if status == "cancelled" and not current.cancelled_at:
            ended = zoho_time(remote.get("cancelled_at") or remote.get("expires_at")) or modified_time(remote)
            fields["cancelled_at"] = ended or datetime.now(UTC)
        if status == "active" and not current.activated_at:
            fields["activated_at"] = zoho_time(remote.get("activated_at")) or datetime.now(UTC)
    return fields


def invoice_from_zoho(remote: dict, current) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    balance = zoho_number(remote.get("balance"), column(Invoice, "balance_due"), key="balance")
    if balance is not None:
        fields["balance_due"] = balance
    status = INVOICE_STATUS.get(str(remote.get("status", "")))
    total = zoho_number(remote.get("total"), column(Invoice, "total"), key="total")
    if status == "issued" and balance is not None and total is not None and Decimal("0") < balance < total:
        status = "partially_paid"  # Zoho says overdue (computed from the due date) whatever was paid
    if status and current.status != "draft":
        fields["status"] = status
    return fields


def payment_status(remote: dict) -> str:
    refunded = _refunded(remote)
    amount = zoho_number(remote.get("amount"), column(Payment, "amount"), key="amount") or Decimal("0")
    if str(remote.get("status", "")) in ("failure", "failed", "declined"):
        return "failed"
    if refunded and refunded >= amount:
        return "refunded"
    return "completed"


def _refunded(remote: dict) -> Decimal:
    found = zoho_number(remote.get("amount_refunded"), column(Payment, "refunded_amount"), key="amount_refunded")
    return Decimal("0.00") if found is None else found


def payment_from_zoho(remote: dict, current) -> dict[str, Any]:
    fields: dict[str, Any] = {"status": payment_status(remote), "refunded_amount": _refunded(remote)}
    if fields["status"] == "completed" and not current.paid_at:
        fields["paid_at"] = zoho_time(remote.get("date")) or datetime.now(UTC)
    return fields


# --- the local mirror of a record Zoho created -----------------------------------------------------------------
def invoice_subscription_id(remote: dict) -> str:
    """The subscription a Zoho invoice bills, when it bills one (`subscriptions[]`, or `subscription_id`)."""
    for entry in remote.get("subscriptions") or []:
        if isinstance(entry, dict) and entry.get("subscription_id"):
            return str(entry["subscription_id"])
    return str(remote.get("subscription_id") or "")


def invoice_mirror(remote: dict) -> dict[str, Any]:
    """The fields of a local invoice mirroring one Zoho raised (origin Zoho); the caller adds customer and
    service. Totals as Zoho states them: the sum of the items, tax on top."""
    total = zoho_number(remote.get("total"), column(Invoice, "total"), key="total")
    subtotal = zoho_number(remote.get("sub_total"), column(Invoice, "subtotal"), key="sub_total")
    tax = zoho_number(remote.get("tax_total"), column(Invoice, "tax_total"), key="tax_total")
    total = Decimal("0.00") if total is None else total
    tax = Decimal("0.00") if tax is None else tax
    if subtotal is None or subtotal + tax != total:
        subtotal, tax = total - tax, tax
    return {
        "invoice_number": str(remote.get("invoice_number") or remote.get("number") or ""),
        "issued_on": zoho_date(remote.get("date") or remote.get("invoice_date")) or datetime.now(UTC).date(),
        "due_on": zoho_date(remote.get("due_date")),
        "currency_code": str(remote.get("currency_code") or "USD")[:3],
        "subtotal": subtotal, "tax_total": tax, "total": total,
        "status": INVOICE_STATUS.get(str(remote.get("status", "")), "issued"),
        "balance_due": zoho_number(remote.get("balance"), column(Invoice, "balance_due"), key="balance"),
    }


def invoice_mirror_lines(remote: dict) -> list[dict[str, Any]]:
    lines = []
    for position, item in enumerate(remote.get("invoice_items") or [], start=1):
        where = f"invoice_items[{position}]"
        quantity = zoho_number(item.get("quantity"), column(InvoiceLine, "quantity"), key=f"{where}.quantity")
        price_key = "price" if item.get("price") is not None else "rate"
        price = zoho_number(item.get(price_key), column(InvoiceLine, "unit_price"), key=f"{where}.{price_key}")
        quantity, price = quantity or Decimal("1"), price or Decimal("0")  # as before: none (or 0) sent
        zoho_number((quantity * price).quantize(Decimal("0.01")), column(InvoiceLine, "amount"),
                    key=f"{where} quantity x price")
        lines.append({"position": position, "description": str(item.get("name") or item.get("description") or
                                                                 "Zoho item")[:255],
                      "quantity": quantity, "unit_price": price})
    return lines


def payment_mirror(remote: dict) -> dict[str, Any]:
    mode = str(remote.get("payment_mode") or "others")
    return {
        "reference": str(remote.get("reference_number") or f"ZOHO-{remote.get('payment_id')}")[:64],
        "amount": zoho_number(remote.get("amount"), column(Payment, "amount"), key="amount") or Decimal("0.00"),
        "currency_code": str(remote.get("currency_code") or "USD")[:3],
        "method": mode if mode in PAYMENT_MODES else "others",
        "status": payment_status(remote),
        "refunded_amount": _refunded(remote),
        "paid_at": zoho_time(remote.get("date")) if payment_status(remote) != "failed" else None,
        "notes": str(remote.get("description") or "")[:1000],
    }


def payment_invoice_ids(remote: dict) -> list[str]:
    return [str(entry["invoice_id"]) for entry in remote.get("invoices") or []
            if isinstance(entry, dict) and entry.get("invoice_id")]
