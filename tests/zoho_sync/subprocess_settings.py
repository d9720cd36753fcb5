"""Settings for the processes tests start (`manage.py qcluster`, `manage.py zoho_backfill`): the project's own
settings, plus the sync engine's timings taken from the environment when it names them.

Tests shorten the debounce, the retry window and the outcome re-check so a crash or a lost answer is repaired in
seconds, not minutes. config/settings.py may read some of these itself; here they always can, whichever it does.
Use it with DJANGO_SETTINGS_MODULE=tests.zoho_sync.subprocess_settings (the project root is on sys.path when
manage.py runs).
"""

import os

from config.settings import *  # noqa: F403

_FLOATS = (
    "SYNC_DEBOUNCE_SECONDS",
    "SYNC_OUTCOME_RECHECK_SECONDS",
    "SYNC_RETRY_WINDOW_SECONDS",
    "SYNC_DEPENDENCY_RETRY_SECONDS",
    "SYNC_CLAIM_LEASE_SECONDS",
)
_INTS = ("SYNC_MAX_ATTEMPTS",)

for _name in _FLOATS:
    if os.environ.get(_name):
        globals()[_name] = float(os.environ[_name])
for _name in _INTS:
    if os.environ.get(_name):
        globals()[_name] = int(os.environ[_name])
if os.environ.get("SYNC_TRIGGERS_ENABLED"):
    SYNC_TRIGGERS_ENABLED = os.environ["SYNC_TRIGGERS_ENABLED"].strip().lower() in ("1", "true", "yes", "on")
