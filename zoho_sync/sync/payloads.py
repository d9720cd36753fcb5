"""Old address of zoho_sync.wire.payloads (and, forwarded, of the per-entity names that moved to zoho_sync/entities)."""

from __future__ import annotations

from zoho_sync.sync.moved import forward_to_entities
from zoho_sync.wire.payloads import (  # noqa: F401
    drop_empty,
    money,
)

__getattr__ = forward_to_entities(__name__)
