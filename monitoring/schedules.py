"""The django-q2 schedules: moved to zoho_sync/schedules.py (issue 20 item 2), so zoho_sync's task allow-list reads
them downwards; this path stays for its callers (zoho_schedules, the tests)."""

from zoho_sync.schedules import SCHEDULES, Planned, schedules_install

__all__ = ["SCHEDULES", "Planned", "schedules_install"]
