"""Sync-level errors: what goes wrong with a record before or around a call to Zoho (not HTTP errors)."""

from __future__ import annotations


class SyncError(Exception):
    """A record cannot be pushed as it is; `kind` is one of ErrorKind's values.

    `retryable` says whether the engine pushes the record again by itself, with nobody changing this record: at a
    retry time it sets (Busy: a back-off; DependencyNotSynced: SYNC_DEPENDENCY_RETRY_SECONDS), or when the record it
    waits for lands (DependencyNotSynced and DependencyBlocked, woken by Engine._wake_dependents). False: the record
    stays failed until a person changes it or pushes it again (`zoho_retry_failed --include-validation`)."""

    kind = "unknown"
    retryable = False


class InvalidLocalData(SyncError):
    """The local record would be refused by Zoho (invalid email, no name, totals that disagree...)."""

    kind = "invalid_data"


class DependencyNotSynced(SyncError):
    """A record it depends on (its customer, plan, invoice) has no Zoho id yet, but is on its way: the record waits
    (not a failed attempt of its own), is tried again after a short wait and is woken when the dependency lands."""

    kind = "dependency"
    retryable = True


class DependencyBlocked(DependencyNotSynced):
    """A record it depends on failed in a way only a person can fix (or is never pushed): the record has no retry
    time, and `zoho_retry_failed` leaves it alone. It is still retryable: nobody touches this record, the engine
    pushes it again by itself once that dependency is fixed and lands (the person's fix is to the dependency)."""


class ClaimLost(SyncError):
    """Another worker took the record over (this worker's lease ran out): it must not send anything for it. Nothing
    is written on the record (not retryable: this worker never tries it again; the holder pushes it)."""


class RemoteConflict(SyncError):
    """Zoho holds something that matches the record's key but is not clearly the same record."""

    kind = "validation"


class Busy(SyncError):
    """Another process holds what this push needs for longer than it waits (the lease on a shared product)."""

    kind = "unknown"
    retryable = True


class BadZohoValue(SyncError):
    """Zoho sent a number this app cannot keep: not a number, not finite (NaN, Infinity), or too large or too precise
    for its local column. The record it came in is left as it is (never a silent 0.00); a person corrects it in
    Zoho. `record` is filled in by whoever knows which record it was (the pull step, reconciliation)."""

    kind = "validation"

    def __init__(self, field: str, value: object, reason: str, *, record: str = ""):
        self.field, self.value, self.reason, self.record = field, value, reason, record
        super().__init__(field, value, reason)

    def __str__(self) -> str:
        shown = repr(self.value)
        shown = shown if len(shown) <= 60 else f"{shown[:57]}..."
        where = f"{self.record}: " if self.record else ""
        return f"{where}Zoho's {self.field} {shown} {self.reason}; nothing was changed here"
