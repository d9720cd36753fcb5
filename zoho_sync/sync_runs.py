"""Sync runs: each backfill, retry, trigger and link (--link-only) run is written down when it starts, beats while
it runs and records how it ended, so the health check, the alerts and the dashboard read runs rather than
terminals."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from zoho_sync.client.budget import HOST, BudgetStats
from zoho_sync.models import SyncLog, SyncRun, SyncState
from zoho_sync.models.runs import HEARTBEAT_SECONDS
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


# What a run left each record, in words: the backfill's and retry's keys (SYNCED_KEYS and the one vocabulary) and
# the link run's (LinkReport.run_counts). A key not listed here is said as it is stored.
COUNT_WORDS = {
    "created": "created in Zoho", "updated": "updated in Zoho", "linked": "linked to a Zoho record",
    "cancelled": "cancelled in Zoho", "unchanged": "already as Zoho has it",
    SyncState.SYNCED: "synced", SyncState.NEEDS_PERSON: "failed and need a person",
    SyncState.RETRYING: "failed and are retried at their time", SyncState.WAITING: "wait for a dependency",
    SyncState.BLOCKED: "are blocked by a dependency that needs a person", SyncState.SKIPPED: "skipped",
    SyncState.PENDING: "left pending (changed meanwhile, or another worker had them)",
    "in_zoho": "found in Zoho", "linked_by_key": "linked by their key", "linked_by_email": "linked by email",
    "settled": "settled", "already": "already linked", "not_in_zoho": "not in Zoho (created by a backfill)",
    "left": "left for a later run",
}
SKIP_REASONS_SHOWN = 10


def counts_in_words(counts: dict[str, int]) -> str:
    """"3 created in Zoho, 1 skipped" from {"created": 3, "skipped": 1}; "nothing" without counts."""
    parts = [f"{n:,} {COUNT_WORDS.get(key, key.replace('_', ' '))}" for key, n in counts.items() if n]
    return ", ".join(parts) or "nothing"


def skip_reasons(counts: dict[str, int], *, limit: int = SKIP_REASONS_SHOWN) -> str:
    """"701 skipped (650: Zoho bills subscription periods itself...; 51: Account type internal is excluded...)"
    from {reason: count}, the most frequent first; "" without skips."""
    total = sum(counts.values())
    if not total:
        return ""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    parts = [f"{n:,}: {reason.rstrip('.')}" for reason, n in ranked[:limit]]
    if len(ranked) > limit:
        parts.append(f"{sum(n for _, n in ranked[limit:]):,}: {len(ranked) - limit} other reasons")
    return f"{total:,} skipped ({'; '.join(parts)})"


def sync_run_skip_reasons(run: SyncRun) -> dict[str, dict[str, int]]:
    """Per entity, the records the run skipped by reason, read from its skipped log rows (the run-id index)."""
    reasons: dict[str, dict[str, int]] = {}
    rows = (SyncLog.objects.filter(run_id=run.run_id, status=SyncLog.Status.SKIPPED).order_by()
            .values_list("entity", "message").annotate(n=Count("pk")))
    for entity, message, n in rows:
        reasons.setdefault(entity, {})[message or "no reason given"] = n
    return reasons


def sync_run_details(run: SyncRun) -> list[tuple[str, str]]:
    """The run in words, one (heading, sentence) per item: what it did per entity (with why it skipped what it
    skipped), what it left failed or waiting, and how it ended. What the run page shows instead of its JSON."""
    entities = [name for name in run.entities.split(",") if name]
    skipped = sync_run_skip_reasons(run)
    items = []
    for name in entities or list(run.counts):
        counts = dict(run.counts.get(name, {}))
        why = skip_reasons(skipped.get(name, {})) if counts.get(SyncState.SKIPPED) else ""
        if why:  # the skips said with their reasons, in place of the bare count
            counts.pop(SyncState.SKIPPED)
        did = ", ".join(filter(None, (counts_in_words(counts) if counts else "", why))) or "nothing"
        items.append((name.replace("_", " ").capitalize(), f"{did}."))
    if run.status != SyncRun.Status.RUNNING:
        left = counts_in_words(run.unsettled)
        items.append(("Left failed, waiting or blocked",
                      "nothing: every record in scope is in Zoho, skipped by design, or pending its push."
                      if left == "nothing" else f"{left} (records of the run's scope when it ended)."))
    took = ""
    if run.finished_at:
        took = f" in {(run.finished_at - run.started_at).total_seconds():,.1f} s"
    calls = f"{run.api_calls:,} API call{'s' if run.api_calls != 1 else ''}"
    wait = f", {run.budget_wait_seconds:,.1f} s waiting for the rate budget" if run.budget_wait_seconds else ""
    limited = f", {run.rate_limited:,} answered 429 by Zoho" if run.rate_limited else ""
    items.append(("Work", f"{run.records:,} records examined{took}; {calls}{wait}{limited}."))
    end = [run.state_label + (f": {run.stop_reason}" if run.stop_reason else "")]
    if run.resume_at:
        end.append(f"It goes on at {timezone.localtime(run.resume_at):%Y-%m-%d %H:%M}")
    if run.error:
        end.append(run.error)
    if run.exit_code is not None:
        end.append(f"Exit code {run.exit_code}")
    items.append(("How it ended", " ".join(part if part.endswith(".") else f"{part}." for part in end)))
    return items
