"""Old address of zoho_sync.wire.inbound (and, forwarded, of the per-entity names that moved to zoho_sync/entities)."""

from __future__ import annotations

from zoho_sync.sync.moved import forward_to_entities
from zoho_sync.wire.inbound import (  # noqa: F401
    NUMBER_TEXT,
    column,
    modified_time,
    zoho_date,
    zoho_money,
    zoho_number,
    zoho_time,
)

__getattr__ = forward_to_entities(__name__)
