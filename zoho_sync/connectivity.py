"""The connectivity check operators run before a backfill: settings, a token, the organization, one read; and its
last result, shared by every process (SharedState) so the dashboard, /health/ and the CLI say the same thing.

Knowing whether Zoho answers must not cost a call per page view: `connectivity_refresh()` runs the check and
stores its result with its time (the "monitoring: Zoho connectivity" schedule, and `zoho_health_check`, which
checks live); `connectivity_cached()` reads it. Pushes tell it too, for free (`connectivity_observe`): a push
that could not reach Zoho, or that Zoho refused our credentials for, marks it failing at once; a push that
reached Zoho clears that.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from zoho_sync.client.errors import (
    ZohoAuthError,
    ZohoConnectionError,
    ZohoCredentialsError,
    ZohoDailyQuotaError,
    ZohoError,
    ZohoPermissionError,
    ZohoServerError,
)
from zoho_sync.conf import ZohoConfigurationError, get_zoho_settings
from zoho_sync.zoho import get_zoho_client

# What stands between us and Zoho, by the error met ("" when nothing does).
UNREACHABLE, CREDENTIALS, SETTINGS, QUOTA, REFUSED = "unreachable", "credentials", "settings", "quota", "refused"
STATE_KEY = "zoho:connectivity"
RECHECK_AFTER = timedelta(minutes=30)  # the schedule checks again when the last reading is older (or failing)
OBSERVE_EVERY = 60.0  # seconds: how often a process's successful pushes look whether a failure is to be cleared


def problem_of(error: BaseException) -> str:
    if isinstance(error, ZohoCredentialsError | ZohoAuthError | ZohoPermissionError):
        return CREDENTIALS
    if isinstance(error, ZohoConfigurationError):
        return SETTINGS
    if isinstance(error, ZohoConnectionError | ZohoServerError):
        return UNREACHABLE
    if isinstance(error, ZohoDailyQuotaError):
        return QUOTA
    return REFUSED


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    detail: str
    problem: str = ""  # for a failed step: UNREACHABLE, CREDENTIALS, SETTINGS, QUOTA or REFUSED


def connectivity_check() -> list[Step]:
    """Run the steps in order; stop at the first failure (later steps would only repeat it)."""
    steps: list[Step] = []
    try:
        conf = get_zoho_settings()
    except ZohoConfigurationError as exc:
        return [Step("settings", False, str(exc), SETTINGS)]
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
            steps.append(Step(name, False, str(exc), problem_of(exc)))
            break
    return steps


@dataclass(frozen=True)
class Connectivity:
    """The last reading: whether Zoho answered, what stood in the way, and when it was learnt (and how)."""

    ok: bool
    problem: str
    summary: str
    checked_at: datetime
    source: str = "check"  # "check": the connectivity check ran; "push": what a push met
    details: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self) -> str:
        return json.dumps(asdict(self) | {"checked_at": self.checked_at.isoformat(), "details": list(self.details)})


def _store(reading: Connectivity) -> Connectivity:
    from zoho_sync.models import SharedState

    SharedState.objects.update_or_create(key=STATE_KEY, defaults={"data": reading.as_json()})
    return reading


def connectivity_cached() -> Connectivity | None:
    """The last reading any process stored, or None when Zoho was never checked. One indexed query, no call."""
    from zoho_sync.models import SharedState

    raw = SharedState.objects.filter(key=STATE_KEY).values_list("data", flat=True).first()
    try:
        data = json.loads(raw) if raw else {}
        when = parse_datetime(data.get("checked_at") or "")
    except (ValueError, AttributeError):
        return None
    if not when:
        return None
    return Connectivity(bool(data.get("ok")), str(data.get("problem", "")), str(data.get("summary", "")), when,
                        str(data.get("source", "check")), tuple(str(line) for line in data.get("details") or ()))


def connectivity_refresh() -> Connectivity:
    """Run the connectivity check now (a token, one or two reads) and store its result for every process."""
    return connectivity_record(connectivity_check())


def connectivity_record(steps: list[Step]) -> Connectivity:
    """Store the result of a connectivity check just run (zoho_check_connection's too) for every process."""
    details = tuple(f"{'ok' if step.ok else 'FAILED'} {step.name}: {step.detail}" for step in steps)
    failed = next((step for step in steps if not step.ok), None)
    if failed is None:
        reading = Connectivity(True, "", "token, organization and a read all answered", timezone.now(),
                               details=details)
    else:
        reading = Connectivity(failed.problem == QUOTA, failed.problem, f"{failed.name}: {failed.detail}",
                               timezone.now(), details=details)
    return _store(reading)


def connectivity_refresh_due(now: datetime | None = None) -> Connectivity | None:
    """What the schedule runs: check again when the last reading failed, is missing or older than RECHECK_AFTER;
    otherwise nothing (a fresh reading, or pushes that reached Zoho lately, cost no call). Returns the new
    reading, or None when none was due."""
    now = now or timezone.now()
    last = connectivity_cached()
    if last is not None and last.ok and now - last.checked_at < RECHECK_AFTER:
        return None
    return connectivity_refresh()


_last_look = 0.0  # monotonic time this process's successful pushes last looked at the reading


def connectivity_observe(error: BaseException | None = None) -> None:
    """What a push met. An outage or a credentials refusal is stored at once (the banners show it); a push that
    reached Zoho clears a stored failure, looking at most every OBSERVE_EVERY seconds (no query a push)."""
    global _last_look
    if error is not None:
        problem = problem_of(error)
        # A 403 is one endpoint's scope, not the whole connection: the check's own reads say that.
        if problem in (UNREACHABLE, CREDENTIALS) and not isinstance(error, ZohoPermissionError):
            _last_look = 0.0  # the next success looks at once
            _store(Connectivity(False, problem, f"a push met: {error}", timezone.now(), source="push"))
        return
    clock = time.monotonic()
    if clock - _last_look < OBSERVE_EVERY:
        return
    _last_look = clock
    last = connectivity_cached()
    if last is not None and not last.ok:
        _store(Connectivity(True, "", "a push reached Zoho", timezone.now(), source="push"))


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
