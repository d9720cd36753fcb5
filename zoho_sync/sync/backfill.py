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
from zoho_sync.models import SyncLog, SyncStatus
from zoho_sync.sync import claims
from zoho_sync.sync.engine import Engine, Outcome, QuotaExhausted
from zoho_sync.sync.specs import EntitySpec

logger = logging.getLogger(__name__)
MIN_BATCH, MAX_BATCH = 5, 1000


@dataclass
class EntityReport:
    name: str
    due: int = 0
    last: dict[int, str] = field(default_factory=dict)  # pk -> last status in this run
    errors: Counter = field(default_factory=Counter)  # error kind -> records
    failed: int = 0  # records whose last outcome in this run is a failure (kept current: read after every push)

    def count(self, pk: int, outcome: Outcome) -> None:
        if outcome.status == SyncLog.Status.SUCCESS:
            key = {"create": "created", "update": "updated", "link": "linked", "cancel": "cancelled"}.get(
                outcome.action, "unchanged")
        else:
            key = outcome.status  # failed or skipped
        self.failed += (key == "failed") - (self.last.get(pk) == "failed")
        self.last[pk] = key
        if key == "failed":
            self.errors[getattr(outcome.error, "kind", "unknown")] += 1

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

    @property
    def failed(self) -> int:
        return sum(e.failed for e in self.entities.values())

    @property
    def done(self) -> int:
        return sum(e.done for e in self.entities.values())


def adapt_batch(size: int, error_rate: float) -> int:
    """Shrink when more than 30% of a batch failed, grow when fewer than 10% did (operations' rule)."""
    if error_rate > 0.3:
        return max(MIN_BATCH, size // 2)
    if error_rate < 0.1:
        return min(MAX_BATCH, size * 2)
    return size


class BackfillRun:
    def __init__(self, *, specs: tuple[EntitySpec, ...], client, batch_size: int = 100, limit: int | None = None,
                 since: datetime | None = None, retry_window: float = 300.0,
                 on_progress: Callable[[Progress], None] | None = None, use_index: bool = True,
                 sleep: Callable[[float], None] = time.sleep):
        self.specs, self.client, self.batch_size, self.limit = specs, client, batch_size, limit
        self.since, self.retry_window, self.on_progress, self.sleep = since, retry_window, on_progress, sleep
        self.run_id = uuid.uuid4().hex
        self.claimer = claims.claimer_name(self.run_id)
        # The run reaches records its pushes wake by itself: nothing is queued for them.
        self.engine = Engine(client=client, run_id=self.run_id, claimer=self.claimer, use_index=use_index,
                             enqueue_woken=False)
        self.report = SyncReport(run_id=self.run_id, started=timezone.now())
        self._started = time.monotonic()

    def base(self, spec: EntitySpec):
        qs = spec.model.objects.all()
        return qs.filter(updated_at__gte=self.since) if self.since else qs

    def run(self) -> SyncReport:
        calls_before = self.client.budget.stats.calls
        try:
            with self.client.priority(Priority.BULK):
                for spec in self.specs:
                    claims.reclaim_dead(spec)
                    self.report.entities[spec.name] = EntityReport(
                        spec.name, due=self.base(spec).filter(claims.due_filter(timezone.now())).count())
                self._pass()
                self._retry_soon()
        except QuotaExhausted as stop:
            self.report.resume_at = stop.resume_at
            local = timezone.localtime(stop.resume_at)
            self.report.stopped = (
                f"Stopped: {stop.error.message} The backfill can go on after {local:%Y-%m-%d %H:%M %Z}: run it "
                "again then, or let the scheduled task continue it."
            )
            logger.warning("%s", self.report.stopped)
        finally:
            for spec in self.specs:
                claims.release(spec, claimer=self.claimer)
            self.report.calls = self.client.budget.stats.calls - calls_before
            self.report.seconds = time.monotonic() - self._started
        return self.report

    def _remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.report.done)

    def _pass(self) -> None:
        for spec in self.specs:
            entity, size = self.report.entities[spec.name], self.batch_size
            while True:
                remaining = self._remaining()
                if remaining == 0:
                    return
                pks = claims.claim(self.base(spec), claimer=self.claimer,
                                   limit=min(size, remaining) if remaining else size)
                if not pks:
                    break
                batch_failed = 0
                for obj in claims.claimed_objects(spec, pks, self.claimer):
                    outcome = self.engine.push(spec, obj)
                    entity.count(obj.pk, outcome)
                    batch_failed += outcome.status == SyncLog.Status.FAILED
                    self._progress(spec, entity, size)
                size = adapt_batch(size, batch_failed / len(pks))

    def _retry_soon(self) -> None:
        """Records whose retry falls due within the window are waited for, so the run finishes by itself."""
        deadline = timezone.now() + timedelta(seconds=self.retry_window)
        while self.retry_window > 0 and self._remaining() != 0:
            soonest = None
            for spec in self.specs:
                # Records waiting for a dependency are woken by its success, not by the clock.
                due = self.base(spec).filter(
                    Q(sync_status__in=(SyncStatus.PENDING, SyncStatus.FAILED)), next_retry_at__lte=deadline
                ).exclude(last_error_kind="dependency").aggregate(at=Min("next_retry_at"))["at"]
                soonest = due if soonest is None or (due and due < soonest) else soonest
            if soonest is None:
                return
            wait = (soonest - timezone.now()).total_seconds()
            if wait > 0:
                logger.info("Waiting %.0f s for records due for another try", wait)
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
