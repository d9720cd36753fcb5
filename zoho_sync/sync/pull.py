"""The pull step: apply a Zoho record to its local mirror, for the fields Zoho owns, in one conditional UPDATE.

- Stale-write guard: the record keeps Zoho's modified time of the state last applied (`zoho_modified_at`); an
  older state (a late or replayed event, a slow reconciliation) changes nothing.
- No echo: the UPDATE bypasses save(), so no push is queued and the version is not bumped; when the record was in
  step with Zoho (its fingerprint matched), the fingerprint is recomputed with the pulled values, so the next push
  finds nothing to send. A record a push holds right now is left to it: RecordBusy, and the caller tries later.
- A record Zoho created (a renewal's period invoice, a payment made through Zoho's hosted page) arrives as a
  local mirror with origin Zoho, which is never pushed.
- A number Zoho sent that cannot be kept here (not a number, not finite, too large or too precise for its column)
  changes nothing: BadZohoValue names the record, the field and the value, and is written to the sync log as a
  failed pull before it reaches the caller (the inbox quarantines the event, reconciliation leaves the record).
- Our own writes are never pulled back: Zoho's answer to our push is applied by the push itself (absorb_answer:
  the fields Zoho owns and Zoho's modified time, no read, no log row of its own: the push's row holds the answer),
  so the event our push caused finds the record already at that time and is settled without a call (inbox.py).
Every other pull is written to the sync log (direction pull).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from zoho_sync.entities.base import EntitySpec, PullOutcome
from zoho_sync.models import SyncLog, SyncStatus
from zoho_sync.sync import logbook
from zoho_sync.sync.claims import free_filter
from zoho_sync.sync.engine import fingerprint_of
from zoho_sync.wire import inbound
from zoho_sync.wire.errors import BadZohoValue, InvalidLocalData

logger = logging.getLogger(__name__)
MAX_TRIES = 5


class RecordBusy(Exception):
    """A push holds the record (or it kept changing): apply the pull again shortly."""


def pull(spec: EntitySpec, remote: dict, *, when: datetime | None = None, run_id: str = "",
         note: str = "") -> PullOutcome:
    """Apply `remote` (a Zoho record of `spec`) to the local record with its Zoho id, or mirror a record Zoho
    created. `when` stands in for Zoho's modified time when the record carries none (the event's time)."""
    zoho_id = str(remote.get(spec.id_field) or "")
    modified = inbound.modified_time(remote) or when or timezone.now()
    for _ in range(MAX_TRIES):
        obj = spec.prepare(spec.model.objects.filter(zoho_id=zoho_id)).first() if zoho_id else None
        try:
            outcome = _mirror(spec, remote, modified) if obj is None else _apply(spec, obj, remote, modified)
        except BadZohoValue as bad:
            bad.record = bad.record or zoho_label(spec, remote)
            _log_refused(spec, bad, obj, zoho_id, remote, run_id, note)
            raise
        if outcome is not None:
            _log(spec, outcome, zoho_id, run_id, note)
            return outcome
    raise RecordBusy(f"{spec.name} {zoho_id} kept changing while its Zoho state was applied; trying again later")


def absorb_answer(spec: EntitySpec, remote: dict) -> PullOutcome | None:
    """Zoho's answer to our own push, applied by the push: the fields Zoho owns and Zoho's modified time of the
    state we wrote (`zoho_modified_at`), under the same guards as a pull (never over a newer state, never over a
    record changed or claimed meanwhile), without a call and without a sync-log row (the push's row holds the
    answer). The event our push caused then finds the record at that time: an echo, settled without a read.
    None when the answer names no record of ours, carries no modified time, or the record is busy (its next
    push or pull brings the state in)."""
    zoho_id = str(remote.get(spec.id_field) or "")
    modified = inbound.modified_time(remote)
    if spec.from_zoho is None or not zoho_id or modified is None:
        return None
    for _ in range(MAX_TRIES):
        obj = spec.prepare(spec.model.objects.filter(zoho_id=zoho_id)).first()
        if obj is None:
            return None
        try:
            outcome = _apply(spec, obj, remote, modified)
        except (BadZohoValue, RecordBusy) as why:  # the event, or the next pull, says it
            logger.info("Zoho's answer for %s %s not applied here: %s", spec.name, zoho_id, why)
            return None
        if outcome is not None:
            return outcome
    return None


def _apply(spec: EntitySpec, obj, remote: dict, modified: datetime) -> PullOutcome | None:
    owned = spec.from_zoho
    label = spec.label(obj)
    if owned is None:
        return PullOutcome(spec.name, obj.pk, "unchanged", f"{label}: Zoho owns none of its fields")
    if obj.zoho_modified_at and modified < obj.zoho_modified_at:
        applied = f"{obj.zoho_modified_at:%Y-%m-%d %H:%M:%S}"
        return PullOutcome(spec.name, obj.pk, "stale", f"{label}: Zoho's state of {modified:%Y-%m-%d %H:%M:%S} is "
                                                        f"older than the one applied ({applied}); nothing changed")
    wanted = owned(remote, obj)
    changes = {name: (getattr(obj, name), value) for name, value in wanted.items() if getattr(obj, name) != value}
    before = current_fingerprint(spec, obj)
    in_step = is_in_step(obj, before)
    for name, (_, value) in changes.items():
        setattr(obj, name, value)
    update = {name: value for name, (_, value) in changes.items()}
    update["zoho_modified_at"] = modified
    guard = Q(pk=obj.pk, sync_version=obj.sync_version) & free_filter(timezone.now()) & (
        Q(zoho_modified_at__isnull=True) | Q(zoho_modified_at__lte=modified))
    if in_step:
        after = current_fingerprint(spec, obj)
        if after is not None:
            update["sync_fingerprint"] = after
        guard &= Q(sync_status=SyncStatus.SYNCED, sync_fingerprint=before)
    if spec.model.objects.filter(guard).update(**update):
        if spec.after_pull is not None:
            spec.after_pull(obj)
        if not changes:
            return PullOutcome(spec.name, obj.pk, "unchanged", f"{label}: already as Zoho has it")
        said = ", ".join(f"{name} {_show(old)} -> {_show(new)}" for name, (old, new) in changes.items())
        return PullOutcome(spec.name, obj.pk, "updated", f"{label}: {said}", changes)
    now = spec.model.objects.filter(pk=obj.pk).values("claimed_until", "zoho_modified_at").first()
    if now and now["zoho_modified_at"] and modified < now["zoho_modified_at"]:
        return PullOutcome(spec.name, obj.pk, "stale", f"{label}: a newer Zoho state was applied meanwhile")
    if now and now["claimed_until"] and now["claimed_until"] > timezone.now():
        raise RecordBusy(f"{label} is being pushed right now; its Zoho state is applied after that push")
    time.sleep(0.01)
    return None  # changed meanwhile (a local edit, a push finishing): read it again


def is_in_step(obj, fingerprint: str | None) -> bool:
    """The record has not changed here since its last push (its fingerprint is the one pushed): Zoho should hold
    exactly what we sent."""
    return obj.sync_status == SyncStatus.SYNCED and fingerprint is not None and fingerprint == obj.sync_fingerprint


def current_fingerprint(spec: EntitySpec, obj) -> str | None:
    """The fingerprint of the record as it is here; None when its data cannot make a payload."""
    try:
        return fingerprint_of(spec.fingerprint(obj))
    except (InvalidLocalData, AttributeError, TypeError, ValueError):
        return None


def _show(value) -> str:
    return "-" if value in (None, "") else str(value)[:40]


# --- records Zoho created ---------------------------------------------------------------------------------------
def _mirror(spec: EntitySpec, remote: dict, modified: datetime) -> PullOutcome:
    zoho_id = str(remote.get(spec.id_field) or "")
    if spec.mirror is not None:
        return spec.mirror(remote, zoho_id, modified)
    return PullOutcome(spec.name, None, "unknown", f"{spec.zoho_entity} {zoho_id} is not one of ours (it was "
                                                   "made in Zoho); nothing to apply")


def zoho_label(spec: EntitySpec, remote: dict) -> str:
    """A Zoho record as people find it: "invoice INV-000012 (903000000000045)"."""
    zoho_id = str(remote.get(spec.id_field) or "")
    name = str(spec.remote_name(remote) or "")[:64]
    return f"{spec.zoho_entity} {name} ({zoho_id})" if name and name != zoho_id else f"{spec.zoho_entity} {zoho_id}"


def _log_refused(spec: EntitySpec, bad: BadZohoValue, obj, zoho_id: str, remote: dict, run_id: str,
                 note: str) -> None:
    message = f"Pulled from Zoho{f' ({note})' if note else ''}: refused: {bad}"
    logbook.write(spec, pk=obj.pk if obj is not None else None,
                  label=(spec.label(obj) if obj is not None else bad.record)[:60], zoho_id=zoho_id,
                  direction=SyncLog.Direction.PULL, action=SyncLog.Action.NONE, status=SyncLog.Status.FAILED,
                  message=message, error=bad, error_kind=bad.kind, response_body=remote, run_id=run_id)
    logger.warning("%s", message)


def _log(spec: EntitySpec, outcome: PullOutcome, zoho_id: str, run_id: str, note: str) -> None:
    action = {"created": SyncLog.Action.CREATE, "updated": SyncLog.Action.UPDATE}.get(outcome.action,
                                                                                      SyncLog.Action.NONE)
    status = SyncLog.Status.SKIPPED if outcome.action in ("stale", "unknown") else SyncLog.Status.SUCCESS
    message = f"Pulled from Zoho{f' ({note})' if note else ''}: {outcome.message}"
    logbook.write(spec, pk=outcome.pk or None, label=outcome.message[:60], zoho_id=zoho_id,
                  direction=SyncLog.Direction.PULL, action=action, status=status, message=message, run_id=run_id)
    logger.info("%s", message)
