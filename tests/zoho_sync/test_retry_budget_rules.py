"""The pure rules: the backoff schedule (a property test), and the budget's decisions."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoho_sync.client.budget import BudgetPolicy, BudgetState, Priority, decide, take_slot
from zoho_sync.client.errors import ZohoDailyQuotaError, ZohoRateLimitError, ZohoServerError, error_for_response
from zoho_sync.client.retry import RetryPolicy

policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(1, 30),
    base_delay=st.floats(0.01, 5),
    max_delay=st.floats(0.1, 120),
    deadline=st.floats(0, 600),
)


@given(policy=policies, seed=st.integers(0, 2**32), attempt=st.integers(1, 60))
def test_backoff_is_jittered_under_a_capped_exponential(policy, seed, attempt):
    delay = policy.backoff(attempt, random.Random(seed))
    assert 0 <= delay <= min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))


@given(policy=policies, seed=st.integers(0, 2**32))
def test_schedule_respects_attempts_and_deadline(policy, seed):
    waits = policy.schedule(random.Random(seed))
    assert len(waits) <= policy.max_attempts - 1
    assert sum(waits) <= policy.deadline
    assert all(0 <= w <= policy.max_delay for w in waits)


@given(seed=st.integers(0, 2**32))
def test_jitter_spreads_clients_apart(seed):
    rng = random.Random(seed)
    delays = {round(RetryPolicy().backoff(5, rng), 6) for _ in range(20)}
    assert len(delays) > 10, "twenty clients retrying together do not wake up together"


@given(retry_after=st.floats(0, 3600), attempt=st.integers(1, 10))
def test_retry_after_is_a_floor(retry_after, attempt):
    error = ZohoServerError(retry_after=retry_after)
    assert RetryPolicy().wait_for(error, attempt, random.Random(1)) >= retry_after


def test_error_codes_choose_their_class():
    daily = error_for_response(method="GET", path="/x", status_code=429, body={"code": 45, "message": "quota"})
    lockout = error_for_response(method="GET", path="/x", status_code=429, body={"code": 44, "message": "m"})
    assert isinstance(daily, ZohoDailyQuotaError) and not daily.retryable
    assert type(lockout) is ZohoRateLimitError and lockout.is_lockout and lockout.retryable
    gateway = error_for_response(method="GET", path="/x", status_code=502, body="<html>bad gateway</html>")
    assert gateway.kind == "server"


def reserve(state, policy, now, priority=Priority.NORMAL, max_wait=1e9):
    new, decision = decide(state, policy, now=now, priority=priority, max_wait=max_wait)
    return new, decision


@given(calls=st.integers(1, 300), per_minute=st.integers(1, 1000), headroom=st.floats(0, 0.5))
def test_no_sixty_second_window_holds_more_than_the_budget(calls, per_minute, headroom):
    policy = BudgetPolicy(per_minute=per_minute, headroom=headroom, daily_limit=10**9)
    state, sends = BudgetState(), []
    for _ in range(calls):
        state, decision = reserve(state, policy, now=0.0)
        sends.append(decision.wait)
    budget = per_minute * (1 - headroom)
    for i, start in enumerate(sends):
        in_window = sum(1 for t in sends[i:] if t < start + 60 - 1e-6)  # float rounding at the edge
        assert in_window <= math.ceil(budget - 1e-9) <= per_minute, "never more than Zoho's limit in a minute"


def test_lockout_holds_every_priority():
    policy = BudgetPolicy()
    _, decision = reserve(BudgetState(blocked_until=100.0), policy, now=40.0, priority=Priority.HIGH)
    assert decision.wait == 60.0


def test_refusal_reserves_nothing():
    policy = BudgetPolicy(per_minute=1, headroom=0)
    state, _ = reserve(BudgetState(), policy, now=0.0)
    after, decision = reserve(state, policy, now=0.0, max_wait=10)
    assert isinstance(decision.error, ZohoRateLimitError) and after == state


def test_daily_count_restarts_at_utc_midnight():
    policy = BudgetPolicy(daily_limit=1, daily_reserve=0)
    state, _ = reserve(BudgetState(), policy, now=86400 * 10 + 10)
    _, refused = reserve(state, policy, now=86400 * 10 + 20)
    assert isinstance(refused.error, ZohoDailyQuotaError)
    assert refused.error.retry_after == pytest.approx(86400 - 20)
    _, allowed = reserve(state, policy, now=86400 * 11 + 1)
    assert allowed.error is None


def test_concurrency_slots_expire_when_a_holder_dies():
    policy = BudgetPolicy(max_concurrency=2, slot_ttl=30)
    state = BudgetState()
    state, ok1 = take_slot(state, policy, now=0, holder="a")
    state, ok2 = take_slot(state, policy, now=0, holder="b")
    _, ok3 = take_slot(state, policy, now=1, holder="c")
    _, ok4 = take_slot(state, policy, now=31, holder="c")
    assert (ok1, ok2, ok3, ok4) == (True, True, False, True)
