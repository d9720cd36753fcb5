"""The Zoho error hierarchy and error_for_response(), the one place statuses and codes become classes.

Every failure talking to Zoho leaves the client as a ZohoError subclass that says which request failed, with what
status, Zoho code and message, which of operations' seven classes it belongs to (`kind`) and whether trying again
makes sense (`retryable`). Configuration problems are ZohoConfigurationError, deliberately outside this tree.
"""

from __future__ import annotations

from typing import Any

from zoho_sync.client import codes
from zoho_sync.conf import ZohoConfigurationError
from zoho_sync.redaction import cap, redact_text

__all__ = [
    "ZohoAPIError",
    "ZohoAuthError",
    "ZohoConfigurationError",
    "ZohoConnectionError",
    "ZohoCredentialsError",
    "ZohoDailyQuotaError",
    "ZohoError",
    "ZohoNotFoundError",
    "ZohoOutcomeUnknownError",
    "ZohoPermissionError",
    "ZohoRateLimitError",
    "ZohoServerError",
    "ZohoValidationError",
    "error_for_response",
]


class ZohoError(Exception):
    """Root of everything that goes wrong talking to Zoho. Never carries a token or a request body."""

    retryable = False
    never_sent = False  # True when the request never left this process (safe to retry even a create)
    kind = "unknown"  # one of zoho_sync.models.ErrorKind's values; the client does not import models

    def __init__(
        self,
        message: str = "",
        *,
        method: str = "",
        path: str = "",
        status_code: int | None = None,
        zoho_code: int | None = None,
        zoho_message: str = "",
        retry_after: float | None = None,
        response_body: Any = None,
    ):
        self.method = method
        self.path = redact_text(path)
        self.status_code = status_code
        self.zoho_code = zoho_code
        self.zoho_message = redact_text(zoho_message or "")
        self.retry_after = retry_after
        self.response_body = response_body
        self.message = redact_text(message or self.zoho_message or self.__class__.__name__)
        super().__init__(str(self))

    @property
    def code_name(self) -> str | None:
        """The name of the Zoho code in codes.py (branch on this, never on the number)."""
        return codes.name_for(self.zoho_code)

    def __str__(self) -> str:
        parts = [f"{self.method} {self.path}".strip()]
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.zoho_code is not None:
            parts.append(f"Zoho code {self.zoho_code}")
        head = ", ".join(p for p in parts if p)
        return cap(f"{head}: {self.message}" if head else self.message, 1000)


class ZohoConnectionError(ZohoError):
    """DNS, connect or read failure, or a timeout, before an answer arrived."""

    retryable = True
    kind = "network"


class ZohoOutcomeUnknownError(ZohoConnectionError):
    """A write may have reached Zoho but no answer came back: look the record up before creating it again."""

    retryable = False


class ZohoAPIError(ZohoError):
    """Zoho answered, but not with success (non-2xx status, or a JSON `code` other than 0)."""


class ZohoValidationError(ZohoAPIError):
    kind = "validation"


class ZohoAuthError(ZohoAPIError):
    """401 after one token refresh and one replay, or a token endpoint refusing the client."""

    kind = "authentication"


class ZohoPermissionError(ZohoAPIError):
    kind = "authentication"


class ZohoNotFoundError(ZohoAPIError):
    kind = "not_found"


class ZohoRateLimitError(ZohoAPIError):
    """429: per-minute lock-out (44), daily quota (45, not retried within a run) or concurrency (1070)."""

    retryable = True
    kind = "rate_limit"

    @property
    def is_daily_quota(self) -> bool:
        return self.code_name == codes.RATE_LIMIT_DAILY.name

    @property
    def is_lockout(self) -> bool:
        return self.code_name == codes.RATE_LIMIT_PER_MINUTE.name

    @property
    def is_concurrency(self) -> bool:
        return self.code_name == codes.TOO_MANY_CONCURRENT.name


class ZohoDailyQuotaError(ZohoRateLimitError):
    """The day's API calls are used up (by Zoho's answer, or by our own count before asking)."""

    retryable = False


class ZohoServerError(ZohoAPIError):
    retryable = True
    kind = "server"


class ZohoCredentialsError(ZohoConfigurationError):
    """The token endpoint refused the client id, secret or refresh token: a person must fix the settings."""

    kind = "authentication"  # a push that meets it fails, needing a person (ErrorKind.AUTHENTICATION)


STATUS_ERRORS: dict[int, type[ZohoAPIError]] = {
    400: ZohoValidationError,
    401: ZohoAuthError,
    403: ZohoPermissionError,
    404: ZohoNotFoundError,
    405: ZohoValidationError,
    406: ZohoValidationError,
    429: ZohoRateLimitError,
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form; an HTTP date is ignored), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_for_response(
    *, method: str, path: str, status_code: int, body: Any, headers: dict[str, str] | None = None
) -> ZohoAPIError:
    """Build the right ZohoAPIError for a failed answer (non-2xx, or `code` other than 0)."""
    zoho_code = body.get("code") if isinstance(body, dict) else None
    zoho_message = str(body.get("message", "")) if isinstance(body, dict) else ""
    if isinstance(zoho_code, str) and zoho_code.lstrip("-").isdigit():
        zoho_code = int(zoho_code)
    if status_code >= 500:
        cls: type[ZohoAPIError] = ZohoServerError
    elif status_code == 429 and codes.name_for(zoho_code) == codes.RATE_LIMIT_DAILY.name:
        cls = ZohoDailyQuotaError
    elif codes.name_for(zoho_code) == codes.DOES_NOT_EXIST.name:
        cls = ZohoNotFoundError
    elif status_code in STATUS_ERRORS:
        cls = STATUS_ERRORS[status_code]
    elif 200 <= status_code < 300:
        cls = ZohoValidationError  # HTTP success with a non-zero code: Zoho refused the content
    else:
        cls = ZohoAPIError
    retry_after = parse_retry_after((headers or {}).get("Retry-After"))
    if not zoho_message and not isinstance(body, dict):
        zoho_message = cap(redact_text(str(body or "")), 300) or f"HTTP {status_code} with no Zoho message"
    return cls(
        method=method,
        path=path,
        status_code=status_code,
        zoho_code=zoho_code if isinstance(zoho_code, int) else None,
        zoho_message=zoho_message,
        retry_after=retry_after,
        response_body=body,
    )
