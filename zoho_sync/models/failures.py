"""SyncFailure: the records that are out of step with Zoho now (failed, blocked or waiting), one row per record
across every entity, read from a database view (migration 0008) so the admin can list, filter, page and act on them
like any table. Read-only: the rows belong to the billing tables; the view only gathers them. Its SQL is built
from the entity registry (zoho_sync.entities.failure_view_sql: each spec's table and failure_label); a
migration holds a copy, and a new entity's migration creates the view anew.

It also carries the one permission every action that pushes, retries or skips needs: "Can sync to Zoho".
"""

from __future__ import annotations

from django.db import models

from zoho_sync.models.base import ErrorKind, SyncState, SyncStatus, sync_state_of

SYNC_PERMISSION = "zoho_sync.sync_to_zoho"

class SyncFailure(models.Model):
    id = models.CharField(primary_key=True, max_length=48)
    entity = models.CharField(max_length=32)
    entity_order = models.PositiveSmallIntegerField()
    record_id = models.BigIntegerField()
    label = models.CharField("record", max_length=200)
    zoho_id = models.CharField("Zoho id", max_length=64, null=True)  # noqa: DJ001 - as in the billing tables
    sync_status = models.CharField(max_length=16, choices=SyncStatus.choices)
    next_retry_at = models.DateTimeField(null=True)
    last_sync_error = models.TextField("error")
    last_error_kind = models.CharField("kind", max_length=16, choices=ErrorKind.choices)
    sync_attempts = models.PositiveIntegerField("attempts")
    failing_since = models.DateTimeField(null=True)
    updated_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "zoho_sync_syncfailure"
        ordering = ["entity_order", "-failing_since", "record_id"]
        verbose_name = "failed record"
        verbose_name_plural = "failed records"
        default_permissions = ("view",)
        permissions = [("sync_to_zoho", "Can sync to Zoho (push, retry and skip records)")]

    def __str__(self) -> str:
        return f"{self.entity} {self.label}"

    @property
    def sync_state(self) -> SyncState:
        return sync_state_of(self.sync_status, self.next_retry_at)
