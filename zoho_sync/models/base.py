"""The sync bookkeeping every synced model shares (ZohoSyncedModel) and its status choices."""

from __future__ import annotations

from django.db import models


class SyncStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SYNCING = "syncing", "Syncing"
    SYNCED = "synced", "Synced"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


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
    )
    BOOKKEEPING_FIELDS = frozenset(BOOKKEEPING)

    zoho_id = models.CharField(
        "Zoho id", max_length=64, null=True, blank=True, unique=True, help_text="The record's id in Zoho Billing."
    )
    sync_status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.PENDING)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_error = models.TextField(blank=True, help_text="Readable text of the last failure; empty after success.")
    last_error_kind = models.CharField(max_length=16, choices=ErrorKind.choices, blank=True)
    sync_attempts = models.PositiveIntegerField(
        default=0, help_text="Attempts since the last success or local change."
    )
    next_retry_at = models.DateTimeField(null=True, blank=True)
    sync_fingerprint = models.CharField(
        max_length=64, blank=True, help_text="Hash of the payload last pushed; an unchanged payload costs no call."
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

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and set(update_fields) <= self.BOOKKEEPING_FIELDS:
            super().save(*args, **kwargs)  # the engine's own write
            return
        self.mark_pending()
        if not self._state.adding and not kwargs.get("force_insert"):
            # A local change writes the business fields and "pending", never the rest of the bookkeeping this
            # instance held when it was loaded: a push may have stored a Zoho id since, and writing the stale
            # empty one back would make the next push create the record in Zoho a second time.
            business = {f.name for f in self._meta.concrete_fields if not f.primary_key} - self.BOOKKEEPING_FIELDS
            wanted = business if update_fields is None else set(update_fields) - self.BOOKKEEPING_FIELDS
            kwargs["update_fields"] = wanted | {"sync_status", "next_retry_at", "sync_attempts"}
        super().save(*args, **kwargs)

    def mark_pending(self) -> None:
        """A local change: push it as soon as possible, with a fresh attempt count."""
        self.sync_status = SyncStatus.PENDING
        self.next_retry_at = None
        self.sync_attempts = 0

    @property
    def is_synced(self) -> bool:
        return self.sync_status == SyncStatus.SYNCED
