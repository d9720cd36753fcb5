"""The entity registry's old address: the specs now live one module per entity in `zoho_sync.entities`.

Kept so older imports (`from zoho_sync.sync.specs import SPECS`) go on working; new code imports
`zoho_sync.entities`.
"""

from __future__ import annotations

from zoho_sync.entities import *  # noqa: F403
from zoho_sync.entities import __all__ as _registry
from zoho_sync.entities.base import excluded, excluded_account_types
from zoho_sync.entities.payments import invoices_paid_by

__all__ = [*_registry, "excluded", "excluded_account_types", "invoices_paid_by"]
