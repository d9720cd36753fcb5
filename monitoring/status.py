"""The banners every sync page shows: moved to zoho_sync/status.py (issue 20 item 2), so the zoho_sync admin imports
them downwards; this path stays for its callers."""

from zoho_sync.status import Banner, status_banners

__all__ = ["Banner", "status_banners"]
