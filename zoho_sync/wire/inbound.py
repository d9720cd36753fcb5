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

from zoho_sync.models import Invoice
from zoho_sync.wire.errors import BadZohoValue


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
