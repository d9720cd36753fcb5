"""The admin: the billing records, what the sync wrote, and the failed records (the dashboard is in monitoring)."""

from zoho_sync.admin import failures, inbox, logs, queue, records  # noqa: F401 - registers the admins
from zoho_sync.admin.base import can_sync  # noqa: F401
