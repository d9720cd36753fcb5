"""The day's API call count every page shows is the shared budget's count, exact across processes within seconds:
not a per-process figure written in batches (the dashboard once showed "903 of 1,000" for minutes while every push
said "1000 of 1000")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.zoho_sync.test_shared_state import REDIS_URL
from tests.zoho_sync.test_triggers import ROOT, process_env
from zoho_sync.models import ApiUsage
from zoho_sync.sandbox import ZohoSandbox

pytestmark = pytest.mark.django_db(transaction=True)

CALLS_EACH = 15
# Each process makes its calls, says so, and stays alive (its batched per-endpoint usage not yet written) until
# the test closes its stdin.
SCRIPT = f"""
import sys
from zoho_sync.zoho import get_zoho_client
client = get_zoho_client()
for _ in range({CALLS_EACH}):
    client.get("/customers")
print("done", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def shared_sandbox(settings):
    """A system-clock sandbox (other processes call it) with no limits; this process's settings point at it."""
    sandbox = ZohoSandbox(per_minute=0, daily=0, concurrency=0).start()
    config = sandbox.config
    settings.ZOHO_API_BASE_URL, settings.ZOHO_ACCOUNTS_URL = sandbox.base_url, sandbox.accounts_url
    settings.ZOHO_CLIENT_ID, settings.ZOHO_CLIENT_SECRET = config.client_id, config.client_secret
    settings.ZOHO_REFRESH_TOKEN, settings.ZOHO_ORGANIZATION_ID = config.refresh_token, config.organization_id
    settings.ZOHO_RATE_LIMIT_PER_MINUTE, settings.ZOHO_DAILY_LIMIT, settings.REDIS_URL = 1_000_000, 1_000_000, ""
    settings.MONITORING_PROMETHEUS_ENABLED = True
    yield sandbox
    sandbox.stop()


def sandbox_calls(sandbox: ZohoSandbox) -> int:
    """The calls the sandbox itself admitted today for the organization (its own daily count)."""
    return sandbox.state()["limits"].get(sandbox.config.organization_id, {}).get("today", 0)


def dashboard_figure(client) -> int:
    html = client.get("/admin/dashboard/").content.decode()
    section = html[html.index('id="api-budget"'):]
    return int(re.search(r"<strong>([\d,]+)</strong> of", section).group(1).replace(",", ""))


def usage_page_today(client) -> int:
    html = client.get("/admin/zoho_sync/apiusage/").content.decode()
    table = html[html.index('id="usage-per-day"'):]
    first_row = re.search(r"<tbody><tr><td>[\d-]+</td><td>([\d,]+)</td>", table)
    return int(first_row.group(1).replace(",", "")) if first_row else 0  # "No call to Zoho in the last 14 days."


def metrics_figure(client) -> int:
    for family in text_string_to_metric_families(client.get("/metrics").content.decode()):
        for sample in family.samples:
            if sample.name == "zoho_sync_api_calls_today":
                return int(sample.value)
    raise AssertionError("/metrics has no zoho_sync_api_calls_today")


def test_two_processes_calls_show_on_every_page_within_seconds(shared_sandbox, admin_client):
    env = process_env(shared_sandbox, ZOHO_DAILY_LIMIT="1000000")
    procs = [subprocess.Popen([sys.executable, "manage.py", "shell", "-c", SCRIPT], cwd=ROOT, env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    try:
        for proc in procs:
            said = []
            while not said or said[-1].strip() != "done":
                said.append(proc.stdout.readline())
                assert said[-1], "the process ended before its calls were made: " + "".join(said)
        made = sandbox_calls(shared_sandbox)
        assert made == 2 * CALLS_EACH, "the sandbox counted every call of both processes"
        deadline, figures = time.monotonic() + 2.0, None
        while time.monotonic() < deadline:
            figures = (dashboard_figure(admin_client), usage_page_today(admin_client), metrics_figure(admin_client))
            if figures == (made,) * 3:
                break
            time.sleep(0.1)
        assert figures == (made,) * 3, f"dashboard, API usage page and /metrics {figures}; the sandbox counted {made}"
        assert all(proc.poll() is None for proc in procs), "both processes still run: nothing was flushed at exit"
        batched = sum(ApiUsage.objects.values_list("calls", flat=True))
        assert batched <= made, "the per-endpoint rows (written in batches) never count more than were made"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.stdin.close()
            proc.wait(timeout=30)
    batched = sum(ApiUsage.objects.values_list("calls", flat=True))
    assert batched == made, "at exit each process wrote its per-endpoint usage: the same total"
    assert dashboard_figure(admin_client) == made


@pytest.fixture
def redis_url():
    """An empty Redis database for the test (test_shared_state's rule: skipped outside CI when none runs)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
    except redis.RedisError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (outside CI only)")
    return REDIS_URL


def test_through_redis_the_figure_is_the_shared_count_too(zoho_settings, zoho_sandbox, redis_url, admin_client):
    """With REDIS_URL the budget lives in Redis: the figure is read there (one GET), not from the batched rows."""
    from zoho_sync import selectors
    from zoho_sync.shared_state import USAGE
    from zoho_sync.zoho import get_zoho_client

    zoho_settings.REDIS_URL = redis_url
    USAGE.flush()
    client = get_zoho_client()
    for _ in range(7):
        client.get("/customers")
    assert sandbox_calls(zoho_sandbox) == 7
    assert USAGE.waiting == 7, "the per-endpoint counts still wait in this process's memory"
    assert selectors.api_calls_today() == 7
    assert dashboard_figure(admin_client) == 7
