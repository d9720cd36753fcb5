"""SyncFailure: the records that are out of step with Zoho now (failed, blocked or waiting), one row per record
across every entity, read from a database view (migration 0008) so the admin can list, filter, page and act on them
like any table. Read-only: the rows belong to the billing tables; the view only gathers them.

It also carries the one permission every action that pushes, retries or skips needs: "Can sync to Zoho".
"""

from __future__ import annotations

from django.db import models

from zoho_sync.models.base import FAILURE_STATUSES, ErrorKind, SyncState, SyncStatus, sync_state_of

SYNC_PERMISSION = "zoho_sync.sync_to_zoho"

# The view, one SELECT per entity: (spec name, table, the label people know the record by as SQL).
VIEW_SOURCES = (
    ("customer", "zoho_sync_customer", "account_number"),
    ("service_package", "zoho_sync_servicepackage", "plan_code"),
    ("customer_service", "zoho_sync_customerservice", "'CS-' || id"),
    ("invoice", "zoho_sync_invoice", "invoice_number"),
    ("payment", "zoho_sync_payment", "reference"),
)


def view_sql() -> str:
    """The view's SQL, from the constants above alone (no input reaches it); migration 0008 holds a copy."""
    statuses = ", ".join(f"'{status}'" for status in FAILURE_STATUSES)
    selects = [
        f"SELECT '{entity}:' || id AS id, '{entity}' AS entity, {position} AS entity_order, id AS record_id, "  # noqa: S608
        f"{label} AS label, zoho_id, sync_status, next_retry_at, last_sync_error, last_error_kind, sync_attempts, "
        f"failing_since, updated_at FROM {table} WHERE sync_status IN ({statuses})"
        for position, (entity, table, label) in enumerate(VIEW_SOURCES)
    ]
    return "CREATE VIEW zoho_sync_syncfailure AS\n" + "\nUNION ALL\n".join(selects)


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
