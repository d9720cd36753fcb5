"""Why a retry left a record unsettled: one sentence per record, so `zoho_retry_failed` never ends with a count of
failures and no reason (after an outage it once pushed nothing and exited 2, "1 failed, retrying", twice).

Read only, after the run: the records of the run's scope still failed, waiting or blocked, each with what the run
did to it (pushed and failed again, or why it did not push it) and the record's own last error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Q
from django.utils import timezone

from zoho_sync.entities import EntitySpec
from zoho_sync.models import SyncState, SyncStatus, sync_state_of
from zoho_sync.sync.backfill import FAILED_KEYS, SyncReport

MAX_LISTED = 100  # records listed one by one; the rest are counted (the admin's Failed records lists them all)


@dataclass(frozen=True)
class NotSettled:
    entity: str
    pk: int
    label: str
    state: str  # a SyncState value
    reason: str

    def line(self) -> str:
        return f"{self.entity} {self.pk} ({self.label}): {SyncState(self.state).label.lower()}: {self.reason}"


def _at(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if moment else "no time set"


def _error(obj) -> str:
    text = " ".join((obj.last_sync_error or "").split())
    return f" Last error: {text[:300]}" if text else ""


def _reason(obj, state: str, *, pushed: str | None, report: SyncReport, include_validation: bool,
            started: datetime, now: datetime) -> str:
    if state == SyncState.BLOCKED:
        return "its dependency needs a person; it follows once that one is in Zoho." + _error(obj)
    if state == SyncState.WAITING:
        return (("pushed now; " if pushed else "") + "waits for a dependency that is not in Zoho yet, and is pushed "
                "when that lands." + _error(obj))
    if pushed in FAILED_KEYS or (pushed and state in (SyncState.RETRYING, SyncState.NEEDS_PERSON)):
        then = f" Next try at {_at(obj.next_retry_at)}." if state == SyncState.RETRYING else ""
        return f"pushed now and failed again ({obj.last_error_kind or 'unknown'}).{then}" + _error(obj)
    if state == SyncState.NEEDS_PERSON:
        if not include_validation:
            return ("not retried: a retry cannot fix it by itself; fix the data or settings, then run "
                    "`manage.py zoho_retry_failed --include-validation`." + _error(obj))
        return "not pushed by this run." + _error(obj)
    # Failed, retrying, and this run did not push it.
    if report.stopped:
        return f"not reached: {report.stopped}" + _error(obj)
    if obj.claimed_until and obj.claimed_until > now:
        return (f"another worker ({obj.claimed_by}) held it while this run went; its claim ends at "
                f"{_at(obj.claimed_until)}." + _error(obj))
    if obj.next_retry_at and obj.next_retry_at > started:
        return (f"another process (a triggered push or a schedule) pushed it meanwhile and it failed again; next try "
                f"at {_at(obj.next_retry_at)}." + _error(obj))
    return "not pushed by this run (it was not due when the run claimed work)." + _error(obj)


def retry_reasons(specs: tuple[EntitySpec, ...], report: SyncReport, *, include_validation: bool,
                  started: datetime) -> tuple[list[NotSettled], int]:
    """Every record of the specs left failed, waiting or blocked after the retry `report`, with why (at most
    MAX_LISTED of them), and how many more there are."""
    now = timezone.now()
    found: list[NotSettled] = []
    more = 0
    unsettled = Q(sync_status__in=(SyncStatus.FAILED, SyncStatus.WAITING, SyncStatus.BLOCKED))
    for spec in specs:
        entity = report.entities.get(spec.name)
        rows = spec.model.objects.filter(unsettled).order_by("pk")
        room = max(0, MAX_LISTED - len(found))
        more += max(0, rows.count() - room)
        for obj in rows[:room]:
            state = sync_state_of(obj.sync_status, obj.next_retry_at)
            pushed = entity.last.get(obj.pk) if entity else None
            reason = _reason(obj, state, pushed=pushed, report=report, include_validation=include_validation,
                             started=started, now=now)
            found.append(NotSettled(spec.name, obj.pk, str(spec.label(obj))[:80], state, reason))
    return found, more
