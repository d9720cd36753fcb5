"""The one SyncLog writer: every row of the sync log (a push, a pull, a link, a skip, a wait for the quota) is built
here, from the entity's spec, the record and what happened. Secrets are masked and sizes capped by the model
(SyncLog.sanitize) on every insert."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from zoho_sync.models import SyncLog

if TYPE_CHECKING:
    from zoho_sync.entities import EntitySpec

REPR_LIMIT = 200  # SyncLog.object_repr's length
RUN_ID_LIMIT = 36  # SyncLog.run_id's length: a uuid, with or without its dashes


def entry(spec: EntitySpec, *, pk: Any, label: Any, action: str, status: str, message: str = "", zoho_id: str = "",
          direction: str = SyncLog.Direction.PUSH, attempt: int = 1, error: BaseException | None = None,
          error_type: str = "", error_kind: str = "", request_body: Any = None, response_body: Any = None,
          duration_ms: int | None = None, run_id: str = "") -> SyncLog:
    """One row, not saved yet (write_all inserts many at once). `error`, when given, fills in its class name (unless
    `error_type` names one), HTTP status, Zoho code and message, and the request's method and path; a Zoho
    answer's body is logged only when passed as `response_body`."""
    return SyncLog(
        entity=spec.name, object_pk="" if pk is None else str(pk), object_repr=str(label)[:REPR_LIMIT],
        zoho_entity=spec.zoho_entity, zoho_id=zoho_id or "", direction=direction, action=action, status=status,
        attempt=attempt, message=message, error_type=error_type or (type(error).__name__ if error else ""),
        error_kind=error_kind or "", http_status=getattr(error, "status_code", None),
        zoho_code=getattr(error, "zoho_code", None), zoho_message=getattr(error, "zoho_message", "") or "",
        request_method=getattr(error, "method", "") or "", request_path=getattr(error, "path", "") or "",
        request_body=request_body, response_body=response_body, duration_ms=duration_ms,
        run_id=(run_id or "")[:RUN_ID_LIMIT])


def write(spec: EntitySpec, **fields: Any) -> SyncLog:
    """Write one row (the arguments are entry's) and return it."""
    row = entry(spec, **fields)
    row.save()
    return row


def write_all(rows: Iterable[SyncLog]) -> list[SyncLog]:
    """Insert rows built by `entry` in one statement."""
    return SyncLog.objects.bulk_create(list(rows))
