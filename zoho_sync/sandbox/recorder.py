"""The request log and counters that tests and benchmarks read (in-process or over /__sandbox__/).

Each entry: method, path, query, JSON body, headers (the Authorization token and the token endpoint's
secrets redacted), HTTP status, Zoho code, route and outcome ("answered", "reset").
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

from zoho_sync.sandbox.config import REDACTED
from zoho_sync.sandbox.faults import path_matches

SECRET_PARAMS = ("client_secret", "refresh_token", "token", "code")


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    out = dict(headers)
    auth = out.get("Authorization")
    if auth:
        scheme, _, rest = auth.partition(" ")
        out["Authorization"] = f"{scheme} {REDACTED}" if rest else REDACTED
    return out


def redact_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (REDACTED if k in SECRET_PARAMS else v) for k, v in params.items()}


class Recorder:
    def __init__(self, size: int = 10000) -> None:
        self._lock = threading.Lock()
        self._size = size
        self.clear()

    def clear(self, size: int | None = None) -> None:
        with self._lock:
            self._size = size or self._size
            self._entries: deque[dict[str, Any]] = deque(maxlen=self._size)
            self._seq = 0
            self._endpoints: Counter[str] = Counter()
            self._statuses: Counter[str] = Counter()
            self._codes: Counter[str] = Counter()
            self._throttled: Counter[str] = Counter()

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._entries.append(entry)
            self._endpoints[f"{entry['method']} {entry.get('route') or entry.get('api_path') or entry['path']}"] += 1
            status = entry.get("status")
            self._statuses[str(status) if status is not None else entry.get("outcome", "none")] += 1
            if entry.get("code") is not None:
                self._codes[str(entry["code"])] += 1
                if status == 429:
                    self._throttled[str(entry["code"])] += 1

    def entries(self, method: str | None = None, path: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """Logged requests, oldest first; `path` is a prefix or pattern on the API path (see faults)."""
        with self._lock:
            items = list(self._entries)
        return [e for e in items if e["seq"] > since and (method is None or e["method"] == method.upper())
                and (path is None or path_matches(path, e.get("api_path") or e["path"]))]

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {"total": sum(self._statuses.values()), "by_endpoint": dict(self._endpoints),
                    "by_status": dict(self._statuses), "by_code": dict(self._codes),
                    "throttled": dict(self._throttled)}
