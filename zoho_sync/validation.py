"""Validators for billing input: each turns bad data into one specific, readable message.

Used by the models' `clean()` (admin forms) and, before any HTTP call, by the sync engine, so a record that
Zoho would refuse fails locally with the same clear words. No queries here; callers pass what they know.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, validate_email

CENT = Decimal("0.01")

validate_account_number = RegexValidator(
    r"^[A-Z0-9][A-Z0-9-]{2,31}$",
    "Account numbers use capital letters, digits and dashes, like CT-2025-00002.",
)
validate_currency_code = RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 currency code, like USD.")
validate_plan_code = RegexValidator(
    r"^[A-Za-z0-9_-]{1,100}$", "Plan codes use letters, digits, dashes and underscores only (Zoho keys plans by it)."
)


def parse_money(value: object, *, field: str = "amount") -> Decimal:
    """Return value as a Decimal with at most two decimal places, or raise ValidationError naming the field."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationError(f"{field} {value!r} is not a number.", code="malformed_amount") from None
    if not amount.is_finite():
        raise ValidationError(f"{field} {value!r} is not a finite number.", code="malformed_amount")
    if amount != amount.quantize(CENT):
        raise ValidationError(f"{field} {value} has more than two decimal places.", code="malformed_amount")
    return amount


def validate_non_negative(value: Decimal) -> None:
    if value is not None and value < 0:
        raise ValidationError(f"Amounts cannot be negative (got {value}).", code="negative_amount")


def validate_positive(value: Decimal) -> None:
    if value is not None and value <= 0:
        raise ValidationError(f"The amount must be greater than zero (got {value}).", code="non_positive_amount")


def email_problem(email: str) -> str | None:
    """Return why an email address is unusable, or None. A blank email is allowed (seen in real data)."""
    if not email:
        return None
    try:
        validate_email(email)
    except ValidationError:
        return f"Email address {email!r} is not valid."
    return None


def validate_email_address(value: str) -> None:
    """The model's and the form's email check, with the same words the sync engine uses."""
    if problem := email_problem(value):
        raise ValidationError(problem, code="invalid_email")


def money_precision_problems(instance) -> dict[str, str]:
    """Decimal fields of a model instance holding more decimal places than the column keeps, by field name.

    Django (and PostgreSQL's numeric(12,2)) would round such a value on save without a word: 10.12345 becomes
    10.12 and a total computed from the unrounded input no longer matches. No database constraint can see the
    value before the column rounds it, so this check runs before every save of a billing record.
    """
    from django.db import models

    problems = {}
    for field in instance._meta.concrete_fields:
        if not isinstance(field, models.DecimalField):
            continue
        value = getattr(instance, field.attname)
        if value is None or hasattr(value, "resolve_expression"):
            continue
        label = str(field.verbose_name).capitalize()
        try:
            parse_money(value, field=label) if field.decimal_places == 2 else Decimal(str(value))
        except (ValidationError, InvalidOperation, ValueError) as exc:
            message = exc.messages[0] if isinstance(exc, ValidationError) else f"{label} {value!r} is not a number."
            problems[field.name] = message.replace("decimal places.", "decimal places; amounts are kept to the "
                                                   "cent and never rounded silently.")
    return problems


def refuse_imprecise_money(instance) -> None:
    """Raise ValidationError naming every decimal field that would be rounded (or is not a number) on save."""
    if problems := money_precision_problems(instance):
        raise ValidationError(problems)


def line_amount(quantity: Decimal, unit_price: Decimal) -> Decimal:
    """The amount of one invoice line, rounded to the cent."""
    return (quantity * unit_price).quantize(CENT)


def invoice_totals_problems(
    *, subtotal: Decimal, tax_total: Decimal, total: Decimal, line_amounts: Iterable[Decimal]
) -> list[str]:
    """Return why an invoice's totals disagree with its lines, one sentence each; empty when they agree."""
    amounts = list(line_amounts)
    problems = []
    if not amounts:
        problems.append("The invoice has no lines.")
    lines_sum = sum(amounts, Decimal("0.00"))
    if amounts and lines_sum != subtotal:
        problems.append(f"The subtotal {subtotal} does not match the sum of the lines ({lines_sum}).")
    if subtotal + tax_total != total:
        problems.append(f"The total {total} is not the subtotal {subtotal} plus tax {tax_total}.")
    return problems


def payment_amount_problem(*, amount: Decimal, invoice_number: str, balance: Decimal) -> str | None:
    """Return why a payment cannot be applied to an invoice with this balance, or None."""
    if amount > balance:
        return f"The payment of {amount} is larger than the balance of invoice {invoice_number} ({balance} due)."
    return None
