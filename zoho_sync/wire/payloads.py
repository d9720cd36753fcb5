"""Pure functions from local records to Zoho request bodies. No queries, no HTTP: related objects and
annotations are loaded by the engine's selectors; a missing dependency was caught before these run.

Money goes out as JSON numbers (Zoho's format); Decimal -> float is exact for two-place amounts in range.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def money(value: Decimal) -> float:
    return float(value)


def drop_empty(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in ("", None, {}, [])}
