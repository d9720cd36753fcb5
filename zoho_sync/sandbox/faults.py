"""Fault injection: scripted `fail_next()` rules and seeded random faults, limited to methods and paths.

Kinds: "error" (a Zoho error body with any status/code, 500 code 1000 for random 5xx), "reset" (close the
socket with no answer), "timeout" (answer only after N seconds), "lose_response" (apply the write, then reset:
the case that makes naive clients create duplicates) and "latency" (added delay). Random faults draw from
`random.Random(seed)`, so a run with the same seed and request order fails the same requests.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zoho_sync.client import codes
from zoho_sync.client.codes import ZohoCode
from zoho_sync.sandbox.config import SandboxConfig
from zoho_sync.sandbox.errors import resolve_code
from zoho_sync.sandbox.routes import split_prefix

KINDS = ("error", "reset", "timeout", "lose_response", "latency")


class AbortConnection(Exception):
    """Raised through the WSGI app: the server closes the socket with a TCP reset and sends nothing."""


@dataclass
class FaultRule:
    method: str
    path: str
    kind: str = "error"
    status: int | None = None
    code: ZohoCode | None = None
    times: int = 1
    seconds: float = 0.0
    retry_after: int | None = None

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and path_matches(self.path, path)

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "kind": self.kind, "status": self.status,
                "code": self.code.code if self.code else None, "times": self.times, "seconds": self.seconds}


@dataclass
class Fault:
    kind: str | None  # None: latency only
    status: int | None = None
    code: ZohoCode | None = None
    seconds: float = 0.0
    latency: float = 0.0
    retry_after: int | None = None


def path_matches(pattern: str, path: str) -> bool:
    """A prefix on segment boundaries ("/customers" matches "/customers/9"), or a pattern with * and {x}."""
    pattern = split_prefix(pattern) or pattern
    if "*" in pattern or "{" in pattern:
        regex = re.escape(pattern).replace(r"\*", ".*")
        regex = re.sub(r"\\\{[^}]*\\\}", "[^/]+", regex)
        return re.fullmatch(regex, path) is not None
    trimmed = pattern.rstrip("/") or "/"
    return trimmed == "/" or path == trimmed or path.startswith(trimmed + "/")


class FaultInjector:
    def __init__(self, config: Callable[[], SandboxConfig]) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._rng = random.Random(config().seed)

    def reset(self) -> None:
        with self._lock:
            self._rules = []
            self._rng = random.Random(self._config().seed)

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def fail_next(self, method: str, path: str, *, status: int | None = None, code: ZohoCode | str | int | None = None,
                  times: int = 1, kind: str = "error", seconds: float | None = None,
                  retry_after: int | None = None) -> FaultRule:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {', '.join(KINDS)}")
        row = resolve_code(code, status) if kind == "error" else None
        rule = FaultRule(method=(method or "*").upper(), path=path, kind=kind,
                         status=status or (row.http_status if row else None), code=row, times=max(1, int(times)),
                         seconds=float(seconds if seconds is not None else self._config().timeout_seconds),
                         retry_after=retry_after)
        with self._lock:
            self._rules.append(rule)
        return rule

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.as_dict() for r in self._rules]

    def decide(self, method: str, path: str, *, api: bool) -> Fault | None:
        """The fault for this request, if any: a scripted rule first, then the seeded random draw."""
        config = self._config()
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                    if rule.kind == "latency":
                        return Fault(None, latency=rule.seconds)
                    return Fault(rule.kind, status=rule.status, code=rule.code, seconds=rule.seconds,
                                 retry_after=rule.retry_after)
            if not self._in_scope(config, method, path, api):
                return None
            kind = None
            if any(getattr(config, f"{k}_rate") for k in ("reset", "timeout", "error", "lose_response")):
                draw, edge = self._rng.random(), 0.0
                for name in ("reset", "timeout", "error", "lose_response"):
                    edge += getattr(config, f"{name}_rate")
                    if draw < edge:
                        kind = name
                        break
        if kind is None and not config.latency:
            return None
        error = codes.INTERNAL_ERROR if kind == "error" else None
        return Fault(kind, status=error.http_status if error else None, code=error, seconds=config.timeout_seconds,
                     latency=config.latency)

    @staticmethod
    def _in_scope(config: SandboxConfig, method: str, path: str, api: bool) -> bool:
        if config.fault_methods and method not in {m.upper() for m in config.fault_methods}:
            return False
        if config.fault_paths:
            return any(path_matches(p, path) for p in config.fault_paths)
        return api  # random faults skip the token endpoint unless a fault path names it
