"""Backends that share the token cache and the rate budget between processes: the database, or Redis.

Both apply a pure `change(state) -> (new_state, result)` function atomically, by compare-and-set: the database on a
version column (works the same on SQLite and PostgreSQL, and never holds a transaction across a call to Zoho), Redis
with WATCH/MULTI. The cached access token is encrypted at rest with a key derived from SECRET_KEY.

API usage per endpoint (ApiUsage rows) is counted in memory per process and written in batches (UsageBuffer):
readers see it after a flush, which happens every few seconds or calls, at the end of a run
(RateBudget.flush_usage) and at exit. The day's total is not read from there: the shared budget counts every call
when it gives the call its turn (budget_calls_today), and that is the figure every page shows.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import functools
import hashlib
import json
import logging
import multiprocessing.util
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.models import F

from zoho_sync.client.auth import TokenState
from zoho_sync.client.budget import BudgetState
from zoho_sync.commits import relaxed_commit
from zoho_sync.models import ApiUsage, SharedState

logger = logging.getLogger(__name__)
MAX_CAS_ATTEMPTS = 200


class StateCodec:
    """JSON in and out of a state dataclass; `secret_fields` are encrypted with a key derived from SECRET_KEY."""

    def __init__(self, state_type: type, secret_fields: tuple[str, ...] = ()):
        self.state_type, self.secret_fields = state_type, secret_fields

    @staticmethod
    def _fernet() -> Fernet:
        digest = hashlib.sha256(f"zoho-sync-state|{settings.SECRET_KEY}".encode()).digest()
        return Fernet(base64.urlsafe_b64encode(digest))

    def dump(self, state: Any) -> str:
        data = state.as_dict()
        for name in self.secret_fields:
            if data.get(name):
                data[name] = self._fernet().encrypt(data[name].encode()).decode()
        return json.dumps(data, separators=(",", ":"))

    def load(self, raw: str | bytes | None) -> Any:
        data = json.loads(raw) if raw else {}
        for name in self.secret_fields:
            if data.get(name):
                try:
                    data[name] = self._fernet().decrypt(data[name].encode()).decode()
                except InvalidToken:  # SECRET_KEY changed: the cached token is lost, a new one is minted
                    data[name] = ""
        return self.state_type.from_dict(data)


TOKEN_CODEC = StateCodec(TokenState, secret_fields=("access_token",))
BUDGET_CODEC = StateCodec(BudgetState)


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.05, 0.001 * attempt)))


class DatabaseStateBackend:
    """Compare-and-set on SharedState rows: safe across processes on SQLite and PostgreSQL.

    With `remember=True` the backend keeps the state and version it last read or wrote, and tries its conditional
    UPDATE on that version straight away: one statement when no other process wrote in between, and when one did,
    the UPDATE matches no row and the row is read again. A change that writes nothing is never answered from the
    remembered copy (it may be stale): the row is read and the change applied again. So `change` must be pure,
    which the budget's changes are. This relies on a row's version only ever growing: nothing deletes or resets
    SharedState rows while processes run.
    """

    def __init__(self, namespace: str, codec: StateCodec, *, remember: bool = False):
        self.namespace, self.codec, self.remember = namespace, codec, remember
        self._known: dict[str, tuple[Any, int]] = {}  # row key -> (state, version) last read or written here

    def update(self, key: str, change: Callable[[Any], tuple[Any, object]]) -> object:
        row_key = f"{self.namespace}:{key}"[:128]
        known = self._known.get(row_key) if self.remember else None
        for attempt in range(1, MAX_CAS_ATTEMPTS + 1):
            if known is not None:
                (state, version), fresh = known, False
            else:
                row = SharedState.objects.filter(key=row_key).values_list("data", "version").first()
                if row is None:
                    try:
                        with transaction.atomic():
                            SharedState.objects.create(key=row_key)
                    except IntegrityError:
                        pass  # another process created it first
                    continue
                data, version = row
                state, fresh = self.codec.load(data), True
            new, result = change(state)
            if new == state:
                if fresh:
                    self._remember(row_key, state, version)
                    return result
                known = None  # answer only from the row as it is now
                continue
            with relaxed_commit():  # a database-server crash may lose it: harmless for a budget or a lease
                updated = SharedState.objects.filter(key=row_key, version=version).update(
                    data=self.codec.dump(new), version=version + 1
                )
            if updated:
                self._remember(row_key, new, version + 1)
                return result
            known = None
            if fresh:
                _pause(attempt)  # another process wrote between our read and our write
        raise RuntimeError(f"Could not update shared state {row_key!r}: too much contention.")

    def peek(self, key: str) -> Any:
        """The state as it stands, read only (one SELECT; nothing created or written)."""
        raw = SharedState.objects.filter(key=f"{self.namespace}:{key}"[:128]).values_list("data", flat=True).first()
        return self.codec.load(raw)

    def _remember(self, row_key: str, state: Any, version: int) -> None:
        if self.remember:
            self._known[row_key] = (state, version)

    def record_usage(self, key: str, endpoint: str, day: str) -> None:
        USAGE.add(organization_id=key.removeprefix("org:"), endpoint=endpoint, day=day)

    def flush_usage(self) -> None:
        USAGE.flush()


class RedisStateBackend:
    """The same compare-and-set with Redis WATCH/MULTI, for deployments that set REDIS_URL."""

    def __init__(self, url: str, namespace: str, codec: StateCodec, *, ttl_seconds: int = 3 * 86400):
        import redis  # imported here so deployments without Redis never need it

        self.redis = redis.Redis.from_url(url)
        self.watch_error = redis.WatchError
        self.namespace, self.codec, self.ttl = namespace, codec, ttl_seconds

    def update(self, key: str, change: Callable[[Any], tuple[Any, object]]) -> object:
        redis_key = f"zoho_sync:{self.namespace}:{key}"
        with self.redis.pipeline() as pipe:
            for attempt in range(1, MAX_CAS_ATTEMPTS + 1):
                try:
                    pipe.watch(redis_key)
                    state = self.codec.load(pipe.get(redis_key))
                    new, result = change(state)
                    if new == state:
                        pipe.unwatch()
                        return result
                    pipe.multi()
                    pipe.set(redis_key, self.codec.dump(new), ex=self.ttl)
                    pipe.execute()
                    return result
                except self.watch_error:
                    _pause(attempt)
        raise RuntimeError(f"Could not update shared state {redis_key!r}: too much contention.")

    def record_usage(self, key: str, endpoint: str, day: str) -> None:
        USAGE.add(organization_id=key.removeprefix("org:"), endpoint=endpoint, day=day)

    def flush_usage(self) -> None:
        USAGE.flush()

    def peek(self, key: str) -> Any:
        """The state as it stands, read only (one GET)."""
        return self.codec.load(self.redis.get(f"zoho_sync:{self.namespace}:{key}"))


def usage_record(*, organization_id: str, endpoint: str, day: date, calls: int = 1) -> None:
    """Count calls to Zoho for the day (one UPDATE; an INSERT the first time)."""
    rows = ApiUsage.objects.filter(day=day, organization_id=organization_id, endpoint=endpoint)
    if rows.update(calls=F("calls") + calls):
        return
    try:
        with transaction.atomic():
            ApiUsage.objects.create(day=day, organization_id=organization_id, endpoint=endpoint, calls=calls)
    except IntegrityError:
        rows.update(calls=F("calls") + calls)


class UsageBuffer:
    """API calls counted in this process's memory and written to ApiUsage in batches, with the same totals.

    A batch is written when `max_calls` calls wait or the oldest has waited `max_seconds` (checked as calls are
    counted), on flush() (the end of a run), and when the process exits (atexit, and the exit of a
    multiprocessing child, which skips atexit). A forked child starts empty: what the parent counted is the
    parent's to write. Counts are kept per database name, so a count never lands in another database than the
    one it was made against (a test database that is gone by exit time, say): those are dropped.
    A killed process (SIGKILL, or SIGTERM without a handler) loses at most one batch.
    """

    def __init__(self, *, max_calls: int = 100, max_seconds: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.max_calls, self.max_seconds, self.clock = max_calls, max_seconds, clock
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        multiprocessing.util.register_after_fork(self, UsageBuffer._watch_exit)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter = Counter()  # (database name, day, organization id, endpoint) -> calls
        self._waiting, self._since = 0, 0.0

    def _watch_exit(self) -> None:
        multiprocessing.util.Finalize(self, self.flush_at_exit, exitpriority=10)

    @property
    def waiting(self) -> int:
        """Calls counted here and not yet written."""
        return self._waiting

    def add(self, *, organization_id: str, endpoint: str, day: str) -> None:
        database = connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]
        with self._lock:
            if not self._waiting:
                self._since = self.clock()
            self._counts[(str(database), day, organization_id, endpoint)] += 1
            self._waiting += 1
            due = self._waiting >= self.max_calls or self.clock() - self._since >= self.max_seconds
        if due:
            try:
                self.flush()
            except Exception:  # the call itself went through; its count waits for the next flush
                logger.warning("Could not write API usage; it is kept for the next try", exc_info=True)

    def flush(self) -> None:
        """Write every count waiting here (one UPDATE per day and endpoint, an INSERT the first time), in one
        transaction. On failure the counts are kept and the error raised."""
        with self._lock:
            counts, self._counts, self._waiting = self._counts, Counter(), 0
        database = str(connections[DEFAULT_DB_ALIAS].settings_dict["NAME"])
        mine = {key[1:]: n for key, n in counts.items() if key[0] == database}
        if len(mine) < len(counts):  # only tests switch databases
            logger.debug("Dropped %d API call counts made against another database than %s",
                         sum(n for key, n in counts.items() if key[0] != database), database)
        if not mine:
            return
        try:
            with transaction.atomic():
                for (day, organization_id, endpoint), calls in sorted(mine.items()):  # one lock order everywhere
                    usage_record(organization_id=organization_id, endpoint=endpoint, day=date.fromisoformat(day),
                                 calls=calls)
        except BaseException:
            with self._lock:
                if not self._waiting:
                    self._since = self.clock()
                self._counts.update({(database, *key): n for key, n in mine.items()})
                self._waiting += sum(mine.values())
            raise

    def flush_at_exit(self) -> None:
        try:
            self.flush()
        except Exception:
            logger.exception("Could not write %d API call counts at exit", self._waiting)


USAGE = UsageBuffer()
atexit.register(USAGE.flush_at_exit)


def state_backends(redis_url: str = "") -> tuple[Any, Any]:
    """The token store and budget backend every process of this deployment shares."""
    if redis_url:
        return RedisStateBackend(redis_url, "token", TOKEN_CODEC), RedisStateBackend(redis_url, "budget", BUDGET_CODEC)
    return DatabaseStateBackend("token", TOKEN_CODEC), DatabaseStateBackend("budget", BUDGET_CODEC, remember=True)


@dataclass
class LeaseState:
    holder: str = ""
    until: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> LeaseState:
        return cls(**{k: v for k, v in (data or {}).items() if k in ("holder", "until")})


LEASES = DatabaseStateBackend("lease", StateCodec(LeaseState))


class LeaseBusyError(Exception):
    """Another process held the lease for longer than we would wait."""


@contextlib.contextmanager
def shared_lease(name: str, *, seconds: float = 60.0, wait: float = 60.0) -> Iterator[None]:
    """Hold `name` against every other process of the deployment (compare-and-set on a SharedState row; no
    transaction is held while the caller talks to Zoho). A holder that dies frees it when `seconds` run out."""
    holder = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + wait

    def take(state: LeaseState):
        now = time.time()
        if state.holder and state.holder != holder and state.until > now:
            return state, False
        return LeaseState(holder, now + seconds), True

    while not LEASES.update(name, take):
        if time.monotonic() > deadline:
            raise LeaseBusyError(f"{name!r} is held by another process")
        time.sleep(0.1)
    try:
        yield
    finally:
        LEASES.update(name, lambda state: (LeaseState(), None) if state.holder == holder else (state, None))


@contextlib.contextmanager
def job_lock(name: str, *, seconds: float = 120.0) -> Iterator[bool]:
    """Hold `name` while a scheduled job runs, however long it runs; yields False (and holds nothing) when another
    run of the job holds it. The holder renews it every quarter of `seconds` from a thread; a holder that dies
    frees it at once when it ran on this machine (its process is gone), else when `seconds` run out."""
    from zoho_sync.client.budget import holder_is_dead

    key = f"job:{name}"
    holder = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def take(state: LeaseState):
        now = time.time()
        if state.holder and state.holder != holder and state.until > now and not holder_is_dead(state.holder):
            return state, False
        return LeaseState(holder, now + seconds), True

    if not LEASES.update(key, take):
        yield False
        return
    stop = threading.Event()

    def renew() -> None:
        try:
            while not stop.wait(seconds / 4):
                LEASES.update(key, take)
        finally:
            connections.close_all()

    renewer = threading.Thread(target=renew, name=f"lock {name}", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join(timeout=10)
        LEASES.update(key, lambda state: (LeaseState(), None) if state.holder == holder else (state, None))


def single_run(name: str):
    """A scheduled task that never runs twice at once: a second start while one runs returns at once, saying so."""
    def decorate(task):
        @functools.wraps(task)
        def wrapper(*args, **kwargs):
            with job_lock(name) as held:
                if not held:
                    return f"skipped: another run of {name!r} is in progress"
                return task(*args, **kwargs)
        return wrapper
    return decorate


def budget_peek(organization_id: str, redis_url: str = ""):
    """The organization's shared rate budget as it stands (read only: an unchanged state is never written back)."""
    _, backend = state_backends(redis_url)
    return backend.update(f"org:{organization_id}", lambda state: (state, state))


def budget_calls_today(organization_id: str, redis_url: str = "", *, now: float | None = None) -> int:
    """The calls made to Zoho this UTC day by every process, as the budget counts them when it gives a call its
    turn (the same write): exact within a moment, unlike the per-endpoint ApiUsage rows, which each process writes
    in batches. 0 when the budget has not counted a call today."""
    from zoho_sync.client.budget import utc_day

    _, backend = state_backends(redis_url)
    state = backend.peek(f"org:{organization_id}")
    return state.day_count if state.day == utc_day(time.time() if now is None else now) else 0
