"""Is a cluster running: one answer for the dashboard, the queue check and the admin's messages, true within a
heartbeat of a real qcluster starting and stopping, and a save's message never promises a start beside "no
cluster"."""

from __future__ import annotations

import time

import pytest

from monitoring import checks
from monitoring.heartbeat import cluster_alive, cluster_state
from tests.builders import make_customer
from tests.zoho_sync.test_admin_failures import change_url, messages_of

DASHBOARD = "/admin/dashboard/"
BEAT, SILENT = 1, 4  # seconds: the heartbeat of the cluster under test, and the silence that means "not running"


def cluster_line(client) -> str:
    html = client.get(DASHBOARD, {"partial": "1"}).content.decode()
    start = html.index('id="cluster-state"')
    return html[start:html.index("</p>", start)]


def save_messages(client, customer, name: str) -> list[str]:
    form = {f: getattr(customer, f) for f in ("account_number", "email", "first_name", "last_name", "account_type",
                                              "status", "currency_code")}
    response = client.post(change_url(customer), {**form, "company_name": name}, follow=True)
    assert response.status_code == 200
    return messages_of(response)


def assert_says_running(client, customer, name: str) -> None:
    assert "A django-q2 cluster is running" in cluster_line(client)
    assert checks.QueueCheck().run().status != checks.FAILED
    texts = save_messages(client, customer, name)
    assert [t for t in texts if "push" in t] == ["Its push to Zoho is queued and starts about 1 s after the save."]
    assert not any("No django-q2 cluster" in t for t in texts), texts


def assert_says_not_running(client, customer, name: str) -> None:
    assert "No django-q2 cluster is running" in cluster_line(client)
    queue = checks.QueueCheck().run()
    assert queue.status == checks.FAILED and queue.summary.startswith("no django-q2 cluster is running")
    texts = save_messages(client, customer, name)
    assert "Its push to Zoho is queued." in texts
    assert any(t.startswith("No django-q2 cluster is running: the push will wait") for t in texts), texts
    assert not any("starts about" in t for t in texts), f"a promised start beside 'no cluster': {texts}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_cluster_is_seen_within_a_heartbeat_of_starting_and_of_stopping(start_cluster, admin_client,
                                                                               settings):
    settings.SYNC_TRIGGERS_ENABLED = True
    settings.SYNC_DEBOUNCE_SECONDS = 1.0
    settings.MONITORING_CLUSTER_SILENT_SECONDS = SILENT
    customer = make_customer()
    assert_says_not_running(admin_client, customer, "Before Ltd")

    # No schedule is installed: the beat comes from the cluster's workers themselves.
    cluster = start_cluster(MONITORING_CLUSTER_HEARTBEAT_SECONDS=str(BEAT))
    cluster.wait_for("the cluster's first heartbeat", cluster_alive, timeout=60)
    assert cluster_state().last_seen is not None
    assert_says_running(admin_client, customer, "Running Ltd")
    time.sleep(SILENT + BEAT)  # longer than the silence: still running, because it keeps beating
    assert_says_running(admin_client, customer, "Still Running Ltd")

    cluster.stop()
    stopped = time.monotonic()
    while cluster_alive():
        assert time.monotonic() - stopped < SILENT + 2 * BEAT, "still 'running' a heartbeat after it stopped"
        time.sleep(0.2)
    assert_says_not_running(admin_client, customer, "After Ltd")


def test_the_old_setting_in_minutes_is_still_read(settings):
    """MONITORING_CLUSTER_SILENT_MINUTES, the old name, counts when the new one is not set (config/settings.py)."""
    import os
    import subprocess
    import sys

    from django.conf import settings as django_settings

    code = ("import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; django.setup(); "
            "from monitoring.conf import get_monitoring_settings as g; print(g().cluster_silent_seconds)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITORING_CLUSTER")}
    env.update(DJANGO_ENV_FILE="/nonexistent", MONITORING_CLUSTER_SILENT_MINUTES="2")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=django_settings.BASE_DIR)
    assert out.stdout.split()[-1] == "120.0"
    env.pop("MONITORING_CLUSTER_SILENT_MINUTES")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=django_settings.BASE_DIR)
    assert out.stdout.split()[-1] == "75.0"
