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
DEMO_DAILY = 0  # the demo's Zoho counts no daily quota (0 = off); the app's budget is told a limit it never meets
DEMO_PORT = 8765
DEMO_STATE_FILE = Path("var") / "sandbox-state.json"  # under the project folder
ENV_MARKER = "# Created by bin/demo for a local demo against the local Zoho sandbox."


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


def demo_env(port: int = DEMO_PORT) -> dict[str, str]:
    """The settings .env holds after ./bin/demo: the demo's own (demo_settings), so the server, the schedules and
    the cluster started afterwards talk to the demo's Zoho (`manage.py zoho_sandbox --demo`) with its limits, not
    with real Zoho's 100 a minute and 1,000 a day."""
    wanted = demo_settings(port)
    keys = ("ZOHO_API_BASE_URL", "ZOHO_ACCOUNTS_URL", "ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN",
            "ZOHO_ORGANIZATION_ID", "ZOHO_RATE_LIMIT_PER_MINUTE", "ZOHO_DAILY_LIMIT", "ZOHO_DAILY_RESERVE")
    return {"DEBUG": "true", **{key: str(wanted[key]) for key in keys}}


def demo_env_write(path: Path, port: int = DEMO_PORT) -> str:
    """Write the demo's .env at `path` when there is none; complete one bin/demo wrote earlier (its first line says
    so) with the settings it lacks (an older demo wrote no daily limit, so the budget counted real Zoho's 1,000);
    leave any other .env alone. Returns what it did, in a sentence ("" when nothing)."""
    settings_now = demo_env(port)
    if not path.exists():
        lines = [ENV_MARKER + " See .env.example.",
                 "# The demo's Zoho (`manage.py zoho_sandbox --demo`) and its limits: for real Zoho, see .env.example.",
                 *(f"{key}={value}" for key, value in settings_now.items())]
        path.write_text("\n".join(lines) + "\n")
        return "Wrote .env (DEBUG=true, SQLite, the local Zoho sandbox and its limits) for the demo."
    text = path.read_text()
    if not text.startswith(ENV_MARKER):
        return ""
    present = {line.partition("=")[0].strip() for line in text.splitlines() if "=" in line and
               not line.lstrip().startswith("#")}
    missing = {key: value for key, value in settings_now.items() if key not in present}
    if not missing:
        return ""
    added = "".join(f"{key}={value}\n" for key, value in missing.items())
    path.write_text(text + ("" if text.endswith("\n") else "\n") + "# Added by bin/demo: the demo's Zoho limits.\n"
                    + added)
    return f"Added {', '.join(missing)} to .env (the demo's Zoho and its limits)."


def _already_running(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/__sandbox__/state", timeout=1).ok
    except requests.RequestException:
        return False


@contextlib.contextmanager
def demo_zoho(port: int) -> Iterator[str]:
    """Run the demo sandbox (or use the one already on `port`) with settings pointing at it; yield its URL."""
    state_file = Path(settings.BASE_DIR) / DEMO_STATE_FILE
    state_file.parent.mkdir(exist_ok=True)
    sandbox = None
    if not port or not _already_running(port):
        sandbox = ZohoSandbox(port=port, state_file=str(state_file), per_minute=DEMO_PER_MINUTE, daily=DEMO_DAILY)
        sandbox.start()
        port = sandbox.port
    try:
        with override_settings(**demo_settings(port)):
            yield f"http://127.0.0.1:{port}"
    finally:
        if sandbox:
            sandbox.stop()
