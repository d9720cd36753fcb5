"""The rate budget every process shares: per-minute pacing, the daily quota, a concurrency cap, priorities.

The rules live here once, as a pure function over a small state record (`reserve`: pacing, the daily count and a
concurrency slot, all or nothing); a backend only has to apply it atomically, in one compare-and-set. Memory (one
process) is here; the database and Redis backends, shared by every process, live in zoho_sync/shared_state.py.
Pacing is GCRA with no burst: calls are spread evenly at the budgeted rate, so no 60-second window ever holds more
than the budget, whatever window Zoho counts in. Zoho counts when a call arrives, not when its turn was: a call
reaches Zoho a little after its turn (a late wake-up, the network, another machine's clock), and at the exact pace of
Zoho's limit (headroom 0) a call that comes late and one that comes on time a minute later put limit + 1 calls in
one 60-second window, which costs a lock-out. So the pace also keeps a safety margin at any headroom: turns are far
enough apart that calls arriving up to `jitter` seconds after their turns still leave `margin` calls free in every
60-second window, and a call that cannot be sent within `late_limit` of its turn gives the turn up and asks for
another (http.py). BULK callers (backfills) have a second, slower lane on top: their share of the budget, as an
average with a small burst tolerance (`bulk_burst` calls), so a turn a live trigger takes between two bulk calls
delays the backfill only by that turn, which it makes up later, instead of shifting its whole pace; the first lane
stays strict for everyone.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from zoho_sync.client.errors import ZohoDailyQuotaError, ZohoRateLimitError

logger = logging.getLogger(__name__)
WINDOW = 60.0  # seconds: Zoho's per-minute limit holds in any window this long (the strictest reading)


class Priority(enum.IntEnum):
    HIGH = 0  # live triggers: a new customer must not wait behind a backfill
    NORMAL = 1  # admin actions, retries, checks
    BULK = 2  # backfills: limited to a share of the per-minute budget, and never the daily reserve


@dataclass(frozen=True)
class BudgetPolicy:
    per_minute: int = 100  # Zoho's limit per organization (§12.1)
    headroom: float = 0.1  # share of the limit never used (the old integration ran 120 of 150)
    daily_limit: int = 1000  # calls per UTC day (plan-dependent)
    daily_reserve: int = 100  # calls a BULK caller may never take: kept for live triggers
    bulk_share: float = 0.8  # share of the per-minute budget BULK callers may use
    bulk_burst: int = 2  # calls a BULK caller may run ahead of its share's even pace, to make up turns triggers took
    max_concurrency: int = 10  # in-flight calls per organization
    slot_ttl: float = 120.0  # a crashed holder's concurrency slot frees itself after this
    # The safety margin, kept at any headroom (0 included): calls reaching Zoho up to `jitter` seconds after their
    # turns still leave `margin` calls of Zoho's limit free in every 60-second window. `late_limit` (at most
    # `jitter`) is how late the client itself may send; the rest of `jitter` is for the network and for the clocks
    # of several machines sharing the budget.
    jitter: float = 1.0
    margin: int = 1
    late_limit: float = 0.5

    @property
    def interval(self) -> float:
        """Seconds between two turns: the budgeted rate's, or longer where the safety margin needs it.

        Turns `interval` apart, with arrivals up to `jitter` late, put at most (60 + jitter) / interval calls in any
        60 s: at most `per_minute - margin`.
        """
        budgeted = WINDOW / max(1e-9, self.per_minute * (1 - self.headroom))
        safe = (WINDOW + self.jitter) / max(1, self.per_minute - self.margin)
        return max(budgeted, safe)

    @property
    def bulk_interval(self) -> float:
        return self.interval / max(1e-9, self.bulk_share)


@dataclass
class BudgetState:
    tat: float = 0.0  # theoretical arrival time of the next call (GCRA), epoch seconds
    bulk_tat: float = 0.0
    blocked_until: float = 0.0  # after a code-44 lock-out every process waits until then
    day: str = ""  # the UTC day day_count and day_full are about
    day_count: int = 0  # calls reserved from here this UTC day (the calls actually made)
    day_full: bool = False  # Zoho answered code 45: its quota is used up, whatever day_count says
    slots: dict[str, float] = field(default_factory=dict)  # holder -> lease expiry

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> BudgetState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})  # a field added later is ignored


@dataclass(frozen=True)
class Decision:
    wait: float = 0.0  # sleep this long, then send (the call and its concurrency slot are reserved)
    error: Exception | None = None  # or raise this (nothing reserved)
    busy: bool = False  # or every concurrency slot is taken: nothing reserved, ask again shortly
    retry_in: float = 0.0  # with busy: a BULK caller's turn is too far ahead to hold; ask again in this many s
    at: float = 0.0  # with wait: the turn reserved (now + wait); a call sent much later gives it up


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def seconds_to_next_utc_midnight(now: float) -> float:
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=1)).timestamp() - now


def decide(state: BudgetState, policy: BudgetPolicy, *, now: float, priority: Priority, max_wait: float):
    """Reserve one call's pacing and daily count in `state` (returning the new state), or refuse it.

    Pure: no clock, no I/O. This is the pacing half of `reserve`, which also takes the concurrency slot; callers
    use `reserve`, so a call never holds a turn it cannot use.
    """
    new = replace(state, slots=dict(state.slots))
    if new.day != utc_day(now):
        new.day, new.day_count, new.day_full = utc_day(now), 0, False
    if new.day_full:
        message = (f"Zoho answered that today's API quota is used up ({new.day_count} calls made from here today "
                   f"(UTC), of a configured {policy.daily_limit}); calls resume after 00:00 UTC.")
        return state, Decision(error=ZohoDailyQuotaError(message, retry_after=seconds_to_next_utc_midnight(now)))
    limit = policy.daily_limit - (policy.daily_reserve if priority == Priority.BULK else 0)
    if new.day_count >= limit:
        bulk = priority == Priority.BULK
        reason = "the rest is kept for live triggers" if bulk else "the configured quota is used up"
        message = (f"{new.day_count} of {policy.daily_limit} API calls used today (UTC); {reason}. "
                   "Calls resume after 00:00 UTC.")
        return state, Decision(error=ZohoDailyQuotaError(message, retry_after=seconds_to_next_utc_midnight(now)))
    send_at = max(now, new.blocked_until, new.tat)
    if priority == Priority.BULK:
        send_at = max(send_at, new.bulk_tat - policy.bulk_burst * policy.bulk_interval)
        if send_at - now > policy.interval + 1e-3:  # a millisecond's tolerance: no re-asking for float dust
            # A backfill holds at most one turn ahead of now: turns reserved further out would all come before a
            # trigger that asks later. It asks again when its turn is one away (nothing reserved meanwhile).
            return state, Decision(busy=True, retry_in=send_at - now - policy.interval)
    wait = send_at - now
    if wait > max_wait:
        return state, Decision(error=ZohoRateLimitError(
            f"The rate budget has no free call within {max_wait:.0f} s (next in {wait:.0f} s).", retry_after=wait))
    new.tat = send_at + policy.interval
    if priority == Priority.BULK:
        # GCRA with tolerance: the lane's clock runs on at the share's pace from where it was (or from now, when
        # the lane sat idle), so a run of calls faster than the share ends after bulk_burst calls.
        new.bulk_tat = max(new.bulk_tat, send_at) + policy.bulk_interval
    new.day_count += 1
    return new, Decision(wait=wait, at=send_at)


def live_slots(state: BudgetState, *, now: float, is_dead: Callable[[str], bool] = lambda holder: False):
    """The concurrency slots still held: expired leases and slots of dead holders left out."""
    return {h: until for h, until in state.slots.items() if until > now and not is_dead(h)}


def reserve(state: BudgetState, policy: BudgetPolicy, *, now: float, priority: Priority, max_wait: float,
            holder: str, is_dead: Callable[[str], bool] = lambda holder: False, drop: str = ""):
    """Reserve one call: its turn in the pace, its place in the day's count and a concurrency slot, all or nothing.

    Pure. A refusal (`error`) or no free slot (`busy`) reserves nothing, so a caller waiting for a slot holds no
    turn in the pace and, when it asks again, gets a turn from then on. The slot is held from now (the wait
    included: a slot counts from the moment it is promised) and its lease runs from the send time. Expired leases
    and dead holders are dropped when the slot is taken. `drop` is the caller's own slot of its previous call
    (kept between sequential calls, see RateBudget.keeping_slot): it is given back in the same change, whatever
    the decision, so the caller never holds two slots, nor one while it waits for a slot.
    """
    if drop in state.slots:
        state, _ = drop_slot(state, holder=drop)
    new, decision = decide(state, policy, now=now, priority=priority, max_wait=max_wait)
    if decision.error is not None or decision.busy:
        return state, decision
    live = live_slots(state, now=now, is_dead=is_dead)
    if len(live) >= policy.max_concurrency:
        return state, Decision(busy=True)
    live[holder] = now + decision.wait + policy.slot_ttl
    new.slots = live
    return new, decision


def drop_slot(state: BudgetState, *, holder: str):
    slots = dict(state.slots)
    slots.pop(holder, None)
    return replace(state, slots=slots), True


def forgo_turn(state: BudgetState, *, holder: str, day: str):
    """A reserved turn left unused (the caller came too late for it): its slot and its place in `day`'s count are
    given back. The pace stays as reserved: an empty turn only slows the calls down."""
    new, _ = drop_slot(state, holder=holder)
    if new.day == day and new.day_count > 0:
        new.day_count -= 1
    return new, None


def mark_day_full(state: BudgetState, *, now: float):
    """Zoho answered code 45: the day is full until 00:00 UTC; day_count keeps the calls actually made."""
    day = utc_day(now)
    count = state.day_count if state.day == day else 0
    return replace(state, day=day, day_count=count, day_full=True), seconds_to_next_utc_midnight(now)


HOST = socket.gethostname()[:40]


def local_process_gone(pid: int) -> bool:
    """True when no process `pid` runs on this machine any more (a killed child not yet reaped counts as gone)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False


def holder_is_dead(holder: str) -> bool:
    """A slot held by a process of this machine that no longer runs (a killed backfill) is free at once."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    return host == HOST and pid.isdigit() and local_process_gone(int(pid))


class BudgetBackend(Protocol):
    """Apply `change(state) -> (new_state, result)` atomically to an organization's state; return the result.

    `change` is pure and may run more than once (compare-and-set). Usage is counted per call (`record_usage`) and
    may be kept in memory until `flush_usage()` writes it where readers see it.
    """

    def update(self, key: str, change: Callable[[BudgetState], tuple[BudgetState, object]]) -> object: ...

    def record_usage(self, key: str, endpoint: str, day: str) -> None: ...

    def flush_usage(self) -> None: ...


class MemoryBudgetBackend:
    """One process's budget (scripts and unit tests). Use a shared backend when several processes run."""

    def __init__(self):
        self._lock = threading.Lock()
        self._states: dict[str, BudgetState] = {}
        self.usage: Counter = Counter()

    def update(self, key, change):
        with self._lock:
            new, result = change(self._states.get(key, BudgetState()))
            self._states[key] = new
            return result

    def record_usage(self, key, endpoint, day):
        with self._lock:
            self.usage[(key, day, endpoint)] += 1

    def flush_usage(self) -> None:
        """Nothing to write: the counts live in `usage`."""


@dataclass
class BudgetStats:
    calls: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    slot_waits: int = 0
    rate_limited: int = 0  # answers of HTTP 429 (counted by the client)
    late_turns: int = 0  # turns given up because the call could not be sent within late_limit of them


class RateBudget:
    """Paces calls for one organization through a backend; waiting is logged and counted, never silent."""

    def __init__(self, *, key: str, policy: BudgetPolicy, backend: BudgetBackend | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep):
        self.key, self.policy = key, policy
        self.backend = backend or MemoryBudgetBackend()
        self.clock, self.sleep = clock, sleep
        self.stats = BudgetStats()
        self._local = threading.local()  # per thread: keeping_slot depth, the slot kept after the last call

    @contextlib.contextmanager
    def keeping_slot(self) -> Iterator[None]:
        """Within this block, a caller making one call after another (a backfill) keeps its concurrency slot from
        one call to the next: the next reservation gives it back in the same write, so a call costs one write to
        the shared budget instead of two. The slot is given back when the block ends; call `give_back_slot()`
        before the caller pauses (a slot counts as a call in flight). A slot left by a killed process frees itself
        as any other (its process is gone, or its lease runs out)."""
        self._local.keep = getattr(self._local, "keep", 0) + 1
        try:
            yield
        finally:
            self._local.keep -= 1
            if not self._local.keep:
                self.give_back_slot()

    def give_back_slot(self) -> None:
        """Give back the slot this caller kept after its last call (keeping_slot), if any."""
        if kept := getattr(self._local, "kept", ""):
            self._local.kept = ""
            self.backend.update(self.key, lambda s: drop_slot(s, holder=kept))

    def acquire(self, *, priority: Priority = Priority.NORMAL, max_wait: float = 600.0) -> str:
        """Wait for a call's turn and a concurrency slot, reserved together; return the holder id for release()."""
        holder, started = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}", self.clock()
        kept, self._local.kept = getattr(self._local, "kept", ""), ""
        waited = 0.0  # seconds already waited for a turn without holding one (a BULK caller's turn far ahead)

        def change(state: BudgetState):
            now = self.clock()
            return reserve(state, self.policy, now=now, priority=priority, holder=holder, is_dead=holder_is_dead,
                           max_wait=max(0.0, max_wait - (now - started)), drop=kept)

        while True:
            decision = self.backend.update(self.key, change)
            kept = ""  # given back by that change, whatever it decided
            if decision.error is not None:
                raise decision.error
            if not decision.busy:
                break
            if decision.retry_in:  # a backfill's turn is more than one turn away: wait for it, holding nothing
                waited += decision.retry_in
                self.sleep(decision.retry_in)
                continue
            self.stats.slot_waits += 1
            if self.clock() - started > max_wait:
                raise ZohoRateLimitError(f"No free concurrency slot within {max_wait:.0f} s.", retry_after=1.0)
            self.sleep(0.05)
        try:
            self._wait(decision.wait, f"rate budget ({priority.name.lower()} priority)", already=waited)
        except BaseException:
            self.release(holder)  # interrupted before the call: give the slot back
            raise
        self.stats.calls += 1
        self._local.turn_at = decision.at
        return holder

    def late_for_turn(self) -> float:
        """Seconds this thread is past the turn of its last acquire() now (0 or less: on time)."""
        return self.clock() - getattr(self._local, "turn_at", self.clock())

    def forgo(self, holder: str) -> None:
        """Give back a turn acquired and not used (too late for it): its slot and its count, in one write."""
        day = utc_day(getattr(self._local, "turn_at", self.clock()))
        self.backend.update(self.key, lambda s: forgo_turn(s, holder=holder, day=day))
        self.stats.calls -= 1
        self.stats.late_turns += 1

    def release(self, holder: str, *, endpoint: str = "") -> None:
        """Give the concurrency slot back (at once, or with the next reservation within `keeping_slot`); count the
        call for `endpoint` (written in batches)."""
        if getattr(self._local, "keep", 0):
            self.give_back_slot()  # a slot kept from an earlier call (an interrupted acquire) is not kept twice
            self._local.kept = holder
        else:
            self.backend.update(self.key, lambda s: drop_slot(s, holder=holder))
        if endpoint:
            self.backend.record_usage(self.key, endpoint, utc_day(self.clock()))

    def flush_usage(self) -> None:
        """Write the usage counted in memory (ApiUsage rows) now: call it at the end of a run, before reading usage."""
        flush = getattr(self.backend, "flush_usage", None)
        if flush is not None:
            flush()

    def block(self, seconds: float) -> None:
        """Stop every process's calls for `seconds` (Zoho's per-minute lock-out, code 44)."""
        until = self.clock() + seconds

        def change(state: BudgetState):
            return replace(state, blocked_until=max(state.blocked_until, until)), None

        self.backend.update(self.key, change)
        logger.warning("Zoho locked the organization out; every process pauses calls for %.0f s", seconds)

    def exhaust_day(self) -> float:
        """Zoho says the daily quota is used up (code 45): the day is full for every process until 00:00 UTC.

        The day's count stays the calls actually made. Returns the seconds until calls resume (00:00 UTC).
        """
        return self.backend.update(self.key, lambda s: mark_day_full(s, now=self.clock()))

    def snapshot(self) -> BudgetState:
        return self.backend.update(self.key, lambda s: (s, replace(s, slots=dict(s.slots))))

    def _wait(self, seconds: float, what: str, *, already: float = 0.0) -> None:
        """Sleep `seconds` more; the call's wait (counted once) includes the `already` waited for the same call."""
        if seconds + already <= 0:
            return
        self.stats.waits += 1
        self.stats.wait_seconds += seconds + already
        if seconds + already >= 1:
            logger.info("Waiting %.1f s for the Zoho %s", seconds + already, what)
        if seconds > 0:
            self.sleep(seconds)
