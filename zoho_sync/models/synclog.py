"""SyncLog: the append-only record of every sync attempt, and the FailedSyncLog proxy for the admin."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from zoho_sync import redaction
from zoho_sync.models.base import ErrorKind

MESSAGE_LIMIT = 4000


class SyncLogQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for obj in objs:
            obj.sanitize()
        return super().bulk_create(objs, *args, **kwargs)

    def failures(self) -> SyncLogQuerySet:
        return self.filter(status=SyncLog.Status.FAILED)


class SyncLog(models.Model):
    """One attempt to sync one record. No foreign key to the record: logs outlive deletes."""

    class Direction(models.TextChoices):
        PUSH = "push", "Push to Zoho"
        PULL = "pull", "Pull from Zoho"

    class Action(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"
        LINK = "link", "Link existing Zoho record"
        CANCEL = "cancel", "Cancel"
        LOOKUP = "lookup", "Look up"
        DELETE = "delete", "Delete"
        NONE = "none", "No change"

    class Status(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILED = "failed", "Failed"
        WAITING = "waiting", "Waiting for a dependency"
        BLOCKED = "blocked", "Blocked by a dependency"
        SKIPPED = "skipped", "Skipped"

    entity = models.CharField(max_length=32, help_text="The entity spec's name, e.g. customer, invoice.")
    object_pk = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200, blank=True, help_text="The record as people know it.")
    zoho_entity = models.CharField(max_length=32, blank=True)
    zoho_id = models.CharField("Zoho id", max_length=64, blank=True)
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.PUSH)
    action = models.CharField(max_length=8, choices=Action.choices)
    status = models.CharField(max_length=8, choices=Status.choices)
    attempt = models.PositiveIntegerField(default=1)
    message = models.TextField(blank=True, help_text="What happened, in one readable sentence.")
    error_type = models.CharField(max_length=64, blank=True, help_text="The error's class name.")
    error_kind = models.CharField(max_length=16, choices=ErrorKind.choices, blank=True)
    http_status = models.PositiveSmallIntegerField("HTTP status", null=True, blank=True)
    zoho_code = models.IntegerField(null=True, blank=True)
    zoho_message = models.TextField(blank=True)
    request_method = models.CharField(max_length=8, blank=True)
    request_path = models.CharField(max_length=255, blank=True)
    request_body = models.TextField(blank=True, help_text="Secrets redacted, size-capped.")
    response_body = models.TextField(blank=True, help_text="Secrets redacted, size-capped.")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    run_id = models.CharField(max_length=36, blank=True, help_text="Groups the attempts of one command or task run.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = SyncLogQuerySet.as_manager()

    class Meta:
        # One name on every page, command and doc: "Sync log" (the admin's page title and index entry).
        verbose_name = "sync log entry"
        verbose_name_plural = "sync log"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_at"], name="synclog_created"),
            models.Index(fields=["status", "created_at"], name="synclog_status_created"),
            models.Index(fields=["entity", "status", "created_at"], name="synclog_entity_status_created"),
            models.Index(fields=["entity", "object_pk", "created_at"], name="synclog_object"),
            models.Index(fields=["run_id"], name="synclog_run"),
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.object_repr or self.object_pk}: {self.action} {self.status}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("SyncLog rows are append-only: write a new row instead of changing one.")
        self.sanitize()
        super().save(*args, **kwargs)

    def sanitize(self) -> None:
        """Mask secrets and cap sizes in every free-text field; runs before every insert."""
        self.message = redaction.cap(redaction.redact_text(self.message), MESSAGE_LIMIT)
        self.zoho_message = redaction.cap(redaction.redact_text(self.zoho_message), MESSAGE_LIMIT)
        self.request_path = redaction.redact_text(self.request_path)[:255]
        self.request_body = redaction.body_for_storage(self.request_body)
        self.response_body = redaction.body_for_storage(self.response_body)
        self.object_repr = self.object_repr[:200]


class FailedSyncLogManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(status=SyncLog.Status.FAILED)


class FailedSyncLog(SyncLog):
    """The failures alone: one table, a second clean changelist in the admin."""

    objects = FailedSyncLogManager()

    class Meta:
        proxy = True
        # "Failed attempts": the sync log's failed rows, one per attempt. The records whose last sync failed are
        # "Failed records" (SyncFailure), the one name the demo, the guide and the commands use for them.
        verbose_name = "failed attempt"
        verbose_name_plural = "failed attempts"
