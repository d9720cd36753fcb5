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

CREDENTIAL_SETTINGS = ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN", "ZOHO_ORGANIZATION_ID")


@dataclass(frozen=True)
class ZohoSettings:
    client_id: str
    client_secret: str
    refresh_token: str
    organization_id: str
    data_center: str
    api_base_url: str
    accounts_url: str

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
    )
