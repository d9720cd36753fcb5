"""The sync bookkeeping every synced model shares (ZohoSyncedModel) and its status choices."""

from __future__ import annotations

from django.db import models
from django.db.models import Case, F, Value, When

from zoho_sync import validation


class SyncStatus(models.TextChoices):
    """Where a record stands. A failed record with a next retry time is retrying; without one it needs a person."""

    PENDING = "pending", "Pending"
    SYNCING = "syncing", "Syncing"
    SYNCED = "synced", "Synced"
    FAILED = "failed", "Failed"
    WAITING = "waiting", "Waiting for a dependency"
    BLOCKED = "blocked", "Blocked by a dependency"
    SKIPPED = "skipped", "Skipped"


class SyncState(models.TextChoices):
    """The one vocabulary of outcomes: what every summary, health line, dry run, admin page and exit code says.

    Derived from the status and the next retry time alone (`sync_state_of`), so one GROUP BY counts them.
    """

    SYNCED = "synced", "Synced"
    NEEDS_PERSON = "needs_person", "Failed, needs a person"
    RETRYING = "retrying", "Failed, retrying"
    WAITING = "waiting", "Waiting for a dependency"
    BLOCKED = "blocked", "Blocked by a dependency that needs a person"
    SKIPPED = "skipped", "Skipped"
    PENDING = "pending", "Pending"


# States that leave a push command's scope unfinished (exit code 2): something failed or waits.
UNSETTLED_STATES = (SyncState.NEEDS_PERSON, SyncState.RETRYING, SyncState.WAITING, SyncState.BLOCKED)


def sync_state_of(status: str, next_retry_at) -> SyncState:
    if status == SyncStatus.FAILED:
        return SyncState.RETRYING if next_retry_at else SyncState.NEEDS_PERSON
    if status == SyncStatus.SYNCING:
        return SyncState.PENDING
    return SyncState(status)


# The statuses whose last_sync_error describes a failure (a local change makes it history).
FAILURE_STATUSES = (SyncStatus.FAILED, SyncStatus.WAITING, SyncStatus.BLOCKED)
CHANGED_SINCE_FAILURE = "Changed since the last failure; queued to be pushed again (the sync log keeps the error)."


class ErrorKind(models.TextChoices):
    """The seven error classes operations already uses, plus the two that arise before any HTTP call."""

    RATE_LIMIT = "rate_limit", "Rate limit"
    AUTHENTICATION = "authentication", "Authentication"
    VALIDATION = "validation", "Validation"
    NOT_FOUND = "not_found", "Not found"
    SERVER = "server", "Server"
    NETWORK = "network", "Network"
    UNKNOWN = "unknown", "Unknown"
    INVALID_DATA = "invalid_data", "Invalid local data"
    DEPENDENCY = "dependency", "Dependency not synced"


class ZohoSyncedModel(models.Model):
    """Bookkeeping for a row that is pushed to Zoho.

    Saving a row marks it pending again unless only bookkeeping fields are saved: the engine always passes
    `update_fields` naming only these, so its own writes never re-queue the row.
    """

    # The engine's own fields, in the order the admin shows them; saving only these never re-queues a row.
    BOOKKEEPING = (
        "zoho_id",
        "sync_status",
        "sync_version",
        "last_synced_at",
        "last_sync_error",
        "last_error_kind",
        "sync_attempts",
        "next_retry_at",
        "sync_fingerprint",
        "create_intent_at",
        "claimed_by",
        "claimed_until",
        "push_queued_at",
        "failing_since",
        "zoho_modified_at",
        "link_hold",
    )
    BOOKKEEPING_FIELDS = frozenset(BOOKKEEPING)

    zoho_id = models.CharField(
        "Zoho id", max_length=64, null=True, blank=True, unique=True, help_text="The record's id in Zoho Billing."
    )
    sync_status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.PENDING)
    sync_version = models.PositiveBigIntegerField(
        default=0, help_text="Counts local changes. A push that finds it changed since it read the record leaves "
        "the record due, so the next push sends the new data."
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_error = models.TextField(blank=True, help_text="Readable text of the last failure; empty after success.")
    last_error_kind = models.CharField(max_length=16, choices=ErrorKind.choices, blank=True)
    sync_attempts = models.PositiveIntegerField(
        default=0, help_text="Attempts since the last success or local change."
    )
    next_retry_at = models.DateTimeField(null=True, blank=True)
    sync_fingerprint = models.CharField(
        max_length=64, blank=True, help_text="Hash of what Zoho holds (with a Zoho id), or of the create in flight "
        "(without one); an unchanged payload costs no call."
    )
    create_intent_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set before a create is sent. While set without a Zoho id, the record may already exist in "
        "Zoho and is looked up by its natural key before any new create.",
    )

    claimed_by = models.CharField(
        max_length=96, blank=True, help_text="The worker (host:pid:run) pushing the record right now."
    )
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="The claim's lease: after it another worker may take the record."
    )
    push_queued_at = models.DateTimeField(
        null=True, blank=True, help_text="A triggered push is queued; later saves join it instead of adding one."
    )
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="When its pushes started failing (kept through retries and changes, "
        "cleared by a success): how long the record has been out of step with Zoho."
    )

    zoho_modified_at = models.DateTimeField(
        null=True, blank=True, help_text="Zoho's modified time of the state last pulled from Zoho: an older one "
        "(a late or replayed event) never overwrites it."
    )
    # db_default as well: rows written by SQL that does not name the column (bulk loads, the benches) stay valid.
    link_hold = models.TextField(
        blank=True, default="", db_default="",
        help_text="Set by `zoho_backfill --link-only` when several Zoho records may be this one (the candidates and "
        "how to settle it): never created in Zoho while set. Only linking or settling it (--settle ...=ZOHO_ID or "
        "=new) clears it; a local change does not.",
    )

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and set(update_fields) <= self.BOOKKEEPING_FIELDS:
            super().save(*args, **kwargs)  # the engine's own write
            return
        validation.refuse_imprecise_money(self)
        # The business fields this save writes (the engine's own text, an error from Zoho say, is its business).
        validation.refuse_null_characters(self, fields=update_fields, exclude=self.BOOKKEEPING_FIELDS)
        self.mark_pending()
        if self._state.adding or kwargs.get("force_insert"):
            super().save(*args, **kwargs)
            return
        # A local change writes the business fields and "pending", never the rest of the bookkeeping this
        # instance held when it was loaded: a push may have stored a Zoho id since, and writing the stale
        # empty one back would make the next push create the record in Zoho a second time. Nor does it touch
        # the claim: a worker pushing the record keeps it, sees the version moved, and leaves the record due.
        business = {f.name for f in self._meta.concrete_fields if not f.primary_key} - self.BOOKKEEPING_FIELDS
        wanted = business if update_fields is None else set(update_fields) - self.BOOKKEEPING_FIELDS
        changed = self.local_change_expressions()
        for name, expression in changed.items():
            setattr(self, name, expression)
        kwargs["update_fields"] = wanted | {"sync_status", "next_retry_at", "sync_attempts", *changed}
        super().save(*args, **kwargs)
        self.refresh_from_db(fields=list(changed))

    def clean_fields(self, exclude=None):
        # Django's field checks, then those no field validator holds (NUL characters, ISO 4217 currency codes).
        validation.clean_fields_and_text(self, exclude, super().clean_fields)

    @staticmethod
    def local_change_expressions() -> dict:
        """What a local change does to the bookkeeping in the same UPDATE: bump the version, and turn a current
        failure into history (the old error stays in the sync log, not on the record as its current state)."""
        failure = When(sync_status__in=FAILURE_STATUSES, then=Value(""))
        return {
            "sync_version": F("sync_version") + 1,
            "last_sync_error": Case(When(sync_status__in=FAILURE_STATUSES, then=Value(CHANGED_SINCE_FAILURE)),
                                    default=F("last_sync_error"), output_field=models.TextField()),
            "last_error_kind": Case(failure, default=F("last_error_kind"), output_field=models.CharField()),
        }

    @classmethod
    def local_change_update(cls) -> dict:
        """Keyword arguments for `QuerySet.update()` recording a local change made outside `save()` (an invoice's
        lines changed): the same bookkeeping a save writes."""
        return {"sync_status": SyncStatus.PENDING, "next_retry_at": None, "sync_attempts": 0,
                **cls.local_change_expressions()}

    def mark_pending(self) -> None:
        """A local change: push it as soon as possible, with a fresh attempt count."""
        self.sync_status = SyncStatus.PENDING
        self.next_retry_at = None
        self.sync_attempts = 0

    @property
    def sync_state(self) -> SyncState:
        return sync_state_of(self.sync_status, self.next_retry_at)
