"""Per-organization request limits: per minute with a lock-out, per UTC day, and in-flight concurrency.

zoho-billing-api.md §12.1-§12.2: the first request over the per-minute limit gets 429 code 44 and starts a
lock-out (default 60 s) during which every request gets the same; the first over the daily quota gets 429
code 45 until 00:00 UTC; the 11th concurrent request gets 429 code 1070. The per-minute count is a sliding
window, the strictest reading: a request is refused when `per_minute` requests arrived in the 60 s before it,
whatever clock minute they fell in. Refused requests count toward nothing, except, with `count_unauthorized`,
those refused for their token (401), which Zoho may well count. `Retry-After` is computed always and sent only
when the config says so.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from zoho_sync.client import codes
from zoho_sync.sandbox.clock import utc_date
from zoho_sync.sandbox.config import SandboxConfig
from zoho_sync.sandbox.errors import ApiError

WINDOW = 60.0


@dataclass
class _OrgState:
    in_flight: int = 0
    window: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0
    day: str = ""
    day_count: int = 0


class Limiter:
    def __init__(self, clock: Any, config: Callable[[], SandboxConfig]) -> None:
        self._clock = clock
        self._config = config
        self._lock = threading.Lock()
        self._orgs: dict[str, _OrgState] = {}

    def reset(self) -> None:
        with self._lock:
            self._orgs = {}

    @contextmanager
    def admit(self, org: str) -> Iterator[None]:
        """Hold one in-flight slot for the request, or raise the 429 ApiError that refuses it."""
        state = self._enter(org)
        try:
            yield
        finally:
            with self._lock:  # the slot's own state: a reset() while the request ran started a new one
                state.in_flight -= 1

    def _refuse(self, code: codes.ZohoCode, seconds: float, **fmt: Any) -> ApiError:
        config = self._config()
        retry_after = max(1, math.ceil(seconds)) if config.send_retry_after else None
        return ApiError(code, retry_after=retry_after, **fmt)

    def _enter(self, org: str) -> _OrgState:
        config = self._config()
        now = self._clock.time()
        with self._lock:
            st = self._orgs.setdefault(org, _OrgState())
            if now < st.locked_until:
                raise self._refuse(codes.RATE_LIMIT_PER_MINUTE, st.locked_until - now)
            if config.concurrency and st.in_flight >= config.concurrency:
                raise self._refuse(codes.TOO_MANY_CONCURRENT, config.concurrency_retry_after)
            today = utc_date(now).isoformat()
            if st.day != today:  # the daily count resets at 00:00 UTC (§12.2)
                st.day, st.day_count = today, 0
            if config.daily and st.day_count >= config.daily:
                midnight = (math.floor(now / 86400) + 1) * 86400
                raise self._refuse(codes.RATE_LIMIT_DAILY, midnight - now, limit=config.daily)
            while st.window and st.window[0] <= now - WINDOW:
                st.window.popleft()
            if config.per_minute and len(st.window) >= config.per_minute:
                st.locked_until = now + config.lockout_seconds
                st.window.clear()  # after the lock-out the organization starts with a full minute
                raise self._refuse(codes.RATE_LIMIT_PER_MINUTE, config.lockout_seconds)
            st.window.append(now)
            st.day_count += 1
            st.in_flight += 1
            return st

    def stats(self) -> dict[str, Any]:
        now = self._clock.time()
        with self._lock:
            return {org: {"in_flight": st.in_flight, "last_minute": sum(1 for t in st.window if t > now - WINDOW),
                          "today": st.day_count, "locked_for": max(0.0, st.locked_until - now)}
                    for org, st in self._orgs.items()}
