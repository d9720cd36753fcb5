"""What stands between us and Zoho now, read without a call to Zoho: the rate budget as it stands (budget_now, which
the dashboard and the health check show) and the banners every sync page shows above its content (status_banners):
Zoho unreachable, credentials refused, the daily quota used up (until when, with the live count), a lock-out.

Read from the same sources as the health check, never from a call to Zoho: the connectivity reading stored by the
schedule, the health command and the pushes (zoho_sync.connectivity), the day's API count and the shared rate
budget. A few indexed queries, so the dashboard (refreshed every 30 s) and every record page can afford them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from zoho_sync import selectors
from zoho_sync.conf import _str_setting, get_zoho_limits


@dataclass
class Budget:
    calls_today: int
    daily_limit: int
    daily_reserve: int
    per_minute: int
    budgeted_per_minute: float
    next_free_seconds: float = 0.0
    in_flight: int = 0
    max_concurrency: int = 10
    locked_until: datetime | None = None
    day_full: bool = False

    @property
    def share(self) -> float:
        return self.calls_today / max(1, self.daily_limit)


def budget_now() -> Budget:
    from zoho_sync.shared_state import budget_peek

    limits = get_zoho_limits()
    budget = Budget(calls_today=selectors.api_calls_today(), daily_limit=limits.daily_limit,
                    daily_reserve=limits.daily_reserve, per_minute=limits.per_minute,
                    budgeted_per_minute=round(limits.per_minute * (1 - limits.headroom), 1),
                    max_concurrency=limits.max_concurrency)
    organization = _str_setting("ZOHO_ORGANIZATION_ID")
    if organization:
        state = budget_peek(organization, limits.redis_url)
        clock = timezone.now().timestamp()
        budget.next_free_seconds = max(0.0, state.tat - clock)
        budget.in_flight = sum(1 for until in state.slots.values() if until > clock)
        if state.blocked_until > clock:
            budget.locked_until = datetime.fromtimestamp(state.blocked_until, UTC)
        budget.day_full = state.day_full and state.day == timezone.now().astimezone(UTC).strftime("%Y-%m-%d")
    return budget


@dataclass(frozen=True)
class Banner:
    kind: str  # unreachable, credentials, settings, quota, lockout: the element's id is banner-<kind>
    text: str  # what is wrong and what happens now, in a sentence or two
    detail: str = ""  # what Zoho or the check said, smaller


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%H:%M} UTC"


def status_banners() -> list[Banner]:
    from zoho_sync.connectivity import CREDENTIALS, SETTINGS, UNREACHABLE, connectivity_cached

    banners: list[Banner] = []
    reading = connectivity_cached()
    if reading is not None and not reading.ok:
        seen = f"{'checked' if reading.source == 'check' else 'seen by a push'} at {_utc(reading.checked_at)}"
        detail = reading.summary.removeprefix("a push met: ")
        if reading.problem == UNREACHABLE:
            banners.append(Banner(UNREACHABLE, f"Zoho unreachable ({seen}): pushes fail as retrying and are tried "
                                               "again; nothing is lost.", detail))
        elif reading.problem == CREDENTIALS:
            banners.append(Banner(CREDENTIALS, f"Zoho refused our credentials ({seen}): a person must fix the Zoho "
                                               "settings (operations guide: \"Lost or revoked credentials\"); "
                                               "pushes fail until then.", detail))
        elif reading.problem == SETTINGS:
            banners.append(Banner(SETTINGS, f"The Zoho settings are wrong ({seen}): a person must fix them.", detail))
        else:
            banners.append(Banner("refused", f"Zoho refused the connectivity check ({seen}).", detail))
    budget = budget_now()
    if budget.calls_today >= budget.daily_limit or budget.day_full:
        now = timezone.now().astimezone(UTC)
        reset = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        banners.append(Banner("quota", f"Zoho's daily API quota is used up until {_utc(reset)} "
                                       f"({budget.calls_today:,} of {budget.daily_limit:,} calls today): pushes wait "
                                       "for the reset, and the schedules push them after it."))
    if budget.locked_until is not None:
        banners.append(Banner("lockout", f"Zoho locked us out for calling too fast, until "
                                         f"{budget.locked_until.astimezone(UTC):%H:%M:%S} UTC: every process waits, "
                                         "then one call probes."))
    return banners
