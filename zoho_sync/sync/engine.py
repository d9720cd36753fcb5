"""The one push sequence, for every entity: skip, validate, dependencies, payload, unchanged? link/create/update.

Exactly once, under faults and under concurrency:
- only the claim's holder pushes a record (claims.py); a local save never frees a claim, it bumps the record's
  version, and the finishing holder keeps what Zoho gave it (the id, what Zoho now holds) but leaves the record
  due when the version moved, so the next push sends the new data;
- before a create, the intent and the fingerprint of what is about to be sent are committed; a record with an
  intent (or, in a backfill, one Zoho's index already lists) is looked up by its natural key and linked, never
  created again, and a linked record is brought up to date unless Zoho is known to hold exactly its data.
Each outcome is written with its SyncLog row in one short transaction, never across a call to Zoho.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from zoho_sync.client.budget import seconds_to_next_utc_midnight
from zoho_sync.client.errors import ZohoDailyQuotaError, ZohoError, ZohoOutcomeUnknownError
from zoho_sync.commits import relaxed_commit
from zoho_sync.conf import ZohoConfigurationError, get_sync_settings
from zoho_sync.entities import BY_NAME, SPECS, EntitySpec
from zoho_sync.models import ErrorKind, SyncLog, SyncState, SyncStatus, ZohoSyncedModel, sync_state_of
from zoho_sync.sync import logbook
from zoho_sync.sync.skips import records_skip
from zoho_sync.wire.errors import (
    Busy,
    ClaimLost,
    DependencyBlocked,
    DependencyNotSynced,
    InvalidLocalData,
    RemoteConflict,
    SyncError,
)
from zoho_sync.wire.remote import SyncContext

logger = logging.getLogger(__name__)
Enqueue = Callable[[str, int], Any]


class QuotaExhausted(Exception):
    """Zoho's daily quota (or the share a backfill may use) is spent: the run stops and resumes after reset.
    `entity` and `pk` name the record whose push met it (left pending by the engine: a backfill resumes it; a
    single push marks it waiting for the quota, services.sync_object)."""

    def __init__(self, error: ZohoDailyQuotaError, entity: str = "", pk=None):
        self.error, self.entity, self.pk = error, entity, pk
        # Zoho's code-45 answer may carry no Retry-After: the quota resets at the next 00:00 UTC.
        wait = error.retry_after if error.retry_after else seconds_to_next_utc_midnight(time.time())
        self.resume_at = timezone.now() + timedelta(seconds=wait)
        super().__init__(str(error))


def fingerprint_of(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def retry_delay(attempt: int) -> float:
    """Seconds before a retryable failure is tried again: SYNC_RETRY_BASE_SECONDS doubling to an hour, jittered."""
    base = get_sync_settings().retry_base_seconds
    return min(3600.0, base * 2 ** max(0, attempt - 1)) * random.uniform(0.8, 1.2)


def retried_by_engine(error: BaseException | None) -> bool:
    """Whether the engine pushes a record that failed with `error` again by itself (sets a retry time for it).

    A sync error's `retryable` is this answer (sync/errors.py). A ZohoError's `retryable` is the client's: may the
    same request be sent again at once. The two differ only for ZohoOutcomeUnknownError: the client never resends a
    write whose answer was lost, but the engine pushes the record again, looking it up before any create."""
    return isinstance(error, ZohoOutcomeUnknownError) or bool(getattr(error, "retryable", False))


def validate_for_push(obj) -> None:
    """The admin form's checks (the model's field validators and `clean()`), for a record however it was saved;
    raise InvalidLocalData naming each problem. Foreign keys exist (the database holds them) and uniqueness is
    the database's: neither costs a query here."""
    exclude = ZohoSyncedModel.BOOKKEEPING_FIELDS | {f.name for f in obj._meta.concrete_fields if f.is_relation}
    try:
        obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise InvalidLocalData(" ".join(problem_sentences(exc, obj))) from None


def problem_sentences(exc: ValidationError, obj) -> list[str]:
    sentences = []
    for name, messages in exc.message_dict.items():
        label = "" if name == NON_FIELD_ERRORS else str(obj._meta.get_field(name).verbose_name).capitalize()
        for message in messages:
            named = not label or label.split()[0].lower() in message.lower()
            sentences.append(message if named else f"{label}: {message}")
    return sentences


@dataclass
class Outcome:
    status: str  # the SyncLog status
    action: str
    message: str = ""
    error: BaseException | None = None
    state: str = ""  # where the record stands now, in the one vocabulary (SyncState), or "busy"


BUSY = "busy"  # another worker held the record: nothing was sent or written
FREE_CLAIM = {"claimed_by": "", "claimed_until": None}
CREDENTIALS_REFUSED = "Zoho refused our credentials (a person must fix the Zoho settings)"
SETTINGS_WRONG = "The Zoho settings are wrong (a person must fix them)"


class Engine:
    """Pushes records for one run: one client, one run id, and (for a backfill) an index of Zoho's records.

    `enqueue(entity, pk)` queues a push of a record this run will not reach itself (a dependent it woke, a record
    changed while it was pushed); a backfill passes none, since its own loop reaches them. With `defer_wakes` the
    dependents of the records that land are woken by `wake_deferred()` (a backfill, after each batch), not at
    once.
    """

    def __init__(self, *, client, run_id: str, claimer: str = "", use_index: bool = False,
                 today: date | None = None, enqueue: Enqueue | None = None, defer_wakes: bool = False):
        self.client, self.run_id, self.claimer, self.use_index = client, run_id, claimer, use_index
        self.enqueue, self.defer_wakes = enqueue, defer_wakes
        self._landed: dict[str, list] = {}  # entity -> records landed whose dependents are not woken yet
        self.today = today or timezone.localdate()
        self._indexes: dict[str, dict[str, list[str]]] = {}

    # --- the sequence -----------------------------------------------------------------------------------------
    def push(self, spec: EntitySpec, obj) -> Outcome:
        started = time.monotonic()
        ctx = SyncContext(client=self.client, today=self.today, remember=self._remember, lease=self._lease)
        payload: dict | None = None
        found_id = ""  # a Zoho id learnt before a failure is kept whatever the failure
        try:
            if reason := spec.skip_reason(obj):
                return self._finish(spec, obj, ctx, started, Outcome(SyncLog.Status.SKIPPED, SyncLog.Action.NONE,
                                                                      reason), payload)
            validate_for_push(obj)
            self._check_dependencies(spec, obj)
            payload = spec.payload(obj, today=self.today)
            fingerprint = fingerprint_of(spec.fingerprint(obj))
            if not obj.zoho_id and obj.create_intent_at:
                self._refresh_identity(obj)  # an earlier create may have landed since the batch was read
            for _ in range(2):  # a second round only when the identity changed since the batch was read
                if obj.zoho_id:
                    if fingerprint == obj.sync_fingerprint:
                        outcome = Outcome(SyncLog.Status.SUCCESS, SyncLog.Action.NONE,
                                          "Unchanged since the last push.")
                    else:
                        self._renew_claim(obj)
                        action = spec.update(ctx, obj, payload)
                        outcome = Outcome(SyncLog.Status.SUCCESS, action, f"{action.capitalize()}d in Zoho.")
                    return self._finish(spec, obj, ctx, started, outcome, payload, fingerprint=fingerprint,
                                        response=ctx.answer)
                existing = self._existing(spec, obj, ctx)
                if existing is not None:
                    break
                self._check_link_hold(obj)
                if self._mark_intent(obj, fingerprint):
                    record = self._create(spec, obj, ctx, payload)
                    if isinstance(record, dict):
                        zoho_id = str(record[spec.id_field])
                        self._index_add(spec, obj, zoho_id)
                        outcome = Outcome(SyncLog.Status.SUCCESS, SyncLog.Action.CREATE, "Created in Zoho.")
                        return self._finish(spec, obj, ctx, started, outcome, payload, fingerprint=fingerprint,
                                            zoho_id=zoho_id, response=record)
                    existing = (record, "")  # Zoho refused a duplicate of a record that is clearly this one
                    break
            else:
                raise Busy("The record's Zoho id or create intent changed twice while it was pushed; tried again "
                           "later.")
            found_id = existing[0]
            outcome = self._link(spec, obj, ctx, payload, fingerprint, *existing)
            return self._finish(spec, obj, ctx, started, outcome, payload, fingerprint=fingerprint,
                                zoho_id=found_id)
        except ZohoDailyQuotaError as error:
            self._release(obj)
            raise QuotaExhausted(error, spec.name, obj.pk) from error
        except ZohoConfigurationError as error:
            # Zoho refused the client or the refresh token (ZohoCredentialsError), or the settings are wrong: a
            # failure that needs a person, on the record and in the sync log. Raised again: every other record
            # would meet the same refusal, so the run stops here (and says why).
            action = SyncLog.Action.UPDATE if obj.zoho_id else SyncLog.Action.CREATE
            why = CREDENTIALS_REFUSED if getattr(error, "kind", "") == ErrorKind.AUTHENTICATION else SETTINGS_WRONG
            self._finish(spec, obj, ctx, started, Outcome(SyncLog.Status.FAILED, action, f"{why}: {error}", error),
                         payload, zoho_id=found_id)
            raise
        except ClaimLost as error:
            logger.info("%s %s: %s", spec.name, obj.pk, error)
            return Outcome(SyncLog.Status.SKIPPED, SyncLog.Action.NONE, str(error), error, state=BUSY)
        except DependencyNotSynced as error:
            status = SyncLog.Status.BLOCKED if isinstance(error, DependencyBlocked) else SyncLog.Status.WAITING
            return self._finish(spec, obj, ctx, started, Outcome(status, SyncLog.Action.NONE, str(error), error),
                                payload)
        except (ZohoError, SyncError) as error:
            action = SyncLog.Action.UPDATE if obj.zoho_id else SyncLog.Action.CREATE
            outcome = Outcome(SyncLog.Status.FAILED, action, str(error), error)
            return self._finish(spec, obj, ctx, started, outcome, payload, zoho_id=found_id)

    def skip_many(self, spec: EntitySpec, objs: list) -> dict[int, Outcome]:
        """Record a batch's skipped records at once (two thirds of a typical book: period invoices and their
        payments): one UPDATE per skip reason, conditional on each record's version as a single push's is, one
        release of the rest, one INSERT of their log rows (skips.records_skip). Returns the outcome of each record
        it took."""
        reasons: dict[str, list] = {}
        for obj in objs:
            if reason := spec.skip_reason(obj):
                reasons.setdefault(reason, []).append(obj)
        if not reasons:
            return {}
        model, taken = spec.model, [obj for group in reasons.values() for obj in group]
        with relaxed_commit():
            skipped = records_skip(spec, reasons, claimer=self.claimer, run_id=self.run_id)
            from zoho_sync.sync.claims import _unclaim

            _unclaim(model.objects.filter(pk__in=[obj.pk for obj in taken], claimed_by=self.claimer))
        return {obj.pk: Outcome(SyncLog.Status.SKIPPED, SyncLog.Action.NONE, reason,
                                state=SyncState.SKIPPED if obj.pk in skipped else SyncState.PENDING)
                for reason, group in reasons.items() for obj in group}

    def _create(self, spec: EntitySpec, obj, ctx: SyncContext, payload: dict) -> dict | str:
        try:
            return spec.create(ctx, obj, payload)
        except ZohoError as error:
            if error.code_name not in spec.duplicate_codes:
                raise
            found = spec.find(ctx, obj)  # Zoho has one already: adopt it only when it is clearly the same (§12.3)
            if not found:
                raise RemoteConflict(f"Zoho refused a duplicate ({error.zoho_message}) but no record with this "
                                     f"{spec.name}'s key was found; check Zoho by hand.") from error
            return str(found[spec.id_field])

    def _link(self, spec: EntitySpec, obj, ctx: SyncContext, payload: dict, fingerprint: str, zoho_id: str,
              known: str) -> Outcome:
        """Adopt the Zoho record `zoho_id`. `known` is the fingerprint of what an earlier create of ours sent: when
        it is today's, Zoho holds our data; otherwise the record is brought up to date first."""
        had = f"Zoho already had it ({spec.zoho_entity} {zoho_id}); linked instead of created again"
        if known == fingerprint:
            return Outcome(SyncLog.Status.SUCCESS, SyncLog.Action.LINK, f"{had}.")
        if not spec.updatable:
            return Outcome(SyncLog.Status.SUCCESS, SyncLog.Action.LINK,
                           f"{had}; sync never edits a {spec.zoho_entity} in Zoho, so its copy is kept as it is.")
        obj.zoho_id = zoho_id
        self._renew_claim(obj)
        action = spec.update(ctx, obj, payload)
        return Outcome(SyncLog.Status.SUCCESS, SyncLog.Action.LINK,
                       f"{had}, and brought up to date with what is held here ({action}).")

    # --- lookups ----------------------------------------------------------------------------------------------
    def _existing(self, spec: EntitySpec, obj, ctx: SyncContext) -> tuple[str, str] | None:
        """(Zoho id, fingerprint of what our own create sent, or "") of a Zoho record that is this one."""
        known = obj.sync_fingerprint if obj.create_intent_at else ""
        if self.use_index:
            ids = self._index(spec).get(spec.local_key(obj), [])
            if len(ids) > 1:
                raise RemoteConflict(f"Zoho holds {len(ids)} {spec.zoho_entity}s with this record's key "
                                     f"({spec.local_key(obj)!r}); link the right one by hand.")
            if ids:
                return ids[0], known
        if obj.create_intent_at:  # an earlier create may have reached Zoho after the index was read
            found = spec.find(ctx, obj)
            return (str(found[spec.id_field]), known) if found else None
        return None

    @staticmethod
    def _check_link_hold(obj) -> None:
        """Never create a record `zoho_backfill --link-only` found ambiguous (several Zoho records may be it: a
        create would add one more) until a person settles it. The hold is on the row (`link_hold`), read with the
        claimed batch: no query unless the field was deferred. `_mark_intent` refuses a held row as well."""
        if "link_hold" in obj.get_deferred_fields():
            obj.refresh_from_db(fields=["link_hold"])
        if obj.link_hold:
            raise RemoteConflict(obj.link_hold)

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

    # --- dependencies -----------------------------------------------------------------------------------------
    @staticmethod
    def _check_dependencies(spec: EntitySpec, obj) -> None:
        """Raise DependencyNotSynced (waiting) or DependencyBlocked when a record this one needs has no Zoho id."""
        for attribute, dependency in spec.depends_on:
            related = getattr(obj, attribute)
            if related is None or related.zoho_id:
                continue
            # The row was read with the batch: another worker may have pushed the dependency since.
            now = type(related).objects.filter(pk=related.pk).values(
                "zoho_id", "sync_status", "next_retry_at", "last_sync_error").first()
            if now["zoho_id"]:
                related.zoho_id = now["zoho_id"]
                continue
            name = f"{attribute.replace('_', ' ')} {BY_NAME[dependency].label(related)}"
            state = sync_state_of(now["sync_status"], now["next_retry_at"])
            error = now["last_sync_error"]
            if state == SyncState.NEEDS_PERSON:
                raise DependencyBlocked(f"Blocked until a person fixes its {name}: {error}")
            if state == SyncState.BLOCKED:
                raise DependencyBlocked(f"Blocked: its {name} is blocked itself ({error})")
            if state == SyncState.SKIPPED:
                raise DependencyBlocked(f"Blocked: its {name} is not pushed to Zoho ({error})")
            if state == SyncState.RETRYING:
                when = timezone.localtime(now["next_retry_at"])
                raise DependencyNotSynced(f"Waiting for its {name}, whose last sync failed ({error}); it is tried "
                                          f"again at {when:%Y-%m-%d %H:%M %Z}.")
            why = f" ({error})" if state == SyncState.WAITING and error else ""
            raise DependencyNotSynced(f"Waiting for its {name} to reach Zoho{why}.")

    def _wake_dependents(self, spec: EntitySpec, pks: list) -> None:
        """Records that waited for (or were blocked by) these are due again now; outside a backfill (which
        reaches them itself) they are queued, since no other task may be left to push them."""
        for other in SPECS:
            for attribute, dependency in other.depends_on:
                if dependency == spec.name:
                    self._wake(other, other.model.objects.filter(**{f"{attribute}__in": pks}))

    def wake_deferred(self) -> None:
        """Wake the dependents of the records that landed since the last call (`defer_wakes`): a backfill calls
        it after every batch, a few statements a batch instead of a few a record."""
        landed, self._landed = self._landed, {}
        if landed:
            with relaxed_commit():
                for name, pks in landed.items():
                    self._wake_dependents(BY_NAME[name], pks)

    @staticmethod
    def landed_filter(spec: EntitySpec) -> Q | None:
        """This entity's records that wait for (or are blocked by) dependencies that all have a Zoho id now."""
        if not spec.depends_on:
            return None
        landed = Q(sync_status__in=(SyncStatus.WAITING, SyncStatus.BLOCKED))
        for attribute, _dependency in spec.depends_on:
            landed &= Q(**{f"{attribute}__isnull": True}) | Q(**{f"{attribute}__zoho_id__isnull": False})
        return landed

    @staticmethod
    def wake_landed(spec: EntitySpec) -> int:
        """Wake the records of `landed_filter`: a safety net run before a backfill reaches the entity, for a
        wake-up lost to a crash between a dependency's push and its batch's end."""
        landed = Engine.landed_filter(spec)
        if landed is None:
            return 0
        return spec.model.objects.filter(landed).update(sync_status=SyncStatus.PENDING, next_retry_at=None)

    def _wake(self, spec: EntitySpec, rows) -> None:
        waiting = rows.filter(sync_status__in=(SyncStatus.WAITING, SyncStatus.BLOCKED))
        pks = list(waiting.values_list("pk", flat=True)) if self.enqueue else []
        if waiting.update(sync_status=SyncStatus.PENDING, next_retry_at=None) and self.enqueue:
            for pk in pks:
                self.enqueue(spec.name, pk)

    def _dependencies_landed(self, spec: EntitySpec, obj) -> bool:
        """Whether every dependency has a Zoho id now (it may have landed while this record was judged)."""
        for attribute, dependency in spec.depends_on:
            related_pk = getattr(obj, f"{attribute}_id")
            if related_pk is not None and not BY_NAME[dependency].model.objects.filter(
                    pk=related_pk, zoho_id__isnull=False).exists():
                return False
        return True

    # --- bookkeeping ------------------------------------------------------------------------------------------
    @staticmethod
    @contextlib.contextmanager
    def _lease(name: str):
        from zoho_sync.shared_state import LeaseBusyError, shared_lease

        try:
            with shared_lease(name):
                yield
        except LeaseBusyError as error:
            raise Busy(f"Another process has been creating the same Zoho {name.partition(':')[0]} for a minute; "
                       "tried again later.") from error

    def _remember(self, obj, **fields) -> None:
        type(obj).objects.filter(pk=obj.pk).update(**fields)

    def _refresh_identity(self, obj) -> None:
        """Before deciding to create: the Zoho id and create intent as they are now, not as read with the batch
        (an earlier push of this worker, or a lost answer, may have changed them since)."""
        now = type(obj).objects.filter(pk=obj.pk, claimed_by=self.claimer).values(
            "zoho_id", "create_intent_at", "sync_fingerprint", "link_hold").first()
        if now is None:
            raise ClaimLost("Another worker took the record over (this worker's lease ran out); left to it.")
        obj.zoho_id, obj.create_intent_at, obj.sync_fingerprint, obj.link_hold = (
            now["zoho_id"], now["create_intent_at"], now["sync_fingerprint"], now["link_hold"])

    def _renew_claim(self, obj, **fields) -> None:
        """Right before a write is sent: make sure this worker still holds the record, and renew its lease (a
        worker whose lease ran out, and that another worker took over, must not send stale data)."""
        until = timezone.now() + timedelta(seconds=get_sync_settings().claim_lease_seconds)
        if not type(obj).objects.filter(pk=obj.pk, claimed_by=self.claimer).update(claimed_until=until, **fields):
            raise ClaimLost("Another worker took the record over (this worker's lease ran out); left to it.")

    def _mark_intent(self, obj, fingerprint: str) -> bool:
        """Recorded (and committed) before the create is sent, with the fingerprint of what is sent, so a crash or
        a lost answer is repaired by a lookup. One conditional UPDATE: it renews this worker's lease and holds only
        while the record's Zoho id and create intent are still what the batch read, and no link hold is set.
        Otherwise (a lapsed worker's create landed meanwhile) they are read again into `obj` and False says to
        decide again; ClaimLost when this worker no longer holds the record."""
        now = timezone.now()
        same = Q(create_intent_at=obj.create_intent_at) if obj.create_intent_at else Q(create_intent_at__isnull=True)
        if type(obj).objects.filter(same, pk=obj.pk, claimed_by=self.claimer, zoho_id__isnull=True,
                                    link_hold="").update(
                claimed_until=now + timedelta(seconds=get_sync_settings().claim_lease_seconds),
                create_intent_at=now, sync_fingerprint=fingerprint):
            obj.create_intent_at, obj.sync_fingerprint = now, fingerprint
            return True
        self._refresh_identity(obj)
        return False

    def _release(self, obj) -> None:
        from zoho_sync.sync.claims import _unclaim

        _unclaim(type(obj).objects.filter(pk=obj.pk, claimed_by=self.claimer))

    def _result_fields(self, outcome: Outcome, obj, now, fingerprint: str, zoho_id: str) -> dict[str, Any]:
        """The bookkeeping an outcome writes when the record did not change while it was pushed."""
        error = outcome.error
        if outcome.status == SyncLog.Status.SUCCESS:
            return {"sync_status": SyncStatus.SYNCED, "zoho_id": zoho_id or obj.zoho_id, "last_synced_at": now,
                    "last_sync_error": "", "last_error_kind": "", "sync_attempts": 0, "next_retry_at": None,
                    "create_intent_at": None, "sync_fingerprint": fingerprint, "failing_since": None,
                    "link_hold": ""}  # linked now: a hold against creating it is settled
        if outcome.status == SyncLog.Status.SKIPPED:
            return {"sync_status": SyncStatus.SKIPPED, "last_sync_error": outcome.message, "last_error_kind": "",
                    "next_retry_at": None, "sync_attempts": 0}
        sync = get_sync_settings()
        if isinstance(error, DependencyNotSynced):  # not an attempt of the record's own
            blocked = isinstance(error, DependencyBlocked)
            retry = None if blocked else now + timedelta(seconds=sync.dependency_retry_seconds)
            return {"sync_status": SyncStatus.BLOCKED if blocked else SyncStatus.WAITING,
                    "last_sync_error": outcome.message, "last_error_kind": ErrorKind.DEPENDENCY,
                    "next_retry_at": retry}
        attempt = obj.sync_attempts + 1
        retryable = retried_by_engine(error)
        delay = sync.outcome_recheck_seconds if isinstance(error, ZohoOutcomeUnknownError) else retry_delay(attempt)
        next_retry = now + timedelta(seconds=delay) if retryable and attempt < sync.max_attempts else None
        if retryable and next_retry is None:
            outcome.message += (f" Gave up after {attempt} attempts: once the cause is fixed, run "
                                "`manage.py zoho_retry_failed` or push it from the admin.")
        return {"sync_status": SyncStatus.FAILED, "last_sync_error": outcome.message,
                "last_error_kind": getattr(error, "kind", None) or ErrorKind.UNKNOWN, "sync_attempts": attempt,
                "next_retry_at": next_retry, "failing_since": Coalesce(F("failing_since"), Value(now))}

    def _finish(self, spec, obj, ctx, started, outcome: Outcome, payload, *, fingerprint: str = "",
                zoho_id: str = "", response: Any = None) -> Outcome:
        """Write an outcome: the record's bookkeeping and its SyncLog row in one short transaction, with what a
        success settles (Zoho's answer, the dependents it wakes); then what follows once it is committed."""
        now = timezone.now()
        result = self._result_fields(outcome, obj, now, fingerprint, zoho_id)
        if zoho_id:
            result.update(zoho_id=zoho_id, create_intent_at=None)
        with relaxed_commit():
            changed = not self._store_result(obj, result)
            if changed:
                self._settle_changed_meanwhile(obj, outcome, now, fingerprint, zoho_id)
            self._write_log(spec, obj, ctx, started, outcome, payload, result, zoho_id, response)
            if isinstance(response, dict) and outcome.status == SyncLog.Status.SUCCESS:
                self._apply_answer(spec, response)
            if self._lands(outcome):
                self._wake_dependents_of_landed(spec, obj)
        outcome.state = SyncState.PENDING if changed else sync_state_of(result["sync_status"],
                                                                         result.get("next_retry_at"))
        if changed and self.enqueue:
            self.enqueue(spec.name, obj.pk)
        if isinstance(outcome.error, DependencyNotSynced) and not changed:
            self._wake_if_dependencies_landed(spec, obj, outcome)
        logger.log(logging.WARNING if outcome.status == SyncLog.Status.FAILED else logging.DEBUG,
                   "%s %s: %s %s: %s", spec.name, obj.pk, outcome.action, outcome.status, outcome.message)
        self._observe(outcome)
        return outcome

    def _mine(self, obj):
        """The record, while this worker holds its claim."""
        return type(obj).objects.filter(pk=obj.pk, claimed_by=self.claimer)

    def _store_result(self, obj, result: dict[str, Any]) -> bool:
        """Write the outcome's bookkeeping and free the claim, only if this worker still holds the record and it
        was not saved while it was pushed (its version is the one read). False when it was not written."""
        return bool(self._mine(obj).filter(sync_version=obj.sync_version).update(**FREE_CLAIM, **result))

    def _settle_changed_meanwhile(self, obj, outcome: Outcome, now, fingerprint: str, zoho_id: str) -> None:
        """The record was saved while it was pushed (the save left it pending), or another worker took it over:
        keep the Zoho id Zoho gave whatever else happened, keep what Zoho holds now (so the next push compares the
        new data with it), free this worker's claim if it still has one, and say which it was."""
        if zoho_id:
            type(obj).objects.filter(pk=obj.pk).update(zoho_id=zoho_id, create_intent_at=None, link_hold="")
        landed = {"sync_fingerprint": fingerprint, "last_synced_at": now} \
            if outcome.status == SyncLog.Status.SUCCESS else {}
        if self._mine(obj).update(**FREE_CLAIM, **landed):
            outcome.message += " The record changed while it was pushed; the change is pushed next."
        else:
            outcome.message += " Another worker took the record over meanwhile (this worker's lease ran out)."

    def _write_log(self, spec: EntitySpec, obj, ctx: SyncContext, started: float, outcome: Outcome, payload,
                   result: dict[str, Any], zoho_id: str, response: Any) -> None:
        """The push's SyncLog row: what was sent, what came back or what went wrong, and how long it took."""
        error = outcome.error
        logbook.write(
            spec, pk=obj.pk, label=spec.label(obj), zoho_id=zoho_id or obj.zoho_id or "", action=outcome.action,
            status=outcome.status, attempt=result.get("sync_attempts") or obj.sync_attempts + 1,
            message=" ".join([outcome.message, *ctx.notes]).strip(), error=error,
            error_kind=result.get("last_error_kind", ""),
            request_body=ctx.sent if ctx.sent is not None else payload,
            response_body=response if response is not None else getattr(error, "response_body", None),
            duration_ms=int((time.monotonic() - started) * 1000), run_id=self.run_id)

    @staticmethod
    def _apply_answer(spec: EntitySpec, response: dict) -> None:
        """Apply Zoho's answer to a successful write: what it says of records Zoho owns fields of (`on_created`),
        and Zoho's fields and modified time, so our own write is never pulled back (the event it causes is
        settled as an echo without a read)."""
        if spec.on_created:
            spec.on_created(response)
        from zoho_sync.sync.pull import absorb_answer  # pull imports this module

        absorb_answer(spec, response)

    @staticmethod
    def _lands(outcome: Outcome) -> bool:
        """Whether the outcome gives the record a Zoho id for the first time (created or linked)."""
        return outcome.status == SyncLog.Status.SUCCESS and outcome.action in (SyncLog.Action.CREATE,
                                                                               SyncLog.Action.LINK)

    def _wake_dependents_of_landed(self, spec: EntitySpec, obj) -> None:
        """Wake the records waiting for this one now, or after the batch with `defer_wakes`."""
        if self.defer_wakes:
            self._landed.setdefault(spec.name, []).append(obj.pk)
        else:
            self._wake_dependents(spec, [obj.pk])

    def _wake_if_dependencies_landed(self, spec: EntitySpec, obj, outcome: Outcome) -> None:
        """The dependency may have landed after it was judged missing, and its wake-up may have come before this
        wait was written: wake the record now, or a blocked one would never be tried again."""
        if self._dependencies_landed(spec, obj):
            self._wake(spec, type(obj).objects.filter(pk=obj.pk))
            outcome.state = SyncState.PENDING

    @staticmethod
    def _observe(outcome: Outcome) -> None:
        """Tell the shared connectivity reading what this push met (the banners: Zoho unreachable, credentials
        refused); a push that reached Zoho clears it. Free: no call, and a query at most a minute a process."""
        from zoho_sync.connectivity import connectivity_observe

        if isinstance(outcome.error, ZohoError | ZohoConfigurationError):
            connectivity_observe(outcome.error)
        elif outcome.status == SyncLog.Status.SUCCESS and outcome.action != SyncLog.Action.NONE:
            connectivity_observe()
