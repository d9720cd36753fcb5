"""pytest fixtures for the local Zoho sandbox (registered from tests/conftest.py as a plugin).

- `zoho_sandbox`: a running ZohoSandbox on 127.0.0.1 with a ManualClock (advance it instead of sleeping),
  reset before every test. One server serves the whole session, so a test costs no start-up.
- `zoho_settings`: pytest-django's `settings` pointed at that sandbox (URLs and credentials).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from zoho_sync.sandbox import ManualClock, ZohoSandbox


@pytest.fixture(scope="session")
def zoho_sandbox_server() -> Iterator[ZohoSandbox]:
    sandbox = ZohoSandbox(clock=ManualClock()).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def zoho_sandbox(zoho_sandbox_server: ZohoSandbox) -> Iterator[ZohoSandbox]:
    """The session's sandbox, fresh: no data, no tokens, default limits and faults, clock at the real now."""
    zoho_sandbox_server.reset()
    yield zoho_sandbox_server
    zoho_sandbox_server.wait_for_webhooks(timeout=2)


@pytest.fixture
def zoho_settings(settings: Any, zoho_sandbox: ZohoSandbox) -> Any:
    """Django settings that point the app's Zoho client at the sandbox (settings are read at call time)."""
    config = zoho_sandbox.config
    settings.ZOHO_API_BASE_URL = zoho_sandbox.base_url
    settings.ZOHO_ACCOUNTS_URL = zoho_sandbox.accounts_url
    settings.ZOHO_CLIENT_ID = config.client_id
    settings.ZOHO_CLIENT_SECRET = config.client_secret
    settings.ZOHO_REFRESH_TOKEN = config.refresh_token
    settings.ZOHO_ORGANIZATION_ID = config.organization_id
    # The client's own pacing is tested on its own; here it must not slow tests down, nor reach for Redis.
    settings.ZOHO_RATE_LIMIT_PER_MINUTE = 1_000_000
    settings.REDIS_URL = ""
    return settings


@pytest.fixture
def live_sandbox() -> Iterator[ZohoSandbox]:
    """A sandbox on the system clock (other processes cannot move a manual one), limits off."""
    sandbox = ZohoSandbox(per_minute=0, daily=0).start()
    yield sandbox
    sandbox.stop()
