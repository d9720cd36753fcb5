"""The event inbox: the one place changes from Zoho enter (a webhook, event replay, reconciliation).

An event is stored once by Zoho's event id, kept whole (a duplicate delivery is acknowledged and ignored), and
applied by a django-q2 task. An event is only a trigger: its Zoho record is re-read through the API (§12.5: the
payload's shape is undocumented; the API's is not) and applied by the pull step; the event's own copy of the record
is never applied, so an event whose record Zoho does not have (404) changes nothing and is quarantined at once.
An event whose record here already holds Zoho's state as of the event (the event our own push caused: the push
applied Zoho's answer, sync/pull.py absorb_answer) is settled as ignored, "our own write", without any read and
without a sync-log row.
A failure is retried with a growing, jittered delay; after INBOX_MAX_ATTEMPTS the event is quarantined with its
error for a person (admin: Zoho events; replayable after a fix). Each event is its own task, so one that keeps
failing never holds up the events behind it.
"""

from __future__ import annotations

import logging
import math
import random
import re
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from zoho_sync import entities
from zoho_sync.client.errors import ZohoNotFoundError
from zoho_sync.conf import get_inbox_settings
from zoho_sync.entities import EntitySpec
from zoho_sync.models import ZohoEvent
from zoho_sync.queueing import QueueUnavailableError, task_enqueue_later
from zoho_sync.redaction import redact_text
from zoho_sync.sync.pull import PullOutcome, RecordBusy, pull
from zoho_sync.wire import inbound
from zoho_sync.wire.errors import BadZohoValue

logger = logging.getLogger(__name__)
CLAIM = timedelta(minutes=5)  # a worker that died while applying an event loses it after this
TASK = "zoho_sync.tasks.apply_event"
ECHO = "echo"  # a PullOutcome's action: the event's record already holds that state (our own write): no read


# --- which record an event is about ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Subject:
    spec: EntitySpec
    key: str  # the entity's key under `data`
    path: str  # where the API reads it again

    @classmethod
    def of(cls, spec: EntitySpec) -> Subject:
        return cls(spec, spec.events.data_key, spec.events.read_path)


RECONCILED = "reconciled_"  # the event type of a difference reconciliation found: reconciled_<Zoho entity>


def subject_of(event_type: str) -> Subject | None:
    """The record an event type is about (its spec's `events`); None for what this app mirrors nothing of."""
    if event_type.startswith(RECONCILED):
        spec = entities.by_zoho_entity(event_type.removeprefix(RECONCILED))
        spec = spec if spec is not None and spec.events is not None else None
    else:
        spec = entities.for_event(event_type)
    return Subject.of(spec) if spec is not None else None


def _entity_data(payload: dict, subject: Subject | None) -> dict:
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    entity = data.get(subject.key) if subject else None
    return entity if isinstance(entity, dict) else {}


# --- what the inbox can keep whole ---------------------------------------------------------------------------
EVENT_ID_MAX = 64  # ZohoEvent.event_id; Zoho's event ids are numeric strings of 15-19 digits: a longer one is refused
EVENT_TYPE_MAX = 64  # ZohoEvent.event_type; Zoho's longest is 39 characters
MAX_DEPTH = 32  # nesting of the body; Zoho's events nest 6 or 7 levels
_ZOHO_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates: PostgreSQL's jsonb refuses both


class EventRefused(ValueError):
    """An event the inbox cannot store whole (its id too long, a field of the wrong type); names the field."""


def payload_problem(payload: dict) -> str | None:
    """What in an event's payload the inbox cannot keep as it is, in a sentence naming where; None when nothing:
    nesting deeper than MAX_DEPTH, a NUL character or a lone surrogate in a key or a text (PostgreSQL's jsonb
    refuses both), a number that is not finite."""
    stack: list[tuple[object, str, int]] = [(payload, "the body", 1)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"the body is nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or _BAD_TEXT.search(key):
                    return f"a key in {where} holds a NUL character or a lone surrogate"
                stack.append((item, f"{where}.{key[:40]}" if where != "the body" else key[:40], depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value))
        elif isinstance(value, str) and _BAD_TEXT.search(value):
            return f"{where} holds a NUL character or a lone surrogate"
        elif isinstance(value, float) and not math.isfinite(value):
            return f"{where} is a number too large to keep"
    return None



def event_identity(payload: dict) -> str | None:
    """The event's id as the inbox stores it, whole; None when it has none (Zoho's test ping, answered and
    ignored). EventRefused for an id or type the inbox cannot keep whole: an id that is not a string or a whole
    number, an id over EVENT_ID_MAX characters (never cut: a cut id would pass another event off as a duplicate),
    an event_type that is not a string or is over EVENT_TYPE_MAX characters."""
    raw = payload.get("event_id")
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise EventRefused(f"event_id must be a string or a whole number, not {type(raw).__name__}")
    event_id = str(raw)
    if len(event_id) > EVENT_ID_MAX:
        raise EventRefused(f"event_id is {len(event_id)} characters long; at most {EVENT_ID_MAX} are kept "
                           f"(Zoho's are numeric strings of about 19 digits)")
    if _BAD_TEXT.search(event_id):
        raise EventRefused("event_id holds a NUL character or a lone surrogate")
    event_type = payload.get("event_type")
    if event_type is not None and not isinstance(event_type, str):
        raise EventRefused(f"event_type must be a string, not {type(event_type).__name__}")
    if len(event_type or "") > EVENT_TYPE_MAX:
        raise EventRefused(f"event_type is over {EVENT_TYPE_MAX} characters long")
    return event_id


# --- accepting -------------------------------------------------------------------------------------------------
def event_accept(payload: dict, *, source: str) -> tuple[ZohoEvent, bool]:
    """Store an event once (unique by Zoho's event id, kept whole); True when it is new. A new one is queued to be
    applied when the transaction commits. EventRefused (a ValueError naming the field) for an event without an
    id, whose id or type cannot be kept whole (event_identity), or whose payload the database would refuse
    (payload_problem): whatever the source, nothing is half-stored."""
    event_id = event_identity(payload)
    if event_id is None:
        raise EventRefused("the event has no event_id")
    problem = payload_problem(payload)
    if problem:
        raise EventRefused(f"event {event_id}: {problem}")
    existing = ZohoEvent.objects.filter(event_id=event_id).first()
    if existing is not None:
        return existing, False
    subject = subject_of(payload.get("event_type") or "")
    entity = _entity_data(payload, subject)
    fields = {"event_type": payload.get("event_type") or "", "source": source, "payload": payload,
              "event_time": inbound.zoho_time(payload.get("event_time") or payload.get("created_time")),
              "entity": subject.spec.name if subject else "",
              "zoho_id": str(entity.get(subject.spec.id_field, "") if subject else "")[:64]}
    try:
        with transaction.atomic():
            event = ZohoEvent.objects.create(event_id=event_id, **fields)
    except IntegrityError:  # the same event, delivered twice at once
        return ZohoEvent.objects.get(event_id=event_id), False
    transaction.on_commit(lambda: event_enqueue(event.pk))
    return event, True


def reconciled_event(spec: EntitySpec, remote: dict) -> dict:
    """A difference reconciliation found, as an inbox event about the record (its id: the record and Zoho's
    modified time, so the same state found twice is one event)."""
    zoho_id = str(remote.get(spec.id_field) or "")
    modified = inbound.modified_time(remote)
    stamp = modified.strftime("%Y%m%dT%H%M%S") if modified else "unknown"
    return {"event_id": f"reconcile-{spec.zoho_entity}-{zoho_id}-{stamp}"[:64],
            "event_type": f"{RECONCILED}{spec.zoho_entity}", "event_time": modified.isoformat() if modified else None,
            "data": {spec.zoho_entity: remote}}


def event_enqueue(pk: int, *, delay: float = 0) -> bool:
    """Queue the event's task; False when the queue did not take it (logged once per outage by queueing): the
    event stays in the inbox as it is, and the sweep (events_sweep, every few minutes) queues it again."""
    try:
        task_enqueue_later(TASK, pk, delay=delay, task_name=f"zoho event {pk}", group="zoho events")
    except QueueUnavailableError:
        return False
    return True


# --- applying --------------------------------------------------------------------------------------------------
class EventRecordMissing(Exception):
    """Zoho has no record for the event (404 on its re-read): nothing is applied; the event is quarantined."""


def _claim(pk: int) -> bool:
    now = timezone.now()
    due = Q(state__in=(ZohoEvent.State.RECEIVED, ZohoEvent.State.FAILED)) | Q(
        state=ZohoEvent.State.PROCESSING, claimed_until__lt=now)  # its worker died
    return bool(ZohoEvent.objects.filter(due, pk=pk).update(state=ZohoEvent.State.PROCESSING,
                                                            claimed_until=now + CLAIM, attempts=F("attempts") + 1))


def event_apply(pk: int, *, client=None) -> str:
    """Apply one event (the django-q2 task). Returns what happened, in a sentence."""
    if not _claim(pk):
        return f"event {pk}: not due, or another worker applies it"
    event = ZohoEvent.objects.get(pk=pk)
    conf = get_inbox_settings()
    try:
        outcomes = _apply(event, client=client)
    except RecordBusy as busy:
        ZohoEvent.objects.filter(pk=pk).update(
            state=ZohoEvent.State.FAILED, attempts=F("attempts") - 1, last_error=str(busy), claimed_until=None,
            next_attempt_at=timezone.now() + timedelta(seconds=conf.busy_retry_seconds))
        event_enqueue(pk, delay=conf.busy_retry_seconds)
        return f"event {event.event_id}: {busy}"
    except EventRecordMissing as missing:  # retrying reads the same 404: a person decides (replayable)
        text = redact_text(str(missing))[:4000]
        ZohoEvent.objects.filter(pk=pk).update(state=ZohoEvent.State.QUARANTINED, last_error=text, outcome=text,
                                               claimed_until=None, next_attempt_at=None)
        logger.error("Zoho event %s (%s) quarantined: %s", event.event_id, event.event_type, text)
        return f"event {event.event_id}: quarantined: {text}"
    except Exception as error:  # any failure is the event's, written on its row; the next events go on
        return _failed(event, error, conf)
    applied = [o for o in outcomes if o.action in ("created", "updated")]
    state = ZohoEvent.State.APPLIED if outcomes and all(o.action not in ("unknown", ECHO) for o in outcomes) else \
        ZohoEvent.State.IGNORED
    said = "; ".join(o.message for o in outcomes) or "the event carries nothing this app mirrors"
    ZohoEvent.objects.filter(pk=pk).update(state=state, outcome=said[:4000], last_error="", claimed_until=None,
                                           next_attempt_at=None, processed_at=timezone.now())
    return f"event {event.event_id} ({event.event_type}): {len(applied)} record(s) changed: {said}"


def _failed(event: ZohoEvent, error: Exception, conf) -> str:
    attempts = ZohoEvent.objects.filter(pk=event.pk).values_list("attempts", flat=True).first() or 1
    text = redact_text(f"{type(error).__name__}: {error}")[:4000]
    # A number Zoho sent that cannot be kept here stays wrong until someone corrects it in Zoho: retrying cannot
    # help, so the event waits for that person at once (replayable after the fix).
    if attempts >= conf.max_attempts or isinstance(error, BadZohoValue):
        ZohoEvent.objects.filter(pk=event.pk).update(state=ZohoEvent.State.QUARANTINED, last_error=text,
                                                     claimed_until=None, next_attempt_at=None)
        logger.error("Zoho event %s (%s) quarantined after %d attempts: %s", event.event_id, event.event_type,
                     attempts, text)
        return f"event {event.event_id}: quarantined after {attempts} attempts: {text}"
    delay = conf.retry_base_seconds * 2 ** (attempts - 1) * random.uniform(0.8, 1.2)
    ZohoEvent.objects.filter(pk=event.pk).update(state=ZohoEvent.State.FAILED, last_error=text, claimed_until=None,
                                                 next_attempt_at=timezone.now() + timedelta(seconds=delay))
    event_enqueue(event.pk, delay=delay)
    logger.warning("Zoho event %s (%s) failed (attempt %d), retried in %.0f s: %s", event.event_id,
                   event.event_type, attempts, delay, text)
    return f"event {event.event_id}: failed (attempt {attempts}), retried in {delay:.0f} s: {text}"


def _apply(event: ZohoEvent, *, client=None) -> list[PullOutcome]:
    subject = subject_of(event.event_type)
    if subject is None:
        return []
    entity = _entity_data(event.payload, subject)
    zoho_id = str(entity.get(subject.spec.id_field) or "")
    if not zoho_id:
        raise ValueError(f"the event's data.{subject.key} has no {subject.spec.id_field}")
    if not _ZOHO_ID.fullmatch(zoho_id):
        raise ValueError(f"the event's data.{subject.key}.{subject.spec.id_field} is not a Zoho id")
    echo = _echo(subject, zoho_id, entity, event)
    if echo is not None:
        return [echo]
    if client is None:
        from zoho_sync.zoho import get_zoho_client

        client = get_zoho_client()
    note = f"event {event.event_id} {event.event_type}"
    remote = _read_subject(client, subject, zoho_id)
    outcomes = [pull(subject.spec, remote, when=event.event_time, note=note)]
    for name, related_id in subject.spec.related(remote, client):  # records it changed (a payment's invoices)
        related = Subject.of(entities.BY_NAME[name])
        record = _read(client, related.path.format(related_id), related.key)
        if record:
            outcomes.append(pull(related.spec, record, when=event.event_time, note=note))
    return outcomes


def _echo(subject: Subject, zoho_id: str, entity: dict, event: ZohoEvent) -> PullOutcome | None:
    """The event carries nothing new when its record here already holds Zoho's state as of the event's copy of the
    record (its modified time): the event of our own push, whose answer the push applied (sync/pull.py
    absorb_answer), or a state pulled already. Settled without a read and without a sync-log row; None when the
    event may be newer, or its copy says no modified time (it is read and applied)."""
    try:
        modified = inbound.modified_time(entity)
    except (TypeError, ValueError):
        modified = None
    if modified is None:
        return None
    obj = subject.spec.model.objects.filter(zoho_id=zoho_id, zoho_modified_at__gte=modified).first()
    if obj is None:
        return None
    return PullOutcome(subject.spec.name, obj.pk, ECHO, (
        f"ignored: our own write: {subject.spec.label(obj)} already holds Zoho's state of "
        f"{obj.zoho_modified_at:%Y-%m-%d %H:%M:%S %Z} (the event's copy is of {modified:%Y-%m-%d %H:%M:%S %Z}); "
        "settled without a read"))


def _read_subject(client, subject: Subject, zoho_id: str) -> dict:
    """The event's record as Zoho has it now. An event is only a trigger: its own copy of the record is never
    applied, so a record Zoho does not have (404) changes nothing here (EventRecordMissing: quarantined)."""
    path = subject.path.format(zoho_id)
    try:
        remote = client.get(path).get(subject.key)
    except ZohoNotFoundError as error:
        raise EventRecordMissing(
            f"Zoho has no {subject.key} {zoho_id} (GET {path}: HTTP {error.status_code or 404}); an event is only "
            f"a trigger and its own copy is never applied, so nothing changed here") from None
    if not isinstance(remote, dict) or str(remote.get(subject.spec.id_field) or "") != zoho_id:
        raise ValueError(f"GET {path} answered without the {subject.key} {zoho_id}")
    return remote


def _read(client, path: str, key: str) -> dict | None:
    try:
        return client.get(path).get(key)
    except ZohoNotFoundError:
        return None  # gone from Zoho (an invoice a payment names): nothing to bring in for it


# --- sweeping and replaying ------------------------------------------------------------------------------------
def events_sweep() -> int:
    """Queue again the events whose task was lost: failed ones due, received ones older than a minute, and those
    whose worker died. The schedule runs it every few minutes; returns how many."""
    now = timezone.now()
    lost = ZohoEvent.objects.filter(
        Q(state=ZohoEvent.State.FAILED, next_attempt_at__lte=now)
        | Q(state=ZohoEvent.State.RECEIVED, received_at__lt=now - timedelta(minutes=1))
        | Q(state=ZohoEvent.State.PROCESSING, claimed_until__lt=now))
    pks = list(lost.values_list("pk", flat=True)[:1000])
    queued = 0
    for pk in pks:
        if not event_enqueue(pk):
            break  # the queue is down: the rest wait for the next sweep, as this one does
        queued += 1
    return queued


def event_reset(pk: int) -> None:
    """Make an event due again, to be applied by the caller now (no task is queued)."""
    ZohoEvent.objects.filter(pk=pk).exclude(state=ZohoEvent.State.PROCESSING).update(
        state=ZohoEvent.State.RECEIVED, attempts=0, last_error="", next_attempt_at=None, claimed_until=None)


def event_replay(pks: list[int]) -> int:
    """Apply events again (a quarantined one after a fix, or any other): back to received, attempts from zero."""
    count = ZohoEvent.objects.filter(pk__in=pks).exclude(state=ZohoEvent.State.PROCESSING).update(
        state=ZohoEvent.State.RECEIVED, attempts=0, last_error="", next_attempt_at=None, claimed_until=None)
    for pk in pks:
        transaction.on_commit(lambda pk=pk: event_enqueue(pk))
    return count
