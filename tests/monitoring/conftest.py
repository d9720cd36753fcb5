import pytest

from monitoring.heartbeat import cluster_heartbeat
from tests.zoho_sync.test_triggers import start_cluster  # noqa: F401 (a fixture for this folder)


@pytest.fixture
def healthy(zoho_settings, zoho_sandbox):
    """Zoho reachable, a django-q2 cluster seen a moment ago, nothing else in the database."""
    zoho_settings.SYNC_TRIGGERS_ENABLED = False
    zoho_sandbox.configure(per_minute=0, daily=0)
    cluster_heartbeat()
    return zoho_sandbox
