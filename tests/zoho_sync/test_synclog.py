"""SyncLog is append-only, and never stores a secret or an unbounded body."""

from __future__ import annotations

import json

import pytest

from zoho_sync import redaction
from zoho_sync.models import FailedSyncLog, SyncLog

pytestmark = pytest.mark.django_db

CANARY_SECRET = "canary-client-secret-7f3a9c"
CANARY_TOKEN = "1000." + "a" * 32 + "." + "b" * 32


def log(**fields) -> SyncLog:
    defaults = {"entity": "customer", "object_pk": "1", "action": SyncLog.Action.CREATE,
                "status": SyncLog.Status.SUCCESS}
    return SyncLog.objects.create(**{**defaults, **fields})


def test_rows_cannot_be_changed():
    entry = log()
    entry.message = "rewritten"
    with pytest.raises(ValueError, match="append-only"):
        entry.save()


def test_failed_proxy_lists_failures_only():
    log(status=SyncLog.Status.SUCCESS)
    failed = log(status=SyncLog.Status.FAILED, error_kind="validation")
    assert list(FailedSyncLog.objects.values_list("pk", flat=True)) == [failed.pk]


def test_secrets_are_redacted_everywhere(settings):
    settings.ZOHO_CLIENT_SECRET = CANARY_SECRET
    redaction.secret_register("access-token-canary-123456")
    entry = log(
        message=f"failed with Authorization: Zoho-oauthtoken {CANARY_TOKEN}",
        zoho_message=f"client_secret={CANARY_SECRET}",
        request_path="/oauth/v2/token?refresh_token=abcdef123456&grant_type=refresh_token",
        request_body={"customer": {"display_name": "Ava", "notes": f"secret {CANARY_SECRET}"}, "access_token": "x"},
        response_body=json.dumps({"token": "access-token-canary-123456", "ok": True}),
    )
    stored = SyncLog.objects.filter(pk=entry.pk).values().get()
    text = json.dumps(stored, default=str)
    for secret in (CANARY_SECRET, CANARY_TOKEN, "access-token-canary-123456", "abcdef123456"):
        assert secret not in text
    assert json.loads(stored["request_body"])["customer"]["display_name"] == "Ava"
    assert "[redacted]" in stored["message"]


def test_bulk_create_redacts_too(settings):
    settings.ZOHO_REFRESH_TOKEN = "canary-refresh-token-xyz"
    SyncLog.objects.bulk_create([SyncLog(entity="invoice", object_pk="9", action="create", status="failed",
                                         message="refresh canary-refresh-token-xyz refused")])
    assert "canary-refresh-token-xyz" not in SyncLog.objects.get().message


def test_bodies_are_size_capped():
    entry = log(response_body="x" * 50_000)
    stored = SyncLog.objects.get(pk=entry.pk).response_body
    assert len(stored) < 9000
    assert stored.endswith("[truncated 41808 characters]")


def test_bodies_are_scrubbed_as_json_text_and_stay_json(settings):
    """Bodies are scrubbed once, as the JSON text they are stored as: a secret JSON writes differently (a quote,
    a backslash) is still found, and a masked token leaves the body readable JSON."""
    settings.ZOHO_CLIENT_SECRET = 'canary"secret\\with-quote'
    entry = log(request_body={"customer": {"notes": ['first', {"deep": 'say canary"secret\\with-quote twice'}]},
                              "header": 'Bearer abc123\\"tail'},
                response_body={"message": f"Zoho-oauthtoken {CANARY_TOKEN}", "refresh_token": "r-123456"})
    stored = SyncLog.objects.filter(pk=entry.pk).values("request_body", "response_body").get()
    request, response = json.loads(stored["request_body"]), json.loads(stored["response_body"])
    assert request["customer"]["notes"] == ["first", {"deep": "say [redacted] twice"}]
    assert request["header"].startswith("Bearer [redacted]")
    assert response == {"message": "Zoho-oauthtoken [redacted]", "refresh_token": "[redacted]"}
