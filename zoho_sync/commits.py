"""Transactions for bookkeeping whose commit need not wait for the disk.

On PostgreSQL every autocommit write waits for its WAL to reach the disk (about 1.5 ms here), and a push writes
its bookkeeping several times. `relaxed_commit()` turns `synchronous_commit` off for one transaction: the commit
returns at once and PostgreSQL writes it within a fraction of a second. Only a crash of the database server
itself can lose such a transaction, and only what may be lost goes through it: a push's outcome and sync-log row,
woken dependents, the shared rate budget. A record whose outcome is lost is still claimed and, after its lease,
pushed again; its create intent, written with a normal (synchronous) commit before Zoho was called, makes that
push look the record up instead of creating it twice. Elsewhere (SQLite) it is a plain transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import DEFAULT_DB_ALIAS, connections, transaction


@contextlib.contextmanager
def relaxed_commit(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """A transaction that does not wait for the disk when it commits (PostgreSQL); see the module's note.

    Inside an enclosing transaction it is only a savepoint and changes nothing: the outer commit decides.
    """
    connection = connections[using]
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=using):
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield
