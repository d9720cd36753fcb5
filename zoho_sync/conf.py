"""Zoho settings as a validated, frozen object, read from Django settings when asked for (never at import).

`get_zoho_settings()` is how application code reads configuration; the data-center table lives here because
choosing the URLs is part of validating the settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class ZohoConfigurationError(ImproperlyConfigured):
    """The Zoho settings are missing or inconsistent: the deployment, not one record, is broken."""


@dataclass(frozen=True)
class DataCenter:
    api_base_url: str
    accounts_url: str


# zoho-billing-api.md §1.1; Canada's accounts host follows Zoho's docs (§12.4), overridable by setting.
DATA_CENTERS: dict[str, DataCenter] = {
    "com": DataCenter("https://www.zohoapis.com/billing/v1", "https://accounts.zoho.com"),
    "eu": DataCenter("https://www.zohoapis.eu/billing/v1", "https://accounts.zoho.eu"),
    "in": DataCenter("https://www.zohoapis.in/billing/v1", "https://accounts.zoho.in"),
    "com.au": DataCenter("https://www.zohoapis.com.au/billing/v1", "https://accounts.zoho.com.au"),
    "jp": DataCenter("https://www.zohoapis.jp/billing/v1", "https://accounts.zoho.jp"),
    "ca": DataCenter("https://www.zohoapis.ca/billing/v1", "https://accounts.zohocloud.ca"),
    "com.cn": DataCenter("https://www.zohoapis.com.cn/billing/v1", "https://accounts.zoho.com.cn"),
    "sa": DataCenter("https://www.zohoapis.sa/billing/v1", "https://accounts.zoho.sa"),
}

# The Zoho Billing web app per data center, where the admin links a synced record (Zoho documents no deep links;
# these are the app's own addresses, `<host>/app/<organization id>#/<resource>/<id>`). ZOHO_WEB_APP_URL overrides.
WEB_APP_HOSTS = {"com": "https://billing.zoho.com", "eu": "https://billing.zoho.eu", "in": "https://billing.zoho.in",
                 "com.au": "https://billing.zoho.com.au", "jp": "https://billing.zoho.jp",
                 "ca": "https://billing.zohocloud.ca", "com.cn": "https://billing.zoho.com.cn",
                 "sa": "https://billing.zoho.sa"}


def zoho_web_url(path: str, zoho_id: str) -> str:
    """The record's page in Zoho's web app for the configured data center and organization; "" when unknown.
    `path` is the resource's part of the address (an entity's spec.web_app_path: "invoices")."""
    organization = _str_setting("ZOHO_ORGANIZATION_ID")
    base = _str_setting("ZOHO_WEB_APP_URL") or WEB_APP_HOSTS.get(_str_setting("ZOHO_DATA_CENTER") or "com", "")
    if not (zoho_id and organization and base and path):
        return ""
    return f"{base.rstrip('/')}/app/{organization}#/{path}/{zoho_id}"


CREDENTIAL_SETTINGS = ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN", "ZOHO_ORGANIZATION_ID")


@dataclass(frozen=True)
class ZohoLimits:
    """The rate budget, timeouts and retry settings (defaults follow zoho-billing-api.md §12.1-12.2)."""

    per_minute: int = 100
    headroom: float = 0.1
    daily_limit: int = 1000
    daily_reserve: int = 100
    bulk_share: float = 0.8
    max_concurrency: int = 10
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retry_max_attempts: int = 5
    retry_deadline: float = 180.0
    lockout_seconds: float = 60.0
    reference_cache_seconds: float = 300.0
    redis_url: str = ""


LIMIT_SETTINGS = {
    "per_minute": "ZOHO_RATE_LIMIT_PER_MINUTE",
    "headroom": "ZOHO_RATE_HEADROOM",
    "daily_limit": "ZOHO_DAILY_LIMIT",
    "daily_reserve": "ZOHO_DAILY_RESERVE",
    "bulk_share": "ZOHO_BULK_SHARE",
    "max_concurrency": "ZOHO_MAX_CONCURRENCY",
    "connect_timeout": "ZOHO_CONNECT_TIMEOUT",
    "read_timeout": "ZOHO_READ_TIMEOUT",
    "retry_max_attempts": "ZOHO_RETRY_MAX_ATTEMPTS",
    "retry_deadline": "ZOHO_RETRY_DEADLINE",
    "lockout_seconds": "ZOHO_LOCKOUT_SECONDS",
    "reference_cache_seconds": "ZOHO_REFERENCE_CACHE_SECONDS",
    "redis_url": "REDIS_URL",
}


@dataclass(frozen=True)
class ZohoSettings:
    client_id: str
    client_secret: str
    refresh_token: str
    organization_id: str
    data_center: str
    api_base_url: str
    accounts_url: str
    limits: ZohoLimits = ZohoLimits()

    def __repr__(self) -> str:  # never show the secrets, even in a traceback's locals
        return (
            f"ZohoSettings(organization_id={self.organization_id!r}, data_center={self.data_center!r}, "
            f"api_base_url={self.api_base_url!r}, accounts_url={self.accounts_url!r})"
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs, sync logs or error text."""
        return tuple(v for v in (self.client_secret, self.refresh_token) if v)


def _str_setting(name: str) -> str:
    return str(getattr(settings, name, "") or "").strip()


def resolve_urls(*, data_center: str, api_base_url: str = "", accounts_url: str = "") -> DataCenter:
    """Return the API and accounts URLs for a data center, explicit overrides winning."""
    dc = DATA_CENTERS.get(data_center)
    if dc is None and not (api_base_url and accounts_url):
        raise ZohoConfigurationError(
            f"ZOHO_DATA_CENTER={data_center!r} is not a Zoho data center; use one of "
            f"{', '.join(DATA_CENTERS)}, or set both ZOHO_API_BASE_URL and ZOHO_ACCOUNTS_URL."
        )
    return DataCenter(
        api_base_url=(api_base_url or dc.api_base_url).rstrip("/"),
        accounts_url=(accounts_url or dc.accounts_url).rstrip("/"),
    )


def _settings_object(kind: type, names: dict[str, str]):
    """A settings dataclass from the Django settings named in `names` (field -> setting), defaults where unset."""
    defaults = kind()
    values = {}
    for field_name, setting in names.items():
        default = getattr(defaults, field_name)
        value = getattr(settings, setting, default)
        value = default if value is None else value
        values[field_name] = tuple(value) if isinstance(default, tuple) else type(default)(value)
    return kind(**values)


def get_zoho_limits() -> ZohoLimits:
    """The rate budget, timeouts and retries from settings now, defaults where unset."""
    return _settings_object(ZohoLimits, LIMIT_SETTINGS)


def limits_problems(limits: ZohoLimits) -> list[str]:
    checks = [
        (limits.per_minute >= 1, "ZOHO_RATE_LIMIT_PER_MINUTE must be at least 1."),
        (0 <= limits.headroom < 1, "ZOHO_RATE_HEADROOM must be a share from 0 to below 1, like 0.1."),
        (limits.daily_limit >= 1, "ZOHO_DAILY_LIMIT must be at least 1."),
        (0 <= limits.daily_reserve < limits.daily_limit, "ZOHO_DAILY_RESERVE must be below ZOHO_DAILY_LIMIT."),
        (0 < limits.bulk_share <= 1, "ZOHO_BULK_SHARE must be a share above 0 and at most 1, like 0.8."),
        (1 <= limits.max_concurrency <= 10, "ZOHO_MAX_CONCURRENCY must be from 1 to 10 (Zoho refuses the 11th)."),
        (limits.connect_timeout > 0 and limits.read_timeout > 0, "ZOHO_CONNECT_TIMEOUT and ZOHO_READ_TIMEOUT "
                                                                  "must be positive."),
        (limits.retry_max_attempts >= 1, "ZOHO_RETRY_MAX_ATTEMPTS must be at least 1."),
    ]
    return [message for ok, message in checks if not ok]


def zoho_settings_problems() -> list[str]:
    """List what is wrong with the Zoho settings, one readable sentence each, naming the variable."""
    problems = [
        f"{name} is not set (environment variable {name})." for name in CREDENTIAL_SETTINGS if not _str_setting(name)
    ]
    try:
        resolve_urls(
            data_center=_str_setting("ZOHO_DATA_CENTER") or "com",
            api_base_url=_str_setting("ZOHO_API_BASE_URL"),
            accounts_url=_str_setting("ZOHO_ACCOUNTS_URL"),
        )
    except ZohoConfigurationError as exc:
        problems.append(str(exc))
    for name in ("ZOHO_API_BASE_URL", "ZOHO_ACCOUNTS_URL"):
        value = _str_setting(name)
        if value and not value.startswith(("http://", "https://")):
            problems.append(f"{name}={value!r} is not an http(s) URL.")
    try:
        problems.extend(limits_problems(get_zoho_limits()))
    except (TypeError, ValueError) as exc:
        problems.append(f"A Zoho rate-limit setting is not a number: {exc}.")
    return problems


def get_zoho_settings() -> ZohoSettings:
    """Read and validate the Zoho settings now; raise ZohoConfigurationError naming every problem."""
    problems = zoho_settings_problems()
    if problems:
        raise ZohoConfigurationError("Zoho is not configured: " + " ".join(problems))
    data_center = _str_setting("ZOHO_DATA_CENTER") or "com"
    urls = resolve_urls(
        data_center=data_center,
        api_base_url=_str_setting("ZOHO_API_BASE_URL"),
        accounts_url=_str_setting("ZOHO_ACCOUNTS_URL"),
    )
    return ZohoSettings(
        client_id=_str_setting("ZOHO_CLIENT_ID"),
        client_secret=_str_setting("ZOHO_CLIENT_SECRET"),
        refresh_token=_str_setting("ZOHO_REFRESH_TOKEN"),
        organization_id=_str_setting("ZOHO_ORGANIZATION_ID"),
        data_center=data_center,
        api_base_url=urls.api_base_url,
        accounts_url=urls.accounts_url,
        limits=get_zoho_limits(),
    )


@dataclass(frozen=True)
class SyncSettings:
    """The sync engine's timings and rules (the SYNC_* settings), read when asked for; defaults where unset."""

    debounce_seconds: float = 5.0
    triggers_enabled: bool = True
    excluded_account_types: tuple[str, ...] = ("internal_test",)
    outcome_recheck_seconds: float = 30.0
    retry_window_seconds: float = 300.0
    dependency_retry_seconds: float = 300.0
    retry_base_seconds: float = 30.0
    max_attempts: int = 8
    claim_lease_seconds: float = 900.0
    backfill_workers: int = 0  # 0: chosen for the database and the machine (services.backfill_workers)


SYNC_SETTINGS = {
    "debounce_seconds": "SYNC_DEBOUNCE_SECONDS",
    "triggers_enabled": "SYNC_TRIGGERS_ENABLED",
    "excluded_account_types": "SYNC_EXCLUDED_ACCOUNT_TYPES",
    "outcome_recheck_seconds": "SYNC_OUTCOME_RECHECK_SECONDS",
    "retry_window_seconds": "SYNC_RETRY_WINDOW_SECONDS",
    "dependency_retry_seconds": "SYNC_DEPENDENCY_RETRY_SECONDS",
    "retry_base_seconds": "SYNC_RETRY_BASE_SECONDS",
    "max_attempts": "SYNC_MAX_ATTEMPTS",
    "claim_lease_seconds": "SYNC_CLAIM_LEASE_SECONDS",
    "backfill_workers": "SYNC_BACKFILL_WORKERS",
}


def get_sync_settings() -> SyncSettings:
    """The SYNC_* settings now (tests change them per test, so never cache this)."""
    return _settings_object(SyncSettings, SYNC_SETTINGS)


@dataclass(frozen=True)
class InboxSettings:
    """Inbound changes (the ZOHO_WEBHOOK_* and INBOX_* settings), read when asked for; defaults where unset."""

    webhook_secret: str = ""  # Zoho's "Secret Token" of the webhook (12-50 characters); empty: webhooks refused
    webhook_max_bytes: int = 256 * 1024  # a bigger body is refused unread (413)
    webhook_query_keys: tuple[str, ...] = ()  # the query parameters Zoho's webhook URL carries (none by default)
    max_attempts: int = 5  # an event failing this many times is quarantined for a person
    retry_base_seconds: float = 30.0  # the first retry of a failed event; doubled each time, jittered
    busy_retry_seconds: float = 15.0  # an event about a record a push holds is applied again after this
    # The most of the daily quota (ZOHO_DAILY_LIMIT) event replay may spend in a day (UTC): it stops there, its
    # cursor kept, and goes on the next day. 0 lets it spend nothing but the events list's first page.
    replay_quota_share: float = 0.1


INBOX_SETTINGS = {
    "webhook_secret": "ZOHO_WEBHOOK_SECRET",
    "webhook_max_bytes": "ZOHO_WEBHOOK_MAX_BYTES",
    "webhook_query_keys": "ZOHO_WEBHOOK_QUERY_KEYS",
    "max_attempts": "INBOX_MAX_ATTEMPTS",
    "retry_base_seconds": "INBOX_RETRY_BASE_SECONDS",
    "busy_retry_seconds": "INBOX_BUSY_RETRY_SECONDS",
    "replay_quota_share": "SYNC_REPLAY_QUOTA_SHARE",
}


def get_inbox_settings() -> InboxSettings:
    return _settings_object(InboxSettings, INBOX_SETTINGS)
