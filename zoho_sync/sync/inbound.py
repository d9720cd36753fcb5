"""Pure functions from Zoho records to local fields: what Zoho owns (payment status, invoice balance and status,
subscription status and term), and the local mirror of a record Zoho created (a period invoice raised by a renewal,
a payment made through Zoho's hosted page). No queries, no HTTP: the pull step loads and writes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

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


def zoho_money(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
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
    balance = zoho_money(remote.get("balance"))
    if balance is not None:
        fields["balance_due"] = balance
    status = INVOICE_STATUS.get(str(remote.get("status", "")))
    total = zoho_money(remote.get("total"))
    if status == "issued" and balance is not None and total is not None and Decimal("0") < balance < total:
        status = "partially_paid"  # Zoho says overdue (computed from the due date) whatever was paid
    if status and current.status != "draft":
        fields["status"] = status
    return fields


def payment_status(remote: dict) -> str:
    refunded = zoho_money(remote.get("amount_refunded")) or Decimal("0")
    amount = zoho_money(remote.get("amount")) or Decimal("0")
    if str(remote.get("status", "")) in ("failure", "failed", "declined"):
        return "failed"
    if refunded and refunded >= amount:
        return "refunded"
    return "completed"


def payment_from_zoho(remote: dict, current) -> dict[str, Any]:
    fields: dict[str, Any] = {"status": payment_status(remote),
                              "refunded_amount": zoho_money(remote.get("amount_refunded")) or Decimal("0.00")}
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
    total = zoho_money(remote.get("total")) or Decimal("0.00")
    subtotal = zoho_money(remote.get("sub_total"))
    tax = zoho_money(remote.get("tax_total")) or Decimal("0.00")
    if subtotal is None or subtotal + tax != total:
        subtotal, tax = total - tax, tax
    return {
        "invoice_number": str(remote.get("invoice_number") or remote.get("number") or ""),
        "issued_on": zoho_date(remote.get("date") or remote.get("invoice_date")) or datetime.now(UTC).date(),
        "due_on": zoho_date(remote.get("due_date")),
        "currency_code": str(remote.get("currency_code") or "USD")[:3],
        "subtotal": subtotal, "tax_total": tax, "total": total,
        "status": INVOICE_STATUS.get(str(remote.get("status", "")), "issued"),
        "balance_due": zoho_money(remote.get("balance")),
    }


def invoice_mirror_lines(remote: dict) -> list[dict[str, Any]]:
    lines = []
    for position, item in enumerate(remote.get("invoice_items") or [], start=1):
        quantity = zoho_money(item.get("quantity")) or Decimal("1")
        price = zoho_money(item.get("price") if item.get("price") is not None else item.get("rate")) or Decimal("0")
        lines.append({"position": position, "description": str(item.get("name") or item.get("description") or
                                                                 "Zoho item")[:255],
                      "quantity": quantity, "unit_price": price})
    return lines


def payment_mirror(remote: dict) -> dict[str, Any]:
    mode = str(remote.get("payment_mode") or "others")
    return {
        "reference": str(remote.get("reference_number") or f"ZOHO-{remote.get('payment_id')}")[:64],
        "amount": zoho_money(remote.get("amount")) or Decimal("0.00"),
        "currency_code": str(remote.get("currency_code") or "USD")[:3],
        "method": mode if mode in PAYMENT_MODES else "others",
        "status": payment_status(remote),
        "refunded_amount": zoho_money(remote.get("amount_refunded")) or Decimal("0.00"),
        "paid_at": zoho_time(remote.get("date")) if payment_status(remote) != "failed" else None,
        "notes": str(remote.get("description") or "")[:1000],
    }


def payment_invoice_ids(remote: dict) -> list[str]:
    return [str(entry["invoice_id"]) for entry in remote.get("invoices") or []
            if isinstance(entry, dict) and entry.get("invoice_id")]
