"""Canary secrets: the client secret, refresh token and access tokens appear in no log, error or stored row."""

from __future__ import annotations

import json
import logging

import pytest
from django.apps import apps

from zoho_sync.client import codes
from zoho_sync.client.errors import ZohoError
from zoho_sync.conf import ZohoConfigurationError
from zoho_sync.models import SyncLog
from zoho_sync.sandbox import ManualClock, ZohoSandbox
from zoho_sync.zoho import get_zoho_client

CANARY_SECRET = "canary-client-secret-c4f3b2a1d0"
CANARY_REFRESH = "1000.canaryrefresh.c4f3b2a1d0e9f8a7"


@pytest.fixture
def canary_sandbox():
    with ZohoSandbox(clock=ManualClock(), client_secret=CANARY_SECRET, refresh_token=CANARY_REFRESH,
                     check_duplicate_display_name=False) as running:
        yield running


def every_stored_value() -> str:
    rows = []
    for model in apps.get_models():
        rows.extend(json.dumps(row, default=str) for row in model._base_manager.values())
    return "\n".join(rows)


@pytest.mark.django_db(transaction=True)
def test_canary_secrets_never_leak(settings, canary_sandbox, caplog):
    sandbox = canary_sandbox
    settings.ZOHO_API_BASE_URL, settings.ZOHO_ACCOUNTS_URL = sandbox.base_url, sandbox.accounts_url
    settings.ZOHO_CLIENT_ID = sandbox.config.client_id
    settings.ZOHO_CLIENT_SECRET, settings.ZOHO_REFRESH_TOKEN = CANARY_SECRET, CANARY_REFRESH
    settings.ZOHO_ORGANIZATION_ID = sandbox.config.organization_id
    settings.REDIS_URL = ""
    settings.ZOHO_RETRY_DEADLINE = 5.0
    settings.ZOHO_RATE_LIMIT_PER_MINUTE = 100_000
    caplog.set_level(logging.DEBUG)
    client = get_zoho_client()
    errors: list[BaseException] = []

    def attempt(call):
        try:
            call()
        except (ZohoError, ZohoConfigurationError) as exc:
            errors.append(exc)
            SyncLog.objects.create(entity="customer", object_pk="1", action="create", status="failed",
                                   message=str(exc), error_type=type(exc).__name__,
                                   zoho_message=getattr(exc, "zoho_message", ""), request_path=str(exc),
                                   response_body=getattr(exc, "response_body", None))

    attempt(lambda: client.post("/customers", json={"display_name": "Ava", "email": "ava@example.com"}))
    tokens = [client.tokens.token()]
    sandbox.expire_tokens()
    attempt(lambda: client.get("/customers"))
    tokens.append(client.tokens.token())
    attempt(lambda: client.post("/customers", json={"email": "no-name@example.com"}))
    sandbox.fail_next("POST", "/customers", kind="lose_response")
    attempt(lambda: client.post("/customers", json={"display_name": "Bo", "email": "bo@example.com"}))
    sandbox.fail_next("GET", "/customers", status=401, code=codes.NOT_AUTHORIZED, times=2)
    attempt(lambda: client.get("/customers"))
    sandbox.revoke_refresh_token()
    client.tokens.invalidate(client.tokens.token())
    attempt(lambda: client.get("/customers"))
    assert len(errors) >= 4, errors

    texts = [caplog.text, every_stored_value()]
    texts += [str(e) for e in errors] + [repr(e) for e in errors] + [repr(a) for e in errors for a in e.args]
    texts += [repr(client), repr(client.tokens), json.dumps(sandbox.requests(), default=str)]
    haystack = "\n".join(texts)
    for secret in (CANARY_SECRET, CANARY_REFRESH, *tokens):
        assert secret not in haystack, f"a secret leaked: {secret[:12]}..."
    assert "Zoho refused the refresh token" in haystack, "the errors themselves are still readable"
