"""OAuth: turn the refresh token into access tokens, cached and shared, refreshed by one process at a time.

The cached token lives in a TokenStore (memory here; the database or Redis in zoho_sync/shared_state.py). A refresh
takes a short lease in the store, so among all threads and processes exactly one mints while the others wait and
reuse its token. Mints are counted per refresh token so Zoho's 10-per-10-minutes limit is never crossed (§2.2).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Protocol

import requests

from zoho_sync import redaction
from zoho_sync.client.errors import ZohoAuthError, ZohoConnectionError, ZohoCredentialsError, ZohoRateLimitError

logger = logging.getLogger(__name__)

MINT_LIMIT = 10  # access tokens per refresh token ...
MINT_WINDOW = 600.0  # ... per rolling 10 minutes (§2.2, §12.4)
# A token is refreshed ahead of expiry by the smaller of the provider's margin (5 minutes) and this share of its
# own lifetime. Zoho chooses `expires_in` (3600 s today, where the 5 minutes apply); a token living less than the
# margin would otherwise be stale on arrival and cost a mint per call, using up the 10 mints in seconds. A tenth
# keeps a short token working for 90 % of its life, so it costs one mint per lifetime, and still leaves it ahead
# of the clock skew and network time the margin is for (a 401 is refreshed and replayed once in any case).
REFRESH_LIFETIME_SHARE = 0.1


@dataclass
class TokenState:
    access_token: str = ""
    expires_at: float = 0.0
    lifetime: float = 0.0  # seconds the token was issued for; 0 when unknown (stored before this field existed)
    mints: list[float] = field(default_factory=list)
    lease_holder: str = ""
    lease_until: float = 0.0
    throttled_until: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> TokenState:
        """Missing keys take their defaults and unknown ones are ignored, so versions can share a stored state."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


class TokenStore(Protocol):
    """Apply `change(state) -> (new_state, result)` atomically to one refresh token's state; return the result."""

    def update(self, key: str, change: Callable[[TokenState], tuple[TokenState, object]]) -> object: ...


class MemoryTokenStore:
    def __init__(self):
        self._lock = threading.Lock()
        self._states: dict[str, TokenState] = {}

    def update(self, key, change):
        with self._lock:
            new, result = change(self._states.get(key, TokenState()))
            self._states[key] = new
            return result


class TokenThrottledError(ZohoRateLimitError):
    """Zoho's token endpoint would refuse another mint now; waiting for the window is the only remedy."""

    retryable = False


class TokenProvider:
    """Hands out a valid access token, refreshing single-flight ahead of expiry."""

    def __init__(self, *, accounts_url: str, client_id: str, client_secret: str, refresh_token: str,
                 store: TokenStore | None = None, session: requests.Session | None = None,
                 timeout: tuple[float, float] = (5.0, 30.0), refresh_margin: float = 300.0,
                 lease_seconds: float = 30.0, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.token_url = f"{accounts_url.rstrip('/')}/oauth/v2/token"
        self._client_id, self._client_secret, self._refresh_token = client_id, client_secret, refresh_token
        for secret in (client_secret, refresh_token):
            redaction.secret_register(secret)
        self.key = hashlib.sha256(f"{accounts_url}|{client_id}|{refresh_token}".encode()).hexdigest()
        self.store = store or MemoryTokenStore()
        self.session = session or requests.Session()
        self.timeout, self.refresh_margin, self.lease_seconds = timeout, refresh_margin, lease_seconds
        self.clock, self.sleep = clock, sleep
        self._local = threading.Lock()  # threads of this process queue here instead of polling the store
        self._held: tuple[str, float] = ("", 0.0)  # this process's copy and when to refresh it: no store read
        self.mints = 0  # tokens this process minted (tests and metrics)

    def __repr__(self) -> str:
        return f"TokenProvider(token_url={self.token_url!r})"

    def token(self, *, max_wait: float = 60.0) -> str:
        """Return a valid access token, minting one if none is fresh (this process or another may do it)."""
        token, refresh_at = self._held
        if token and refresh_at > self.clock():
            return token
        started = self.clock()
        while True:
            fresh = self._fresh_token()
            if fresh:
                return fresh
            with self._local:
                fresh = self._fresh_token()
                if fresh:
                    return fresh
                holder = uuid.uuid4().hex
                state = self.store.update(self.key, lambda s, holder=holder: self._take_lease(s, holder))
                if state is not None:
                    return self._refresh(holder, state)
            if self.clock() - started > max_wait:
                raise ZohoConnectionError("Timed out waiting for another process to refresh the Zoho access token.")
            self.sleep(0.1)

    def invalidate(self, token: str) -> None:
        """Zoho refused `token` (401): forget it, unless another refresh already replaced it."""
        if self._held[0] == token:
            self._held = ("", 0.0)

        def change(state: TokenState):
            if state.access_token == token:
                return replace(state, access_token="", expires_at=0.0, lifetime=0.0), None
            return state, None

        self.store.update(self.key, change)

    def _refresh_at(self, expires_at: float, lifetime: float) -> float:
        """When a token expiring at `expires_at` stops being handed out: ahead by the margin or a share of its life.

        An unknown lifetime (0) gets the whole margin, as every token did before the lifetime was kept.
        """
        margin = min(self.refresh_margin, REFRESH_LIFETIME_SHARE * lifetime) if lifetime > 0 else self.refresh_margin
        return expires_at - margin

    def _is_fresh(self, state: TokenState, now: float) -> bool:
        return bool(state.access_token) and self._refresh_at(state.expires_at, state.lifetime) > now

    def _fresh_token(self) -> str:
        now = self.clock()

        def read(state: TokenState):
            if self._is_fresh(state, now):
                self._held = (state.access_token, self._refresh_at(state.expires_at, state.lifetime))
                return state, state.access_token
            if state.throttled_until > now:
                return state, TokenThrottledError(
                    "Zoho allows 10 access tokens per refresh token in 10 minutes and they are used up; "
                    "calls resume when the window passes.", retry_after=state.throttled_until - now)
            return state, ""

        result = self.store.update(self.key, read)
        if isinstance(result, Exception):
            raise result
        return result

    def _take_lease(self, state: TokenState, holder: str):
        now = self.clock()
        if state.lease_until > now and state.lease_holder != holder:
            return state, None
        return replace(state, lease_holder=holder, lease_until=now + self.lease_seconds), state

    def _release(self, holder: str, **changes) -> None:
        def change(state: TokenState):
            if state.lease_holder == holder:
                state = replace(state, lease_holder="", lease_until=0.0)
            return replace(state, **changes), None

        self.store.update(self.key, change)

    def _refresh(self, holder: str, state: TokenState) -> str:
        now = self.clock()
        if self._is_fresh(state, now):
            self._release(holder)  # another process refreshed between our read and our lease
            return state.access_token
        recent = sorted(t for t in state.mints if t > now - MINT_WINDOW)
        if len(recent) >= MINT_LIMIT:
            until = recent[0] + MINT_WINDOW
            self._release(holder, throttled_until=until, mints=recent)
            raise TokenThrottledError(
                f"{len(recent)} access tokens were minted in the last 10 minutes, Zoho's limit; not asking for "
                "another until the window passes.", retry_after=until - now)
        try:
            body = self._post_token_request()
        except BaseException:
            self._release(holder)
            raise
        error = str(body.get("error", "")) if isinstance(body, dict) else "unreadable answer"
        if error:
            self._release(holder, **({"throttled_until": now + MINT_WINDOW} if error == "Access Denied" else {}))
            raise self._token_error(error, body)
        token = str(body.get("access_token", ""))
        if not token:
            self._release(holder)
            raise ZohoAuthError("The Zoho token endpoint answered without an access token.", method="POST",
                                path="/oauth/v2/token")
        redaction.secret_register(token)
        expires_in = max(0.0, float(body.get("expires_in", 3600)))
        self._release(holder, access_token=token, expires_at=now + expires_in, lifetime=expires_in,
                      mints=[*recent, now], throttled_until=0.0)
        self._held = (token, self._refresh_at(now + expires_in, expires_in))
        self.mints += 1
        logger.info("Minted a Zoho access token valid for %.0f s", expires_in)
        return token

    def _post_token_request(self):
        data = {"grant_type": "refresh_token", "client_id": self._client_id, "client_secret": self._client_secret,
                "refresh_token": self._refresh_token}
        try:
            response = self.session.post(self.token_url, data=data, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ZohoConnectionError(f"Could not reach the Zoho accounts server: {type(exc).__name__}",
                                      method="POST", path="/oauth/v2/token") from None
        try:
            return response.json()
        except ValueError:
            if response.status_code >= 500:
                raise ZohoConnectionError(f"The Zoho accounts server answered HTTP {response.status_code}.",
                                          method="POST", path="/oauth/v2/token",
                                          status_code=response.status_code) from None
            return {"error": f"HTTP {response.status_code} without JSON"}

    @staticmethod
    def _token_error(error: str, body: dict) -> Exception:
        if error == "invalid_code":
            return ZohoCredentialsError(
                "Zoho refused the refresh token (invalid_code): it is wrong, revoked, or was issued for another "
                "client or data center. Generate a new refresh token for this client (one consent with the "
                "ZohoSubscriptions scopes, access_type=offline) and set ZOHO_REFRESH_TOKEN.")
        if error == "invalid_client":
            return ZohoCredentialsError(
                "Zoho refused the OAuth client (invalid_client): check ZOHO_CLIENT_ID and ZOHO_CLIENT_SECRET, and "
                "that ZOHO_DATA_CENTER (or ZOHO_ACCOUNTS_URL) is the data center the client was created in.")
        if error == "Access Denied":
            return TokenThrottledError(
                "Zoho's token endpoint refused a new access token (too many in 10 minutes); waiting for the "
                "window to pass.", retry_after=MINT_WINDOW, zoho_message=str(body.get("error_description", "")))
        return ZohoAuthError(f"The Zoho token endpoint refused the request: {error}.", method="POST",
                             path="/oauth/v2/token")
