"""The banners every sync page shows above its content when something stands between us and Zoho: Zoho unreachable,
credentials refused, the daily quota used up (until when, with the live count), a lock-out.

Read from the same sources as the health check, never from a call to Zoho: the connectivity reading stored by the
schedule, the health command and the pushes (zoho_sync.connectivity), the day's API count and the shared rate
budget. A few indexed queries, so the dashboard (refreshed every 30 s) and every record page can afford them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone


@dataclass(frozen=True)
class Banner:
    kind: str  # unreachable, credentials, settings, quota, lockout: the element's id is banner-<kind>
    text: str  # what is wrong and what happens now, in a sentence or two
    detail: str = ""  # what Zoho or the check said, smaller


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%H:%M} UTC"


def status_banners() -> list[Banner]:
    from monitoring.dashboard import budget_now
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
