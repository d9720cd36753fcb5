"""What the admin's sync dashboard shows, read in a fixed number of indexed queries whatever the size of the data:
no query here counts a whole big table or reads the raw log beyond the last 24 hours (older days come from the daily
rollup). Read only: the view renders it, the tests and the bench measure it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from monitoring.checks import HealthReport, health_run
from monitoring.heartbeat import cluster_alive, cluster_last_seen
from monitoring.models import DailyMetric
from zoho_sync import selectors
from zoho_sync.entities import SPECS
from zoho_sync.models import SyncFailure, SyncLog, SyncRun, SyncState, SyncStatus
from zoho_sync.status import Budget, budget_now, status_banners

EXACT_UP_TO = 100_000  # a table with more rows than this is counted by the database's estimate (PostgreSQL)
CHART_DAYS = 14
PERIODS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
ACTIVITY_ROWS = 20
FAILURE_ROWS = 10


@dataclass
class EntityCard:
    name: str
    total: int
    total_estimated: bool  # "about": the database's estimate of a table too big to count on every refresh
    states: dict[str, int]
    rate_24h: float | None
    attempts_24h: int
    rate_7d: float | None
    attempts_7d: int

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")

    @property
    def synced(self) -> int:
        return max(0, self.total - sum(n for state, n in self.states.items() if state != SyncState.SYNCED))

    @property
    def failed(self) -> int:
        return self.states[SyncState.NEEDS_PERSON] + self.states[SyncState.RETRYING]


@dataclass
class ChartDay:
    day: object
    successes: int
    failures: int
    partial: bool  # today, counted from the log so far


@dataclass
class Dashboard:
    health: HealthReport
    cards: list[EntityCard]
    budget: Budget
    running: list[SyncRun]
    recent_runs: list[SyncRun]
    cluster_alive: bool
    cluster_seen: datetime | None
    chart: list[ChartDay]
    activity: list[SyncLog]
    failures: list[SyncFailure]
    failures_total: int
    filters: dict = field(default_factory=dict)
    banners: list = field(default_factory=list)  # zoho_sync.status.Banner: unreachable, credentials, quota...

    @property
    def chart_max(self) -> int:
        return max([1, *(day.successes + day.failures for day in self.chart)])

    def chart_bars(self, *, height: int = 130, base: int = 140, step: int = 44) -> list[dict]:
        """Each day's stacked bar (successes below, failures on top), scaled to the busiest day, as SVG numbers."""
        bars = []
        for n, day in enumerate(self.chart):
            ok_h = round(height * day.successes / self.chart_max)
            bad_h = round(height * day.failures / self.chart_max)
            bars.append({"day": day, "x": n * step, "ok_y": base - ok_h, "ok_h": ok_h, "bad_y": base - ok_h - bad_h,
                         "bad_h": bad_h})
        return bars


def estimated_rows(models) -> dict[type, int]:
    """PostgreSQL's own row estimates (kept by ANALYZE and autovacuum) of the tables, in one query; {} elsewhere."""
    if connection.vendor != "postgresql":
        return {}
    tables = {model._meta.db_table: model for model in models}
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reltuples::bigint FROM pg_class WHERE relkind = 'r' AND relname = ANY(%s)",
                       [list(tables)])
        return {tables[name]: rows for name, rows in cursor.fetchall()}


def table_size(model, estimate: int | None) -> tuple[int, bool]:
    """Rows in a table: exact up to EXACT_UP_TO (a LIMITed count); a table clearly bigger by its estimate is given
    by the estimate, and on SQLite as "more than EXACT_UP_TO". Returns (rows, estimated)."""
    if estimate is not None and estimate > 2 * EXACT_UP_TO:  # no need to count the first EXACT_UP_TO rows first
        return estimate, True
    counted = model.objects.order_by()[: EXACT_UP_TO + 1].count()
    return min(counted, EXACT_UP_TO), counted > EXACT_UP_TO


def _log_counts() -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Successes and failures per entity over the last 24 hours, and since today's 00:00 UTC (the health check's
    own reading when both run in one `one_reading()`)."""
    outcomes = selectors.sync_log_outcomes_24h()
    last_24h = {entity: {status: n for status, (n, _) in per.items()} for entity, per in outcomes.items()}
    today = {entity: {status: n for status, (_, n) in per.items()} for entity, per in outcomes.items()}
    return last_24h, today


def _rate(successes: int, failures: int) -> float | None:
    return successes / (successes + failures) if successes + failures else None


def entity_cards(now: datetime, last_24h, today) -> list[EntityCard]:
    open_counts = selectors.sync_open_counts()
    skipped = selectors.sync_state_counts_of(SyncStatus.SKIPPED)
    today_day = now.astimezone(UTC).date()
    week = (DailyMetric.objects.filter(day__gt=today_day - timedelta(days=7), day__lt=today_day)
            .exclude(entity="all").order_by().values("entity")
            .annotate(successes=Sum("successes"), failures=Sum("failures")))
    week = {row["entity"]: row for row in week}
    cards = []
    estimates = estimated_rows([spec.model for spec in SPECS])
    for spec in SPECS:
        total, estimated = table_size(spec.model, estimates.get(spec.model))
        states = {**dict.fromkeys(SyncState.values, 0), **open_counts[spec.name], SyncState.SKIPPED: skipped[spec.name]}
        day = last_24h.get(spec.name, {})
        ok, bad = day.get(SyncLog.Status.SUCCESS, 0), day.get(SyncLog.Status.FAILED, 0)
        w = week.get(spec.name, {})
        t = today.get(spec.name, {})
        w_ok = (w.get("successes") or 0) + t.get(SyncLog.Status.SUCCESS, 0)
        w_bad = (w.get("failures") or 0) + t.get(SyncLog.Status.FAILED, 0)
        cards.append(EntityCard(spec.name, total, estimated, states, _rate(ok, bad), ok + bad, _rate(w_ok, w_bad),
                                w_ok + w_bad))
    return cards


def chart_days(now: datetime, today_counts) -> list[ChartDay]:
    today = now.astimezone(UTC).date()
    rows = (DailyMetric.objects.filter(day__gt=today - timedelta(days=CHART_DAYS), day__lt=today)
            .exclude(entity="all").order_by().values("day")
            .annotate(successes=Sum("successes"), failures=Sum("failures")))
    by_day = {row["day"]: row for row in rows}
    days = []
    for offset in range(CHART_DAYS - 1, 0, -1):
        day = today - timedelta(days=offset)
        row = by_day.get(day, {})
        days.append(ChartDay(day, row.get("successes") or 0, row.get("failures") or 0, False))
    days.append(ChartDay(today, sum(c.get(SyncLog.Status.SUCCESS, 0) for c in today_counts.values()),
                         sum(c.get(SyncLog.Status.FAILED, 0) for c in today_counts.values()), True))
    return days


def recent_activity(now: datetime, *, entity: str = "", status: str = "", period: str = "24h") -> list[SyncLog]:
    """The latest sync-log rows, without the pulls that changed nothing (a state already here, an older one, a
    record not ours): they are not activity. Failed pulls are."""
    rows = SyncLog.objects.filter(created_at__gte=now - PERIODS.get(period, PERIODS["24h"])).exclude(
        direction=SyncLog.Direction.PULL, action=SyncLog.Action.NONE,
        status__in=(SyncLog.Status.SUCCESS, SyncLog.Status.SKIPPED))
    if entity:
        rows = rows.filter(entity=entity)
    if status:
        rows = rows.filter(status=status)
    return list(rows.order_by("-created_at", "-id")[:ACTIVITY_ROWS])


def last_runs(limit: int = 5) -> list[SyncRun]:
    """The latest finished backfills, retries and link runs (triggered pushes are runs too, one a record: too many
    to show); one query a kind on the (kind, started_at) index."""
    runs = []
    for kind in (SyncRun.Kind.BACKFILL, SyncRun.Kind.RETRY, SyncRun.Kind.LINK):
        runs += SyncRun.objects.filter(kind=kind).exclude(status=SyncRun.Status.RUNNING).order_by("-started_at")[:limit]
    return sorted(runs, key=lambda run: run.started_at, reverse=True)[:limit]


def dashboard_read(*, entity: str = "", status: str = "", period: str = "24h") -> Dashboard:
    with selectors.one_reading():
        return _read(entity=entity, status=status, period=period)


def _read(*, entity: str, status: str, period: str) -> Dashboard:
    now = timezone.now()
    health = health_run(cheap_only=True)
    last_24h, today = _log_counts()
    failures = SyncFailure.objects.order_by("-failing_since", "id")
    return Dashboard(
        health=health,
        cards=entity_cards(now, last_24h, today),
        budget=budget_now(),
        running=list(SyncRun.objects.filter(status=SyncRun.Status.RUNNING).order_by("-started_at")[:5]),
        recent_runs=last_runs(),
        cluster_alive=cluster_alive(),
        cluster_seen=cluster_last_seen(),
        chart=chart_days(now, today),
        activity=recent_activity(now, entity=entity, status=status, period=period),
        failures=list(failures[:FAILURE_ROWS]),
        failures_total=SyncFailure.objects.order_by()[: 10_001].count(),
        filters={"entity": entity, "status": status, "period": period},
        banners=status_banners(),
    )
