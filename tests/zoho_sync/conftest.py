"""Fixtures for client tests: clients whose sleeps move the sandbox's manual clock instead of waiting."""

from __future__ import annotations

import random

import pytest

from tests.zoho_sync.test_triggers import start_cluster  # noqa: F401 - for the two-way tests
from zoho_sync.client.budget import BudgetPolicy
from zoho_sync.client.http import ZohoClient
from zoho_sync.client.retry import RetryPolicy
from zoho_sync.sandbox import ZohoSandbox

UNLIMITED = BudgetPolicy(per_minute=1_000_000, headroom=0, daily_limit=10**9, daily_reserve=0)


@pytest.fixture
def slept():
    """Every wait the client asked for, in order (the clock moved by that much instead)."""
    return []


@pytest.fixture
def make_client(zoho_sandbox, slept):
    clients = []

    def make(**overrides) -> ZohoClient:
        config = zoho_sandbox.config

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            zoho_sandbox.advance(seconds)

        options = {
            "api_base_url": zoho_sandbox.base_url,
            "accounts_url": zoho_sandbox.accounts_url,
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "refresh_token": config.refresh_token,
            "organization_id": config.organization_id,
            "budget_policy": UNLIMITED,
            "retry": RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=8, deadline=600),
            "timeout": (2.0, 2.0),
            "clock": zoho_sandbox.clock.time,
            "sleep": sleep,
            "rng": random.Random(7),
        }
        options.update(overrides)
        client = ZohoClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def token_requests(sandbox) -> int:
    return len(sandbox.requests("POST", "/oauth/v2/token"))


@pytest.fixture
def zoho(zoho_settings, zoho_sandbox):
    """The sandbox for engine tests: no limits; failures and lost answers due again at once, so one run shows the
    whole story; no queued pushes (commands and services are called directly)."""
    zoho_settings.SYNC_RETRY_WINDOW_SECONDS = 0
    zoho_settings.SYNC_OUTCOME_RECHECK_SECONDS = 0
    zoho_settings.SYNC_TRIGGERS_ENABLED = False
    zoho_sandbox.configure(per_minute=0, daily=0)
    return zoho_sandbox


@pytest.fixture
def crash_zoho():
    """A system-clock sandbox that stores a second customer of the same name, with no limits, slow enough (40 ms a
    call) that a backfill is still running when it is killed."""
    sandbox = ZohoSandbox(check_duplicate_display_name=False, per_minute=0, daily=0, concurrency=0, latency=0.04,
                          seed=7).start()
    yield sandbox
    sandbox.stop()
