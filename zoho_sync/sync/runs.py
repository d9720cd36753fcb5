"""Run bookkeeping: each backfill, retry, trigger and link (--link-only) run is written down when it starts, beats
while it runs and records how it ended, so the health check, the alerts and the dashboard read runs rather than
terminals. The sync package's runs (sync/link.py) and the services use it from below; the run in words, for the
admin's pages, is zoho_sync/sync_runs.py (which re-exports these names)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.db import connection
from django.utils import timezone

from zoho_sync.client.budget import HOST, BudgetStats
from zoho_sync.models import SyncRun, SyncState
from zoho_sync.models.runs import HEARTBEAT_SECONDS

if TYPE_CHECKING:  # the reports are only read here (duck-typed): this module imports no sync run
    from zoho_sync.sync.backfill import SyncReport
    from zoho_sync.sync.link_report import LinkReport

logger = logging.getLogger(__name__)


def sync_run_start(*, run_id: str, kind: str, entities: list[str], since=None, workers: int = 1) -> SyncRun:
    return SyncRun.objects.create(run_id=run_id, kind=kind, entities=",".join(entities), since=since,
                                  host=HOST, pid=os.getpid(), workers=workers)


def sync_run_finish(run: SyncRun, report: SyncReport | None, *, stats=None, error: BaseException | None = None,
                    ) -> SyncRun:
    """Record how the run ended: what it did to each record, the scope left unsettled, the calls and waits, the
    stop reason and the exit code its command gives (0 settled, 2 otherwise; none for a crash)."""
    fields = {}
    if report is not None:
        unsettled = report.unsettled
        fields.update(
            records=report.done, api_calls=report.calls, stop_reason=report.stopped, resume_at=report.resume_at,
            counts={name: dict(Counter(entity.last.values())) for name, entity in report.entities.items()},
            unsettled=unsettled, exit_code=0 if report.settled else 2,
            status=SyncRun.Status.STOPPED if report.stopped else (
                SyncRun.Status.UNSETTLED if unsettled else SyncRun.Status.SETTLED))
    return _finished(run, fields, stats=stats, error=error)


def sync_run_finish_link(run: SyncRun, report: LinkReport, *, stats=None, stopped: str = "") -> SyncRun:
    """Record how a --link-only run ended: per entity what it found and did (LinkReport.run_counts), the ambiguous
    records left for a person (exit 2) or none (exit 0); `stopped` says why it ended early (a list not read)."""
    unsettled = {SyncState.NEEDS_PERSON.value: len(report.ambiguous)} if report.ambiguous else {}
    fields = {"records": report.records, "api_calls": report.calls, "counts": report.run_counts(),
              "unsettled": unsettled, "stop_reason": stopped, "exit_code": 0 if report.settled and not stopped else 2,
              "status": SyncRun.Status.STOPPED if stopped else (
                  SyncRun.Status.UNSETTLED if unsettled else SyncRun.Status.SETTLED)}
    return _finished(run, fields, stats=stats)


def _finished(run: SyncRun, fields: dict, *, stats=None, error: BaseException | None = None) -> SyncRun:
    now = timezone.now()
    fields = {"finished_at": now, "heartbeat_at": now, **fields}
    if stats is not None:
        fields.update(rate_limited=stats.rate_limited, budget_wait_seconds=round(stats.wait_seconds, 3))
    if error is not None:
        fields.update(status=SyncRun.Status.CRASHED, error=f"{type(error).__name__}: {error}"[:2000],
                      exit_code=None)
    SyncRun.objects.filter(pk=run.pk).update(**fields)
    for name, value in fields.items():
        setattr(run, name, value)
    return run


def budget_stats_since(client, before: BudgetStats) -> BudgetStats:
    """The client's budget figures since `before` (a client lives as long as its process)."""
    now = client.budget.stats
    return BudgetStats(rate_limited=now.rate_limited - before.rate_limited,
                       wait_seconds=now.wait_seconds - before.wait_seconds)


@contextlib.contextmanager
def sync_run_heartbeat(run: SyncRun, *, every: float = HEARTBEAT_SECONDS) -> Iterator[None]:
    """Beat from a thread of its own while the block runs, whatever the run is doing (a call to Zoho, a wait for
    the budget, a pause before retries); a run whose process died stops beating and is shown as dead."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(every):
                SyncRun.objects.filter(pk=run.pk, finished_at__isnull=True).update(heartbeat_at=timezone.now())
        except Exception:  # a lost heartbeat shows as a dead run: say why here
            logger.exception("The heartbeat of run %s stopped", run.run_id)
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"heartbeat {run.run_id[:12]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
