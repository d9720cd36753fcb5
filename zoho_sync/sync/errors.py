"""Sync-level errors: what goes wrong with a record before or around a call to Zoho (not HTTP errors)."""

from __future__ import annotations


class SyncError(Exception):
    """A record cannot be pushed as it is; `kind` is one of ErrorKind's values."""

    kind = "unknown"
    retryable = False


class InvalidLocalData(SyncError):
    """The local record would be refused by Zoho (invalid email, no name, totals that disagree...)."""

    kind = "invalid_data"


class DependencyNotSynced(SyncError):
    """A record it depends on (its customer, plan, invoice) has no Zoho id yet."""

    kind = "dependency"
    retryable = True


class RemoteConflict(SyncError):
    """Zoho holds something that matches the record's key but is not clearly the same record."""

    kind = "validation"
