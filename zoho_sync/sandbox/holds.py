"""Holds: park matching API requests at a fixed point until the test releases them (deterministic interleavings).

`when="before"`: after auth, org header and limits, before the handler runs (nothing is written yet).
`when="after"`: after the handler ran (its write, if any, is stored) and before the answer goes out.
A held request keeps its concurrency slot, like a slow one. It never hangs for good: release(), the
sandbox's reset() and stop(), or the hold's own safety timeout (default 60 s) let it go on.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any

from zoho_sync.sandbox.faults import path_matches

logger = logging.getLogger(__name__)
WHEN = ("before", "after")
SAFETY_TIMEOUT = 60.0


class Hold:
    """One hold rule: captures the next `times` matching requests at its point and keeps them until released."""

    def __init__(self, hold_id: int, method: str, path: str, *, times: int, when: str, timeout: float) -> None:
        self.id = hold_id
        self.method = method
        self.path = path
        self.when = when
        self.times = times
        self.timeout = timeout
        self._cond = threading.Condition()
        self._captured = 0  # requests this hold has taken (counted when matched, so `times` is never exceeded)
        self._arrived = 0  # requests that are, or were, parked at the hold point
        self._waiting = 0
        self._released = False

    @property
    def arrived(self) -> int:
        """How many requests have reached the hold point so far (held now or already let go)."""
        with self._cond:
            return self._arrived

    @property
    def waiting(self) -> int:
        """How many requests are parked right now."""
        with self._cond:
            return self._waiting

    @property
    def released(self) -> bool:
        with self._cond:
            return self._released

    def wait_arrived(self, timeout: float = 5.0, *, count: int = 1) -> bool:
        """Block until `count` matching requests have reached the hold point; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._arrived >= count, timeout=timeout)

    def release(self) -> None:
        """Let every request parked here go on; requests not yet captured are no longer held."""
        with self._cond:
            self._released = True
            self._cond.notify_all()

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def as_dict(self) -> dict[str, Any]:
        with self._cond:
            return {"id": self.id, "method": self.method, "path": self.path, "when": self.when, "times": self.times,
                    "timeout": self.timeout, "arrived": self._arrived, "waiting": self._waiting,
                    "released": self._released}

    def _take(self, method: str, path: str, when: str) -> bool:
        """Capture this request if it matches and the hold still has room (called under the registry's lock)."""
        with self._cond:
            if self._released or self._captured >= self.times or when != self.when:
                return False
            if self.method not in ("*", method) or not path_matches(self.path, path):
                return False
            self._captured += 1
            return True

    def _park(self, method: str, path: str) -> None:
        deadline = time.monotonic() + self.timeout
        with self._cond:
            self._arrived += 1
            self._waiting += 1
            self._cond.notify_all()
            try:
                while not self._released:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        logger.warning("sandbox hold %s on %s %s timed out after %.0f s; the request goes on",
                                       self.id, method, path, self.timeout)
                        break
                    self._cond.wait(left)
            finally:
                self._waiting -= 1


class Holds:
    """The registry the app consults at each hold point; `ZohoSandbox.hold_next()` adds to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holds: list[Hold] = []
        self._ids = itertools.count(1)

    def add(self, method: str, path: str, *, times: int = 1, when: str = "before",
            timeout: float = SAFETY_TIMEOUT) -> Hold:
        if when not in WHEN:
            raise ValueError(f"unknown hold point {when!r}; use one of {', '.join(WHEN)}")
        if float(timeout) <= 0:
            raise ValueError("a hold's timeout must be positive")
        hold = Hold(next(self._ids), (method or "*").upper(), path, times=max(1, int(times)), when=when,
                    timeout=float(timeout))
        with self._lock:
            self._holds = [h for h in self._holds if not h.released]
            self._holds.append(hold)
        return hold

    def get(self, hold_id: int) -> Hold:
        with self._lock:
            for hold in self._holds:
                if hold.id == hold_id:
                    return hold
        raise KeyError(f"no hold with id {hold_id}")

    def pause(self, method: str, path: str, when: str) -> None:
        """Park the request here if a hold captures it; returns when it is released (or times out)."""
        with self._lock:
            if not self._holds:
                return
            hold = next((h for h in self._holds if h._take(method, path, when)), None)
        if hold is not None:
            hold._park(method, path)

    def release_all(self) -> int:
        """Release every hold (parked requests go on) and forget them; returns how many there were."""
        with self._lock:
            holds, self._holds = self._holds, []
        for hold in holds:
            hold.release()
        return len(holds)

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [h.as_dict() for h in self._holds if not h.released]
