"""Zoho-shaped errors raised inside the sandbox, built from the shared code table (zoho-billing-api.md §12.3).

Handlers raise `ApiError(codes.NAME, field=...)`; the app turns it into `{"code": n, "message": "..."}` with
the HTTP status the table gives. Nothing here hard-codes a number.
"""

from __future__ import annotations

from typing import Any

from zoho_sync.client import codes
from zoho_sync.client.codes import ZohoCode


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return key


def render(code: ZohoCode, /, **fmt: Any) -> str:
    """Fill the table's message template; a placeholder nobody supplied is left as its own name."""
    return code.message.format_map(_Blank(fmt))


class ApiError(Exception):
    """An error answer: the table row, the filled message and optional Retry-After seconds."""

    def __init__(self, row: ZohoCode, /, *, status: int | None = None, retry_after: int | None = None,
                 message: str | None = None, **fmt: Any) -> None:
        self.code = row
        self.status = status or row.http_status
        self.message = message or render(row, **fmt)
        self.retry_after = retry_after
        super().__init__(f"{self.status} {row.name}: {self.message}")

    def body(self) -> dict[str, Any]:
        return {"code": self.code.code, "message": self.message}


def invalid(field: str) -> ApiError:
    """400 code 2, "Invalid value passed for <field>" (§5.3, §12.3)."""
    return ApiError(codes.INVALID_VALUE, field=field)


def not_found(resource: str) -> ApiError:
    """404 code 1002, "<Resource> does not exist." (§5.3)."""
    return ApiError(codes.DOES_NOT_EXIST, resource=resource)


def not_allowed(reason: str) -> ApiError:
    """A business rule refused the action (customer with live subscriptions, void invoice, ...)."""
    return ApiError(codes.ACTION_NOT_ALLOWED, reason=reason)


def resolve_code(code: ZohoCode | str | int | None, status: int | None) -> ZohoCode:
    """Turn a fail_next() `code` (row, row name or number) into a table row; default from the status."""
    if isinstance(code, ZohoCode):
        return code
    if isinstance(code, str):
        row = getattr(codes, code.upper(), None)
        if not isinstance(row, ZohoCode):
            raise ValueError(f"unknown Zoho code name {code!r}")
        return row
    if isinstance(code, int):
        row = codes.BY_NUMBER.get(code)
        return row or ZohoCode("INJECTED", status or 500, code, "Injected error")
    by_status = {429: codes.TOO_MANY_CONCURRENT, 500: codes.INTERNAL_ERROR, 401: codes.NOT_AUTHORIZED,
                 400: codes.INVALID_VALUE, 404: codes.INVALID_URL, 405: codes.METHOD_NOT_ALLOWED}
    return by_status.get(status or 429, codes.INTERNAL_ERROR)
