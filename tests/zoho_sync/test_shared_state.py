"""The token cache and rate budget shared through the database (and Redis): threads and processes agree."""

from __future__ import annotations

import multiprocessing
import os
import threading
from datetime import UTC, datetime

import pytest
import redis
from django.db import DatabaseError, connection, connections
from django.test.utils import CaptureQueriesContext

from tests.zoho_sync.conftest import token_requests
from zoho_sync.client.budget import BudgetPolicy, BudgetState, Priority, RateBudget
from zoho_sync.conf import get_zoho_settings
from zoho_sync.models import ApiUsage, SharedState
from zoho_sync.shared_state import (
    BUDGET_CODEC,
    TOKEN_CODEC,
    USAGE,
    DatabaseStateBackend,
    RedisStateBackend,
    UsageBuffer,
)
from zoho_sync.zoho import client_build, get_zoho_client

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def usage_now() -> dict[str, int]:
    """ApiUsage by endpoint, after writing what this process counted (earlier tests' counts included)."""
    USAGE.flush()
    return {u.endpoint: u.calls for u in ApiUsage.objects.all()}



def run_threads(n, target):
    errors, barrier = [], threading.Barrier(n)

    def work():
        barrier.wait()
        try:
            target()
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def data_statements(queries) -> list[str]:
    """The statements that read or write rows (transaction control and session settings left out)."""
    kinds = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    return [k for k in kinds if k not in ("BEGIN", "COMMIT", "SET", "SAVEPOINT", "RELEASE")]


@pytest.mark.django_db(transaction=True)
class TestDatabaseBackend:
    def test_eight_threads_with_their_own_clients_mint_once(self, zoho_settings, zoho_sandbox):
        conf = get_zoho_settings()
        errors = run_threads(8, lambda: client_build(conf).get("/customers"))
        assert errors == [] and token_requests(zoho_sandbox) == 1

    def test_four_processes_mint_once(self, zoho_settings, zoho_sandbox):
        db = connection.settings_dict
        if connection.vendor == "sqlite":
            url = f"sqlite:///{db['NAME']}"
        else:
            url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        env = {
            "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings",
            **{name: str(getattr(zoho_settings, name)) for name in (
                "ZOHO_API_BASE_URL", "ZOHO_ACCOUNTS_URL", "ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET",
                "ZOHO_REFRESH_TOKEN", "ZOHO_ORGANIZATION_ID", "ZOHO_RATE_LIMIT_PER_MINUTE", "REDIS_URL")},
        }
        from tests.zoho_sync.workers import fetch_customers

        ctx = multiprocessing.get_context("spawn")
        barrier, results = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=fetch_customers, args=(env, barrier, results)) for _ in range(4)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        assert [o[0] for o in outcomes] == ["ok"] * 4, outcomes
        assert sum(o[1] for o in outcomes) == 1 and token_requests(zoho_sandbox) == 1

    def test_access_token_is_encrypted_at_rest(self, zoho_settings):
        client = get_zoho_client()
        token = client.tokens.token()
        stored = "".join(SharedState.objects.values_list("data", flat=True))
        assert token not in stored and "access_token" in stored
        assert client_build(get_zoho_settings()).tokens.token() == token, "another process decrypts and reuses it"

    def test_a_changed_secret_key_loses_the_token_but_not_the_service(self, zoho_settings, zoho_sandbox):
        get_zoho_client().tokens.token()
        zoho_settings.SECRET_KEY = "rotated-" + "x" * 40
        assert client_build(get_zoho_settings()).get("/customers")["code"] == 0
        assert token_requests(zoho_sandbox) == 2

    def test_budget_is_shared_between_clients(self, zoho_settings):
        backend = DatabaseStateBackend("budget", BUDGET_CODEC)
        policy = BudgetPolicy(per_minute=60, headroom=0, jitter=0, margin=0)  # round waits: no safety margin
        now = [1_000_000.0]
        waits = []
        budgets = [RateBudget(key="org:1", policy=policy, backend=backend, clock=lambda: now[0],
                              sleep=waits.append) for _ in range(3)]
        for budget in budgets * 2:
            budget.release(budget.acquire(priority=Priority.NORMAL))
        assert waits == pytest.approx([1, 2, 3, 4, 5]), "six calls from three budgets share one pace"

    def test_compare_and_set_loses_no_update_under_contention(self):
        backend = DatabaseStateBackend("budget", BUDGET_CODEC)

        def bump():
            for _ in range(25):
                backend.update("org:x", lambda s: (BudgetState(**{**s.as_dict(), "day_count": s.day_count + 1}), None))

        assert run_threads(4, bump) == []
        assert backend.update("org:x", lambda s: (s, s.day_count)) == 100

    def test_usage_is_counted_per_day_and_endpoint(self, zoho_settings):
        before = usage_now()
        client = get_zoho_client()
        client.get("/customers")
        client.get("/customers", params={"page": 2})
        client.get("/plans")
        client.budget.flush_usage()
        usage = {u.endpoint: u.calls - before.get(u.endpoint, 0) for u in ApiUsage.objects.all()}
        assert {k: n for k, n in usage.items() if n} == {"GET /customers": 2, "GET /plans": 1}
        assert ApiUsage.objects.values_list("organization_id", flat=True).distinct().get() == "10234695"

    def test_a_call_costs_two_statements_and_usage_is_written_in_batches(self, zoho_settings):
        client = get_zoho_client()
        client.get("/customers")  # the token, the budget row and the usage rows exist from here
        client.budget.flush_usage()
        with CaptureQueriesContext(connection) as queries:
            for _ in range(20):
                client.get("/customers")
        statements = data_statements(queries)
        assert statements == ["UPDATE"] * 40, "one compare-and-set to reserve, one to release; usage in memory"
        if connection.vendor == "postgresql":  # and neither waits for the disk (zoho_sync/commits.py)
            assert sum("synchronous_commit TO OFF" in q["sql"] for q in queries.captured_queries) == 40
        with CaptureQueriesContext(connection) as queries:
            client.budget.flush_usage()
        assert len(queries.captured_queries) <= 3, "one UPDATE per day and endpoint (and a savepoint or two)"
        assert ApiUsage.objects.get(endpoint="GET /customers").calls >= 21

    def test_another_process_writing_in_between_costs_one_more_read(self, zoho_settings):
        policy = BudgetPolicy(per_minute=60, headroom=0, jitter=0, margin=0)  # round waits: no safety margin
        now, waits = [1_000_000.0], []
        mine, theirs = (RateBudget(key="org:9", policy=policy, backend=DatabaseStateBackend(
            "budget", BUDGET_CODEC, remember=True), clock=lambda: now[0], sleep=waits.append) for _ in range(2))
        mine.release(mine.acquire())
        theirs.release(theirs.acquire())  # my remembered version is stale now
        with CaptureQueriesContext(connection) as queries:
            holder = mine.acquire()
        assert data_statements(queries) == ["UPDATE", "SELECT", "UPDATE"]
        assert waits == [1, 2] and len(mine.snapshot().slots) == 1 and mine.snapshot().day_count == 3
        mine.release(holder)
        assert theirs.snapshot().slots == {}, "the other process sees the slot given back"


class TestUsageBuffer:
    def calls(self) -> dict[str, int]:
        return {u.endpoint: u.calls for u in ApiUsage.objects.all()}

    @pytest.mark.django_db
    def test_written_every_max_calls_with_the_same_totals(self):
        buffer = UsageBuffer(max_calls=3, max_seconds=10**6)
        for endpoint in ("GET /a", "GET /b", "GET /a", "GET /a"):
            buffer.add(organization_id="1", endpoint=endpoint, day="2026-12-01")
        assert self.calls() == {"GET /a": 2, "GET /b": 1} and buffer.waiting == 1
        buffer.flush()
        assert self.calls() == {"GET /a": 3, "GET /b": 1} and buffer.waiting == 0
        assert {str(d) for d in ApiUsage.objects.values_list("day", flat=True)} == {"2026-12-01"}

    @pytest.mark.django_db
    def test_written_when_the_oldest_count_is_max_seconds_old(self):
        now = [0.0]
        buffer = UsageBuffer(max_calls=10**6, max_seconds=5, clock=lambda: now[0])
        buffer.add(organization_id="1", endpoint="GET /a", day="2026-12-01")
        now[0] = 4.9
        buffer.add(organization_id="1", endpoint="GET /a", day="2026-12-01")
        assert self.calls() == {}
        now[0] = 5.0
        buffer.add(organization_id="1", endpoint="GET /a", day="2026-12-01")
        assert self.calls() == {"GET /a": 3}

    @pytest.mark.django_db
    def test_counts_survive_a_failed_write(self, monkeypatch):
        buffer = UsageBuffer(max_calls=2, max_seconds=10**6)
        buffer.add(organization_id="1", endpoint="GET /a", day="2026-12-01")

        def broken(**kwargs):
            raise DatabaseError("database is locked")

        monkeypatch.setattr("zoho_sync.shared_state.usage_record", broken)
        buffer.add(organization_id="1", endpoint="GET /a", day="2026-12-01")  # logged, not raised: the call went
        with pytest.raises(DatabaseError):
            buffer.flush()
        assert buffer.waiting == 2
        monkeypatch.undo()
        buffer.flush()
        assert self.calls() == {"GET /a": 2}

    @pytest.mark.django_db
    def test_counts_made_against_another_database_are_not_written_here(self):
        buffer = UsageBuffer(max_calls=10**6)
        real = connection.settings_dict["NAME"]
        connection.settings_dict["NAME"] = "some-other-database"
        try:
            buffer.add(organization_id="1", endpoint="GET /a", day="2026-12-01")
        finally:
            connection.settings_dict["NAME"] = real
        buffer.flush()
        assert self.calls() == {} and buffer.waiting == 0

    @pytest.mark.django_db(transaction=True)
    def test_the_day_of_a_call_is_its_utc_day(self, zoho_settings):
        before = usage_now()
        client = get_zoho_client()
        client.get("/plans")
        client.budget.flush_usage()
        today = datetime.now(UTC).date()
        row = ApiUsage.objects.get(endpoint="GET /plans", day=today)
        assert row.calls - before.get("GET /plans", 0) == 1


@pytest.fixture
def redis_url():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
    except redis.RedisError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (outside CI only)")
    return REDIS_URL


@pytest.mark.django_db(transaction=True)
class TestRedisBackend:
    def test_eight_threads_mint_once_through_redis(self, zoho_settings, zoho_sandbox, redis_url):
        zoho_settings.REDIS_URL = redis_url
        conf = get_zoho_settings()
        assert run_threads(8, lambda: client_build(conf).get("/customers")) == []
        assert token_requests(zoho_sandbox) == 1
        assert not SharedState.objects.exists(), "nothing went through the database"

    def test_budget_and_lockout_are_shared_through_redis(self, redis_url):
        backend = RedisStateBackend(redis_url, "budget", BUDGET_CODEC)
        now, waits = [2_000_000.0], []
        first, second = (RateBudget(key="org:2", policy=BudgetPolicy(per_minute=60, headroom=0),
                                    backend=RedisStateBackend(redis_url, "budget", BUDGET_CODEC),
                                    clock=lambda: now[0], sleep=waits.append) for _ in range(2))
        first.block(60)
        second.release(second.acquire())
        assert waits == [60]
        assert backend.update("org:2", lambda s: (s, s.day_count)) == 1

    def test_token_is_encrypted_in_redis(self, redis_url, zoho_settings):
        store = RedisStateBackend(redis_url, "token", TOKEN_CODEC)
        store.update("k", lambda s: (type(s)(access_token="plain-token-value-123", expires_at=1.0), None))
        raw = redis.Redis.from_url(redis_url).get("zoho_sync:token:k")
        assert b"plain-token-value-123" not in raw
        assert store.update("k", lambda s: (s, s.access_token)) == "plain-token-value-123"
