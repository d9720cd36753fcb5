"""The store that shares the token cache and the rate budget between processes: the database, or Redis.

Both apply a pure `change(state) -> (new_state, result)` function atomically, by compare-and-set: the database on a
version column (works the same on SQLite and PostgreSQL, and never holds a transaction across a call to Zoho), Redis
with WATCH/MULTI. The cached access token is encrypted at rest with a key derived from SECRET_KEY (StateCodec).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
from collections.abc import Callable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction

from zoho_sync.client.auth import TokenState
from zoho_sync.client.budget import BudgetState
from zoho_sync.commits import relaxed_commit
from zoho_sync.models import SharedState
from zoho_sync.shared_state.usage import USAGE

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


def state_backends(redis_url: str = "") -> tuple[Any, Any]:
    """The token store and budget backend every process of this deployment shares."""
    if redis_url:
        return RedisStateBackend(redis_url, "token", TOKEN_CODEC), RedisStateBackend(redis_url, "budget", BUDGET_CODEC)
    return DatabaseStateBackend("token", TOKEN_CODEC), DatabaseStateBackend("budget", BUDGET_CODEC, remember=True)
