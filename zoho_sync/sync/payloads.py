"""Pure functions from local records to Zoho request bodies. No queries, no HTTP: related objects and
annotations are loaded by the engine's selectors; a missing dependency was caught before these run.

Money goes out as JSON numbers (Zoho's format); Decimal -> float is exact for two-place amounts in range.
"""

from __future__ import annotations

import importlib
from decimal import Decimal
from typing import Any


def money(value: Decimal) -> float:
    return float(value)


def drop_empty(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in ("", None, {}, [])}


# Per-entity names moved to their entity's module (zoho_sync.entities.<module>); importable from here still.
_MOVED = {
    'customer_display_name': 'customers',
    'account_number_of': 'customers',
    'customer_problems': 'customers',
    'customer_to_zoho': 'customers',
    'PERIOD_UNITS': 'plans',
    'product_to_zoho': 'plans',
    'plan_to_zoho': 'plans',
    'package_fingerprint_fields': 'plans',
    'subscription_reference': 'subscriptions',
    'subscription_start': 'subscriptions',
    'subscription_to_zoho': 'subscriptions',
    'subscription_fingerprint_fields': 'subscriptions',
    'invoice_problems': 'invoices',
    'ONE_OFF_PRODUCT': 'invoices',
    'line_product_id': 'invoices',
    'invoice_to_zoho': 'invoices',
    'invoice_fingerprint_fields': 'invoices',
    'payment_own_invoice_application': 'payments',
    'payment_to_zoho': 'payments',
    'payment_fingerprint_fields': 'payments',
}


def __getattr__(name: str):
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"zoho_sync.entities.{module}"), name)
