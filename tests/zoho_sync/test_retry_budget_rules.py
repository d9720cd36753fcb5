"""The pure rules: the backoff schedule (a property test), and the budget's decisions."""

from __future__ import annotations

import heapq
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoho_sync.client.budget import (
    BudgetPolicy,
    BudgetState,
    MemoryBudgetBackend,
    Priority,
    RateBudget,
    drop_slot,
    mark_day_full,
    reserve,
    seconds_to_next_utc_midnight,
)
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


_holders = iter(range(10**9))
EXACT = {"jitter": 0, "margin": 0}  # no safety margin: the pace's arithmetic in round numbers (the margin: below)


def take(state, policy, now, priority=Priority.NORMAL, max_wait=1e9, holder=None, is_dead=lambda holder: False):
    """One call's reservation: its turn in the pace, its count and its concurrency slot."""
    holder = holder or f"call-{next(_holders)}"
    return reserve(state, policy, now=now, priority=priority, max_wait=max_wait, holder=holder, is_dead=is_dead)


def assert_no_window_over_budget(sends, per_minute, headroom):
    sends, budget = sorted(sends), per_minute * (1 - headroom)
    for i, start in enumerate(sends):
        in_window = sum(1 for t in sends[i:] if t < start + 60 - 1e-6)  # float rounding at the edge
        assert in_window <= math.ceil(budget - 1e-9) <= per_minute, "never more than Zoho's limit in a minute"


@given(calls=st.integers(1, 300), per_minute=st.integers(1, 1000), headroom=st.floats(0, 0.5))
def test_no_sixty_second_window_holds_more_than_the_budget(calls, per_minute, headroom):
    # Every call asked at once, with a slot for each: only the pace spreads them.
    policy = BudgetPolicy(per_minute=per_minute, headroom=headroom, daily_limit=10**9, max_concurrency=calls)
    state, sends = BudgetState(), []
    for _ in range(calls):
        state, decision = take(state, policy, now=0.0)
        sends.append(decision.wait)
    assert_no_window_over_budget(sends, per_minute, headroom)


@settings(deadline=None)
@given(calls=st.integers(1, 200), callers=st.integers(1, 15), max_concurrency=st.integers(1, 10),
       per_minute=st.integers(1, 1000), headroom=st.floats(0, 0.5),
       durations=st.lists(st.floats(0, 30), min_size=1, max_size=40),
       priorities=st.lists(st.sampled_from(Priority), min_size=1, max_size=15))
def test_callers_sharing_slots_keep_the_pace_and_the_cap(calls, callers, max_concurrency, per_minute, headroom,
                                                          durations, priorities):
    """Callers ask, wait their turn, call for a while and give the slot back; a caller finding every slot taken
    asks again once one is given back. No minute holds more than the budget, no more than max_concurrency calls
    hold slots, and asking while every slot is taken reserves nothing."""
    policy = BudgetPolicy(per_minute=per_minute, headroom=headroom, daily_limit=10**9, bulk_share=0.5,
                          max_concurrency=max_concurrency, slot_ttl=10**6)
    state, sends, parked, events, order = BudgetState(), [], [], [], iter(range(10**9))
    for caller in range(callers):
        heapq.heappush(events, (0.0, next(order), "ask", caller))
    while events and len(sends) < calls:
        now, _, kind, what = heapq.heappop(events)
        if kind == "done":
            state, _ = drop_slot(state, holder=what)
            for caller in parked:
                heapq.heappush(events, (now, next(order), "ask", caller))
            parked.clear()
            continue
        holder = f"call-{len(sends)}"
        new, decision = take(state, policy, now, priority=priorities[what % len(priorities)], holder=holder)
        if decision.busy and decision.retry_in:  # a backfill's turn too far ahead: asks again later
            assert new == state, "a call asked to come back later reserves nothing"
            heapq.heappush(events, (now + decision.retry_in, next(order), "ask", what))
            continue
        if decision.busy:
            assert new == state, "a call that gets no slot reserves nothing"
            parked.append(what)
            continue
        state = new
        assert decision.error is None and len(state.slots) <= max_concurrency
        send_at = now + decision.wait
        sends.append(send_at)
        finish = send_at + durations[len(sends) % len(durations)]
        heapq.heappush(events, (finish, next(order), "done", holder))
        heapq.heappush(events, (finish, next(order), "ask", what))
    assert len(sends) == calls
    assert_no_window_over_budget(sends, per_minute, headroom)


def refused_by_a_sliding_window(arrivals: list[float], per_minute: int) -> int:
    """The calls Zoho at its strictest refuses: those with per_minute calls already in the 60 s before them."""
    arrivals, refused, first = sorted(arrivals), 0, 0
    for i, t in enumerate(arrivals):
        while arrivals[first] <= t - 60 + 1e-6:  # float rounding at the edge
            first += 1
        refused += i - first >= per_minute
    return refused


@settings(deadline=None)
@given(calls=st.integers(1, 400), per_minute=st.integers(1, 1000), headroom=st.floats(0, 0.5),
       jitter=st.floats(0, 3), margin=st.integers(0, 3), call_seconds=st.floats(0, 2),
       delays=st.lists(st.floats(0, 1), min_size=1, max_size=50), callers=st.integers(1, 10))
def test_no_sixty_second_window_of_arrivals_is_over_the_limit_under_random_delays(
        calls, per_minute, headroom, jitter, margin, call_seconds, delays, callers):
    """Zoho counts a call when it arrives, which is a little after its turn (a late wake-up, the network, another
    machine's clock). Whatever the headroom (0 included), calls arriving up to `jitter` after their turns never put
    more than the limit minus the margin in any 60 s, so Zoho's sliding window never refuses one."""
    policy = BudgetPolicy(per_minute=per_minute, headroom=headroom, daily_limit=10**9, jitter=jitter, margin=margin,
                          max_concurrency=callers)
    state, arrivals, events, order = BudgetState(), [], [], iter(range(10**9))
    for caller in range(callers):
        heapq.heappush(events, (0.0, next(order), caller))
    while len(arrivals) < calls:
        now, _, caller = heapq.heappop(events)
        state, decision = take(state, policy, now, holder=f"caller-{caller}")
        assert decision.error is None and not decision.busy
        state, _ = drop_slot(state, holder=f"caller-{caller}")
        arrival = decision.at + delays[len(arrivals) % len(delays)] * jitter
        arrivals.append(arrival)
        heapq.heappush(events, (arrival + call_seconds, next(order), caller))
    assert most_in_a_minute(arrivals) <= max(1, per_minute - margin)
    assert refused_by_a_sliding_window(arrivals, per_minute) == 0


def test_at_headroom_zero_a_call_late_by_milliseconds_cost_a_lock_out_without_the_margin():
    """The cause of the 429 at headroom 0: turns 0.6 s apart at 100 a minute put calls 0 and 100 exactly 60 s
    apart, so the first arriving 10 ms late and the 101st on time are 101 calls in 60 s. The margin spaces turns
    (60 + 1) / 99 s apart: 97 a minute, and up to a second of lateness is absorbed."""
    delays = [0.01] + [0.0] * 100

    def arrivals(policy):
        state, times = BudgetState(), []
        for delay in delays:
            state, decision = take(state, policy, now=0.0)
            state, _ = drop_slot(state, holder=next(iter(state.slots)))
            times.append(decision.at + delay)
        return times

    exact = BudgetPolicy(per_minute=100, headroom=0, jitter=0, margin=0, daily_limit=10**9, max_concurrency=200)
    assert exact.interval == pytest.approx(0.6) and refused_by_a_sliding_window(arrivals(exact), 100) == 1
    safe = BudgetPolicy(per_minute=100, headroom=0, daily_limit=10**9, max_concurrency=200)
    assert safe.interval == pytest.approx(61 / 99) and 60 / safe.interval >= 97
    assert refused_by_a_sliding_window(arrivals(safe), 100) == 0
    late = [t + (1.0 if i % 2 == 0 else 0.0) for i, t in enumerate(arrivals(safe))]  # every other call 1 s late
    assert refused_by_a_sliding_window(late, 100) == 0


def test_the_margin_changes_nothing_where_the_headroom_already_keeps_one():
    """10% headroom (the default) and 5% (the scale-out figures in the README) pace as before."""
    assert BudgetPolicy(per_minute=100, headroom=0.1).interval == pytest.approx(60 / 90)
    assert BudgetPolicy(per_minute=100, headroom=0.05).interval == pytest.approx(60 / 95)
    assert BudgetPolicy(per_minute=60, headroom=0).interval == pytest.approx(61 / 59)
    assert BudgetPolicy(per_minute=1, headroom=0).interval == pytest.approx(61), "one call in any 61 s"


def simulate(policy: BudgetPolicy, *, seconds: float, bulk_workers: int, trigger_every: float | None,
             call_seconds: float = 0.3) -> tuple[list[float], list[float], list[float]]:
    """Backfill workers asking again as soon as their call ends, and triggers arriving every `trigger_every` s,
    over `seconds` of simulated time: (bulk send times, trigger send times, trigger waits)."""
    state, events, order = BudgetState(), [], iter(range(10**9))
    for worker in range(bulk_workers):
        heapq.heappush(events, (0.0, next(order), Priority.BULK, worker))
    if trigger_every:
        for n in range(1, int(seconds / trigger_every)):
            heapq.heappush(events, (n * trigger_every, next(order), Priority.HIGH, -n))
    bulk, triggers, waits = [], [], []
    while events:
        now, _, priority, who = heapq.heappop(events)
        if now >= seconds:
            break
        state, decision = take(state, policy, now, priority=priority, holder=f"{who}-{now}")
        assert decision.error is None
        if decision.busy:
            assert priority == Priority.BULK and decision.retry_in > 0
            heapq.heappush(events, (now + decision.retry_in, next(order), priority, who))
            continue
        state, _ = drop_slot(state, holder=f"{who}-{now}")
        sent = now + decision.wait
        if priority == Priority.BULK:
            bulk.append(sent)
            heapq.heappush(events, (sent + call_seconds, next(order), priority, who))
        else:
            triggers.append(sent)
            waits.append(decision.wait)
    return bulk, triggers, waits


def most_in_a_minute(sends: list[float]) -> int:
    sends = sorted(sends)
    return max((sum(1 for t in sends[i:] if t < start + 60 - 1e-6) for i, start in enumerate(sends)), default=0)


@given(share=st.floats(0.1, 1.0), burst=st.integers(0, 5), workers=st.integers(1, 8))
@settings(deadline=None, max_examples=50)
def test_backfills_keep_to_their_share_give_or_take_their_burst(share, burst, workers):
    policy = BudgetPolicy(per_minute=100, headroom=0.1, daily_limit=10**9, bulk_share=share, bulk_burst=burst,
                          max_concurrency=100)
    bulk, _, _ = simulate(policy, seconds=300, bulk_workers=workers, trigger_every=None)
    assert most_in_a_minute(bulk) <= math.ceil(90 * share - 1e-9) + burst + 1
    assert_no_window_over_budget(bulk, 100, 0.1)


def test_a_trigger_between_backfill_calls_costs_the_backfill_its_turn_only():
    """Zoho's 100 a minute, 10% headroom: 90 for everyone, 72 for backfills. Four backfill workers and a trigger
    every 4 s (15 a minute, so 72 + 15 fit in 90): the backfill keeps its 72 a minute and a trigger waits at most
    about two turns (the backfill holds one turn ahead at most). Without the bulk lane's burst every trigger would
    shift the backfill's pace, costing it a sixth."""
    policy = BudgetPolicy(per_minute=100, headroom=0.1, daily_limit=10**9, bulk_share=0.8, max_concurrency=100)
    bulk, triggers, waits = simulate(policy, seconds=600, bulk_workers=4, trigger_every=4.0)
    steady = [t for t in bulk if 60 <= t < 600]
    assert len(steady) / 9 >= 0.97 * 72  # per minute, over the nine minutes after the first
    assert max(waits) <= 2 * policy.interval + 1e-9 and len(triggers) == 149
    assert_no_window_over_budget(bulk + triggers, 100, 0.1)

    strict = BudgetPolicy(per_minute=100, headroom=0.1, daily_limit=10**9, bulk_share=0.8, bulk_burst=0,
                          max_concurrency=100)
    bulk_strict, _, _ = simulate(strict, seconds=600, bulk_workers=4, trigger_every=4.0)
    assert len([t for t in bulk_strict if 60 <= t < 600]) / 9 < 0.9 * 72


def test_lockout_holds_every_priority():
    policy = BudgetPolicy()
    _, decision = take(BudgetState(blocked_until=100.0), policy, now=40.0, priority=Priority.HIGH)
    assert decision.wait == 60.0


def test_refusal_reserves_nothing():
    policy = BudgetPolicy(per_minute=1, headroom=0)
    state, _ = take(BudgetState(), policy, now=0.0)
    after, decision = take(state, policy, now=0.0, max_wait=10)
    assert isinstance(decision.error, ZohoRateLimitError) and after == state


def test_no_free_slot_reserves_nothing():
    policy = BudgetPolicy(per_minute=60, headroom=0, max_concurrency=1, **EXACT)
    state, first = take(BudgetState(), policy, now=0.0, holder="a")
    after, decision = take(state, policy, now=0.5)
    assert first.wait == 0 and decision.busy and decision.error is None
    assert after == state, "no turn in the pace and no daily count for a call that cannot be sent"
    state, _ = drop_slot(state, holder="a")
    _, decision = take(state, policy, now=0.5)
    assert decision.wait == pytest.approx(0.5), "the next turn, from when a slot is free"


def test_slot_lease_runs_from_the_send_time():
    policy = BudgetPolicy(per_minute=60, headroom=0, slot_ttl=30, **EXACT)
    state, _ = take(BudgetState(), policy, now=0.0, holder="a")
    state, decision = take(state, policy, now=0.0, holder="b")
    assert decision.wait == 1.0 and state.slots == {"a": 30.0, "b": 31.0}


def test_daily_count_restarts_at_utc_midnight():
    policy = BudgetPolicy(daily_limit=1, daily_reserve=0)
    state, _ = take(BudgetState(), policy, now=86400 * 10 + 10)
    _, refused = take(state, policy, now=86400 * 10 + 20)
    assert isinstance(refused.error, ZohoDailyQuotaError)
    assert refused.error.retry_after == pytest.approx(86400 - 20)
    _, allowed = take(state, policy, now=86400 * 11 + 1)
    assert allowed.error is None


def test_zoho_declaring_the_day_full_keeps_the_real_count():
    policy = BudgetPolicy(daily_limit=1000)
    state, day = BudgetState(), 86400 * 10
    for second in range(62):
        state, _ = take(state, policy, now=day + second)
        state, _ = drop_slot(state, holder=next(iter(state.slots)))
    state, resume_in = mark_day_full(state, now=day + 3600)
    assert (state.day_count, state.day_full) == (62, True) and resume_in == pytest.approx(86400 - 3600)
    after, refused = take(state, policy, now=day + 7200, priority=Priority.HIGH)
    assert isinstance(refused.error, ZohoDailyQuotaError) and after == state
    assert refused.error.retry_after == pytest.approx(seconds_to_next_utc_midnight(day + 7200))
    assert "Zoho answered that today's API quota is used up (62 calls made from here today" in str(refused.error)
    assert "of a configured 1000" in str(refused.error) and "1000 of 1000" not in str(refused.error)
    state, allowed = take(state, policy, now=day + 86400 + 1)
    assert allowed.error is None and (state.day_count, state.day_full) == (1, False), "a new UTC day, a new quota"


def test_a_state_written_before_day_full_existed_still_loads():
    old = {"tat": 1.0, "bulk_tat": 0.0, "blocked_until": 0.0, "day": "2026-12-01", "day_count": 5, "slots": {}}
    assert BudgetState.from_dict(old).day_full is False
    assert BudgetState.from_dict({**old, "added_later": 1}).day_count == 5


def test_concurrency_slots_expire_when_a_holder_dies():
    policy = BudgetPolicy(per_minute=10**6, headroom=0, max_concurrency=2, slot_ttl=30)
    state = BudgetState()
    state, ok1 = take(state, policy, now=0, holder="a")
    state, ok2 = take(state, policy, now=0, holder="b")
    _, no3 = take(state, policy, now=1, holder="c")
    _, ok4 = take(state, policy, now=31, holder="c")
    _, ok5 = take(state, policy, now=1, holder="c", is_dead=lambda holder: holder == "a")
    assert (ok1.busy, ok2.busy, no3.busy, ok4.busy, ok5.busy) == (False, False, True, False, False)


class FakeTime:
    def __init__(self):
        self.now, self.slept = 1_000_000.0, []

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_acquire_waits_for_a_slot_then_gives_up():
    clock, backend = FakeTime(), MemoryBudgetBackend()
    policy = BudgetPolicy(per_minute=10**6, headroom=0, max_concurrency=1)
    first, second = (RateBudget(key="org:1", policy=policy, backend=backend, clock=lambda: clock.now,
                                sleep=clock.sleep) for _ in range(2))
    holder = first.acquire()
    with pytest.raises(ZohoRateLimitError, match="No free concurrency slot within 1 s"):
        second.acquire(max_wait=1.0)
    assert second.stats.slot_waits > 1 and set(clock.slept) == {0.05}
    assert second.snapshot().day_count == 1, "the waiting caller counted no call"
    first.release(holder)
    second.release(second.acquire(max_wait=1.0))
    assert second.snapshot().slots == {} and second.snapshot().day_count == 2


def test_an_interrupted_wait_gives_the_slot_back():
    clock, backend = FakeTime(), MemoryBudgetBackend()
    budget = RateBudget(key="org:1", policy=BudgetPolicy(per_minute=60, headroom=0), backend=backend,
                        clock=lambda: clock.now, sleep=clock.sleep)
    budget.release(budget.acquire())

    def interrupted(seconds):
        raise KeyboardInterrupt

    budget.sleep = interrupted
    with pytest.raises(KeyboardInterrupt):
        budget.acquire()
    assert budget.snapshot().slots == {}


class CountingBackend(MemoryBudgetBackend):
    """Counts the writes a budget makes (each one a compare-and-set on the shared backends)."""

    def __init__(self):
        super().__init__()
        self.writes = 0

    def update(self, key, change):
        self.writes += 1
        return super().update(key, change)


def test_a_sequential_caller_keeps_its_slot_between_calls_and_writes_once_a_call():
    clock, backend = FakeTime(), CountingBackend()
    policy = BudgetPolicy(per_minute=10**6, headroom=0, max_concurrency=2)
    budget, other = (RateBudget(key="org:1", policy=policy, backend=backend, clock=lambda: clock.now,
                                sleep=clock.sleep) for _ in range(2))
    with budget.keeping_slot():
        for _ in range(5):
            holder = budget.acquire()
            assert list(budget.snapshot().slots) == [holder], "never two slots for one caller"
            budget.release(holder, endpoint="GET /customers")
            assert list(budget.snapshot().slots) == [holder], "kept between calls"
        writes = backend.writes - 10  # the snapshots read through update too
        assert writes == 5, "one write a call: the next reservation gave the kept slot back"
        # Another caller still gets the other slot; with both taken it would wait, never share.
        other.release(other.acquire(max_wait=1))
    assert budget.snapshot().slots == {}, "given back when the block ends"
    assert budget.snapshot().day_count == 6


def test_a_kept_slot_is_given_back_while_the_caller_waits_for_a_slot_or_is_refused():
    clock, backend = FakeTime(), MemoryBudgetBackend()
    policy = BudgetPolicy(per_minute=10**6, headroom=0, max_concurrency=2, daily_limit=4, daily_reserve=0)
    budget = RateBudget(key="org:1", policy=policy, backend=backend, clock=lambda: clock.now, sleep=clock.sleep)
    with budget.keeping_slot():
        budget.release(budget.acquire())
        kept = list(budget.snapshot().slots)
        # Two other processes hold both slots (as when one came back from a pause): the caller must wait, and
        # it does not keep its own slot while it waits.
        others = {"other-1": clock.now + 60, "other-2": clock.now + 60}
        backend._states["org:1"].slots.update(others)
        with pytest.raises(ZohoRateLimitError, match="No free concurrency slot"):
            budget.acquire(max_wait=0.2)
        assert set(budget.snapshot().slots) == set(others) and kept[0] not in others
        backend._states["org:1"].slots.clear()
        budget.release(budget.acquire())
        budget.release(budget.acquire())
        budget.release(budget.acquire())
        assert len(budget.snapshot().slots) == 1
        # Refused (the day is full): the kept slot is given back all the same.
        with pytest.raises(ZohoDailyQuotaError):
            budget.acquire()
        assert budget.snapshot().slots == {}


def test_a_caller_gives_its_kept_slot_back_before_it_pauses():
    clock, backend = FakeTime(), MemoryBudgetBackend()
    budget = RateBudget(key="org:1", policy=BudgetPolicy(per_minute=10**6, headroom=0), backend=backend,
                        clock=lambda: clock.now, sleep=clock.sleep)
    with budget.keeping_slot():
        budget.release(budget.acquire())
        assert len(budget.snapshot().slots) == 1
        budget.give_back_slot()
        assert budget.snapshot().slots == {}
        budget.give_back_slot()  # nothing kept: nothing written
