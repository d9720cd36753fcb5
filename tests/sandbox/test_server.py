"""The runner: HTTP/1.1 keep-alive, concurrent clients on one consistent store, a prompt stop()."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def _silent_receiver() -> tuple[socket.socket, threading.Event]:
    """A webhook receiver that accepts connections and never answers; the event is set on the first one."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = threading.Event()
    kept = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                kept.append(listener.accept())
                accepted.set()

    threading.Thread(target=serve, daemon=True).start()
    return listener, accepted


def test_stop_is_prompt_with_idle_connections_requests_in_flight_and_a_stuck_webhook(tmp_path: Path) -> None:
    receiver, delivering = _silent_receiver()
    sandbox = ZohoSandbox(clock=ManualClock(), state_file=str(tmp_path / "state.json"),
                          webhook_url=f"http://127.0.0.1:{receiver.getsockname()[1]}/hook", webhook_timeout=30)
    sandbox.start()
    headers = {**sandbox.headers(), "Content-Type": "application/json"}
    idle = []
    for _ in range(2):  # two idle keep-alive connections, each after one answered request
        connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=10)
        connection.request("GET", "/billing/v1/customers", headers=headers)
        assert connection.getresponse().read()
        idle.append(connection)
    product = sandbox.seed("products", [{"name": "Installation"}])[0]
    customer = sandbox.seed("customers", [{"display_name": "Webhooked"}])[0]
    created = requests.post(f"{sandbox.base_url}/invoices", headers=headers, timeout=5, json={  # event: a webhook
        "customer_id": customer["customer_id"],
        "invoice_items": [{"product_id": product["product_id"], "price": 1, "quantity": 1}]})
    assert created.status_code == 201 and delivering.wait(5)  # the delivery now waits up to 30 s for an answer
    hold = sandbox.hold_next("POST", "/customers")
    sandbox.fail_next("GET", "/customers", kind="latency", seconds=60)
    with ThreadPoolExecutor(max_workers=2) as pool:
        held = pool.submit(requests.post, f"{sandbox.base_url}/customers", json={"display_name": "Held"},
                           headers=headers, timeout=10)
        slow = pool.submit(requests.get, f"{sandbox.base_url}/customers", headers=headers, timeout=10)
        assert hold.wait_arrived(timeout=5)
        deadline = time.monotonic() + 5
        while sandbox.state()["limits"][sandbox.config.organization_id]["in_flight"] < 2:
            assert time.monotonic() < deadline, "the slow request never arrived"
            time.sleep(0.01)
        started = time.perf_counter()
        sandbox.stop()
        took = time.perf_counter() - started
        for future in (held, slow):  # answered or cut off, but not left hanging
            with contextlib.suppress(requests.RequestException):
                future.result(timeout=5)
    receiver.close()
    for connection in idle:
        connection.close()
    assert took < 2, f"stop() took {took:.2f} s"


def test_zoho_settings_fixture_points_the_app_at_the_sandbox(zoho_settings: object, zoho_sandbox: ZohoSandbox) -> None:
    from zoho_sync.conf import get_zoho_settings

    conf = get_zoho_settings()
    assert (conf.api_base_url, conf.accounts_url) == (zoho_sandbox.base_url, zoho_sandbox.accounts_url)
    assert conf.organization_id == zoho_sandbox.config.organization_id
