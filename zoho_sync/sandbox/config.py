"""The sandbox's settings: credentials, limits, faults and webhooks, all changeable at run time.

`SandboxConfig.updated(**changes)` is what `configure()` (in-process or over the admin prefix) calls; it
accepts strings too, so the management command and the admin JSON API share one parser.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CLIENT_ID = "1000.SANDBOXCLIENTID0000000000000"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret-0000000000000000000"  # noqa: S105 - demo value, documented
DEFAULT_REFRESH_TOKEN = "1000.sandbox0refresh0token.0000000000000000"  # noqa: S105 - demo value, documented
DEFAULT_ORGANIZATION_ID = "10234695"

FAULT_RATES = ("reset_rate", "timeout_rate", "error_rate", "lose_response_rate")
SECRET_FIELDS = ("client_secret", "refresh_token", "webhook_secret")  # never shown by as_dict()
REDACTED = "<redacted>"


@dataclass(frozen=True)
class SandboxConfig:
    # Credentials the token endpoint and the org-header check accept (zoho-billing-api.md §2, §12.8).
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    refresh_token: str = DEFAULT_REFRESH_TOKEN
    organization_id: str = DEFAULT_ORGANIZATION_ID
    organization_name: str = "Zoho Sandbox Organization"
    currency_code: str = "USD"
    currency_symbol: str = "$"
    # Per-organization limits (§12.1, §12.2); 0 switches a limit off.
    per_minute: int = 100
    lockout_seconds: float = 60.0
    daily: int = 1000
    concurrency: int = 10
    send_retry_after: bool = False
    # Strict as Zoho may be: a request refused for its token (401) counts toward the per-minute and daily limits
    # too (Zoho documents no exception), so a client's expired-token replays must fit its budget.
    count_unauthorized: bool = False
    concurrency_retry_after: int = 1
    # OAuth (§2.2, §12.4).
    token_ttl: int = 3600
    token_mint_limit: int = 10
    token_mint_window: float = 600.0
    max_active_tokens: int = 10
    # Seeded fault injection; the rates are fractions of matching requests.
    seed: int = 0
    error_rate: float = 0.0
    reset_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 30.0
    lose_response_rate: float = 0.0
    latency: float = 0.0
    fault_methods: tuple[str, ...] = ()
    fault_paths: tuple[str, ...] = ()
    # Business rules and housekeeping.
    check_duplicate_display_name: bool = True  # §12.3: switchable so exactly-once tests see real duplicates
    require_item_product_id: bool = True  # §12.11: invoice lines need an existing product; off: a name will do
    events_retention_days: int = 180  # §12.12
    max_per_page: int = 200  # §12.10
    request_log_size: int = 10000
    # Outgoing webhooks (§12.5).
    webhook_url: str = ""
    webhook_secret: str = ""
    webhook_deliveries: int = 1
    webhook_delay: float = 0.0
    webhook_timeout: float = 5.0
    webhook_encoding: str = "hex"
    webhook_params: dict[str, str] = field(default_factory=dict)

    def updated(self, **changes: Any) -> SandboxConfig:
        """Return a copy with `changes` applied, coercing strings; unknown names and bad values raise ValueError."""
        defaults = {f.name: f for f in dataclasses.fields(self)}
        coerced = {}
        for name, value in changes.items():
            if name not in defaults:
                raise ValueError(f"unknown sandbox setting {name!r}; known: {', '.join(sorted(defaults))}")
            coerced[name] = _coerce(name, getattr(self, name), value)
        new = dataclasses.replace(self, **coerced)
        new.check()
        return new

    def check(self) -> None:
        for name in (*FAULT_RATES,):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if sum(getattr(self, name) for name in FAULT_RATES) > 1.0:
            raise ValueError(f"the fault rates ({', '.join(FAULT_RATES)}) must add up to at most 1")
        if self.webhook_encoding not in ("hex", "base64"):
            raise ValueError("webhook_encoding must be 'hex' or 'base64'")
        for name in ("per_minute", "daily", "concurrency", "webhook_deliveries", "max_per_page", "token_ttl"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data for state() and the admin prefix, the secrets redacted."""
        data = dataclasses.asdict(self)
        data.update({name: REDACTED for name in SECRET_FIELDS if data[name]})
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def _coerce(name: str, current: Any, value: Any) -> Any:
    try:
        if isinstance(current, bool):
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return lowered in ("true", "1", "yes", "on")
            return bool(value)
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, tuple):
            items = value.replace(";", ",").split(",") if isinstance(value, str) else list(value or ())
            return tuple(str(v).strip() for v in items if str(v).strip())
        if isinstance(current, dict):
            if not isinstance(value, dict):
                raise ValueError(value)
            return {str(k): str(v) for k, v in value.items()}
        return "" if value is None else str(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid value for {name}: {value!r}") from exc
