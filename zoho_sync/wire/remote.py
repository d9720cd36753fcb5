"""How each entity is created, changed and found again in Zoho: small functions the specs point to.

They talk to Zoho only through the client and touch the database only through `ctx.remember` (an id that must
survive a crash, like a product created before its plan). Each returns the Zoho record or its id.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from zoho_sync.wire.errors import RemoteConflict


@dataclass
class SyncContext:
    """What a remote operation may use besides the record: the client, today, and a way to save an id now."""

    client: Any
    today: date
    remember: Any = None  # callable(obj, **bookkeeping_fields)
    # lease(name): a context manager holding `name` against every other process (creating a shared product)
    lease: Any = contextlib.nullcontext
    notes: list[str] = field(default_factory=list)  # said in the sync log's message
    sent: Any = None  # the body actually sent, when it differs from the spec's payload (payments)
    answer: Any = None  # Zoho's answer to an update, for the spec's on_created (a payment's invoice balances)


def match_one(records: list[dict], key: str | tuple[str, ...], value: str, what: str) -> dict | None:
    """The one record whose `key` (or, given several names for one field, the first of them present) equals
    `value`, ignoring case; None when there is none; RemoteConflict when there are several."""
    keys = (key,) if isinstance(key, str) else key

    def field(record: dict) -> str:
        return str(next((record[k] for k in keys if record.get(k) not in (None, "")), ""))

    found = [r for r in records if field(r).casefold() == value.casefold()]
    key = keys[0]
    if len(found) > 1:
        raise RemoteConflict(f"Zoho holds {len(found)} {what} with {key} {value!r}; link the right one by hand.")
    return found[0] if found else None
