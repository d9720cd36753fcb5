"""The demo's Zoho: the local sandbox on a fixed port with its state in var/, and settings pointing at it.

The demo always talks to this sandbox, whatever .env says, so demo data never reaches a real organization.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import requests
from django.conf import settings
from django.test import override_settings

from zoho_sync.sandbox import ZohoSandbox
from zoho_sync.sandbox.config import SandboxConfig

# Real Zoho allows about 100 calls a minute; the demo's Zoho allows more so the demo takes seconds, not minutes.
DEMO_PER_MINUTE = 6000


def demo_settings(port: int) -> dict[str, object]:
    config = SandboxConfig()
    return {
        "ZOHO_API_BASE_URL": f"http://127.0.0.1:{port}/billing/v1",
        "ZOHO_ACCOUNTS_URL": f"http://127.0.0.1:{port}",
        "ZOHO_CLIENT_ID": config.client_id,
        "ZOHO_CLIENT_SECRET": config.client_secret,
        "ZOHO_REFRESH_TOKEN": config.refresh_token,
        "ZOHO_ORGANIZATION_ID": config.organization_id,
        "ZOHO_DATA_CENTER": "com",
        "ZOHO_RATE_LIMIT_PER_MINUTE": DEMO_PER_MINUTE,
        "ZOHO_DAILY_LIMIT": 1_000_000,
        "ZOHO_DAILY_RESERVE": 1000,
        "REDIS_URL": "",
        "SYNC_RETRY_WINDOW_SECONDS": 10,
        "SYNC_OUTCOME_RECHECK_SECONDS": 2,
    }


def _already_running(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/__sandbox__/state", timeout=1).ok
    except requests.RequestException:
        return False


@contextlib.contextmanager
def demo_zoho(port: int) -> Iterator[str]:
    """Run the demo sandbox (or use the one already on `port`) with settings pointing at it; yield its URL."""
    state_file = Path(settings.BASE_DIR) / "var" / "sandbox-state.json"
    state_file.parent.mkdir(exist_ok=True)
    sandbox = None
    if not port or not _already_running(port):
        sandbox = ZohoSandbox(port=port, state_file=str(state_file), per_minute=DEMO_PER_MINUTE, daily=0)
        sandbox.start()
        port = sandbox.port
    try:
        with override_settings(**demo_settings(port)):
            yield f"http://127.0.0.1:{port}"
    finally:
        if sandbox:
            sandbox.stop()
