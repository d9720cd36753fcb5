"""Read-only queries the commands, the admin and (later) monitoring share. No writes here."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

from django.db.models import BooleanField, Count, ExpressionWrapper, Q, Sum
from django.utils import timezone

from zoho_sync.entities import SPECS, EntitySpec
from zoho_sync.models import UNSETTLED_STATES, ApiUsage, SyncLog, SyncState, SyncStatus, sync_state_of

logger = logging.getLogger(__name__)

STATES = tuple(SyncState.values)
_reading: ContextVar[dict | None] = ContextVar("selectors_reading", default=None)


@contextmanager
def one_reading() -> Iterator[None]:
    """Within it, a memoized selector asked again with the same arguments answers from its first reading: a page
    built from several parts (the dashboard and the health checks it shows) reads each fact once, at one moment."""
    token = _reading.set({})
    try:
        yield
    finally:
        _reading.reset(token)


def memoized(func):
    """Answer from the current `one_reading()` when there is one; outside it, read every time."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        memo = _reading.get()
        if memo is None:
            return func(*args, **kwargs)
        key = (func.__module__, func.__qualname__, args, tuple(sorted(kwargs.items())))
        if key not in memo:
            memo[key] = func(*args, **kwargs)
        return memo[key]
    return wrapper


def failed_records(*, since: datetime | None = None):
    """The records the Failed records page lists (the SyncFailure view: failed, waiting or blocked now, every
    entity): the one reading of "failed records" that the page, `zoho_alert_failed` and the hourly alert share.
    `since`: only those failing since then (the record's failing_since, or a failure logged since)."""
    from django.db.models import CharField, Exists, OuterRef
    from django.db.models.functions import Cast

    from zoho_sync.models import SyncFailure

    rows = SyncFailure.objects.all()
    if since is None:
        return rows
    logged = SyncLog.objects.filter(status=SyncLog.Status.FAILED, created_at__gte=since, entity=OuterRef("entity"),
                                    object_pk=Cast(OuterRef("record_id"), CharField()))
    return rows.filter(Q(failing_since__gte=since) | Exists(logged))


def sync_scope(spec: EntitySpec, *, since: datetime | None = None):
    """The records of one entity a command speaks of (all, or those changed since a date)."""
    qs = spec.model.objects.all()
    return qs.filter(updated_at__gte=since) if since else qs


def sync_state_counts(*, specs: tuple[EntitySpec, ...] = SPECS, since: datetime | None = None
                      ) -> dict[str, dict[str, int]]:
    """Records per state of the one vocabulary (SyncState), per entity, in dependency order: one query each."""
    counts = {}
    for spec in specs:
        rows = (sync_scope(spec, since=since).order_by()
                .annotate(retrying=ExpressionWrapper(Q(next_retry_at__isnull=False), output_field=BooleanField()))
                .values_list("sync_status", "retrying").annotate(n=Count("pk")))
        states = dict.fromkeys(STATES, 0)
        for status, retrying, n in rows:
            states[sync_state_of(status, retrying)] += n
        counts[spec.name] = states
    return counts


@memoized
def sync_open_counts(*, specs: tuple[EntitySpec, ...] = SPECS) -> dict[str, dict[str, int]]:
    """Records left failed, waiting or blocked, and those pending, by state, per entity: only those rows are read
    (the sync-queue index on status and retry time), so it stays fast however many records are synced or skipped."""
    counts = {}
    open_statuses = (SyncStatus.FAILED, SyncStatus.WAITING, SyncStatus.BLOCKED, SyncStatus.PENDING, SyncStatus.SYNCING)
    for spec in specs:
        rows = (spec.model.objects.filter(sync_status__in=open_statuses)
                .order_by()
                .annotate(retrying=ExpressionWrapper(Q(next_retry_at__isnull=False), output_field=BooleanField()))
                .values_list("sync_status", "retrying").annotate(n=Count("pk")))
        states = dict.fromkeys((*UNSETTLED_STATES, SyncState.PENDING), 0)
        for status, retrying, n in rows:
            states[sync_state_of(status, retrying)] += n
        counts[spec.name] = states
    return counts


def sync_failed_kinds(*, specs: tuple[EntitySpec, ...] = SPECS, since: datetime | None = None
                      ) -> dict[str, dict[str, int]]:
    """Failed records (retrying or needing a person) per error kind, per entity."""
    result = {}
    for spec in specs:
        rows = (sync_scope(spec, since=since).filter(sync_status=SyncStatus.FAILED).order_by()
                .values_list("last_error_kind").annotate(n=Count("pk")))
        result[spec.name] = {kind or "unknown": n for kind, n in rows}
    return result


def sync_failures_recent(*, limit: int = 10) -> list[SyncLog]:
    """The latest failed attempts, newest first."""
    return list(SyncLog.objects.failures().order_by("-created_at", "-id")[:limit])


@memoized
def api_calls_today() -> int:
    """Today's (UTC) calls to Zoho, the figure every page, check, alert and metric shows: the shared budget's count
    (exact across processes within a moment: it is the count the budget enforces the quota with), or the ApiUsage
    rows' sum when that is higher (rows of another organization id, or a budget state lost with Redis)."""
    from zoho_sync.conf import _str_setting, get_zoho_limits
    from zoho_sync.shared_state import budget_calls_today

    rows = ApiUsage.objects.filter(day=timezone.now().astimezone(UTC).date()).aggregate(n=Sum("calls"))["n"] or 0
    organization = _str_setting("ZOHO_ORGANIZATION_ID")
    if not organization:
        return rows
    try:
        shared = budget_calls_today(organization, get_zoho_limits().redis_url)
    except Exception:  # Redis down: the batched rows are the best figure there is; the budget check says why
        logger.warning("Could not read the shared budget's count of today's calls; showing the batched usage",
                       exc_info=True)
        return rows
    return max(shared, rows)


def sync_blocked_by(entity: str, pks: list[int]) -> dict[int, dict[str, int]]:
    """For records of one entity, the records waiting for them or blocked by them, per dependent entity: what a
    failure holds up. One grouped query per dependent relation, whatever the number of records."""
    blocked: dict[int, dict[str, int]] = {}
    if not pks:
        return blocked
    for spec in SPECS:
        for attribute, dependency in spec.depends_on:
            if dependency != entity:
                continue
            rows = (spec.model.objects.filter(**{f"{attribute}_id__in": pks},
                                              sync_status__in=(SyncStatus.WAITING, SyncStatus.BLOCKED))
                    .order_by().values_list(f"{attribute}_id").annotate(n=Count("pk")))
            for pk, n in rows:
                per = blocked.setdefault(pk, {})
                per[spec.name] = per.get(spec.name, 0) + n
    return blocked


def sync_log_of(entity: str, pk, *, limit: int = 10) -> list[SyncLog]:
    """A record's latest sync-log rows, newest first (the (entity, object_pk, created_at) index)."""
    return list(SyncLog.objects.filter(entity=entity, object_pk=str(pk)).order_by("-created_at", "-id")[:limit])


def sync_skip_reasons(*, specs: tuple[EntitySpec, ...] = SPECS) -> dict[str, dict[str, int]]:
    """Why the skipped records are skipped, per entity: {entity: {reason: records}}, the most frequent first. A
    skipped record keeps its reason as its last sync error; one GROUP BY per entity over the skipped rows (the
    sync-queue index finds them)."""
    reasons = {}
    for spec in specs:
        rows = (spec.model.objects.filter(sync_status=SyncStatus.SKIPPED).order_by()
                .values_list("last_sync_error").annotate(n=Count("pk")).order_by("-n"))
        if found := {reason or "no reason given": n for reason, n in rows}:
            reasons[spec.name] = found
    return reasons


def sync_state_counts_of(status: str) -> dict[str, int]:
    """Records in one sync status per entity (the sync-queue index answers; meant for the small ones)."""
    return {spec.name: spec.model.objects.filter(sync_status=status).count() for spec in SPECS}


@memoized
def sync_log_outcomes_24h() -> dict[str, dict[str, tuple[int, int]]]:
    """Per entity, the successes and failures logged in the last 24 hours and, of them, since today's 00:00 UTC:
    {entity: {status: (last 24 h, today)}}. One count per entity and outcome, each a range of the (entity, status,
    created_at) index read without touching the log rows."""
    now = timezone.now()
    since = now - timedelta(hours=24)
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    outcomes: dict[str, dict[str, tuple[int, int]]] = {}
    for spec in SPECS:
        per = outcomes[spec.name] = {}
        for status in (SyncLog.Status.SUCCESS, SyncLog.Status.FAILED):
            row = (SyncLog.objects.filter(entity=spec.name, status=status, created_at__gte=since)
                   .aggregate(n=Count("*"), today=Count("created_at", filter=Q(created_at__gte=midnight))))
            per[status] = (row["n"], row["today"])
    return outcomes
