"""ZohoClient: one connection pool, the org header, JSON envelopes, pagination, the rate budget and retries.

Returns plain dicts and knows nothing about models. Every failure leaves as a ZohoError (errors.py). Reads are
retried; a write that may have reached Zoho is never retried blindly (ZohoOutcomeUnknownError), so the sync engine
can look the record up first.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from zoho_sync.client.auth import TokenProvider, TokenStore
from zoho_sync.client.budget import BudgetBackend, BudgetPolicy, Priority, RateBudget
from zoho_sync.client.errors import (
    ZohoAPIError,
    ZohoAuthError,
    ZohoConnectionError,
    ZohoError,
    ZohoOutcomeUnknownError,
    ZohoRateLimitError,
    ZohoServerError,
    error_for_response,
)
from zoho_sync.client.retry import RetryPolicy

logger = logging.getLogger(__name__)

ORG_HEADER = "X-com-zoho-subscriptions-organizationid"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
MAX_LATE_TURNS = 3  # turns a call may give up in a row for coming too late before it fails (retryable, never sent)


class EnvironmentOnceSession(requests.Session):
    """A requests Session that reads the proxy and CA-bundle environment variables once per host, not on every call.

    requests scans the whole environment twice a call for them (a noticeable share of a backfill's time per call).
    A process picks up changes to those variables when it starts, as it does for every other setting.
    """

    def __init__(self):
        super().__init__()
        self._environment: dict[tuple, dict] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if proxies or stream is not None or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        key = urlsplit(url)[:2]
        if key not in self._environment:
            self._environment[key] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings = self._environment[key]
        return {**settings, "proxies": dict(settings["proxies"])}


class _TokenRejected(Exception):
    def __init__(self, token: str):
        self.token = token


def endpoint_name(method: str, path: str) -> str:
    """`POST /customers/{id}/markasinactive` from `/customers/9030.../markasinactive`: ids out, for usage counts."""
    parts = path.split("?")[0].strip("/").split("/")
    return f"{method} /" + "/".join("{id}" if i % 2 == 1 else p for i, p in enumerate(parts))


class ZohoClient:
    """A Zoho Billing API client for one organization."""

    def __init__(
        self,
        *,
        api_base_url: str,
        accounts_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        organization_id: str,
        token_store: TokenStore | None = None,
        budget_backend: BudgetBackend | None = None,
        budget_policy: BudgetPolicy | None = None,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        reference_ttl: float = 300.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self.api_base_url = api_base_url.rstrip("/")
        self.organization_id = str(organization_id)
        self.session = session or EnvironmentOnceSession()
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.clock, self.sleep, self.rng = clock, sleep, rng or random.Random()
        self.tokens = TokenProvider(
            accounts_url=accounts_url, client_id=client_id, client_secret=client_secret,
            refresh_token=refresh_token, store=token_store, session=self.session, timeout=timeout,
            clock=clock, sleep=sleep,
        )
        self.budget = RateBudget(key=f"org:{self.organization_id}", policy=budget_policy or BudgetPolicy(),
                                 backend=budget_backend, clock=clock, sleep=sleep)
        self.reference_ttl = reference_ttl
        self._reference: dict[tuple, tuple[float, dict]] = {}
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"ZohoClient(api_base_url={self.api_base_url!r}, organization_id={self.organization_id!r})"

    # --- public surface -------------------------------------------------------------------------------------
    def get(self, path: str, *, params: dict | None = None, **kw) -> dict:
        return self.request("GET", path, params=params, **kw)

    def post(self, path: str, *, json: Any = None, params: dict | None = None, **kw) -> dict:
        return self.request("POST", path, json=json, params=params, **kw)

    def put(self, path: str, *, json: Any = None, params: dict | None = None, **kw) -> dict:
        return self.request("PUT", path, json=json, params=params, **kw)

    def delete(self, path: str, **kw) -> dict:
        return self.request("DELETE", path, **kw)

    def paginate(self, path: str, key: str, *, params: dict | None = None, per_page: int = 200) -> Iterator[dict]:
        """Yield the records of a list endpoint page by page, while `page_context.has_more_page` is true."""
        page = 1
        while True:
            body = self.get(path, params={**(params or {}), "page": page, "per_page": per_page})
            yield from body.get(key) or []
            if not (body.get("page_context") or {}).get("has_more_page"):
                return
            page += 1

    def get_reference(self, path: str, *, params: dict | None = None) -> dict:
        """GET reference data (plans, products) through a short-lived cache."""
        cache_key = (path, tuple(sorted((params or {}).items())))
        hit = self._reference.get(cache_key)
        if hit and hit[0] > self.clock():
            return hit[1]
        body = self.get(path, params=params)
        self._reference[cache_key] = (self.clock() + self.reference_ttl, body)
        return body

    def forget_reference(self) -> None:
        self._reference.clear()

    @contextlib.contextmanager
    def priority(self, priority: Priority):
        """Send this thread's calls at `priority` inside the block (a backfill uses Priority.BULK)."""
        previous = getattr(self._local, "priority", Priority.NORMAL)
        self._local.priority = priority
        try:
            yield self
        finally:
            self._local.priority = previous

    def close(self) -> None:
        self.session.close()

    # --- the request loop -----------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, params: dict | None = None, json: Any = None,
                idempotent: bool | None = None, priority: Priority | None = None) -> dict:
        """Send one call with retries; return the decoded body (its `code` is 0) or raise a ZohoError.

        `idempotent` defaults to True for GET/PUT/DELETE. A non-idempotent call (a create) is retried only when
        Zoho cannot have applied it: a 429, or a connection that never opened.
        """
        method = method.upper()
        idempotent = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        priority = getattr(self._local, "priority", Priority.NORMAL) if priority is None else priority
        deadline = self.clock() + self.retry.deadline
        attempt, replayed = 0, False
        while True:
            attempt += 1
            try:
                return self._send(method, path, params, json, priority, deadline, idempotent)
            except _TokenRejected as rejected:
                if replayed:
                    raise ZohoAuthError("Zoho refused a freshly minted access token (HTTP 401 twice).",
                                        method=method, path=path, status_code=401) from None
                replayed = True
                attempt -= 1  # one refresh and one replay, outside the retry count
                self.tokens.invalidate(rejected.token)
            except ZohoError as error:
                if isinstance(error, ZohoRateLimitError) and error.status_code == 429:
                    self.budget.stats.rate_limited += 1
                delay = self._retry_delay(error, attempt, idempotent)
                if delay is None or attempt >= self.retry.max_attempts or self.clock() + delay > deadline:
                    raise
                logger.warning("Retrying %s %s in %.1f s after attempt %d: %s", method, path, delay, attempt, error)
                self.sleep(delay)

    def _retry_delay(self, error: ZohoError, attempt: int, idempotent: bool) -> float | None:
        """Seconds to wait before trying again, or None when this error must not be retried."""
        if isinstance(error, ZohoRateLimitError) and error.status_code == 429:
            if error.is_daily_quota:
                # Zoho's quota resets at 00:00 UTC: that is when to try again, Retry-After or not.
                until_midnight = self.budget.exhaust_day()
                error.retry_after = max(error.retry_after or 0.0, until_midnight)
                return None
            if error.is_lockout:
                # Every process pauses through the shared budget; our next acquire() waits it out.
                self.budget.block(max(self.retry.lockout_wait, error.retry_after or 0))
                return 0.0
            return self.retry.wait_for(error, attempt, self.rng)  # 429 means Zoho applied nothing: safe
        if not error.retryable:
            return None
        if not idempotent and not error.never_sent:
            return None
        return self.retry.wait_for(error, attempt, self.rng)

    def _token(self) -> str:
        try:
            return self.tokens.token()
        except ZohoError as error:
            error.never_sent = True  # the API call itself was never made
            raise

    def _send(self, method, path, params, json, priority, deadline, idempotent) -> dict:
        """One request in a turn of the budget. Every request that reaches Zoho has its turn: a retry or a replay
        after a 401 comes back here for a new one. The token is minted (when due) before the turn, so the mint
        never makes the call late; a call not sent within `late_limit` of its turn (the process stalled) gives the
        turn up and asks for another, so no call reaches Zoho later than the pace's safety margin allows."""
        self._token()
        for _ in range(MAX_LATE_TURNS + 1):
            holder = self.budget.acquire(priority=priority, max_wait=max(0.0, deadline - self.clock()))
            started = self.clock()
            try:
                token = self._token()  # held in memory: no I/O unless it came due during the wait
                headers = {"Authorization": f"Zoho-oauthtoken {token}", ORG_HEADER: self.organization_id}
                if json is not None:
                    headers["Content-Type"] = "application/json"
                late = self.budget.late_for_turn()
                if late > self.budget.policy.late_limit:
                    self.budget.forgo(holder)
                    holder = ""
                    logger.info("%s %s was %.2f s late for its turn; it gives the turn up and asks for another",
                                method, path, late)
                    continue
                try:
                    response = self.session.request(method, f"{self.api_base_url}/{path.lstrip('/')}",
                                                    params=params, json=json, headers=headers, timeout=self.timeout)
                except requests.RequestException as exc:
                    raise self._connection_error(exc, method, path, idempotent) from None
            except BaseException:
                if holder:
                    self.budget.release(holder, endpoint=endpoint_name(method, path))
                raise
            self.budget.release(holder, endpoint=endpoint_name(method, path))
            break
        else:
            error = ZohoRateLimitError(f"{method} {path} came too late for {MAX_LATE_TURNS + 1} turns in a row (this "
                                       "process is stalling); not sent, so Zoho's window keeps its margin.",
                                       method=method, path=path, retry_after=1.0)
            error.never_sent = True
            raise error
        logger.debug("%s %s -> %s in %.0f ms", method, path, response.status_code, (self.clock() - started) * 1000)
        if response.status_code == 401:
            raise _TokenRejected(token)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict) or body.get("code", 0) != 0:
            if body is None and response.status_code < 400:
                raise ZohoAPIError("Zoho answered with a body that is not JSON.", method=method, path=path,
                                   status_code=response.status_code)
            raise error_for_response(method=method, path=path, status_code=response.status_code,
                                     body=body if body is not None else response.text[:300],
                                     headers=dict(response.headers))
        return body

    @staticmethod
    def _connection_error(exc: requests.RequestException, method: str, path: str, idempotent: bool) -> ZohoError:
        never_sent = isinstance(exc, requests.ConnectTimeout) or isinstance(
            getattr(exc.args[0], "reason", None) if exc.args else None, NewConnectionError)
        what = type(exc).__name__
        if not never_sent and not idempotent:
            error: ZohoError = ZohoOutcomeUnknownError(
                f"No answer to a write ({what}); Zoho may have applied it, so it is not sent again blindly.",
                method=method, path=path)
        else:
            error = ZohoConnectionError(f"Could not talk to Zoho ({what}).", method=method, path=path)
        error.never_sent = never_sent
        return error


__all__ = ["ORG_HEADER", "Priority", "ZohoClient", "ZohoServerError", "endpoint_name"]
