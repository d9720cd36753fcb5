"""Old address of zoho_sync.tabular.hooks."""

from zoho_sync.tabular.hooks import *  # noqa: F403
