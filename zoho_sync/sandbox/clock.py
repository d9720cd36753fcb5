"""Clocks for the sandbox: the system clock, and a manual clock that tests advance instead of sleeping.

Everything time-based in the sandbox (token expiry, rate-limit windows, the daily reset, "today" for
subscriptions, event retention) reads `clock.time()`, so a test can jump an hour or a day at once.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime


class SystemClock:
    """Wall-clock time; the default outside tests."""

    def time(self) -> float:
        return time.time()

    def reset(self) -> None:
        """Nothing to reset: present so the sandbox can treat every clock alike."""


class ManualClock:
    """A clock that moves only when told to. Starts at `start` (epoch seconds) or at the real time now."""

    def __init__(self, start: float | None = None) -> None:
        self._start = start
        self._lock = threading.Lock()
        self._now = time.time() if start is None else float(start)

    def time(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward (or back, with a negative value) and return the new time."""
        with self._lock:
            self._now += float(seconds)
            return self._now

    def set(self, when: float | datetime) -> None:
        """Jump to an epoch time or an aware datetime."""
        value = when.timestamp() if isinstance(when, datetime) else float(when)
        with self._lock:
            self._now = value

    def reset(self) -> None:
        """Back to the explicit start, or to the real time now when none was given."""
        with self._lock:
            self._now = time.time() if self._start is None else float(self._start)


def utc_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def utc_date(ts: float) -> date:
    return utc_datetime(ts).date()


def zoho_timestamp(ts: float) -> str:
    """ISO 8601 with a colon-less offset, as Zoho writes them (zoho-billing-api.md §3: "2016-06-05T02:30:08-0700")."""
    return utc_datetime(ts).strftime("%Y-%m-%dT%H:%M:%S%z")


def parse_zoho_timestamp(text: str) -> int | None:
    """Epoch seconds of a `zoho_timestamp()` string, or None when `text` is empty or not one."""
    try:
        return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp())
    except (TypeError, ValueError):
        return None
