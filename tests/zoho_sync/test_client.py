"""The Zoho client through the real requests stack against the zoho_sandbox: errors, tokens, retries, limits, paging."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from tests.zoho_sync.conftest import token_requests
from zoho_sync.client import codes
from zoho_sync.client.auth import TokenThrottledError
from zoho_sync.client.budget import BudgetPolicy, Priority, seconds_to_next_utc_midnight
from zoho_sync.client.errors import (
    ZohoAPIError,
    ZohoAuthError,
    ZohoConnectionError,
    ZohoCredentialsError,
    ZohoDailyQuotaError,
    ZohoNotFoundError,
    ZohoOutcomeUnknownError,
    ZohoRateLimitError,
    ZohoServerError,
    ZohoValidationError,
)
from zoho_sync.client.http import endpoint_name
from zoho_sync.client.retry import RetryPolicy


def new_customer(client, name="Ava Smith", **fields):
    return client.post("/customers", json={"display_name": name, "email": "ava@example.com", **fields})["customer"]


class TestErrorClasses:
    def test_validation(self, make_client):
        with pytest.raises(ZohoValidationError) as exc:
            make_client().post("/customers", json={"email": "no-name@example.com"})
        error = exc.value
        assert (error.status_code, error.code_name, error.kind, error.retryable) == (400, "INVALID_VALUE",
                                                                                     "validation", False)
        assert error.method == "POST" and error.path == "/customers"
        assert "display_name" in str(error)

    def test_not_found(self, make_client, zoho_sandbox):
        with pytest.raises(ZohoNotFoundError) as exc:
            make_client().get("/customers/903000000099999")
        assert (exc.value.kind, exc.value.code_name, exc.value.retryable) == ("not_found", "DOES_NOT_EXIST", False)
        assert len(zoho_sandbox.requests("GET", "/customers/{id}")) == 1, "not-found is not retried"

    def test_authentication_after_one_refresh_and_one_replay(self, make_client, zoho_sandbox):
        client = make_client()
        client.get("/customers")
        zoho_sandbox.fail_next("GET", "/customers", status=401, code=codes.NOT_AUTHORIZED, times=2)
        with pytest.raises(ZohoAuthError) as exc:
            client.get("/customers")
        assert exc.value.kind == "authentication" and exc.value.status_code == 401
        assert token_requests(zoho_sandbox) == 2, "exactly one refresh after the first 401"

    def test_rate_limit_when_retries_run_out(self, make_client, zoho_sandbox):
        zoho_sandbox.fail_next("GET", "/customers", status=429, code=codes.TOO_MANY_CONCURRENT, times=10)
        with pytest.raises(ZohoRateLimitError) as exc:
            make_client().get("/customers")
        assert exc.value.is_concurrency and exc.value.kind == "rate_limit" and exc.value.retryable
        assert len(zoho_sandbox.requests("GET", "/customers")) == 4  # max_attempts

    def test_server_error_is_retried_then_surfaces(self, make_client, zoho_sandbox, slept):
        zoho_sandbox.fail_next("GET", "/customers", status=500, code=codes.INTERNAL_ERROR, times=2)
        assert make_client().get("/customers")["code"] == 0
        assert len(zoho_sandbox.requests("GET", "/customers")) == 3 and len(slept) == 2
        zoho_sandbox.fail_next("GET", "/customers", status=503, times=10)
        with pytest.raises(ZohoServerError) as exc:
            make_client().get("/customers")
        assert exc.value.kind == "server"

    def test_network(self, make_client):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed_port = s.getsockname()[1]
        client = make_client(api_base_url=f"http://127.0.0.1:{closed_port}/billing/v1")
        client.tokens.token()  # the accounts server is the zoho_sandbox; the API host is down
        with pytest.raises(ZohoConnectionError) as exc:
            client.get("/customers")
        assert exc.value.kind == "network" and exc.value.never_sent
        with pytest.raises(ZohoConnectionError) as exc:
            client.post("/customers", json={"display_name": "x"})
        assert not isinstance(exc.value, ZohoOutcomeUnknownError), "a connection that never opened is safe"

    def test_unknown(self, make_client, zoho_sandbox):
        zoho_sandbox.fail_next("GET", "/customers", status=418, code=424242)
        with pytest.raises(ZohoAPIError) as exc:
            make_client().get("/customers")
        assert type(exc.value) is ZohoAPIError and exc.value.kind == "unknown" and not exc.value.retryable

    def test_success_status_with_nonzero_code_is_an_error(self, make_client, zoho_sandbox):
        zoho_sandbox.fail_next("GET", "/customers", status=200, code=codes.INVALID_VALUE)
        with pytest.raises(ZohoValidationError):
            make_client().get("/customers")


class TestTokens:
    def test_token_is_cached_and_reused(self, make_client, zoho_sandbox):
        client = make_client()
        for _ in range(5):
            client.get("/customers")
        assert token_requests(zoho_sandbox) == 1

    def test_refresh_ahead_of_expiry(self, make_client, zoho_sandbox):
        client = make_client()
        client.get("/customers")
        zoho_sandbox.advance(3600 - 299)  # inside the 5-minute margin: refresh before Zoho would refuse it
        client.get("/customers")
        assert token_requests(zoho_sandbox) == 2
        assert not [r for r in zoho_sandbox.requests() if r.get("status") == 401]

    def test_refresh_after_expiry_replays_once(self, make_client, zoho_sandbox):
        client = make_client()
        client.get("/customers")
        zoho_sandbox.expire_tokens()
        assert client.get("/customers")["code"] == 0
        statuses = [r["status"] for r in zoho_sandbox.requests("GET", "/customers")]
        assert statuses == [200, 401, 200] and token_requests(zoho_sandbox) == 2

    def test_eight_threads_mint_exactly_once(self, make_client, zoho_sandbox):
        client = make_client(sleep=lambda s: threading.Event().wait(min(s, 0.05)))
        barrier, errors = threading.Barrier(8), []

        def work():
            barrier.wait()
            try:
                client.get("/customers")
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and token_requests(zoho_sandbox) == 1

    def test_mint_limit_is_respected_locally(self, make_client, zoho_sandbox):
        client = make_client()
        for _ in range(10):
            client.tokens.invalidate(client.tokens.token())
        with pytest.raises(TokenThrottledError) as exc:
            client.tokens.token()
        assert token_requests(zoho_sandbox) == 10, "the 11th mint was never asked for"
        assert 0 < exc.value.retry_after <= 600
        zoho_sandbox.advance(601)
        assert client.tokens.token()

    def test_zoho_refusing_a_mint_is_waited_out(self, make_client, zoho_sandbox):
        for _ in range(10):
            zoho_sandbox.access_token()  # someone else used the refresh token's 10 mints
        client = make_client()
        with pytest.raises(TokenThrottledError) as exc:
            client.get("/customers")
        assert exc.value.kind == "rate_limit" and exc.value.retry_after == 600
        with pytest.raises(TokenThrottledError):
            client.get("/customers")
        assert token_requests(zoho_sandbox) == 1, "no second ask inside the window"

    def test_revoked_refresh_token_is_a_configuration_error(self, make_client, zoho_sandbox):
        zoho_sandbox.revoke_refresh_token()
        with pytest.raises(ZohoCredentialsError, match=r"Generate a new refresh token.*ZOHO_REFRESH_TOKEN"):
            make_client().get("/customers")

    def test_wrong_client_secret_is_a_configuration_error(self, make_client):
        with pytest.raises(ZohoCredentialsError, match="ZOHO_CLIENT_ID and ZOHO_CLIENT_SECRET"):
            make_client(client_secret="wrong-secret-value").get("/customers")


class TestRetries:
    def test_retry_after_is_honoured(self, make_client, zoho_sandbox, slept):
        zoho_sandbox.configure(send_retry_after=True)
        zoho_sandbox.fail_next("GET", "/customers", status=429, code=codes.TOO_MANY_CONCURRENT, retry_after=7)
        make_client().get("/customers")
        assert max(slept) >= 7

    def test_concurrency_429_backs_off_one_to_five_seconds(self, make_client, zoho_sandbox, slept):
        zoho_sandbox.fail_next("GET", "/customers", status=429, code=codes.TOO_MANY_CONCURRENT)
        make_client().get("/customers")
        assert len(slept) == 1 and 1 <= slept[0] <= 5

    def test_lockout_is_waited_out_without_hammering(self, make_client, zoho_sandbox, slept):
        zoho_sandbox.configure(per_minute=3, lockout_seconds=60)
        client = make_client(retry=RetryPolicy(lockout_wait=60, max_attempts=3))
        for _ in range(3):
            client.get("/customers")
        assert client.get("/customers")["code"] == 0
        answers = [(r["status"], r.get("code")) for r in zoho_sandbox.requests("GET", "/customers")]
        assert answers == [(200, 0)] * 3 + [(429, 44), (200, 0)], "one probe after the lock-out, no hammering"
        assert sum(slept) >= 60

    def test_lockout_pauses_every_client_sharing_the_budget(self, make_client, zoho_sandbox, slept):
        from zoho_sync.client.budget import MemoryBudgetBackend

        shared = MemoryBudgetBackend()
        first, second = make_client(budget_backend=shared), make_client(budget_backend=shared)
        first.budget.block(60)
        second.get("/customers")
        assert sum(slept) >= 60

    def test_daily_quota_is_not_retried_and_stops_every_caller(self, make_client, zoho_sandbox):
        zoho_sandbox.configure(daily=2)
        client = make_client()
        client.get("/customers")
        client.get("/customers")
        with pytest.raises(ZohoDailyQuotaError) as exc:
            client.get("/customers")
        assert exc.value.zoho_code == 45 and not exc.value.retryable
        with pytest.raises(ZohoDailyQuotaError) as exc:
            client.get("/customers")
        assert len(zoho_sandbox.requests("GET", "/customers")) == 3, "after code 45 nothing more is sent today"
        assert "Zoho answered that today's API quota is used up (3 calls made from here today" in str(exc.value)

    def test_zoho_daily_quota_without_retry_after_resumes_at_utc_midnight(self, make_client, zoho_sandbox):
        client = make_client(budget_policy=BudgetPolicy(per_minute=10**6, headroom=0, daily_limit=1000,
                                                        daily_reserve=0))
        for _ in range(61):
            client.get("/plans")
        zoho_sandbox.fail_next("GET", "/customers", status=429, code=codes.RATE_LIMIT_DAILY)  # no Retry-After
        with pytest.raises(ZohoDailyQuotaError) as exc:
            client.get("/customers")
        midnight = seconds_to_next_utc_midnight(zoho_sandbox.clock.time())
        assert exc.value.zoho_code == 45 and exc.value.retry_after == pytest.approx(midnight)
        with pytest.raises(ZohoDailyQuotaError) as exc:
            client.get("/customers", priority=Priority.HIGH)
        assert str(exc.value) == ("Zoho answered that today's API quota is used up (62 calls made from here today "
                                  "(UTC), of a configured 1000); calls resume after 00:00 UTC.")
        assert exc.value.retry_after == pytest.approx(midnight)
        zoho_sandbox.advance(midnight + 1)
        assert client.get("/customers")["code"] == 0, "a new UTC day: one probe, and calls go on"

    def test_lost_create_response_is_never_retried_blindly(self, make_client, zoho_sandbox):
        zoho_sandbox.configure(check_duplicate_display_name=False)
        zoho_sandbox.fail_next("POST", "/customers", kind="lose_response")
        with pytest.raises(ZohoOutcomeUnknownError) as exc:
            new_customer(make_client())
        assert exc.value.kind == "network" and not exc.value.retryable
        assert len(zoho_sandbox.requests("POST", "/customers")) == 1
        assert len(zoho_sandbox.records("customers")) == 1, "Zoho applied it: a blind retry would duplicate it"

    def test_timed_out_create_is_outcome_unknown(self, make_client, zoho_sandbox):
        zoho_sandbox.fail_next("POST", "/customers", kind="timeout", seconds=3)
        with pytest.raises(ZohoOutcomeUnknownError):
            new_customer(make_client(timeout=(2.0, 0.5)))
        deadline = time.monotonic() + 10  # the zoho_sandbox logs the request once its slow answer is written
        while not zoho_sandbox.requests("POST", "/customers") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(zoho_sandbox.requests("POST", "/customers")) == 1

    def test_create_is_retried_after_429_because_zoho_applied_nothing(self, make_client, zoho_sandbox):
        zoho_sandbox.fail_next("POST", "/customers", status=429, code=codes.TOO_MANY_CONCURRENT)
        assert new_customer(make_client())["customer_id"]
        assert len(zoho_sandbox.records("customers")) == 1

    def test_create_is_not_retried_after_a_server_error(self, make_client, zoho_sandbox):
        zoho_sandbox.fail_next("POST", "/customers", status=500, code=codes.INTERNAL_ERROR)
        with pytest.raises(ZohoServerError):
            new_customer(make_client())
        assert len(zoho_sandbox.requests("POST", "/customers")) == 1

    def test_reads_are_retried_after_a_reset(self, make_client, zoho_sandbox):
        zoho_sandbox.fail_next("GET", "/customers", kind="reset")
        assert make_client().get("/customers")["code"] == 0
        assert len(zoho_sandbox.requests("GET", "/customers")) == 2

    def test_deadline_bounds_all_waiting(self, make_client, zoho_sandbox, slept):
        zoho_sandbox.fail_next("GET", "/customers", status=503, times=50)
        client = make_client(retry=RetryPolicy(max_attempts=50, base_delay=1, max_delay=30, deadline=20))
        with pytest.raises(ZohoServerError):
            client.get("/customers")
        assert sum(slept) <= 20


class TestPagingAndBudget:
    def test_pagination_across_1000_customers(self, make_client, zoho_sandbox):
        zoho_sandbox.seed("customers", [{"display_name": f"Customer {i}", "email": f"c{i}@example.com"}
                                   for i in range(1000)])
        ids = [c["customer_id"] for c in make_client().paginate("/customers", "customers")]
        assert len(ids) == len(set(ids)) == 1000
        pages = [r["query"] for r in zoho_sandbox.requests("GET", "/customers")]
        assert [(p["page"], p["per_page"]) for p in pages] == [(str(n), "200") for n in range(1, 6)]

    def test_budget_paces_calls_evenly(self, make_client, zoho_sandbox, slept):
        client = make_client(budget_policy=BudgetPolicy(per_minute=60, headroom=0, jitter=0, margin=0))
        for _ in range(5):
            client.get("/customers")
        assert slept == pytest.approx([1.0] * 4), "one call a second at 60 a minute"

    def test_bulk_callers_leave_room_for_high_priority(self, make_client, zoho_sandbox, slept):
        # No burst in the bulk lane here, so its pace shows call by call (the burst: test_retry_budget_rules).
        client = make_client(budget_policy=BudgetPolicy(per_minute=60, headroom=0, bulk_share=0.5, bulk_burst=0,
                                                        jitter=0, margin=0))
        # A backfill holds at most one turn ahead: it waits for its turn to be one away, then for the turn.
        with client.priority(Priority.BULK):
            client.get("/customers")
            client.get("/customers")
        assert slept == pytest.approx([1.0, 1.0]), "bulk runs at half the budget: one call every 2 s"
        stats = client.budget.stats
        assert (stats.waits, stats.wait_seconds) == (1, pytest.approx(2.0)), "one wait of 2 s, counted once"
        client.get("/customers", priority=Priority.HIGH)
        assert slept[2:] == pytest.approx([1.0]), "the trigger takes the free slot between two bulk calls"
        with client.priority(Priority.BULK):
            client.get("/customers")
        assert slept[3:] == pytest.approx([1.0]), "and the backfill keeps its own pace"

    def test_daily_reserve_is_kept_from_bulk_callers(self, make_client):
        client = make_client(budget_policy=BudgetPolicy(per_minute=10**6, headroom=0, daily_limit=5,
                                                        daily_reserve=2))
        with client.priority(Priority.BULK):
            for _ in range(3):
                client.get("/customers")
            with pytest.raises(ZohoDailyQuotaError, match="kept for live triggers"):
                client.get("/customers")
        client.get("/customers", priority=Priority.HIGH)
        client.get("/customers", priority=Priority.HIGH)
        with pytest.raises(ZohoDailyQuotaError, match="quota is used up"):
            client.get("/customers", priority=Priority.HIGH)

    def test_waiting_for_budget_is_logged_and_counted(self, make_client, caplog):
        client = make_client(budget_policy=BudgetPolicy(per_minute=30, headroom=0, jitter=0, margin=0))
        with caplog.at_level(logging.INFO, logger="zoho_sync.client.budget"):
            client.get("/customers")
            client.get("/customers")
        assert client.budget.stats.waits == 1 and client.budget.stats.wait_seconds == pytest.approx(2.0)
        assert "Waiting 2.0 s for the Zoho rate budget" in caplog.text

    def test_at_headroom_zero_the_pace_keeps_a_margin_in_every_minute(self, make_client, zoho_sandbox, slept):
        """Zoho's whole 100 a minute (headroom 0): turns (60 + 1) / 99 s apart, so 101 calls take over 61 s and
        calls arriving up to a second late still leave a call of Zoho's limit free in any 60 s."""
        zoho_sandbox.configure(per_minute=100)
        client = make_client(budget_policy=BudgetPolicy(per_minute=100, headroom=0, daily_limit=10**9))
        for _ in range(101):
            client.get("/customers", params={"per_page": 1})
        times = [r["time"] for r in zoho_sandbox.requests("GET", "/customers")]
        assert all(r["status"] == 200 for r in zoho_sandbox.requests())
        assert slept == pytest.approx([61 / 99] * 100)
        assert times[-1] - times[0] == pytest.approx(100 * 61 / 99) and times[99] - times[0] > 60

    def test_a_call_late_for_its_turn_gives_it_up_and_asks_for_another(self, make_client, zoho_sandbox, caplog):
        """A process that stalls past its turn (here its sleep overruns by 0.8 s, more than late_limit) does not
        send late, where its call would crowd the calls of the next minute: it gives the turn back and sends in
        the next one. The turn given up counts for nothing: not in the day's count, not in Zoho's window."""
        overruns, slept = [0.0, 0.8], []

        def stalling_sleep(seconds):
            slept.append(seconds)
            zoho_sandbox.advance(seconds + (overruns.pop() if overruns else 0.0))

        policy = BudgetPolicy(per_minute=60, headroom=0, daily_limit=10**9)
        client = make_client(budget_policy=policy, sleep=stalling_sleep)
        client.get("/customers")
        with caplog.at_level(logging.INFO, logger="zoho_sync.client.http"):
            client.get("/customers")
        first, second = (r["time"] for r in zoho_sandbox.requests("GET", "/customers"))
        assert second - first == pytest.approx(2 * policy.interval), "sent in the next turn, not 0.8 s late"
        assert slept == pytest.approx([policy.interval, policy.interval - 0.8])
        assert client.budget.stats.late_turns == 1 and client.budget.stats.calls == 2
        assert client.budget.snapshot().day_count == 2 and client.budget.snapshot().slots == {}
        assert "GET /customers was 0.80 s late for its turn; it gives the turn up" in caplog.text

    def test_a_replay_after_an_expired_token_takes_its_own_turn(self, make_client, zoho_sandbox, slept):
        """Zoho may count the 401 of an expired token like any call (the sandbox does with count_unauthorized):
        the replay waits for a turn of its own, so at 1 call a minute neither the 401 nor the replay is refused."""
        zoho_sandbox.configure(per_minute=1, count_unauthorized=True)
        client = make_client(budget_policy=BudgetPolicy(per_minute=1, headroom=0, daily_limit=10**9))
        client.get("/customers")
        zoho_sandbox.expire_tokens()
        assert client.get("/customers")["code"] == 0
        requests_seen = zoho_sandbox.requests("GET", "/customers")
        assert [r["status"] for r in requests_seen] == [200, 401, 200]
        times = [r["time"] for r in requests_seen]
        assert [times[1] - times[0], times[2] - times[1]] == pytest.approx([61, 61])
        assert client.budget.snapshot().day_count == 3 and client.budget.stats.rate_limited == 0

    def test_reference_data_is_cached_briefly(self, make_client, zoho_sandbox):
        client = make_client(reference_ttl=300)
        client.get_reference("/plans")
        client.get_reference("/plans")
        assert len(zoho_sandbox.requests("GET", "/plans")) == 1
        zoho_sandbox.advance(301)
        client.get_reference("/plans")
        assert len(zoho_sandbox.requests("GET", "/plans")) == 2

    def test_endpoint_names_leave_ids_out(self):
        assert endpoint_name("POST", "/customers/903000000000099/markasinactive") == \
            "POST /customers/{id}/markasinactive"
        assert endpoint_name("GET", "/plans/FIBER-100") == "GET /plans/{id}"
        assert endpoint_name("GET", "/customers?page=2") == "GET /customers"


def test_every_call_carries_the_org_header_and_zoho_scheme(make_client, zoho_sandbox):
    client = make_client()
    client.get("/customers")
    client.post("/customers", json={"display_name": "Header Check", "email": "h@example.com"})
    for request in zoho_sandbox.requests(path="/customers"):
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers["x-com-zoho-subscriptions-organizationid"] == zoho_sandbox.config.organization_id
        assert headers["authorization"].startswith("Zoho-oauthtoken ")
    post = zoho_sandbox.last_request("POST", "/customers")
    assert {k.lower(): v for k, v in post["headers"].items()}["content-type"] == "application/json"
    token_call = zoho_sandbox.last_request("POST", "/oauth/v2/token")
    assert token_call["status"] == 200


class _ForwardingProxy:
    """A plain HTTP proxy on 127.0.0.1 that records each request line and forwards it to where it was going."""

    def __init__(self):
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def _forward(self):
                seen.append(f"{self.command} {self.path}")
                target = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
                upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""), body,
                                 {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"})
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _forward

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_proxy_settings_in_the_environment_are_honoured(make_client, zoho_sandbox, monkeypatch):
    """Read once per host (not on every call), but read: a deployment behind a proxy reaches Zoho through it."""
    proxy = _ForwardingProxy()
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = make_client()
        new_customer(client, "Via Proxy")
        client.get("/customers")
        assert [line.split("?")[0] for line in proxy.seen] == [
            f"POST {zoho_sandbox.accounts_url}/oauth/v2/token", f"POST {zoho_sandbox.base_url}/customers",
            f"GET {zoho_sandbox.base_url}/customers"]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        direct = make_client()
        assert direct.get("/customers")["customers"][0]["display_name"] == "Via Proxy"
        assert len(proxy.seen) == 3, "NO_PROXY sends the calls directly"
    finally:
        proxy.server.shutdown()
