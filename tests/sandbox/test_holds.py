"""Holds over real HTTP: a request parked before or after its write until the test lets it go."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
import requests

from zoho_sync.sandbox import ZohoSandbox

from .conftest import Api


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


def _create_in_background(pool: ThreadPoolExecutor, sandbox: ZohoSandbox, name: str) -> Future[requests.Response]:
    """POST /customers from another thread, on its own connection (the worker a test holds)."""
    worker = Api(sandbox)
    worker.token  # noqa: B018 - mint now, so the token call is not what gets held
    return pool.submit(worker.post, "/customers", {"display_name": name}, timeout=10)


def test_before_hold_keeps_the_write_out_until_release(api: Api, zoho_sandbox: ZohoSandbox,
                                                       pool: ThreadPoolExecutor) -> None:
    hold = zoho_sandbox.hold_next("POST", "/customers")
    pending = _create_in_background(pool, zoho_sandbox, "Held Ltd")
    assert hold.wait_arrived(timeout=5) and hold.waiting == 1
    assert zoho_sandbox.records("customers") == []  # not applied yet
    assert api.get("/customers").json()["customers"] == []  # other requests still flow
    assert api.post("/customers", {"display_name": "Worker B"}).status_code == 201  # times=1: B is not held
    assert not pending.done()
    hold.release()
    response = pending.result(timeout=5)
    assert response.status_code == 201
    assert sorted(c["display_name"] for c in zoho_sandbox.records("customers")) == ["Held Ltd", "Worker B"]
    assert hold.arrived == 1 and hold.waiting == 0 and hold.released


def test_after_hold_stores_the_write_while_the_client_waits(zoho_sandbox: ZohoSandbox,
                                                            pool: ThreadPoolExecutor) -> None:
    hold = zoho_sandbox.hold_next("POST", "/customers", when="after")
    pending = _create_in_background(pool, zoho_sandbox, "Written Ltd")
    assert hold.wait_arrived(timeout=5)
    stored = zoho_sandbox.records("customers")
    assert [c["display_name"] for c in stored] == ["Written Ltd"]  # in Zoho already...
    time.sleep(0.05)
    assert not pending.done()  # ...but the client has not heard
    hold.release()
    assert pending.result(timeout=5).json()["customer"]["customer_id"] == stored[0]["customer_id"]


def test_hold_counts_times_and_matches_method_and_path(api: Api, zoho_sandbox: ZohoSandbox,
                                                       pool: ThreadPoolExecutor) -> None:
    with zoho_sandbox.hold_next("*", "/customers", times=2) as hold:
        first = _create_in_background(pool, zoho_sandbox, "One")
        second = _create_in_background(pool, zoho_sandbox, "Two")
        assert hold.wait_arrived(timeout=5, count=2) and hold.waiting == 2
        assert api.post("/customers", {"display_name": "Three"}).status_code == 201  # the third is not held
        assert api.get("/plans").status_code == 200
        assert zoho_sandbox.state()["holds"][0]["waiting"] == 2
    assert {first.result(timeout=5).status_code, second.result(timeout=5).status_code} == {201}
    assert zoho_sandbox.state()["holds"] == []


def test_reset_releases_held_requests(zoho_sandbox: ZohoSandbox, pool: ThreadPoolExecutor) -> None:
    hold = zoho_sandbox.hold_next("POST", "/customers")
    pending = _create_in_background(pool, zoho_sandbox, "Reset Ltd")
    assert hold.wait_arrived(timeout=5)
    started = time.monotonic()
    zoho_sandbox.reset()
    assert pending.result(timeout=5).status_code == 201
    assert time.monotonic() - started < 2 and hold.released
    assert zoho_sandbox.state()["holds"] == []


def test_safety_timeout_lets_a_forgotten_hold_go(zoho_sandbox: ZohoSandbox, pool: ThreadPoolExecutor) -> None:
    hold = zoho_sandbox.hold_next("POST", "/customers", timeout=0.2)
    started = time.monotonic()
    response = _create_in_background(pool, zoho_sandbox, "Forgotten Ltd").result(timeout=5)
    assert response.status_code == 201 and hold.arrived == 1
    assert 0.2 <= time.monotonic() - started < 3


def test_after_hold_composes_with_a_lost_answer(zoho_sandbox: ZohoSandbox, pool: ThreadPoolExecutor) -> None:
    zoho_sandbox.fail_next("POST", "/customers", kind="lose_response")
    hold = zoho_sandbox.hold_next("POST", "/customers", when="after")
    pending = _create_in_background(pool, zoho_sandbox, "Lost Ltd")
    assert hold.wait_arrived(timeout=5) and len(zoho_sandbox.records("customers")) == 1
    hold.release()
    with pytest.raises(requests.ConnectionError):
        pending.result(timeout=5)


def test_requests_refused_before_the_hold_point_are_not_held(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    hold = zoho_sandbox.hold_next("POST", "/customers")
    bad_token = {**api.headers(), "Authorization": "Zoho-oauthtoken nope"}
    assert api.post("/customers", {"display_name": "X"}, headers=bad_token).status_code == 401
    assert hold.arrived == 0 and not hold.wait_arrived(timeout=0.05)
    hold.release()


def test_hold_rejects_unknown_points(zoho_sandbox: ZohoSandbox) -> None:
    with pytest.raises(ValueError, match="hold point"):
        zoho_sandbox.hold_next("POST", "/customers", when="during")


def test_holds_over_the_admin_prefix(zoho_sandbox: ZohoSandbox, pool: ThreadPoolExecutor) -> None:
    admin = f"{zoho_sandbox.url}/__sandbox__"
    hold = requests.post(f"{admin}/hold", json={"method": "POST", "path": "/customers", "when": "after"},
                         timeout=5).json()["hold"]
    pending = _create_in_background(pool, zoho_sandbox, "Remote Ltd")
    waited = requests.post(f"{admin}/hold_wait", json={"id": hold["id"], "timeout": 5}, timeout=10).json()
    assert waited["arrived"] is True and waited["hold"]["waiting"] == 1
    assert requests.get(f"{admin}/holds", timeout=5).json()["holds"][0]["id"] == hold["id"]
    assert requests.post(f"{admin}/release", json={"id": hold["id"]}, timeout=5).json()["released"] == 1
    assert pending.result(timeout=5).status_code == 201
    assert requests.post(f"{admin}/hold", json={"path": "/x", "when": "during"}, timeout=5).status_code == 400
    assert requests.post(f"{admin}/release", json={"id": 999}, timeout=5).status_code == 400
