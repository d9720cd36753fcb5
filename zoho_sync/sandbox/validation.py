"""Request checks shared by the resources: body fields, query flags, paging (zoho-billing-api.md §4, §12.10).

Every failure is a 400 code 2 "Invalid value passed for <field>" naming the field (§12.3). Money and
quantities must be JSON numbers: the client sends numbers (§3 value formats), so a string is a client bug.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from zoho_sync.sandbox.errors import invalid

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TEXT, FLAG, WHOLE, OBJECT, LIST = str, bool, int, dict, list


def body_object(body: Any) -> dict[str, Any]:
    """The JSON body of a create or update: an object (an empty body reads as an empty object)."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise invalid("JSONString")
    return body


def copy_fields(body: dict[str, Any], spec: dict[str, type]) -> dict[str, Any]:
    """Copy the fields of `spec` present in `body`, checking each one's JSON type; others are ignored."""
    out: dict[str, Any] = {}
    for name, kind in spec.items():
        if name not in body or body[name] is None:
            continue
        value = body[name]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise invalid(name)
        out[name] = value
    return out


def text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise invalid(name)
        return None
    if not isinstance(value, str):
        raise invalid(name)
    return value.strip()


def flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(name)
    return value


def number(value: Any, name: str, *, minimum: Decimal | None = Decimal(0), positive: bool = False) -> Decimal:
    """A JSON number as a Decimal (money arithmetic stays exact)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(name)
    result = Decimal(str(value))
    if (minimum is not None and result < minimum) or (positive and result <= 0):
        raise invalid(name)
    return result


def whole(value: Any, name: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        raise invalid(name)
    return value


def day(value: Any, name: str) -> date:
    """A `yyyy-mm-dd` date (§3 value formats)."""
    if not isinstance(value, str) or not DATE_RE.match(value):
        raise invalid(name)
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise invalid(name) from exc


def query_flag(query: dict[str, str], name: str, default: bool = False) -> bool:
    """A `true`/`false` query parameter; anything else is refused."""
    value = query.get(name)
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise invalid(name)
    return lowered == "true"


def money_out(value: Decimal | float | int) -> float | int:
    """Money as a JSON number with two decimals (§3 value formats)."""
    rounded = Decimal(str(value)).quantize(Decimal("0.01"))
    return int(rounded) if rounded == rounded.to_integral_value() else float(rounded)


def quantity_out(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def page_params(query: dict[str, str], max_per_page: int) -> tuple[int, int]:
    """`page` (default 1) and `per_page` (default and maximum `max_per_page`, larger values clamped, §12.10)."""
    values = []
    for name, default in (("page", 1), ("per_page", max_per_page)):
        raw = query.get(name)
        if raw is None:
            values.append(default)
            continue
        try:
            parsed = int(raw.strip())
        except ValueError as exc:
            raise invalid(name) from exc
        if parsed < 1:
            raise invalid(name)
        values.append(parsed)
    page, per_page = values
    return page, min(per_page, max_per_page)


def paginate(items: list[Any], query: dict[str, str], max_per_page: int) -> tuple[list[Any], dict[str, Any]]:
    """Slice one page and build `page_context` {page, per_page, has_more_page} (§4)."""
    page, per_page = page_params(query, max_per_page)
    start = (page - 1) * per_page
    chunk = items[start:start + per_page]
    context = {"page": page, "per_page": per_page, "has_more_page": start + per_page < len(items)}
    return chunk, context


def filter_by(query: dict[str, str], group: str, allowed: set[str]) -> str | None:
    """`filter_by=<Group>.<Value>` (§4): the value, or None for `All`/absent; unknown values are refused."""
    raw = query.get("filter_by")
    if raw is None or raw == "":
        return None
    prefix, _, value = raw.partition(".")
    if prefix != group or value not in allowed | {"All"}:
        raise invalid("filter_by")
    return None if value == "All" else value


def search_match(record: dict[str, Any], needle: str | None, fields: tuple[str, ...]) -> bool:
    if not needle:
        return True
    lowered = needle.lower()
    return any(lowered in str(record.get(f) or "").lower() for f in fields)


def dec(value: Any) -> Decimal:
    """A stored JSON number back to a Decimal for arithmetic."""
    return Decimal(str(value or 0))
