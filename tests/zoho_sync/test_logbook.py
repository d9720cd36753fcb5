"""The one SyncLog writer (zoho_sync/sync/logbook.py): what it fills in from the spec and the error, and that its
rows are redacted and capped like every row."""

from __future__ import annotations

import pytest

from zoho_sync.client.errors import ZohoValidationError
from zoho_sync.models import SyncLog
from zoho_sync.sync import logbook
from zoho_sync.sync.specs import BY_NAME

pytestmark = pytest.mark.django_db

CANARY_TOKEN = "1000." + "a" * 32 + "." + "b" * 32


def test_a_row_says_which_record_and_what_the_error_was():
    error = ZohoValidationError("bad email", method="POST", path="/customers", status_code=400, zoho_code=2,
                                zoho_message="Invalid value")
    spec = BY_NAME["customer"]
    row = logbook.write(spec, pk=7, label="CT-1 " + "x" * 300, action=SyncLog.Action.CREATE,
                        status=SyncLog.Status.FAILED, message=f"refused, token {CANARY_TOKEN}", error=error,
                        error_kind="validation", attempt=2, run_id="r" * 40)
    row = SyncLog.objects.get(pk=row.pk)
    assert (row.entity, row.object_pk, row.zoho_entity, row.zoho_id) == ("customer", "7", spec.zoho_entity, "")
    assert row.object_repr == ("CT-1 " + "x" * 300)[:200] and row.run_id == "r" * 36
    assert (row.error_type, row.error_kind, row.http_status, row.zoho_code, row.zoho_message) == (
        "ZohoValidationError", "validation", 400, 2, "Invalid value")
    assert (row.request_method, row.request_path, row.attempt) == ("POST", "/customers", 2)
    assert row.direction == SyncLog.Direction.PUSH and row.response_body == ""
    assert CANARY_TOKEN not in row.message, "redacted as every row is"


def test_many_rows_are_written_at_once_and_redacted():
    spec = BY_NAME["invoice"]
    rows = [logbook.entry(spec, pk=pk, label=f"INV-{pk}", action=SyncLog.Action.NONE, status=SyncLog.Status.SKIPPED,
                          message=f"skipped {CANARY_TOKEN}") for pk in (1, 2)]
    logbook.write_all(rows)
    assert list(SyncLog.objects.order_by("object_pk").values_list("object_pk", "object_repr", "error_type")) == [
        ("1", "INV-1", ""), ("2", "INV-2", "")]
    assert not SyncLog.objects.filter(message__contains=CANARY_TOKEN).exists()
