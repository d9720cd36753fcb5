"""ZohoSandbox: the store, the app and the runner together, with the hooks tests and benchmarks script.

    with ZohoSandbox(clock=ManualClock()) as zoho:       # serves on 127.0.0.1, a free port
        requests.post(f"{zoho.accounts_url}/oauth/v2/token", params={...})
        zoho.fail_next("POST", "/customers", status=429, code="TOO_MANY_CONCURRENT")
        zoho.clock.advance(3600)                          # tokens expire without sleeping
        hold = zoho.hold_next("POST", "/customers")       # park the next create before it is applied
        ...; hold.wait_arrived(); ...; hold.release()
        zoho.pay_invoice(invoice_id); zoho.renew_subscription(sub_id)   # Zoho-side actions (actions.py)

Every hook is also served over HTTP under /__sandbox__/ (see admin.py) for other processes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from zoho_sync.client.codes import ZohoCode
from zoho_sync.sandbox.actions import ZohoSideActions
from zoho_sync.sandbox.admin import AdminApi
from zoho_sync.sandbox.app import ORG_HEADER, SandboxApp
from zoho_sync.sandbox.clock import ManualClock, SystemClock
from zoho_sync.sandbox.config import SandboxConfig
from zoho_sync.sandbox.faults import FaultInjector, FaultRule
from zoho_sync.sandbox.holds import SAFETY_TIMEOUT, Hold, Holds
from zoho_sync.sandbox.limits import Limiter
from zoho_sync.sandbox.oauth import TokenRegistry
from zoho_sync.sandbox.persistence import StateFile
from zoho_sync.sandbox.recorder import Recorder
from zoho_sync.sandbox.resources import ID_KEYS, REACTIONS, SEEDERS, TABLES, build_router
from zoho_sync.sandbox.server import ServerRunner
from zoho_sync.sandbox.store import Store, public
from zoho_sync.sandbox.webhooks import WebhookDispatcher


class ZohoSandbox(ZohoSideActions):
    """A local Zoho Billing v1 server. Keyword settings are SandboxConfig fields (credentials, limits, faults).

    The Zoho-side actions (pay_invoice, renew_subscription, ..., edit_record, delete_record, drop_webhooks) come
    from ZohoSideActions (actions.py): each resource's as registered by its Resource row, and the generic ones.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, clock: Any = None, state_file: str | None = None,
                 state_interval: float = 2.0, sleep: Callable[[float], None] | None = None, **settings: Any) -> None:
        self.clock = clock or SystemClock()
        self._initial = SandboxConfig().updated(**settings)
        self.config = self._initial
        current = lambda: self.config  # noqa: E731 - components read the live config on every use
        self.store = Store(self.clock, current, tables=TABLES, reactions=REACTIONS)
        self.tokens = TokenRegistry(self.clock, current)
        self.limiter = Limiter(self.clock, current)
        self.faults = FaultInjector(current)
        self.holds = Holds()
        self.recorder = Recorder(self.config.request_log_size)
        self.router = build_router()
        self.webhooks = WebhookDispatcher(self.store, current)
        self.store.listeners.append(self.webhooks.enqueue)
        self.admin = AdminApi(self)
        self.app = SandboxApp(self)
        self.state_file = StateFile(state_file, self.store, self.tokens, state_interval) if state_file else None
        self._sleep = sleep
        self._stopping = threading.Event()
        self._address = (host, port)
        self._runner: ServerRunner | None = None

    # -- running -----------------------------------------------------------------------------------------
    def start(self) -> ZohoSandbox:
        if self.state_file:
            self.state_file.load()
            self.state_file.start()
        self._stopping.clear()
        self._runner = ServerRunner(self.app, *self._address)
        self._runner.start()
        self.webhooks.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # cuts latency and slow-answer sleeps short
        self.holds.release_all()
        if self._runner:
            self._runner.stop()
            self._runner = None
        self.webhooks.stop()
        if self.state_file:
            self.state_file.stop()

    def __enter__(self) -> ZohoSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return f"http://{self._runner.host}:{self._runner.port}"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def base_url(self) -> str:
        """The API root to configure as ZOHO_API_BASE_URL."""
        return f"{self.url}/billing/v1"

    @property
    def accounts_url(self) -> str:
        """The accounts (OAuth) server root to configure as ZOHO_ACCOUNTS_URL."""
        return self.url

    def sleep(self, seconds: float) -> None:
        """Latency and slow-answer faults wait here; cut short by stop()."""
        if self._sleep:
            self._sleep(seconds)
        else:
            self._stopping.wait(seconds)

    # -- scripting hooks ---------------------------------------------------------------------------------
    def configure(self, **changes: Any) -> SandboxConfig:
        """Change limits, faults, webhooks or credentials now (see SandboxConfig for the names)."""
        self.config = self.config.updated(**changes)
        if "seed" in changes:
            self.faults.reseed(self.config.seed)
        return self.config

    def fail_next(self, method: str, path: str, status: int | None = None, code: ZohoCode | str | int | None = None,
                  times: int = 1, kind: str = "error", seconds: float | None = None,
                  retry_after: int | None = None) -> FaultRule:
        """Make the next `times` matching requests fail. `path` is an API path prefix ("/customers") or a pattern
        ("/customers/{id}", "/invoices/*/void"); kind is error, reset, timeout, lose_response or latency."""
        return self.faults.fail_next(method, path, status=status, code=code, times=times, kind=kind,
                                     seconds=seconds, retry_after=retry_after)

    def hold_next(self, method: str, path: str, *, times: int = 1, when: str = "before",
                  timeout: float = SAFETY_TIMEOUT) -> Hold:
        """Park the next `times` matching requests until `release()` (method "*" and paths as in fail_next).

        when="before": held after auth and limits, before the handler (nothing written yet); when="after":
        the handler ran and its write is stored, the answer is held. `Hold.wait_arrived()` blocks until one
        is parked. reset(), stop() and the safety `timeout` (seconds) also let held requests go on.
        """
        return self.holds.add(method, path, times=times, when=when, timeout=timeout)

    def expire_tokens(self) -> int:
        return self.tokens.expire_all()

    def revoke_refresh_token(self, refresh_token: str | None = None) -> None:
        self.tokens.revoke(refresh_token or self.config.refresh_token)

    def seed(self, resource: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store records through the API's rules (no events, no limits); ids given in the records are kept."""
        if resource not in SEEDERS:
            raise ValueError(f"cannot seed {resource!r}; use one of {', '.join(SEEDERS)}")
        with self.store.lock:
            return [public(SEEDERS[resource](self.store, dict(r), record_id=r.get(ID_KEYS[resource])))
                    for r in records]

    def reset(self) -> None:
        """Back to a fresh start: data, tokens, limits, faults, holds (released), log, config and (manual) clock."""
        self.config = self._initial
        self.holds.release_all()
        self.webhooks.clear()
        self.store.clear()
        self.tokens.clear()
        self.limiter.reset()
        self.faults.reset()
        self.recorder.clear()
        self.clock.reset()

    def advance(self, seconds: float) -> None:
        self._manual_clock().advance(seconds)

    def set_time(self, when: float) -> None:
        self._manual_clock().set(when)

    def _manual_clock(self) -> ManualClock:
        if not isinstance(self.clock, ManualClock):
            raise ValueError("the sandbox runs on the system clock; start it with clock=ManualClock()")
        return self.clock

    def access_token(self) -> str:
        """Mint a token without HTTP (it counts toward the mint limits like any other)."""
        status, body = self.tokens.mint(client_id=self.config.client_id, client_secret=self.config.client_secret,
                                        refresh_token=self.config.refresh_token, api_domain=self.url)
        if status != 200 or "access_token" not in body:
            raise RuntimeError(f"could not mint a sandbox token: {body}")
        return body["access_token"]

    def headers(self, token: str | None = None) -> dict[str, str]:
        """The headers an API call needs: a fresh token (unless given) and the organization id."""
        return {"Authorization": f"Zoho-oauthtoken {token or self.access_token()}",
                ORG_HEADER: self.config.organization_id}

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        return self.webhooks.wait_idle(timeout)

    # -- reading -----------------------------------------------------------------------------------------
    def requests(self, method: str | None = None, path: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        return self.recorder.entries(method, path, since)

    def last_request(self, method: str | None = None, path: str | None = None) -> dict[str, Any]:
        entries = self.requests(method, path)
        if not entries:
            raise AssertionError(f"the sandbox received no {method or ''} {path or ''} request".replace("  ", " "))
        return entries[-1]

    def counters(self) -> dict[str, Any]:
        return self.recorder.counters()

    def records(self, resource: str) -> list[dict[str, Any]]:
        if resource not in self.store.tables:
            raise ValueError(f"unknown resource {resource!r}")
        with self.store.lock:
            return [public(r) for r in self.store.all(resource)]

    def state(self) -> dict[str, Any]:
        with self.store.lock:
            counts = self.store.counts()
        return {"base_url": self.base_url, "accounts_url": self.accounts_url, "now": self.clock.time(),
                "config": self.config.as_dict(), "counts": counts, "tokens": self.tokens.stats(),
                "limits": self.limiter.stats(), "pending_faults": self.faults.pending(),
                "holds": self.holds.pending(), "webhook_drops_pending": self.webhooks.drops_pending}
