"""Sync runs in words: what a run did per entity, why it skipped what it skipped, and how it ended, for the admin's
run page. The bookkeeping (start, heartbeat, finish) lives below the sync package in zoho_sync/sync/runs.py and is
re-exported here for the callers of its old path."""

from __future__ import annotations

from django.db.models import Count
from django.utils import timezone

from zoho_sync.models import SyncLog, SyncRun, SyncState
from zoho_sync.sync.runs import (  # noqa: F401 - the bookkeeping's old import path
    budget_stats_since,
    sync_run_finish,
    sync_run_finish_link,
    sync_run_heartbeat,
    sync_run_start,
)

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
