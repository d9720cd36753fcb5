"""Muted triggers: a bulk writer that does the sync bookkeeping itself (zoho_import) saves and deletes records
without queueing a push. The switch lives here, below the signals that read it and the import hooks that set it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_muted: ContextVar[bool] = ContextVar("zoho_sync_triggers_muted", default=False)


@contextlib.contextmanager
def triggers_muted() -> Iterator[None]:
    """Within the block, saved and deleted records of this thread queue no push and touch no other row: the
    caller marks what it changed pending itself, and a backfill or the "push pending" schedule pushes it."""
    token = _muted.set(True)
    try:
        yield
    finally:
        _muted.reset(token)


def muted() -> bool:
    return _muted.get()
