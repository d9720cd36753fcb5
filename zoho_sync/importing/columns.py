"""Old address of zoho_sync.tabular.columns."""

from zoho_sync.tabular.columns import *  # noqa: F403
from zoho_sync.tabular.columns import short  # noqa: F401
