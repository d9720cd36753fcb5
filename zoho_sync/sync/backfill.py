"""A sync run over many records: claim in batches, push, adapt the batch size, retry what is due soon, report.

Pacing comes from the shared rate budget (Priority.BULK), never from sleeps. When the daily quota runs low the run
stops cleanly, gives its claims back and says when it can go on.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Min, Q
from django.utils import timezone

from zoho_sync.client.budget import Priority
from zoho_sync.conf import get_sync_settings
from zoho_sync.entities import EntitySpec
from zoho_sync.models import UNSETTLED_STATES, SyncLog, SyncState, SyncStatus
from zoho_sync.sync import claims
from zoho_sync.sync.engine import BUSY, Engine, Enqueue, Outcome, QuotaExhausted

logger = logging.getLogger(__name__)
MIN_BATCH, MAX_BATCH = 5, 1000
# A claimed record waits for its turn in its batch, and so does a person's edit of it (its trigger finds it
# claimed and leaves it to the batch). So a batch holds at most this many seconds of work at the pace the run
# actually goes: at the rate budget's pace (a call a second or so) a handful of records, unthrottled hundreds.
BATCH_SECONDS = 10.0
# What a run did to each record it pushed, in the one vocabulary: a synced record by its action, else its state.
SYNCED_KEYS = {"create": "created", "update": "updated", "link": "linked", "cancel": "cancelled", "none": "unchanged"}
FAILED_KEYS = (SyncState.NEEDS_PERSON, SyncState.RETRYING)


@dataclass
class EntityReport:
    name: str
    due: int = 0
    last: dict[int, str] = field(default_factory=dict)  # pk -> what the run's last push of it left
    kinds: dict[int, str] = field(default_factory=dict)  # pk -> error kind of its last failure in this run
    reasons: dict[int, str] = field(default_factory=dict)  # pk -> why it was skipped, when this run skipped it
    failed: int = 0  # records whose last outcome in this run is a failure (kept current: read after every push)

    def count(self, pk: int, outcome: Outcome) -> tuple[str, str, str] | None:
        """Count what a push left; return it as (key, error kind or "", skip reason or "") for `record`, None for a
        busy record."""
        if outcome.state == BUSY:
            return None
        key = SYNCED_KEYS.get(outcome.action, "unchanged") if outcome.state == SyncState.SYNCED else outcome.state
        kind = getattr(outcome.error, "kind", "unknown") if outcome.status == SyncLog.Status.FAILED else ""
        reason = outcome.message if key == SyncState.SKIPPED else ""
        self.record(pk, key, kind, reason)
        return key, kind, reason

    def record(self, pk: int, key: str, kind: str = "", reason: str = "") -> None:
        self.failed += (key in FAILED_KEYS) - (self.last.get(pk) in FAILED_KEYS)
        self.last[pk] = key
        if kind:
            self.kinds[pk] = kind
        if reason:
            self.reasons[pk] = reason

    @property
    def errors(self) -> Counter:
        """Error kinds of the records whose last push in this run failed."""
        return Counter(self.kinds[pk] for pk, key in self.last.items() if key in FAILED_KEYS)

    @property
    def skipped(self) -> Counter:
        """Why the records whose last outcome in this run is "skipped" were skipped: {reason: records}."""
        return Counter(self.reasons.get(pk) or "no reason given" for pk, key in self.last.items()
                       if key == SyncState.SKIPPED)

    @property
    def done(self) -> int:
        return len(self.last)


@dataclass
class Progress:
    entity: str
    done: int
    due: int
    failed: int
    rate: float
    eta_seconds: float | None
    batch_size: int


@dataclass
class SyncReport:
    run_id: str
    started: datetime
    entities: dict[str, EntityReport] = field(default_factory=dict)
    calls: int = 0
    seconds: float = 0.0
    stopped: str = ""  # why the run stopped before the end (daily quota), with when it can go on
    resume_at: datetime | None = None  # when it can go on
    continuation: str = ""  # what was arranged for it to go on (the schedule installed, or what to run)
    # Every record of the run's scope (its entities, --since) by state, read when the run ended: the exit code
    # and the closing lines speak of these, whether or not this run touched them.
    scope: dict[str, dict[str, int]] = field(default_factory=dict)
    # Records of the scope left failed, waiting or blocked, each with why this run did not settle it (a retry
    # says so per record: zoho_sync/sync/retry.py); `reasons_more` counts those left out of a long list.
    reasons: list = field(default_factory=list)
    reasons_more: int = 0

    @property
    def failed(self) -> int:
        return sum(e.failed for e in self.entities.values())

    @property
    def unsettled(self) -> dict[str, int]:
        """Records of the scope left failed, waiting or blocked, by state (zero states left out)."""
        totals = Counter()
        for counts in self.scope.values():
            totals.update({state: counts.get(state, 0) for state in UNSETTLED_STATES})
        return {state: n for state, n in totals.items() if n}

    @property
    def settled(self) -> bool:
        """Nothing in scope is left failed, waiting or blocked, and the run was not stopped: exit code 0."""
        return not self.stopped and not self.unsettled

    @property
    def done(self) -> int:
        return sum(e.done for e in self.entities.values())


def next_batch_size(size: int, error_rate: float, seconds_per_record: float, most: int = MAX_BATCH) -> int:
    """The next batch: adapted to the error rate (adapt_batch), at most `most`, and at most BATCH_SECONDS of work
    at the pace of the last batch."""
    size = min(most, adapt_batch(size, error_rate))
    return max(1, min(size, int(BATCH_SECONDS / max(seconds_per_record, 1e-6))))


def adapt_batch(size: int, error_rate: float) -> int:
    """Shrink when more than 30% of a batch failed, grow when fewer than 10% did (operations' rule)."""
    if error_rate > 0.3:
        return max(MIN_BATCH, size // 2)
    if error_rate < 0.1:
        return min(MAX_BATCH, size * 2)
    return size


class BackfillRun:
    """One process's run. Several processes can run one backfill together (parallel.py): they share the run id,
    each reports every record's result through `on_outcome(entity, pk, key, error kind, skip reason)`, and
    `between_entities(entity)` is called when this run has nothing left to claim of an entity in its first pass (the
    workers wait for each other there, so no record waits for a dependency another worker is still pushing)."""

    def __init__(self, *, specs: tuple[EntitySpec, ...], client, batch_size: int = 100, limit: int | None = None,
                 since: datetime | None = None, retry_window: float = 300.0,
                 on_progress: Callable[[Progress], None] | None = None, use_index: bool = True,
                 sleep: Callable[[float], None] = time.sleep, enqueue: Enqueue | None = None,
                 run_id: str | None = None, on_outcome: Callable[[str, int, str, str, str], None] | None = None,
                 between_entities: Callable[[str], None] | None = None, max_batch: int = MAX_BATCH,
                 priority: Priority = Priority.BULK, leave_to_triggers: bool = True):
        self.specs, self.client, self.batch_size, self.limit = specs, client, batch_size, limit
        # A person's retry (zoho_retry_failed) pushes every record now: at NORMAL priority (the daily reserve kept
        # from backfills is for it too) and without leaving records to their queued triggered pushes (claims keep
        # the two from pushing one record twice; the trigger then finds nothing to do).
        self.priority, self.leave_to_triggers = priority, leave_to_triggers
        self.since, self.retry_window, self.on_progress, self.sleep = since, retry_window, on_progress, sleep
        self.on_outcome, self.between_entities, self.max_batch = on_outcome, between_entities, max_batch
        self.run_id = run_id or uuid.uuid4().hex
        self.claimer = claims.claimer_name(self.run_id)
        # The run reaches records its pushes wake by itself: nothing is queued for them.
        self.engine = Engine(client=client, run_id=self.run_id, claimer=self.claimer, use_index=use_index,
                             enqueue=enqueue, defer_wakes=True)
        self.report = SyncReport(run_id=self.run_id, started=timezone.now())
        self._started = time.monotonic()
        self._pushes: Counter = Counter()  # (entity, pk) -> pushes in this run
        self._set_aside: dict[str, set[int]] = {}  # records pushed too often in this run: left for the next one

    def base(self, spec: EntitySpec):
        qs = spec.model.objects.all()
        if self._set_aside.get(spec.name):
            qs = qs.exclude(pk__in=self._set_aside[spec.name])
        return qs.filter(updated_at__gte=self.since) if self.since else qs

    def prepare(self, spec: EntitySpec) -> int:
        """Before the entity's first pass: free the claims of dead workers, wake the records whose dependencies
        landed meanwhile (wake_landed); return how many of its records are due."""
        claims.reclaim_dead(spec)
        Engine.wake_landed(spec)
        return self.base(spec).filter(claims.due_filter(timezone.now())).count()

    def run(self) -> SyncReport:
        calls_before = self.client.budget.stats.calls
        try:
            # One caller making one call after another: its concurrency slot is kept from a call to the next.
            with self.client.priority(self.priority), self.client.budget.keeping_slot():
                for spec in self.specs:
                    self.report.entities[spec.name] = EntityReport(spec.name, due=self.prepare(spec))
                self._pass(first=True)
                self._retry_soon()
        except QuotaExhausted as stop:
            self.report.resume_at = stop.resume_at
            local = timezone.localtime(stop.resume_at)
            self.report.stopped = (
                f"Stopped: {stop.error.message} The backfill can go on after {local:%Y-%m-%d %H:%M %Z}."
            )
            logger.warning("%s", self.report.stopped)
        finally:
            self.engine.wake_deferred()
            for spec in self.specs:
                claims.release(spec, claimer=self.claimer)
            self.report.calls = self.client.budget.stats.calls - calls_before
            self.report.seconds = time.monotonic() - self._started
        return self.report

    def _remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.report.done)

    def _pass(self, *, first: bool = False) -> None:
        for spec in self.specs:
            self._pass_entity(spec)
            if first and self.between_entities:
                self.between_entities(spec.name)

    def _count(self, spec: EntitySpec, entity: EntityReport, pk: int, outcome: Outcome) -> None:
        result = entity.count(pk, outcome)
        if result and self.on_outcome:
            self.on_outcome(spec.name, pk, *result)

    def _pass_entity(self, spec: EntitySpec) -> None:
        entity, size = self.report.entities[spec.name], self.batch_size
        while True:
            remaining = self._remaining()
            if remaining == 0:
                return
            pks = claims.claim(self._claimable(spec), claimer=self.claimer,
                               limit=min(size, remaining) if remaining else size)
            if not pks:
                break
            batch_started, batch_failed = time.monotonic(), 0
            objs = claims.claimed_objects(spec, pks, self.claimer)
            skipped = self.engine.skip_many(spec, objs)
            for pk, outcome in skipped.items():
                self._count(spec, entity, pk, outcome)
            if skipped:
                self._progress(spec, entity, size)
            for obj in objs:
                if obj.pk in skipped or self._pushed_too_often(spec, obj):
                    continue
                outcome = self.engine.push(spec, obj)
                self._count(spec, entity, obj.pk, outcome)
                batch_failed += outcome.status == SyncLog.Status.FAILED
                self._progress(spec, entity, size)
            self.engine.wake_deferred()
            claims.release(spec, claimer=self.claimer)  # anything set aside goes back
            size = next_batch_size(size, batch_failed / len(pks), (time.monotonic() - batch_started) / len(pks),
                                   self.max_batch)

    def _claimable(self, spec: EntitySpec):
        """What this run may claim: while a cluster runs, not a record whose triggered push is queued (the trigger
        goes first; claims.left_to_triggers). Once that push is a minute overdue, or with no cluster, the run
        pushes it itself; a run that does not leave records to triggers (a person's retry) takes them all."""
        left = claims.left_to_triggers(timezone.now()) if self.leave_to_triggers else None
        return self.base(spec) if left is None else self.base(spec).exclude(left)

    def _pushed_too_often(self, spec: EntitySpec, obj) -> bool:
        """A safety net: every outcome leaves a record not due until its retry time, a change or a wake-up, so a
        run never pushes one record in a loop; should that ever fail, the record is set aside, loudly."""
        self._pushes[spec.name, obj.pk] += 1
        if self._pushes[spec.name, obj.pk] <= get_sync_settings().max_attempts + 2:
            return False
        self._set_aside.setdefault(spec.name, set()).add(obj.pk)
        logger.error("%s %s was due again and again in one run (%d pushes); set aside until the next run",
                     spec.name, obj.pk, self._pushes[spec.name, obj.pk] - 1)
        return True

    def _retry_soon(self) -> None:
        """Records whose retry falls due within the window are waited for, so the run finishes by itself."""
        deadline = timezone.now() + timedelta(seconds=self.retry_window)
        while self.retry_window > 0 and self._remaining() != 0:
            soonest = None
            for spec in self.specs:
                # Records waiting for a dependency are woken by its success, not by the clock.
                due = self.base(spec).filter(
                    Q(sync_status__in=(SyncStatus.PENDING, SyncStatus.FAILED)), next_retry_at__lte=deadline
                ).aggregate(at=Min("next_retry_at"))["at"]
                soonest = due if soonest is None or (due and due < soonest) else soonest
            if soonest is None:
                return
            wait = (soonest - timezone.now()).total_seconds()
            if wait > 0:
                logger.info("Waiting %.0f s for records due for another try", wait)
                self.client.budget.give_back_slot()  # no call is in flight while it waits
                self.sleep(wait)
            self._pass()

    def _progress(self, spec: EntitySpec, entity: EntityReport, size: int) -> None:
        if not self.on_progress:
            return
        elapsed = max(1e-6, time.monotonic() - self._started)
        rate = self.report.done / elapsed
        due = max(entity.due, entity.done)  # records woken or added during the run count too
        left = max(0, due - entity.done)
        self.on_progress(Progress(spec.name, entity.done, due, entity.failed, rate,
                                  left / rate if rate else None, size))
