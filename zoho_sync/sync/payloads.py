"""Pure functions from local records to Zoho request bodies. No queries, no HTTP: related objects and
annotations are loaded by the engine's selectors; a missing dependency was caught before these run.

Money goes out as JSON numbers (Zoho's format); Decimal -> float is exact for two-place amounts in range.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from zoho_sync.sync.errors import InvalidLocalData
from zoho_sync.validation import email_problem

PERIOD_UNITS = {"weeks": "weeks", "months": "months", "years": "years"}


def money(value: Decimal) -> float:
    return float(value)


def drop_empty(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in ("", None, {}, [])}


# --- customer -----------------------------------------------------------------------------------------------
def customer_display_name(customer) -> str:
    """Unique by construction (§12.3): the name people read plus the account number."""
    return f"{customer.name} ({customer.account_number})"


def account_number_of(display_name: str) -> str:
    """The account number in a display name we made ("Ava Smith (CT-2025-00002)" -> "ct-2025-00002"): the part
    that never changes when the person's name does, so it is the customer's natural key (casefolded)."""
    head, _, tail = str(display_name or "").rstrip().rpartition("(")
    return tail[:-1].strip().casefold() if head and tail.endswith(")") else ""


def customer_problems(customer) -> list[str]:
    problems = []
    if not customer.name:
        problems.append("The customer has no first name, last name or company name; Zoho needs a display name.")
    if problem := email_problem(customer.email):
        problems.append(problem)
    return problems


def customer_to_zoho(customer, *, today: date | None = None) -> dict[str, Any]:
    if problems := customer_problems(customer):
        raise InvalidLocalData(" ".join(problems))
    address = drop_empty({
        "street": customer.billing_street, "city": customer.billing_city, "state": customer.billing_state,
        "zip": customer.billing_postal_code, "country": customer.billing_country,
    })
    return drop_empty({
        "display_name": customer_display_name(customer),
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "company_name": customer.company_name,
        "email": customer.email,
        "phone": customer.phone,
        "currency_code": customer.currency_code,
        "billing_address": address,
    })


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


# --- customer service: a subscription -----------------------------------------------------------------------
def subscription_reference(service) -> str:
    return service.zoho_reference_id


def subscription_start(service, *, today: date) -> date:
    """Where Zoho's billing starts: the day after the last period billed here, so no period is billed twice.

    `last_period_end` is an annotation (the latest local subscription-period invoice). With none, Zoho starts
    billing from its activation, or today when that is past: periods never billed here are not back-billed.
    """
    last_end = getattr(service, "last_period_end", None)
    if last_end:
        return last_end + timedelta(days=1)
    activated = service.activated_at.date() if service.activated_at else today
    return max(activated, today)


def subscription_to_zoho(service, *, today: date | None = None) -> dict[str, Any]:
    return {
        "customer_id": service.customer.zoho_id,
        "plan": {"plan_code": service.package.plan_code, "quantity": service.quantity},
        "reference_id": subscription_reference(service),
        "auto_collect": False,  # offline subscription: paid by invoice, as the business bills today
        "starts_at": subscription_start(service, today=today or date.today()).isoformat(),
    }


def subscription_fingerprint_fields(service) -> dict[str, Any]:
    return {"plan_code": service.package.plan_code, "quantity": service.quantity,
            "cancelled": service.status == "cancelled"}


# --- invoice ------------------------------------------------------------------------------------------------
def invoice_problems(invoice, lines) -> list[str]:
    from zoho_sync.validation import invoice_totals_problems

    return invoice_totals_problems(subtotal=invoice.subtotal, tax_total=invoice.tax_total, total=invoice.total,
                                   line_amounts=[line.amount for line in lines])


ONE_OFF_PRODUCT = "One-off charges"  # the Zoho product of invoice lines that sell no package of ours


def line_product_id(line, one_off_product_id: str | None) -> str | None:
    """Zoho requires a product on every invoice item: the package's own product, else the one-off product."""
    package = line.package if line.package_id else None
    return (package.zoho_product_id if package is not None else "") or one_off_product_id


def invoice_to_zoho(invoice, *, today: date | None = None, one_off_product_id: str | None = None) -> dict[str, Any]:
    """The invoice's body; `one_off_product_id` is filled in by the engine (the dry run shows it absent)."""
    lines = list(invoice.lines.all())
    if problems := invoice_problems(invoice, lines):
        raise InvalidLocalData(" ".join(problems))
    if invoice.tax_total:
        raise InvalidLocalData("Invoices with tax are not pushed yet: Zoho needs a tax id per line.")
    return drop_empty({
        "customer_id": invoice.customer.zoho_id,
        "invoice_number": invoice.invoice_number,
        "date": invoice.issued_on.isoformat(),
        "due_date": invoice.due_on.isoformat() if invoice.due_on else None,
        "notes": invoice.notes,
        "invoice_items": [
            drop_empty({"product_id": line_product_id(line, one_off_product_id), "name": line.description[:100],
                        "description": line.description, "price": money(line.unit_price),
                        "quantity": money(line.quantity)})
            for line in lines
        ],
    })


def invoice_fingerprint_fields(invoice) -> dict[str, Any]:
    payload = invoice_to_zoho(invoice)
    payload.pop("customer_id", None)
    for item in payload["invoice_items"]:
        item.pop("product_id", None)
    payload["void"] = invoice.status == "void"
    return payload


# --- payment ------------------------------------------------------------------------------------------------
def payment_own_invoice_application(payment) -> list[tuple[str, Decimal]]:
    """A payment for one of our invoices goes to it, never more than its balance (`paid_before` is an
    annotation: what completed payments before this one paid)."""
    if not payment.invoice_id:
        return []
    balance = payment.invoice.total - getattr(payment, "paid_before", Decimal("0"))
    return [(payment.invoice.zoho_id, min(payment.amount, max(balance, Decimal("0"))))]


def payment_to_zoho(payment, *, today: date | None = None,
                    applications: list[tuple[str, Decimal]] | None = None) -> dict[str, Any]:
    """`applications`: (Zoho invoice id, amount) pairs, capped at each invoice's balance. Without them, the
    payment's own invoice; a payment with no invoice is applied by the engine to the customer's oldest open Zoho
    invoices (the dry run shows it unapplied)."""
    if applications is None:
        applications = payment_own_invoice_application(payment)
    applied = sum((amount for _, amount in applications), Decimal("0"))
    if applied > payment.amount:
        raise InvalidLocalData(f"Applying {applied} of a {payment.amount} payment would over-apply it.")
    return drop_empty({
        "customer_id": payment.customer.zoho_id,
        "payment_mode": payment.method,
        "amount": money(payment.amount),
        "date": payment.paid_at.date().isoformat(),
        "reference_number": payment.reference,
        "description": payment.notes,
        "invoices": [{"invoice_id": invoice_id, "amount_applied": money(amount)}
                     for invoice_id, amount in applications if amount > 0],
    })


def payment_fingerprint_fields(payment, *, today: date | None = None) -> dict[str, Any]:
    """Everything the payment's body says, ids aside: a change of any of these after it landed is sent with
    PUT /payments/{id} (remote.payment_update), never left as a silent difference from Zoho's copy."""
    return {"reference": payment.reference, "amount": str(payment.amount), "method": payment.method,
            "paid_on": payment.paid_at.date().isoformat() if payment.paid_at else None,
            "invoice": payment.invoice.invoice_number if payment.invoice_id else None, "notes": payment.notes}
