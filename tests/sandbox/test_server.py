"""The runner: HTTP/1.1 keep-alive, concurrent clients on one consistent store, a prompt stop()."""

from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from zoho_sync.sandbox import ManualClock, ZohoSandbox

from .conftest import ORG_HEADER


def test_keep_alive_serves_several_requests_on_one_connection(zoho_sandbox: ZohoSandbox) -> None:
    headers = zoho_sandbox.headers()
    connection = http.client.HTTPConnection("127.0.0.1", zoho_sandbox.port, timeout=5)
    for name in ("One", "Two", "Three"):
        connection.request("POST", "/billing/v1/customers", body=json.dumps({"display_name": name}),
                           headers={**headers, "Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 201 and response.getheader("Connection") is None
        assert response.getheader("Content-Type") == "application/json;charset=UTF-8"
        response.read()
    sock = connection.sock
    connection.request("GET", "/billing/v1/customers", headers=headers)
    assert json.loads(connection.getresponse().read())["page_context"]["has_more_page"] is False
    assert connection.sock is sock  # still the first connection
    connection.close()


def test_concurrent_clients_see_one_consistent_store(zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.configure(check_duplicate_display_name=False, concurrency=0, per_minute=0)
    headers = zoho_sandbox.headers()

    def worker(index: int) -> list[str]:
        session = requests.Session()
        return [session.post(f"{zoho_sandbox.base_url}/customers", json={"display_name": f"C{index}"},
                             headers=headers, timeout=10).json()["customer"]["customer_id"] for _ in range(15)]

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = [i for chunk in pool.map(worker, range(16)) for i in chunk]
    assert len(ids) == len(set(ids)) == 240
    assert zoho_sandbox.counters()["by_status"] == {"201": 240}


def test_stop_is_prompt_with_idle_keep_alive_connections() -> None:
    sandbox = ZohoSandbox(clock=ManualClock()).start()
    base_url = sandbox.base_url
    session = requests.Session()
    headers = {"Authorization": f"Zoho-oauthtoken {sandbox.access_token()}",
               ORG_HEADER: sandbox.config.organization_id}
    assert session.get(f"{base_url}/customers", headers=headers, timeout=5).status_code == 200
    started = time.perf_counter()
    sandbox.stop()
    assert time.perf_counter() - started < 2
    with pytest.raises(requests.ConnectionError):
        session.get(f"{base_url}/customers", headers=headers, timeout=1)


def test_zoho_settings_fixture_points_the_app_at_the_sandbox(zoho_settings: object, zoho_sandbox: ZohoSandbox) -> None:
    from zoho_sync.conf import get_zoho_settings

    conf = get_zoho_settings()
    assert (conf.api_base_url, conf.accounts_url) == (zoho_sandbox.base_url, zoho_sandbox.accounts_url)
    assert conf.organization_id == zoho_sandbox.config.organization_id
