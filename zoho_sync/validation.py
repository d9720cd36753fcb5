"""Validators for billing input: each turns bad data into one specific, readable message.

Used by the models' `clean()` (admin forms) and, before any HTTP call, by the sync engine, so a record that
Zoho would refuse fails locally with the same clear words. No queries here; callers pass what they know.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator, RegexValidator, validate_email

CENT = Decimal("0.01")

validate_account_number = RegexValidator(
    r"^[A-Z0-9][A-Z0-9-]{2,31}$",
    "Account numbers use capital letters, digits and dashes, like CT-2025-00002.",
)
validate_currency_code = RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 currency code, like USD.")
validate_plan_code = RegexValidator(
    r"^[A-Za-z0-9_-]{1,100}$", "Plan codes use letters, digits, dashes and underscores only (Zoho keys plans by it)."
)

# The ISO 4217 codes in use (list one, as amended up to 2026) that a business invoices in. Left out on purpose:
# fund codes (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW), metals and units of account (XAG, XAU, XPD, XPT,
# XBA-XBD, XDR, XSU, XUA) and the test codes XTS, XXX; and withdrawn codes (ANG became XCG in 2025, BGN, HRK,
# SLL, ZWL, CUC, VEF, MRO, STD). A short table in code rather than a dependency: it changes once or twice a
# year, and the packages that carry it (pycountry, babel) are far larger than the one check needs.
CURRENCY_CODES = frozenset((
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BHD", "BIF", "BMD", "BND",
    "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE",
    "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD",
    "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY",
    "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD",
    "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO",
    "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF",
    "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VED", "VES", "VND",
    "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
))

# Django's own words for a NUL character (its form fields refuse it with them; PostgreSQL cannot store one).
NULL_CHARACTERS = str(ProhibitNullCharactersValidator.message)

# A number as a person writes it: the digits 0-9, an optional sign and decimal point. Decimal() and int() also
# take "1e3", "Infinity" and other scripts' digits ("١٢٣" is 123), none of which a billing file means.
PLAIN_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
PLAIN_DECIMAL_MESSAGE = "Enter a plain decimal number written with the digits 0-9, like 1234.50 (not 1e3)."

# Text a spreadsheet would run as a formula when the file is opened (CSV/formula injection). A sign before a
# number or a phone number is not one: "-12.50", "+44 20 7946 0958", "+1 (555) 0100".
FORMULA_START = ("=", "@", "+", "-")
SIGNED_NUMBER = re.compile(r"[+-][ (]*[0-9][0-9 .()/-]*")


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


def foreign_digits(text: str) -> bool:
    """Whether text holds digits of another script than 0-9 (int() and Decimal() read them as numbers)."""
    return any(not ch.isascii() and ch.isdecimal() for ch in text)


def formula_problem(text: str) -> str | None:
    """Why a text value would run as a formula in a spreadsheet, or None: it starts with =, @, or with + or -
    followed by something that is not a number or a phone number."""
    if not text.startswith(FORMULA_START) or (text[0] in "+-" and SIGNED_NUMBER.fullmatch(text)):
        return None
    return (f"starts with {text[0]!r}, which a spreadsheet runs as a formula: refused as formula injection. Start "
            "the text with something else (only a number or a phone number may start with + or -).")


def currency_code_problem(code: str) -> str | None:
    """Why a three-letter code is no ISO 4217 currency code in use, or None (the field's own check, three capital
    letters, speaks for any other text)."""
    if validate_currency_code.regex.fullmatch(code or "") and code not in CURRENCY_CODES:
        return f"{code} is not an ISO 4217 currency code in use: write one like USD, EUR or GBP."
    return None


def text_problems(instance, *, exclude: Iterable[str] = ()) -> dict[str, str]:
    """Text fields of a model instance that no field validator checks, by field name: a NUL character (PostgreSQL
    cannot store it), a currency code outside ISO 4217. Checked here rather than by validators on every field,
    which would be a migration for each model whenever the rule changes."""
    from django.db import models

    skip, problems = set(exclude), {}
    for field in instance._meta.concrete_fields:
        if field.name in skip or not isinstance(field, (models.CharField, models.TextField)):
            continue
        value = getattr(instance, field.attname)
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            problems[field.name] = NULL_CHARACTERS
        elif validate_currency_code in field.validators and (problem := currency_code_problem(value)):
            problems[field.name] = problem
    return problems


def clean_fields_and_text(instance, exclude, clean_fields) -> None:
    """A model's `clean_fields`: Django's (`clean_fields`, the super method), then `text_problems` for the fields
    it passed; raise one ValidationError with both."""
    try:
        clean_fields(exclude=exclude)
        errors: dict = {}
    except ValidationError as exc:
        errors = exc.error_dict
    for name, message in text_problems(instance, exclude={*(exclude or ()), *errors}).items():
        errors[name] = [ValidationError(message, code="invalid_text")]
    if errors:
        raise ValidationError(errors)


def refuse_null_characters(instance, *, fields: Iterable[str] | None = None, exclude: Iterable[str] = ()) -> None:
    """Raise ValidationError naming every text field (of `fields`, default all) that holds a NUL character, before
    a save sends it to a database that would refuse it with a DataError naming no field."""
    from django.db import models

    wanted = None if fields is None else set(fields)
    skip, problems = set(exclude), {}
    for field in instance._meta.concrete_fields:
        if field.name in skip or (wanted is not None and field.name not in wanted):
            continue
        value = getattr(instance, field.attname)
        if isinstance(field, (models.CharField, models.TextField)) and isinstance(value, str) and "\x00" in value:
            label = str(field.verbose_name).capitalize()
            problems[field.name] = f"{label} holds a NUL character (\\x00): {NULL_CHARACTERS}"
    if problems:
        raise ValidationError(problems)


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
