"""The connectivity check operators run before a backfill: settings, a token, the organization, one read."""

from __future__ import annotations

import time
from dataclasses import dataclass

from zoho_sync.client.errors import ZohoError
from zoho_sync.conf import ZohoConfigurationError, get_zoho_settings
from zoho_sync.zoho import get_zoho_client


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    detail: str


def connectivity_check() -> list[Step]:
    """Run the steps in order; stop at the first failure (later steps would only repeat it)."""
    steps: list[Step] = []
    try:
        conf = get_zoho_settings()
    except ZohoConfigurationError as exc:
        return [Step("settings", False, str(exc))]
    steps.append(Step("settings", True, f"{conf.api_base_url}, organization {conf.organization_id}"))
    client = get_zoho_client()
    checks = (
        ("access token", lambda: _token(client)),
        ("organization", lambda: _organization(client, conf.organization_id)),
        ("one read", lambda: _read(client)),
    )
    for name, run in checks:
        try:
            steps.append(Step(name, True, run()))
        except (ZohoError, ZohoConfigurationError) as exc:
            steps.append(Step(name, False, str(exc)))
            break
    return steps


def _token(client) -> str:
    client.tokens.token()
    return "refreshed or reused a valid access token"


def _organization(client, organization_id: str) -> str:
    organizations = client.get("/organizations").get("organizations") or []
    for org in organizations:
        if str(org.get("organization_id")) == organization_id:
            return f"{org.get('name', '')} ({organization_id})".strip()
    raise ZohoConfigurationError(
        f"Organization {organization_id} is not among the {len(organizations)} this token can reach: "
        "check ZOHO_ORGANIZATION_ID."
    )


def _read(client) -> str:
    started = time.monotonic()
    body = client.get("/customers", params={"page": 1, "per_page": 1})
    return f"GET /customers answered in {(time.monotonic() - started) * 1000:.0f} ms ({len(body['customers'])} row)"
