"""Acknowledged warnings: moved to zoho_sync/acknowledgements.py (issue 20 item 2), so the zoho_sync admin's queue
page imports them downwards; this path stays for its callers (the queue check)."""

from zoho_sync.acknowledgements import (
    FAILED_TASKS,
    Acknowledgement,
    failed_tasks_acknowledge,
    failed_tasks_acknowledged,
    failed_tasks_open,
)

__all__ = ["FAILED_TASKS", "Acknowledgement", "failed_tasks_acknowledge", "failed_tasks_acknowledged",
           "failed_tasks_open"]
