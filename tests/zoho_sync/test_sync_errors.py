"""A sync error's `retryable` says what the engine does with the record that met it: pushed again by itself (at a
retry time, or when the record it waits for lands), or left for a person (issue 20 item 3)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.builders import make_customer, make_invoice
from zoho_sync import services
from zoho_sync.client.errors import ZohoOutcomeUnknownError, ZohoServerError, ZohoValidationError
from zoho_sync.models import SyncLog, SyncStatus
from zoho_sync.sync.engine import Engine, Outcome, retried_by_engine
from zoho_sync.sync.errors import (
    Busy,
    DependencyBlocked,
    DependencyNotSynced,
    InvalidLocalData,
    RemoteConflict,
    SyncError,
)

pytestmark = pytest.mark.django_db

WOKEN = (SyncStatus.WAITING, SyncStatus.BLOCKED)  # what Engine._wake makes due again when a dependency lands


def engine_tries_again(error: BaseException, obj) -> bool:
    """What the engine writes on a record that met `error`: a retry time, or a wait its dependency's landing ends."""
    status = SyncLog.Status.WAITING if isinstance(error, DependencyNotSynced) else SyncLog.Status.FAILED
    outcome = Outcome(status, SyncLog.Action.CREATE, str(error), error)
    fields = Engine(client=None, run_id="test")._result_fields(outcome, obj, timezone.now(), "", "")
    return fields.get("next_retry_at") is not None or fields["sync_status"] in WOKEN


@pytest.mark.parametrize("error", [InvalidLocalData("bad email"), RemoteConflict("two candidates"), Busy("lease"),
                                   DependencyNotSynced("customer on its way"),
                                   DependencyBlocked("customer needs a person")], ids=lambda e: type(e).__name__)
def test_a_sync_errors_flag_is_what_the_engine_does(error: SyncError):
    assert engine_tries_again(error, make_customer()) is error.retryable


@pytest.mark.parametrize("error", [ZohoServerError("down"), ZohoValidationError("bad"),
                                   ZohoOutcomeUnknownError("answer lost")], ids=lambda e: type(e).__name__)
def test_the_engines_reading_of_a_zoho_error_is_what_it_does(error):
    """A ZohoError's own flag is the client's (resend the request at once); the engine's reading of it is
    retried_by_engine: a lost answer is never resent by the client, but the engine pushes the record again."""
    assert engine_tries_again(error, make_customer()) is retried_by_engine(error)
    assert retried_by_engine(ZohoOutcomeUnknownError("lost")) and not ZohoOutcomeUnknownError.retryable


def test_a_blocked_record_is_pushed_again_by_the_engine_once_its_dependency_lands(zoho):
    customer = make_customer(email="broken")
    invoice = make_invoice(customer=customer)
    services.sync_pending()
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.BLOCKED and invoice.next_retry_at is None
    assert SyncLog.objects.get(entity="invoice").error_type == "DependencyBlocked" and DependencyBlocked.retryable
    customer.email = "fixed@example.com"
    customer.save()
    services.sync_object(entity="customer", pk=customer.pk)
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.PENDING, "woken by the engine; nobody touched the invoice"
    services.sync_pending()
    invoice.refresh_from_db()
    assert invoice.sync_status == SyncStatus.SYNCED and len(zoho.records("invoices")) == 1
