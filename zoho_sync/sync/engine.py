"""The one push sequence, for every entity: skip, dependencies, payload, unchanged?, link or create or update.

Exactly once: before a create that may already have reached Zoho (create intent recorded, or a backfill's index
of existing records), the record is looked up by its natural key and linked. Each outcome is written with its
SyncLog row in one short transaction, never across a call to Zoho; if the log cannot be written the error stops
the run, and the create intent (committed before the call) lets the next run link what Zoho already has.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from zoho_sync.client.errors import ZohoDailyQuotaError, ZohoError, ZohoOutcomeUnknownError
from zoho_sync.models import ErrorKind, SyncLog, SyncStatus
from zoho_sync.sync.errors import DependencyNotSynced, RemoteConflict, SyncError
from zoho_sync.sync.remote import SyncContext
from zoho_sync.sync.specs import EntitySpec

logger = logging.getLogger(__name__)
DUPLICATE_CODES = {"DUPLICATE_CUSTOMER", "DUPLICATE_PLAN_CODE", "DUPLICATE_INVOICE_NUMBER"}


class QuotaExhausted(Exception):
    """Zoho's daily quota (or the share a backfill may use) is spent: the run stops and resumes after reset."""

    def __init__(self, error: ZohoDailyQuotaError):
        self.error = error
        self.resume_at = timezone.now() + timedelta(seconds=error.retry_after or 0)
        super().__init__(str(error))


def fingerprint_of(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def retry_delay(attempt: int) -> float:
    """Seconds before a retryable failure is tried again: SYNC_RETRY_BASE_SECONDS doubling to an hour, jittered."""
    base = float(getattr(settings, "SYNC_RETRY_BASE_SECONDS", 30))
    return min(3600.0, base * 2 ** max(0, attempt - 1)) * random.uniform(0.8, 1.2)


@dataclass
class Outcome:
    status: str
    action: str
    message: str = ""
    error: BaseException | None = None


class Engine:
    """Pushes records for one run: one client, one run id, and (for a backfill) an index of Zoho's records."""

    def __init__(self, *, client, run_id: str, claimer: str = "", use_index: bool = False,
                 today: date | None = None, enqueue_woken: bool = True):
        self.client, self.run_id, self.claimer, self.use_index = client, run_id, claimer, use_index
        self.enqueue_woken = enqueue_woken and bool(getattr(settings, "SYNC_TRIGGERS_ENABLED", True))
        self.today = today or timezone.localdate()
        self._indexes: dict[str, dict[str, list[str]]] = {}

    # --- the sequence -----------------------------------------------------------------------------------------
    def push(self, spec: EntitySpec, obj) -> Outcome:
        started = time.monotonic()
        ctx = SyncContext(client=self.client, today=self.today, remember=self._remember)
        payload: dict | None = None
        try:
            if reason := spec.skip_reason(obj):
                return self._finish(spec, obj, ctx, started, Outcome(SyncLog.Status.SKIPPED, SyncLog.Action.NONE,
                                                                      reason), payload)
            self._check_dependencies(spec, obj)
            fingerprint = fingerprint_of(spec.fingerprint(obj))
            payload = spec.payload(obj, today=self.today)
            if obj.zoho_id:
                if fingerprint == obj.sync_fingerprint:
                    outcome = Outcome(SyncLog.Status.SUCCESS, SyncLog.Action.NONE, "Unchanged since the last push.")
                else:
                    action = spec.update(ctx, obj, payload)
                    outcome = Outcome(SyncLog.Status.SUCCESS, action, f"{action.capitalize()}d in Zoho.")
                return self._finish(spec, obj, ctx, started, outcome, payload, fingerprint=fingerprint)
            existing = self._existing(spec, obj, ctx)
            if existing:
                return self._link(spec, obj, ctx, started, payload, fingerprint, existing)
            self._mark_intent(obj)
            record = self._create(spec, obj, ctx, payload)
            if isinstance(record, str):  # a duplicate answer that we resolved by linking
                return self._link(spec, obj, ctx, started, payload, fingerprint, record)
            zoho_id = str(record[spec.id_field])
            self._index_add(spec, obj, zoho_id)
            outcome = Outcome(SyncLog.Status.SUCCESS, SyncLog.Action.CREATE, "Created in Zoho.")
            return self._finish(spec, obj, ctx, started, outcome, payload, fingerprint=fingerprint, zoho_id=zoho_id,
                                response=record)
        except ZohoDailyQuotaError as error:
            self._release(obj)
            raise QuotaExhausted(error) from error
        except (ZohoError, SyncError) as error:
            action = SyncLog.Action.UPDATE if obj.zoho_id else SyncLog.Action.CREATE
            outcome = Outcome(SyncLog.Status.FAILED, action, str(error), error)
            return self._finish(spec, obj, ctx, started, outcome, payload)

    def _create(self, spec: EntitySpec, obj, ctx: SyncContext, payload: dict) -> dict | str:
        try:
            return spec.create(ctx, obj, payload)
        except ZohoError as error:
            if error.code_name not in DUPLICATE_CODES:
                raise
            found = spec.find(ctx, obj)  # Zoho has one already: adopt it only when it is clearly the same (§12.3)
            if not found:
                raise RemoteConflict(f"Zoho refused a duplicate ({error.zoho_message}) but no record with this "
                                     f"{spec.name}'s key was found; check Zoho by hand.") from error
            return str(found[spec.id_field])

    def _link(self, spec, obj, ctx, started, payload, fingerprint, zoho_id: str) -> Outcome:
        outcome = Outcome(SyncLog.Status.SUCCESS, SyncLog.Action.LINK,
                          f"Zoho already had it ({spec.zoho_entity} {zoho_id}); linked instead of created again.")
        return self._finish(spec, obj, ctx, started, outcome, payload, fingerprint=fingerprint, zoho_id=zoho_id)

    # --- lookups ----------------------------------------------------------------------------------------------
    def _existing(self, spec: EntitySpec, obj, ctx: SyncContext) -> str | None:
        if self.use_index:
            ids = self._index(spec).get(spec.local_key(obj), [])
            if len(ids) > 1:
                raise RemoteConflict(f"Zoho holds {len(ids)} {spec.zoho_entity}s with this record's key "
                                     f"({spec.local_key(obj)!r}); link the right one by hand.")
            if ids:
                return ids[0]
        if obj.create_intent_at:  # an earlier create may have reached Zoho after the index was read
            found = spec.find(ctx, obj)
            return str(found[spec.id_field]) if found else None
        return None

    def _index(self, spec: EntitySpec) -> dict[str, list[str]]:
        """Zoho's records of this entity by natural key, read once per run from list pages (200 a call)."""
        if spec.name not in self._indexes:
            index: dict[str, list[str]] = {}
            for record in self.client.paginate(spec.list_path, spec.list_key):
                index.setdefault(spec.remote_key(record), []).append(str(record[spec.id_field]))
            self._indexes[spec.name] = index
            logger.info("Indexed %d existing Zoho %s records", len(index), spec.zoho_entity)
        return self._indexes[spec.name]

    def _index_add(self, spec: EntitySpec, obj, zoho_id: str) -> None:
        if spec.name in self._indexes:
            self._indexes[spec.name].setdefault(spec.local_key(obj), []).append(zoho_id)

    @staticmethod
    def _check_dependencies(spec: EntitySpec, obj) -> None:
        for attribute, _dependency in spec.depends_on:
            related = getattr(obj, attribute)
            if related is None or related.zoho_id:
                continue
            why = f" (its last sync failed: {related.last_sync_error})" if related.last_sync_error else ""
            raise DependencyNotSynced(f"Waiting for its {attribute} {related} to reach Zoho{why}.")

    def _wake_dependents(self, spec: EntitySpec, obj) -> None:
        """Records that waited for this one are due again now; outside a backfill (which reaches them itself)
        they are queued, since no other task may be left to push them."""
        from zoho_sync.sync.specs import SPECS

        for other in SPECS:
            for attribute, dependency in other.depends_on:
                if dependency != spec.name:
                    continue
                waiting = other.model.objects.filter(**{attribute: obj.pk}, sync_status=SyncStatus.PENDING,
                                                     last_error_kind=ErrorKind.DEPENDENCY)
                pks = list(waiting.values_list("pk", flat=True)) if self.enqueue_woken else []
                if waiting.update(next_retry_at=None) and self.enqueue_woken:
                    from zoho_sync.services import sync_enqueue

                    for pk in pks:
                        sync_enqueue(entity=other.name, pk=pk)

    # --- bookkeeping ------------------------------------------------------------------------------------------
    def _remember(self, obj, **fields) -> None:
        type(obj).objects.filter(pk=obj.pk).update(**fields)

    @staticmethod
    def _mark_intent(obj) -> None:
        """Recorded (and committed) before the create is sent, so a crash after Zoho's answer is repaired."""
        obj.create_intent_at = timezone.now()
        type(obj).objects.filter(pk=obj.pk).update(create_intent_at=obj.create_intent_at)

    def _release(self, obj) -> None:
        type(obj).objects.filter(pk=obj.pk, claimed_by=self.claimer).update(
            sync_status=SyncStatus.PENDING, claimed_by="", claimed_until=None)

    def _finish(self, spec, obj, ctx, started, outcome: Outcome, payload, *, fingerprint: str = "",
                zoho_id: str = "", response: Any = None) -> Outcome:
        now = timezone.now()
        error = outcome.error
        attempt = obj.sync_attempts + 1
        fields: dict[str, Any] = {"claimed_by": "", "claimed_until": None}
        if outcome.status == SyncLog.Status.SUCCESS:
            fields.update(zoho_id=zoho_id or obj.zoho_id, last_synced_at=now, last_sync_error="", last_error_kind="",
                          sync_attempts=0, next_retry_at=None, create_intent_at=None, sync_fingerprint=fingerprint)
            final = SyncStatus.SYNCED
        elif outcome.status == SyncLog.Status.SKIPPED:
            fields.update(last_sync_error=outcome.message, last_error_kind="", next_retry_at=None, sync_attempts=0)
            final = SyncStatus.SKIPPED
        else:
            kind = getattr(error, "kind", ErrorKind.UNKNOWN)
            retryable = bool(getattr(error, "retryable", False)) or isinstance(error, ZohoOutcomeUnknownError)
            max_attempts = int(getattr(settings, "SYNC_MAX_ATTEMPTS", 8))
            if isinstance(error, ZohoOutcomeUnknownError):
                delay = float(getattr(settings, "SYNC_OUTCOME_RECHECK_SECONDS", 30))
            elif isinstance(error, DependencyNotSynced):
                delay = float(getattr(settings, "SYNC_DEPENDENCY_RETRY_SECONDS", 300))
            else:
                delay = retry_delay(attempt)
            next_retry = now + timedelta(seconds=delay) if retryable and attempt < max_attempts else None
            fields.update(last_sync_error=outcome.message, last_error_kind=kind, sync_attempts=attempt,
                          next_retry_at=next_retry)
            final = SyncStatus.PENDING if isinstance(error, DependencyNotSynced) else SyncStatus.FAILED
        log = SyncLog(
            entity=spec.name, object_pk=str(obj.pk), object_repr=spec.label(obj), zoho_entity=spec.zoho_entity,
            zoho_id=fields.get("zoho_id") or obj.zoho_id or "", action=outcome.action, status=outcome.status,
            attempt=attempt, message=" ".join([outcome.message, *ctx.notes]).strip(),
            error_type=type(error).__name__ if error else "", error_kind=fields.get("last_error_kind", ""),
            http_status=getattr(error, "status_code", None), zoho_code=getattr(error, "zoho_code", None),
            zoho_message=getattr(error, "zoho_message", "") or "", request_method=getattr(error, "method", ""),
            request_path=getattr(error, "path", ""), request_body=ctx.sent if ctx.sent is not None else payload,
            response_body=response if response is not None else getattr(error, "response_body", None),
            duration_ms=int((time.monotonic() - started) * 1000), run_id=self.run_id,
        )
        model = type(obj)
        with transaction.atomic():
            if zoho_id:  # whatever else happened meanwhile, the id Zoho gave is never lost
                model.objects.filter(pk=obj.pk).update(zoho_id=zoho_id, create_intent_at=None)
            mine = model.objects.filter(pk=obj.pk, claimed_by=self.claimer)
            # The status changes only if nobody saved the record meanwhile: a save marks it pending again.
            mine.filter(sync_status=SyncStatus.SYNCING).update(sync_status=final)
            mine.update(**fields)
            log.save()
        if outcome.status == SyncLog.Status.SUCCESS and (obj.sync_attempts or outcome.action in ("create", "link")):
            self._wake_dependents(spec, obj)
        logger.log(logging.WARNING if outcome.status == SyncLog.Status.FAILED else logging.DEBUG,
                   "%s %s: %s %s: %s", spec.name, obj.pk, outcome.action, outcome.status, outcome.message)
        return outcome
