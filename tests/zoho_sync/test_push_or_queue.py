"""One "push now or queue" decision (services.sync_selection): a person's selection is pushed at once when it is
small and queued for the cluster when it is large, whichever entry point asked (issue 20 item 2)."""

from __future__ import annotations

import pytest
from django_q.models import OrmQ

from tests.builders import make_customer, make_invoice
from zoho_sync import services
from zoho_sync.models import Customer, Invoice, SyncState, SyncStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def limit_two(monkeypatch):
    monkeypatch.setattr(services, "PUSH_NOW_LIMIT", 2)


def test_a_small_selection_is_pushed_now_dependencies_first(zoho, limit_two):
    customer = make_customer()
    invoice = make_invoice(customer=customer)
    counts = services.sync_selection({"invoice": [invoice.pk], "customer": [customer.pk]})
    assert counts == {SyncState.SYNCED: 2}
    assert Invoice.objects.get(pk=invoice.pk).sync_status == SyncStatus.SYNCED
    assert not OrmQ.objects.exists()


@pytest.mark.parametrize("entry", ["selection", "queryset"])
def test_a_large_selection_is_queued_by_every_entry(zoho, limit_two, entry):
    customers = [make_customer() for _ in range(3)]
    Customer.objects.update(sync_status=SyncStatus.FAILED, sync_attempts=4)
    OrmQ.objects.all().delete()
    pks = [c.pk for c in customers]
    if entry == "selection":
        counts = services.sync_selection({"customer": pks})
    else:
        counts = services.sync_queryset(queryset=Customer.objects.filter(pk__in=pks))
    assert counts == {"queued": 3} and OrmQ.objects.count() == 3
    assert set(Customer.objects.values_list("sync_status", "sync_attempts")) == {(SyncStatus.PENDING, 0)}
    assert zoho.records("customers") == [], "nothing was pushed now"
