"""The failed-records view: migration 0008 holds the SQL the model module describes, and the view lists exactly the
records whose status is a failure status, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.builders import make_customer, make_invoice, make_payment, make_service
from zoho_sync import migrations
from zoho_sync.entities import failure_view_sql as view_sql
from zoho_sync.models import SyncFailure, SyncStatus
from zoho_sync.models.base import FAILURE_STATUSES


def latest_view_migration():
    """The newest migration that writes the view (0008 first; a new entity's migration writes it anew)."""
    names = sorted(p.stem for p in (Path(migrations.__file__).parent).glob("[0-9][0-9][0-9][0-9]_*.py"))
    found = [importlib.import_module(f"zoho_sync.migrations.{name}") for name in names]
    return [m for m in found if "CREATE VIEW zoho_sync_syncfailure" in getattr(m, "VIEW", "")][-1]


def test_the_migration_creates_the_view_the_model_describes():
    migration = latest_view_migration()
    assert migration.VIEW.strip() == view_sql().strip()


@pytest.mark.django_db
def test_every_status_of_every_entity():
    records = {"customer": make_customer(), "customer_service": make_service(), "invoice": make_invoice(),
               "payment": make_payment()}
    records["service_package"] = records["customer_service"].package
    for n, status in enumerate(SyncStatus.values):
        for obj in records.values():
            type(obj).objects.filter(pk=obj.pk).update(sync_status=status, sync_attempts=n)
        found = {(row.entity, row.record_id, row.sync_attempts) for row in SyncFailure.objects.all()}
        expected = {(entity, obj.pk, n) for entity, obj in records.items()} if status in FAILURE_STATUSES else set()
        assert found == expected, status
    for obj in records.values():
        type(obj).objects.filter(pk=obj.pk).update(sync_status=SyncStatus.BLOCKED)
    labels = {row.entity: row.label for row in SyncFailure.objects.all()}
    assert labels == {"customer": records["customer"].account_number,
                      "service_package": records["service_package"].plan_code,
                      "customer_service": f"CS-{records['customer_service'].pk}",
                      "invoice": records["invoice"].invoice_number, "payment": records["payment"].reference}
