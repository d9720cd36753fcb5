"""Fault injection: seeded 5xx, latency, resets, slow answers, lost answers after writes, fail_next()."""

from __future__ import annotations

import time

import pytest
import requests

from zoho_sync.client import codes
from zoho_sync.sandbox import ZohoSandbox

from .conftest import Api


def _statuses(api: Api, count: int) -> list[int]:
    return [api.get("/customers").status_code for _ in range(count)]


def test_random_5xx_is_seeded_and_deterministic(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.configure(error_rate=0.3, seed=7, per_minute=0, daily=0)
    first = _statuses(api, 60)
    failures = [s for s in first if s != 200]
    assert set(failures) == {500} and 8 <= len(failures) <= 28
    assert api.get("/customers").status_code in (200, 500)
    zoho_sandbox.configure(seed=7)  # same seed, same request order: same answers
    assert _statuses(api, 60) == first
    zoho_sandbox.configure(seed=8)
    assert _statuses(api, 60) != first
    error = zoho_sandbox.requests(path="/customers")[0]
    assert error["code"] in (0, codes.INTERNAL_ERROR.code)


def test_error_body_is_internal_error(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.configure(error_rate=1.0)
    response = api.get("/customers")
    assert response.status_code == 500
    assert response.json() == {"code": codes.INTERNAL_ERROR.code, "message": codes.INTERNAL_ERROR.message}


def test_latency_is_added(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    api.get("/customers")  # warm the connection and the token
    zoho_sandbox.configure(latency=0.25)
    started = time.perf_counter()
    assert api.get("/customers").status_code == 200
    assert time.perf_counter() - started >= 0.25


def test_reset_closes_the_connection_without_an_answer(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    api.get("/customers")
    zoho_sandbox.configure(reset_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        api.get("/customers")
    zoho_sandbox.configure(reset_rate=0.0)
    assert api.get("/customers").status_code == 200  # the client reconnects
    assert zoho_sandbox.counters()["by_status"]["reset"] == 1


def test_slow_answer_outlives_the_client_timeout_but_the_write_happens(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.fail_next("POST", "/customers", kind="timeout", seconds=0.6)
    with pytest.raises(requests.ReadTimeout):
        api.post("/customers", {"display_name": "Slow Ltd", "email": "slow@x.test"}, timeout=0.2)
    found = api.get("/customers", params={"email": "slow@x.test"}).json()["customers"]
    assert [c["display_name"] for c in found] == ["Slow Ltd"]


def test_lose_response_after_write_leaves_the_record(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.configure(check_duplicate_display_name=False)
    zoho_sandbox.fail_next("POST", "/customers", kind="lose_response")
    with pytest.raises(requests.ConnectionError):
        api.post("/customers", {"display_name": "Lost Ltd", "email": "lost@x.test"})
    # A naive client retries blindly and creates a duplicate: exactly what this fault exposes.
    assert api.post("/customers", {"display_name": "Lost Ltd", "email": "lost@x.test"}).status_code == 201
    found = api.get("/customers", params={"email": "lost@x.test"}).json()["customers"]
    assert len(found) == 2
    assert zoho_sandbox.requests("POST", "/customers")[0]["outcome"] == "reset"


def test_random_faults_can_be_limited_to_methods_and_paths(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.configure(lose_response_rate=1.0, fault_methods="POST", fault_paths="/customers")
    assert api.get("/customers").status_code == 200
    assert api.post("/products", {"name": "Unaffected"}).status_code == 201
    with pytest.raises(requests.ConnectionError):
        api.post("/customers", {"display_name": "Affected"})
    assert [c["display_name"] for c in zoho_sandbox.records("customers")] == ["Affected"]


def test_fail_next_by_prefix_pattern_times_and_code(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    customer = api.customer()
    zoho_sandbox.fail_next("GET", "/customers/{customer_id}", code="RATE_LIMIT_DAILY", times=2, retry_after=7)
    assert api.get("/customers").status_code == 200  # the pattern needs an id segment
    for _ in range(2):
        response = api.get(f"/customers/{customer['customer_id']}")
        assert (response.status_code, response.json()["code"]) == (429, codes.RATE_LIMIT_DAILY.code)
        assert response.headers["Retry-After"] == "7"
    assert api.get(f"/customers/{customer['customer_id']}").status_code == 200
    zoho_sandbox.fail_next("POST", "/billing/v1/customers", status=503, code=1000)
    response = api.post(f"/customers/{customer['customer_id']}/markasinactive")  # a prefix match
    assert (response.status_code, response.json()["code"]) == (503, codes.INTERNAL_ERROR.code)
    zoho_sandbox.fail_next("*", "/")  # default: 429 too many concurrent requests
    response = api.get("/plans")
    assert (response.status_code, response.json()["code"]) == (429, codes.TOO_MANY_CONCURRENT.code)
    assert zoho_sandbox.counters()["throttled"] == {"45": 2, "1070": 1}


def test_fail_next_can_target_the_token_endpoint(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.fail_next("POST", "/oauth/v2/token", kind="reset")
    with pytest.raises(requests.ConnectionError):
        api.mint()
    assert api.mint().status_code == 200


def test_fail_next_rejects_unknown_kinds(zoho_sandbox: ZohoSandbox) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        zoho_sandbox.fail_next("GET", "/customers", kind="explode")
    with pytest.raises(ValueError, match="unknown Zoho code"):
        zoho_sandbox.fail_next("GET", "/customers", code="NO_SUCH_CODE")
