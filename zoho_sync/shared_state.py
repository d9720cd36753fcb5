"""Backends that share the token cache and the rate budget between processes: the database, or Redis.

Both apply a pure `change(state) -> (new_state, result)` function atomically, by compare-and-set: the database on a
version column (works the same on SQLite and PostgreSQL, and never holds a transaction across a call to Zoho), Redis
with WATCH/MULTI. The cached access token is encrypted at rest with a key derived from SECRET_KEY.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from zoho_sync.client.auth import TokenState
from zoho_sync.client.budget import BudgetState
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
    """Compare-and-set on SharedState rows: safe across processes on SQLite and PostgreSQL."""

    def __init__(self, namespace: str, codec: StateCodec):
        self.namespace, self.codec = namespace, codec

    def update(self, key: str, change: Callable[[Any], tuple[Any, object]]) -> object:
        row_key = f"{self.namespace}:{key}"[:128]
        for attempt in range(1, MAX_CAS_ATTEMPTS + 1):
            row = SharedState.objects.filter(key=row_key).values_list("data", "version").first()
            if row is None:
                try:
                    with transaction.atomic():
                        SharedState.objects.create(key=row_key)
                except IntegrityError:
                    pass  # another process created it first
                continue
            data, version = row
            state = self.codec.load(data)
            new, result = change(state)
            if new == state:
                return result
            updated = SharedState.objects.filter(key=row_key, version=version).update(
                data=self.codec.dump(new), version=version + 1
            )
            if updated:
                return result
            _pause(attempt)
        raise RuntimeError(f"Could not update shared state {row_key!r}: too much contention.")

    def record_usage(self, key: str, endpoint: str, day: str) -> None:
        usage_record(organization_id=key.removeprefix("org:"), endpoint=endpoint, day=date.fromisoformat(day))


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
        usage_record(organization_id=key.removeprefix("org:"), endpoint=endpoint, day=date.fromisoformat(day))


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


def state_backends(redis_url: str = "") -> tuple[Any, Any]:
    """The token store and budget backend every process of this deployment shares."""
    if redis_url:
        return RedisStateBackend(redis_url, "token", TOKEN_CODEC), RedisStateBackend(redis_url, "budget", BUDGET_CODEC)
    return DatabaseStateBackend("token", TOKEN_CODEC), DatabaseStateBackend("budget", BUDGET_CODEC)
