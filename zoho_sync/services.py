"""Sync services: what admin actions, commands and tasks call. No HTTP details and no output formatting here."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import uuid
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from zoho_sync import entities, selectors
from zoho_sync.client.budget import BudgetStats, Priority
from zoho_sync.conf import get_sync_settings, get_zoho_limits
from zoho_sync.models import ErrorKind, SyncLog, SyncRun, SyncState, SyncStatus
from zoho_sync.models.base import FAILURE_STATUSES
from zoho_sync.queueing import QueueUnavailableError, task_enqueue_later
from zoho_sync.sync import claims, logbook
from zoho_sync.sync.backfill import BackfillRun, EntityReport, SyncReport
from zoho_sync.sync.engine import Engine, Outcome, QuotaExhausted
from zoho_sync.sync.parallel import ParallelBackfill
from zoho_sync.sync.runs import budget_stats_since, sync_run_finish, sync_run_heartbeat, sync_run_start
from zoho_sync.sync.skips import records_skip
from zoho_sync.zoho import get_zoho_client

logger = logging.getLogger(__name__)
# Failures a retry cannot fix by itself: a person changes the data (or the settings) first.
PERMANENT_KINDS = (ErrorKind.VALIDATION, ErrorKind.INVALID_DATA, ErrorKind.AUTHENTICATION, ErrorKind.NOT_FOUND)
CONTINUE_SCHEDULE = "zoho: continue backfill after the daily quota"


def sync_mark_pending(*, queryset: QuerySet) -> int:
    """Queue the records for their next push (fresh attempt count, no waiting); return how many."""
    return queryset.update(sync_status=SyncStatus.PENDING, next_retry_at=None, sync_attempts=0)


def _enqueue_if_enabled():
    return (lambda entity, pk: sync_enqueue(entity=entity, pk=pk)) if get_sync_settings().triggers_enabled else None


def _finish_report(report: SyncReport, *, specs_run: tuple, since: datetime | None, client) -> SyncReport:
    flush = getattr(client.budget, "flush_usage", None) if client is not None else None
    if flush:
        flush()
    report.scope = selectors.sync_state_counts(specs=specs_run, since=since)
    return report


AUTO_WORKERS_MAX = 4


def backfill_workers(requested: int | None = None) -> int:
    """The worker processes a backfill uses: `requested`, else SYNC_BACKFILL_WORKERS, where 0 chooses one on SQLite
    (one writer at a time: more only queue) and otherwise one per CPU, at most AUTO_WORKERS_MAX and
    ZOHO_MAX_CONCURRENCY (each worker has a call in flight)."""
    workers = get_sync_settings().backfill_workers if requested is None else requested
    if workers:
        return workers
    if connection.vendor == "sqlite":
        return 1
    return max(1, min(os.cpu_count() or 1, AUTO_WORKERS_MAX, get_zoho_limits().max_concurrency))


def sync_pending(*, entity: str = "all", limit: int | None = None, batch_size: int = 100,
                 since: datetime | None = None, on_progress=None, retry_window: float | None = None,
                 client=None, workers: int = 1) -> SyncReport:
    """Push every due record of the entities, in dependency order (a backfill); see BackfillRun. With more than
    one worker (zoho_backfill takes backfill_workers()), worker processes share the run (parallel.py); each
    builds its own client from the settings, so passing a `client` means one process."""
    sync = get_sync_settings()
    window = sync.retry_window_seconds if retry_window is None else retry_window
    chosen = entities.specs_for(entity)
    if workers > 1 and connection.in_atomic_block:
        # Worker processes have their own connections: they would not see what this transaction has not committed.
        logger.info("Backfill inside a transaction: one process instead of %d workers", workers)
        workers = 1
    parallel = workers > 1 and client is None
    run_id = uuid.uuid4().hex
    with _recorded(run_id=run_id, kind=SyncRun.Kind.BACKFILL, chosen=chosen, since=since,
                   workers=workers if parallel else 1) as record:
        if parallel:
            run = ParallelBackfill(specs=chosen, workers=workers, client_factory=get_zoho_client,
                                   batch_size=batch_size, limit=limit, since=since, retry_window=window,
                                   on_progress=on_progress, run_id=run_id)
            report = _finish_report(run.run(), specs_run=chosen, since=since, client=None)
            return record(report, run.stats)
        client = client or get_zoho_client()
        before = dataclasses.replace(client.budget.stats)
        run = BackfillRun(specs=chosen, client=client, batch_size=batch_size, limit=limit, since=since,
                          retry_window=window, on_progress=on_progress, run_id=run_id)
        report = _finish_report(run.run(), specs_run=chosen, since=since, client=client)
        return record(report, budget_stats_since(client, before))


@contextlib.contextmanager
def _recorded(*, run_id: str, kind: str, chosen: tuple, since, workers: int):
    """A SyncRun for the block: started and beating while it runs; the block hands its report over with
    `record(report, budget_stats)`, and an exception that leaves it ends the run as crashed."""
    run = sync_run_start(run_id=run_id, kind=kind, entities=[spec.name for spec in chosen], since=since,
                         workers=workers)

    def record(report: SyncReport, stats: BudgetStats) -> SyncReport:
        sync_run_finish(run, report, stats=stats)
        return report

    try:
        with sync_run_heartbeat(run):
            yield record
    except BaseException as error:
        sync_run_finish(run, None, error=error)
        raise


def sync_retry_failed(*, entity: str = "all", include_validation: bool = False, on_progress=None,
                      client=None, now_for_person: bool = False) -> SyncReport:
    """Push again, now, the records whose last sync failed or that wait for a dependency.

    Failures a retry cannot fix by itself (validation, invalid data, authentication) are left alone unless asked
    for. Records blocked by such a failure follow their dependency when it lands; they are not pushed first.
    With `now_for_person` (zoho_retry_failed: a person waits for it) the run pushes every such record at once,
    at NORMAL priority and without leaving any to a queued triggered push; a schedule's retry stays a bulk run.
    The report lists every record of the scope left unsettled with why (`reasons`, zoho_sync/sync/retry.py).
    """
    from zoho_sync.sync.retry import retry_reasons

    now = timezone.now()
    chosen = entities.specs_for(entity)
    for spec in chosen:
        due = spec.model.objects.filter(sync_status__in=(SyncStatus.FAILED, SyncStatus.WAITING))
        if not include_validation:
            due = due.exclude(sync_status=SyncStatus.FAILED, last_error_kind__in=PERMANENT_KINDS)
        due.update(next_retry_at=now)
    client = client or get_zoho_client()
    run_id = uuid.uuid4().hex
    with _recorded(run_id=run_id, kind=SyncRun.Kind.RETRY, chosen=chosen, since=None, workers=1) as record:
        before = dataclasses.replace(client.budget.stats)
        run = BackfillRun(specs=chosen, client=client, use_index=False, retry_window=0, on_progress=on_progress,
                          run_id=run_id, priority=Priority.NORMAL if now_for_person else Priority.BULK,
                          leave_to_triggers=not now_for_person)
        report = _finish_report(run.run(), specs_run=chosen, since=None, client=client)
        report.reasons, report.reasons_more = retry_reasons(chosen, report, include_validation=include_validation,
                                                            started=now)
        return record(report, budget_stats_since(client, before))


def sync_object(*, entity: str, pk: int, client=None, run_id: str = "") -> Outcome | None:
    """Push one record now, after the records it depends on; None when it is not due or another worker has it."""
    spec = entities.BY_NAME[entity]
    client = client or get_zoho_client()
    for each in entities.SPECS:
        claims.reclaim_dead(each)  # a killed worker's claims must not hold a trigger for the whole lease
    run = BackfillRun(specs=(spec,), client=client, use_index=False)
    engine = Engine(client=client, run_id=run_id or run.run_id, claimer=run.claimer, enqueue=_enqueue_if_enabled())
    with client.priority(Priority.HIGH):
        try:
            return _push_with_dependencies(engine, spec, pk, seen=set())
        except QuotaExhausted as stop:  # a single push has no run to resume: the record says what it waits for
            message = quota_wait_mark(stop, records={(stop.entity or entity, stop.pk), (entity, pk)},
                                      run_id=engine.run_id)
            return Outcome(SyncLog.Status.FAILED, SyncLog.Action.NONE, message, stop, state=SyncState.RETRYING)


QUOTA_WAIT, QUOTA_UNTIL = "waiting for the quota", "quota until"  # keys of the push counts (QUOTA_UNTIL: epoch s)


def quota_wait_message(resume_at: datetime) -> str:
    return (f"Waiting for Zoho's daily API quota, used up: pushed again after it resets at "
            f"{resume_at.astimezone(UTC):%H:%M} UTC ({resume_at.astimezone(UTC):%Y-%m-%d}).")


def quota_wait_mark(stop: QuotaExhausted, *, records: set[tuple[str, int | None]], run_id: str = "") -> str:
    """Records whose push met the spent daily quota: failed, retrying at the reset (the "push pending" and "retry
    failed" schedules take them then), with the reason on the record and in the sync log. Returns the reason."""
    message = quota_wait_message(stop.resume_at)
    rate_limit_wait_mark(records, until=stop.resume_at, message=message, error=stop.error, run_id=run_id)
    return message


def rate_limit_wait_mark(records, *, until: datetime, message: str, error=None, run_id: str = "") -> None:
    """Records a rate limit keeps from Zoho (the spent quota, a lock-out): failed, retrying at `until`, the reason
    on the record and in the sync log. Not an attempt of the record's own: its attempt count stays (a rate limit
    never makes a push give up)."""
    for entity, pk in sorted(records, key=lambda r: (r[0], r[1] or 0)):
        if pk is None:
            continue
        spec = entities.BY_NAME[entity]
        rows = spec.model.objects.filter(pk=pk).exclude(sync_status__in=(SyncStatus.SYNCED, SyncStatus.SKIPPED))
        if not rows.update(sync_status=SyncStatus.FAILED, next_retry_at=until, last_sync_error=message,
                           last_error_kind=ErrorKind.RATE_LIMIT, failing_since=Coalesce(F("failing_since"),
                                                                                         Value(timezone.now()))):
            continue
        obj = spec.model.objects.get(pk=pk)
        logbook.write(spec, pk=pk, label=spec.label(obj), zoho_id=obj.zoho_id or "",
                      action=SyncLog.Action.UPDATE if obj.zoho_id else SyncLog.Action.CREATE,
                      status=SyncLog.Status.FAILED, attempt=obj.sync_attempts + 1, message=message, error=error,
                      error_kind=ErrorKind.RATE_LIMIT, run_id=run_id)


LOCKED_OUT, LOCKOUT_UNTIL = "locked out", "lockout until"  # keys of the push counts (LOCKOUT_UNTIL: epoch s)
LOCKOUT_WAIT_MAX = 5.0  # seconds a person's "Push now" waits out a lock-out; a longer one: the records wait


def lockout_wait_mark(entity: str, pks: list[int], *, seconds: float) -> datetime:
    """A person's push while Zoho locks us out (code 44, shared by every process) for longer than
    LOCKOUT_WAIT_MAX: no call is made; the records are failed, retrying when the lock-out ends. Returns when."""
    until = timezone.now() + timedelta(seconds=seconds)
    rate_limit_wait_mark({(entity, pk) for pk in pks}, until=until,
                         message=f"Zoho locked us out for calling too fast (code 44), until "
                                 f"{until.astimezone(UTC):%H:%M:%S} UTC: pushed again then.")
    return until


def sync_trigger(*, entity: str, pk: int) -> Outcome | None:
    """A triggered push (the django-q2 task): sync_object, written down as a run of its own."""
    client = get_zoho_client()
    run_id = uuid.uuid4().hex
    run = sync_run_start(run_id=run_id, kind=SyncRun.Kind.TRIGGER, entities=[entity])
    before = dataclasses.replace(client.budget.stats)
    try:
        outcome = sync_object(entity=entity, pk=pk, client=client, run_id=run_id)
    except BaseException as error:
        sync_run_finish(run, None, error=error)
        raise
    report = SyncReport(run_id=run_id, started=run.started_at, calls=client.budget.stats.calls - before.calls)
    report.entities[entity] = EntityReport(entity, due=1)
    if outcome is not None:
        report.entities[entity].count(pk, outcome)
        report.scope = {entity: {str(outcome.state): 1}}
    sync_run_finish(run, report, stats=budget_stats_since(client, before))
    return outcome


def _push_with_dependencies(engine: Engine, spec, pk: int, *, seen: set) -> Outcome | None:
    if (spec.name, pk) in seen:
        return None
    seen.add((spec.name, pk))
    row = spec.model.objects.filter(pk=pk).values(*[f"{attr}_id" for attr, _ in spec.depends_on]).first()
    if row is None:
        return None
    for attribute, dependency in spec.depends_on:
        related_pk = row[f"{attribute}_id"]
        if related_pk is not None:
            dep_spec = entities.BY_NAME[dependency]
            if not dep_spec.model.objects.filter(pk=related_pk, zoho_id__isnull=False).exists():
                _push_with_dependencies(engine, dep_spec, related_pk, seen=seen)
    # A trigger pushes the record whatever its retry time: a change or a landed dependency asked for it now.
    # A failure that needs a person stays as it is until the record changes.
    spec.model.objects.filter(pk=pk, sync_status__in=(SyncStatus.FAILED, SyncStatus.WAITING),
                              next_retry_at__isnull=False).update(next_retry_at=timezone.now())
    claimed = claims.claim(spec.model.objects.filter(pk=pk), claimer=engine.claimer, limit=1)
    if not claimed:
        return None
    try:
        obj = claims.claimed_objects(spec, claimed, engine.claimer)[0]
        return engine.push(spec, obj)
    finally:
        claims.release(spec, claimer=engine.claimer)


PUSH_NOW_LIMIT = 50


def sync_queryset(*, queryset: QuerySet) -> dict[str, int]:
    """Push one entity's selected records now, or queue them: sync_selection for them."""
    spec = entities.for_model(queryset.model)
    return sync_selection({spec.name: list(queryset.values_list("pk", flat=True))})


def _push_now(spec, pks: list[int]) -> dict[str, int]:
    """Push the records at once, one after the other (each after what it depends on): a person waits for them."""
    pks = list(spec.model.objects.filter(pk__in=pks).values_list("pk", flat=True))
    counts: dict[str, int] = {}
    sync_mark_pending(queryset=spec.model.objects.filter(pk__in=pks))
    client = get_zoho_client()
    locked = client.budget.snapshot().blocked_until - client.budget.clock()
    if locked > LOCKOUT_WAIT_MAX:  # a person waits for the page: not for a minute's lock-out
        until = lockout_wait_mark(spec.name, pks, seconds=locked)
        return {LOCKED_OUT: len(pks), LOCKOUT_UNTIL: int(until.timestamp())}
    for pk in pks:
        outcome = sync_object(entity=spec.name, pk=pk, client=client)
        key = "busy" if outcome is None else str(outcome.state)
        if outcome is not None and isinstance(outcome.error, QuotaExhausted):
            key = QUOTA_WAIT
            counts[QUOTA_UNTIL] = max(counts.get(QUOTA_UNTIL, 0), int(outcome.error.resume_at.timestamp()))
        counts[key] = counts.get(key, 0) + 1
    return counts


def _queue_later(spec, pks: list[int]) -> dict[str, int]:
    """Mark the records pending (fresh attempts) and queue a push of each for the cluster."""
    sync_mark_pending(queryset=spec.model.objects.filter(pk__in=pks))
    return _queue_pushes(spec.name, pks)


def sync_enqueue(*, entity: str, pk: int, delay: float | None = None) -> bool:
    """Queue one push of the record, due after the debounce window; False when one is already queued (a burst of
    edits costs one push) or the queue did not take it. No worker sleeps the window out: the queued task becomes
    visible when it is due. Never raises for a broker that is down (see push_enqueue)."""
    return push_enqueue(entity=entity, pk=pk, delay=delay) == QUEUED


QUEUED, JOINED, QUEUE_DOWN = "queued", "joined", "not queued"


def push_enqueue(*, entity: str, pk: int, delay: float | None = None) -> str:
    """sync_enqueue, saying what happened: QUEUED, JOINED (a push already queued takes the change along) or
    QUEUE_DOWN (the broker did not take it: logged once per outage by queueing; the record stays pending).

    The row's `push_queued_at` is the coalescing flag: set here by one conditional UPDATE before the task is
    queued (so of two saves racing, one queues and the other joins), cleared by the task when it starts. A flag
    older than the queue's retry time is taken as lost and queued again. When the broker refuses the task, the
    flag this call set (and only that one: compared by its time) is cleared again at once, so the next save, the
    "push pending" schedule (a backfill leaves flagged records to their triggers) or "Push to Zoho now" queue or
    push the record as soon as the broker is back, not after the retry time. A save that joined the failed
    enqueue in the moment between leaves its record pending like this one: the next save or the sweep takes it.
    """
    spec = entities.BY_NAME[entity]
    now = timezone.now()
    wait = get_sync_settings().debounce_seconds if delay is None else delay
    stale = claims.trigger_cutoff(now, wait)
    queued = spec.model.objects.filter(pk=pk).filter(
        Q(push_queued_at__isnull=True) | Q(push_queued_at__lt=stale)).update(push_queued_at=now)
    if not queued:
        return JOINED
    try:
        task_enqueue_later("zoho_sync.tasks.push_record", entity, pk, delay=wait,
                           task_name=f"zoho push {entity} {pk}", group="zoho push")
    except QueueUnavailableError:
        spec.model.objects.filter(pk=pk, push_queued_at=now).update(push_queued_at=None)
        return QUEUE_DOWN
    return QUEUED


def _queue_pushes(entity: str, pks: list[int]) -> dict[str, int]:
    """Queue a push of each record now: {"queued": n}, plus {"not queued": m} for those the queue did not take
    (it is down: the first refusal stops the loop, the rest stay pending like it, for the sweep)."""
    counts = {"queued": 0}
    for index, pk in enumerate(pks):
        if push_enqueue(entity=entity, pk=pk, delay=0) == QUEUE_DOWN:
            counts[QUEUE_DOWN] = len(pks) - index
            break
        counts["queued"] += 1
    return {key: n for key, n in counts.items() if n}


def backfill_schedule_continuation(*, entity: str, resume_at: datetime) -> str:
    """Install (or move) the one-off django-q2 schedule that continues a quota-stopped backfill after the reset;
    idempotent. Returns a sentence saying what was installed and what runs it."""
    from django_q.models import Schedule

    next_run = resume_at + timedelta(minutes=1)
    Schedule.objects.update_or_create(name=CONTINUE_SCHEDULE, defaults={
        "func": "zoho_sync.tasks.backfill", "args": repr(entity), "schedule_type": Schedule.ONCE,
        "next_run": next_run, "repeats": 1})
    local = timezone.localtime(next_run)
    return (f"Installed the django-q2 schedule {CONTINUE_SCHEDULE!r} to continue it at {local:%Y-%m-%d %H:%M %Z}; "
            "a running cluster (`manage.py qcluster`) starts it. Without one, run `manage.py zoho_backfill` "
            "again after that time.")


def sync_selection(selection: dict[str, list[int]]) -> dict[str, int]:
    """Push records a person chose (spec name -> primary keys; the admin's push actions), dependencies first: now
    when they are PUSH_NOW_LIMIT or fewer in all, else marked pending and queued for the cluster. The one place
    that decides between pushing now and queueing.

    Returns how many ended in each state of the one vocabulary (SyncState values), plus "queued" and "busy"; a
    record that met the spent daily quota is counted under QUOTA_WAIT (it is failed, retrying at the reset), and
    QUOTA_UNTIL holds that reset as epoch seconds; during a lock-out longer than LOCKOUT_WAIT_MAX nothing is sent:
    LOCKED_OUT counts the records (failed, retrying when it ends) and LOCKOUT_UNTIL says when.
    """
    push = _push_now if sum(len(pks) for pks in selection.values()) <= PUSH_NOW_LIMIT else _queue_later
    counts: dict[str, int] = {}
    for spec in entities.SPECS:  # dependency order: a customer lands before its failed service is pushed
        pks = selection.get(spec.name)
        if not pks:
            continue
        for key, n in push(spec, pks).items():
            counts[key] = max(counts.get(key, 0), n) if key in (QUOTA_UNTIL, LOCKOUT_UNTIL) else counts.get(key, 0) + n
    return counts


def sync_retry_queue(*, entity: str, include_validation: bool = False) -> str:
    """Queue a retry of every failure (and wait) of one entity for the cluster: what the admin's "retry all" runs.
    Returns the django-q2 task's name; raises QueueUnavailableError when the queue did not take it."""
    name = f"zoho retry {entity}" + (" incl. validation" if include_validation else "")
    task_enqueue_later("zoho_sync.tasks.retry_entity", entity, include_validation, delay=0, task_name=name,
                       group="zoho retry")
    return name


SKIPPED_BY = "Skipped by {who} on {when:%Y-%m-%d %H:%M %Z}: not pushed to Zoho until it changes"


def sync_skip(*, by: str, selection: dict[str, list[int]] | None = None, entity: str = "",
              pks: list[int] | None = None) -> int:
    """Stop pushing records that failed, wait or are blocked (a person's choice: the admin's "Skip selected"
    actions): they become skipped, with who and when on the record and in the sync log, until a local change queues
    them again. A record a worker holds right now is left as it is. `selection` maps entity names to primary keys
    (records of several entities); `entity` and `pks` name one entity's. Returns how many were skipped."""
    chosen = {name: list(keys) for name, keys in (selection or {}).items()}
    if entity:
        chosen.setdefault(entity, []).extend(pks or [])
    now = timezone.now()
    reason = SKIPPED_BY.format(who=by, when=timezone.localtime(now))
    skipped = 0
    for spec in entities.SPECS:
        if not chosen.get(spec.name):
            continue
        candidates = spec.model.objects.filter(pk__in=chosen[spec.name], sync_status__in=FAILURE_STATUSES).filter(
            claims.free_filter(now))
        skipped += len(records_skip(spec, {reason: list(candidates)}, now=now))
    return skipped
