"""One skip writer (zoho_sync/sync/skips.py) behind the one skip service (services.sync_skip): a person's skip from
either admin page, and the sync rules' skips in a batch, write the same record fields and log rows (issue 20 item 2)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from tests.builders import make_customer, make_invoice
from zoho_sync import services
from zoho_sync.models import Customer, Invoice, SyncLog, SyncStatus

pytestmark = pytest.mark.django_db
CHECKBOX = admin.helpers.ACTION_CHECKBOX_NAME


def failed(obj, **fields):
    type(obj).objects.filter(pk=obj.pk).update(**{"sync_status": SyncStatus.FAILED, "last_sync_error": "bad",
                                                  "last_error_kind": "invalid_data", "sync_attempts": 3, **fields})
    obj.refresh_from_db()
    return obj


@pytest.fixture
def operator(django_user_model):
    user = django_user_model.objects.create_user("operator", password="pw", is_staff=True)
    codenames = ["view_syncfailure", "view_customer", "change_customer", "sync_to_zoho"]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_a_selection_of_several_entities_is_skipped_by_one_call():
    customer = failed(make_customer())
    invoice = failed(make_invoice(customer=make_customer()))
    held = failed(make_customer(), claimed_by="worker-1", claimed_until=timezone.now() + timedelta(minutes=5))
    synced = make_customer()
    Customer.objects.filter(pk=synced.pk).update(sync_status=SyncStatus.SYNCED)
    count = services.sync_skip(selection={"customer": [customer.pk, held.pk, synced.pk], "invoice": [invoice.pk]},
                               by="ava")
    assert count == 2
    assert Customer.objects.get(pk=customer.pk).sync_status == SyncStatus.SKIPPED
    assert Invoice.objects.get(pk=invoice.pk).sync_status == SyncStatus.SKIPPED
    assert Customer.objects.get(pk=held.pk).sync_status == SyncStatus.FAILED, "a worker holds it"
    assert Customer.objects.get(pk=synced.pk).sync_status == SyncStatus.SYNCED, "not a failure"
    skipped = Customer.objects.get(pk=customer.pk)
    assert skipped.last_sync_error.startswith("Skipped by ava on ") and skipped.sync_attempts == 3
    rows = SyncLog.objects.filter(status=SyncLog.Status.SKIPPED).order_by("entity")
    assert [(r.entity, r.action, r.attempt, r.message) for r in rows] == [
        ("customer", "none", 1, skipped.last_sync_error), ("invoice", "none", 1, skipped.last_sync_error)]


def test_the_records_page_skips_through_the_same_service(operator):
    customer = failed(make_customer())
    response = operator.post("/admin/zoho_sync/customer/", {"action": "skip_selected", CHECKBOX: [customer.pk]},
                             follow=True)
    texts = [str(m.message) for m in response.context["messages"]]
    assert any(t.startswith("1 record(s) skipped; a record that is not failed") for t in texts), texts
    assert Customer.objects.get(pk=customer.pk).sync_status == SyncStatus.SKIPPED
    assert SyncLog.objects.get(status=SyncLog.Status.SKIPPED).message.startswith("Skipped by operator on ")


def test_a_batch_skips_by_the_sync_rules_with_its_run_and_attempt(zoho):
    customer = make_customer(account_type=Customer.AccountType.INTERNAL_TEST)
    report = services.sync_pending()
    row = SyncLog.objects.get(entity="customer", object_pk=str(customer.pk))
    assert (row.status, row.action, row.attempt, row.run_id) == ("skipped", "none", 1, report.run_id)
    customer.refresh_from_db()
    assert customer.sync_status == SyncStatus.SKIPPED and customer.last_sync_error == row.message
    assert not customer.claimed_by and customer.sync_attempts == 0
