"""The accounts server's refresh-token grant: minting limits, active-token cap, expiry, revocation.

Follows zoho-billing-api.md §2 and §12.4: 3600 s tokens; at most 10 mints per refresh token per rolling
10 minutes (the 11th gets HTTP 400 "Access Denied"); at most 10 active tokens per refresh token (minting an
11th invalidates the oldest); a bad or revoked refresh token gets HTTP 200 {"error": "invalid_code"} and a
wrong client id or secret HTTP 200 {"error": "invalid_client"}.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from zoho_sync.sandbox.config import SandboxConfig

THROTTLED = {"error": "Access Denied",
             "error_description": "You have made too many requests continuously. Please try again after some time."}


class TokenRegistry:
    def __init__(self, clock: Any, config: Callable[[], SandboxConfig]) -> None:
        self._clock = clock
        self._config = config
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._tokens: dict[str, dict[str, Any]] = {}
            self._mints: dict[str, deque[float]] = {}
            self._active: dict[str, deque[str]] = {}
            self._revoked: set[str] = set()

    def mint(self, *, client_id: str, client_secret: str, refresh_token: str, api_domain: str,
             grant_type: str = "refresh_token") -> tuple[int, dict[str, Any]]:
        """Answer a token request: (HTTP status, JSON body)."""
        config = self._config()
        if grant_type != "refresh_token":  # §12.4: only the refresh-token grant is simulated
            return 200, {"error": "unsupported_grant_type"}
        if client_id != config.client_id or client_secret != config.client_secret:
            return 200, {"error": "invalid_client"}
        if refresh_token != config.refresh_token or refresh_token in self._revoked:
            return 200, {"error": "invalid_code"}
        with self._lock:
            now = self._clock.time()
            mints = self._mints.setdefault(refresh_token, deque())
            while mints and mints[0] <= now - config.token_mint_window:
                mints.popleft()
            if config.token_mint_limit and len(mints) >= config.token_mint_limit:
                return 400, dict(THROTTLED)
            mints.append(now)
            token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
            self._tokens[token] = {"refresh_token": refresh_token, "expires_at": now + config.token_ttl}
            active = self._active.setdefault(refresh_token, deque())
            active.append(token)
            while config.max_active_tokens and len(active) > config.max_active_tokens:
                self._tokens.pop(active.popleft(), None)  # the oldest is invalidated (§12.4)
        return 200, {"access_token": token, "api_domain": api_domain, "token_type": "Bearer",
                     "expires_in": config.token_ttl}

    def valid(self, token: str) -> bool:
        with self._lock:
            entry = self._tokens.get(token)
            return entry is not None and entry["expires_at"] > self._clock.time()

    def expire_all(self) -> int:
        """Make every access token issued so far expired; returns how many there were."""
        with self._lock:
            past = self._clock.time() - 1
            for entry in self._tokens.values():
                entry["expires_at"] = past
            return len(self._tokens)

    def revoke(self, refresh_token: str) -> None:
        """Revoke a refresh token and the access tokens minted from it."""
        with self._lock:
            self._revoked.add(refresh_token)
            for token in self._active.pop(refresh_token, deque()):
                self._tokens.pop(token, None)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            now = self._clock.time()
            valid = sum(1 for e in self._tokens.values() if e["expires_at"] > now)
            return {"issued": len(self._tokens), "valid": valid,
                    "revoked_refresh_tokens": len(self._revoked),
                    "mints_in_window": {k[:9] + "...": len(v) for k, v in self._mints.items()}}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"tokens": self._tokens, "mints": {k: list(v) for k, v in self._mints.items()},
                    "active": {k: list(v) for k, v in self._active.items()}, "revoked": sorted(self._revoked)}

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._tokens = {k: dict(v) for k, v in data.get("tokens", {}).items()}
            self._mints = {k: deque(v) for k, v in data.get("mints", {}).items()}
            self._active = {k: deque(v) for k, v in data.get("active", {}).items()}
            self._revoked = set(data.get("revoked", []))
