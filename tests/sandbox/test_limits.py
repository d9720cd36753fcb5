"""Per-organization limits: per minute with lock-out, daily quota with a UTC reset, concurrency (§12.1, §12.2)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests

from zoho_sync.client import codes
from zoho_sync.sandbox import ZohoSandbox

from .conftest import Api


def test_per_minute_limit_then_lockout_then_recovery(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.configure(per_minute=3, lockout_seconds=60)
    assert [api.get("/customers").status_code for _ in range(3)] == [200, 200, 200]
    over = api.get("/customers")
    assert (over.status_code, over.json()["code"]) == (429, codes.RATE_LIMIT_PER_MINUTE.code)
    assert "Retry-After" not in over.headers  # omitted by default (§12.2)
    zoho_sandbox.advance(59)
    during = api.get("/customers")  # a minute has nearly passed, but the lock-out holds
    assert (during.status_code, during.json()["code"]) == (429, codes.RATE_LIMIT_PER_MINUTE.code)
    zoho_sandbox.advance(1)
    assert api.get("/customers").status_code == 200
    assert zoho_sandbox.counters()["throttled"] == {str(codes.RATE_LIMIT_PER_MINUTE.code): 2}


def test_per_minute_window_rolls_without_a_breach(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.configure(per_minute=2)
    api.get("/customers")
    zoho_sandbox.advance(30)
    api.get("/customers")
    zoho_sandbox.advance(31)  # the first request is now older than a minute
    assert api.get("/customers").status_code == 200


def test_retry_after_is_sent_when_configured(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.configure(per_minute=1, lockout_seconds=45, send_retry_after=True)
    api.get("/customers")
    assert api.get("/customers").headers["Retry-After"] == "45"
    zoho_sandbox.advance(40)
    assert api.get("/customers").headers["Retry-After"] == "5"


def test_daily_quota_until_midnight_utc(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.set_time(datetime(2025, 3, 10, 23, 30, tzinfo=UTC).timestamp())
    zoho_sandbox.configure(daily=3, per_minute=0, send_retry_after=True)
    assert [api.get("/customers").status_code for _ in range(3)] == [200, 200, 200]
    over = api.get("/customers")
    assert over.status_code == 429
    assert over.json() == {"code": codes.RATE_LIMIT_DAILY.code,
                           "message": codes.RATE_LIMIT_DAILY.message.format(limit=3)}
    assert over.headers["Retry-After"] == "1800"
    zoho_sandbox.advance(1799)
    assert api.get("/customers").json()["code"] == codes.RATE_LIMIT_DAILY.code
    zoho_sandbox.advance(1)  # 00:00 UTC
    assert api.get("/customers").status_code == 200


def test_concurrency_limit_refuses_the_extra_request(zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.configure(concurrency=2, latency=0.4)
    headers = zoho_sandbox.headers()

    def call(_: int) -> requests.Response:
        return requests.get(f"{zoho_sandbox.base_url}/customers", headers=headers, timeout=5)

    with ThreadPoolExecutor(max_workers=3) as pool:
        responses = list(pool.map(call, range(3)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 429]
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["code"] == codes.TOO_MANY_CONCURRENT.code
    zoho_sandbox.configure(latency=0)
    assert call(0).status_code == 200  # the slots were released


def test_limits_are_per_organization_and_skip_the_admin_prefix(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.configure(per_minute=1)
    api.get("/customers")
    for _ in range(5):
        assert requests.get(f"{zoho_sandbox.url}/__sandbox__/state", timeout=5).status_code == 200
    assert api.get("/customers").status_code == 429
    assert zoho_sandbox.state()["limits"][zoho_sandbox.config.organization_id]["locked_for"] == 60


def test_per_minute_limit_is_a_sliding_window_across_clock_minutes(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    """Strict as Zoho may be: any 60 s counts, not clock minutes (a fixed window would admit the third call)."""
    zoho_sandbox.configure(per_minute=2)
    zoho_sandbox.set_time(datetime(2025, 3, 10, 12, 0, 50, tzinfo=UTC).timestamp())
    assert api.get("/customers").status_code == 200  # 12:00:50
    zoho_sandbox.advance(20)
    assert api.get("/customers").status_code == 200  # 12:01:10, the next clock minute
    zoho_sandbox.advance(30)
    over = api.get("/customers")  # 12:01:40: two calls in the 60 s before it
    assert (over.status_code, over.json()["code"]) == (429, codes.RATE_LIMIT_PER_MINUTE.code)


def test_requests_refused_for_their_token_count_when_configured(api: Api, zoho_sandbox: ZohoSandbox) -> None:
    zoho_sandbox.configure(per_minute=2)
    expired = api.headers(Authorization="Zoho-oauthtoken 1000.expired")
    assert api.get("/customers", headers=expired).status_code == 401
    assert [api.get("/customers").status_code for _ in range(2)] == [200, 200], "by default a 401 counts for nothing"
    zoho_sandbox.advance(61)
    zoho_sandbox.configure(count_unauthorized=True)
    assert api.get("/customers", headers=expired).status_code == 401
    assert api.get("/customers").status_code == 200
    over = api.get("/customers")
    assert (over.status_code, over.json()["code"]) == (429, codes.RATE_LIMIT_PER_MINUTE.code), "the 401 was counted"
    locked = api.get("/customers", headers=expired)
    assert (locked.status_code, locked.json()["code"]) == (429, codes.RATE_LIMIT_PER_MINUTE.code)
