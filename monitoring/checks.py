"""The health checks: named checks in the categories operations knows, each ok, a warning or a failure.

Shaped like django-health-check's plugins (a Check with `check()` raising a warning or a failure), without its
two-level status: here a warning, or the failure of a check that is not critical, makes the whole DEGRADED, and a
critical failure makes it UNHEALTHY. `CHECKS` is the explicit list; `cheap` ones (no call to Zoho, indexed
queries) are what `/health/` runs on every request.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from monitoring.conf import get_monitoring_settings
from zoho_sync import selectors
from zoho_sync.conf import get_zoho_limits
from zoho_sync.entities import BY_NAME, SPECS
from zoho_sync.models import SyncLog, SyncRun, SyncState, SyncStatus, ZohoEvent
from zoho_sync.models.runs import DEAD_AFTER

logger = logging.getLogger(__name__)

HEALTHY, DEGRADED, UNHEALTHY = "HEALTHY", "DEGRADED", "UNHEALTHY"
OK, WARNING, FAILED = "ok", "warning", "failed"


class CheckWarning(Exception):
    """Something an operator should look at today; the sync still works."""


class CheckFailed(Exception):
    """The check's subject is broken."""


@dataclass(frozen=True)
class CheckResult:
    category: str
    name: str
    status: str  # ok, warning, failed
    summary: str
    critical: bool
    milliseconds: float
    details: tuple[str, ...] = ()


class Check:
    category = ""
    name = ""
    critical = True  # a failure makes the whole UNHEALTHY (else DEGRADED)
    cheap = True  # safe to run on every /health/ request

    def __init__(self, *, live: bool = True):
        self.live = live  # False: a check with a stored reading (connectivity) reads it instead of checking now

    def check(self) -> tuple[str, list[str]]:
        """Return a one-line summary and detail lines, or raise CheckWarning / CheckFailed (with the summary)."""
        raise NotImplementedError

    def run(self) -> CheckResult:
        started = time.perf_counter()
        details: list[str] = []
        try:
            summary, details = self.check()
            status = OK
        except CheckWarning as warning:
            status, summary = WARNING, str(warning)
            details = list(getattr(warning, "details", []))
        except CheckFailed as failure:
            status, summary = FAILED, str(failure)
            details = list(getattr(failure, "details", []))
        except Exception as error:  # a check that breaks is a failed check, never a crashed health check
            logger.exception("Health check %r raised", self.name)
            status, summary = FAILED, f"The check itself failed: {type(error).__name__}: {error}"
        return CheckResult(self.category, self.name, status, summary, self.critical,
                           round((time.perf_counter() - started) * 1000, 1), tuple(details))


def raise_with(kind: type[Exception], summary: str, details: list[str]) -> None:
    error = kind(summary)
    error.details = details
    raise error


# --- 1. database sync status -------------------------------------------------------------------------------------
class SyncStatusCheck(Check):
    """Records left failed, waiting or blocked, and pending, per entity: failures that need a person or block others
    are today's work. `zoho_health_check --detailed` adds the table of every state (synced and skipped too)."""

    category, name = "Database sync status", "records by state"

    def check(self):
        counts = selectors.sync_open_counts()  # only the open rows are read: fast at any size
        details = [f"{name}: " + (", ".join(f"{state} {n}" for state, n in states.items() if n) or "all settled")
                   for name, states in counts.items()]
        stuck = sum(states[SyncState.NEEDS_PERSON] + states[SyncState.BLOCKED] for states in counts.values())
        retrying = sum(states[SyncState.RETRYING] for states in counts.values())
        if stuck:
            raise_with(CheckWarning, f"{stuck} records need a person (failed, or blocked by one that failed); "
                                     f"{retrying} retrying", details)
        if retrying:  # never "ok" beside a failing count: they failed, and wait for their automatic retry
            raise_with(CheckWarning, f"{retrying} records failed and are retried automatically; none needs a "
                                     "person yet", details)
        return "nothing failed: nothing needs a person, nothing retrying", details


# --- 2. recent sync activity -------------------------------------------------------------------------------------
class RecentActivityCheck(Check):
    """The 24-hour success rate per entity against its target, and the average sync time of recent attempts."""

    category, name = "Recent sync activity", "success rate and sync time, 24 h"
    SAMPLE = 1000  # the latest attempts per entity the average sync time is taken over

    def check(self):
        conf = get_monitoring_settings()
        since = timezone.now() - timedelta(hours=24)
        outcomes = selectors.sync_log_outcomes_24h()  # index ranges only: no log row is read for the rate
        details, low, slow, broken = [], [], [], []
        for spec in SPECS:
            recent = SyncLog.objects.filter(entity=spec.name, created_at__gte=since)
            ok = outcomes[spec.name][SyncLog.Status.SUCCESS][0]
            failed = outcomes[spec.name][SyncLog.Status.FAILED][0]
            if not ok + failed:
                continue
            durations = [ms for ms in recent.filter(status__in=(SyncLog.Status.SUCCESS, SyncLog.Status.FAILED))
                         .order_by("-created_at").values_list("duration_ms", flat=True)[:self.SAMPLE]
                         if ms is not None]
            rate, seconds = ok / (ok + failed), (sum(durations) / len(durations) / 1000) if durations else 0.0
            details.append(f"{spec.name}: {rate:.1%} of {ok + failed} attempts succeeded, {seconds:.2f} s on average "
                           f"(the last {len(durations)})")
            if rate < conf.success_rate_critical:
                broken.append(f"{spec.name} {rate:.1%}")
            elif rate < conf.success_rate_target:
                low.append(f"{spec.name} {rate:.1%}")
            if seconds > conf.sync_seconds_target:
                slow.append(f"{spec.name} {seconds:.1f} s")
        if not details:
            return "no sync attempts in the last 24 hours", details
        if broken:
            raise_with(CheckFailed, f"most pushes fail: success rate below {conf.success_rate_critical:.0%}: "
                                    f"{', '.join(broken)}", details)
        problems = ([f"success rate below {conf.success_rate_target:.0%}: {', '.join(low)}"] if low else []) + (
            [f"average sync time above {conf.sync_seconds_target:g} s: {', '.join(slow)}"] if slow else [])
        if problems:
            raise_with(CheckWarning, "; ".join(problems), details)
        return (f"every entity at or above {conf.success_rate_target:.0%} success, under "
                f"{conf.sync_seconds_target:g} s on average"), details


# --- 3. Zoho API connectivity ------------------------------------------------------------------------------------
class ZohoConnectivityCheck(Check):
    """The token refreshes (or a valid one is reused), the organization is reachable, a read succeeds.

    Live (`zoho_health_check`) it checks now and stores the result; otherwise (the dashboard, /health/) it reads
    the last stored result (zoho_sync.connectivity: the schedule's check, or what pushes met), so every page says
    what the command says without a call to Zoho per page view."""

    category, name = "Zoho API connectivity", "token, organization, one read"

    def __init__(self, *, live: bool = True):
        super().__init__(live=live)
        if not live:
            self.name = "last reading (the schedule's check, or pushes)"

    def check(self):
        from zoho_sync.connectivity import QUOTA, connectivity_cached, connectivity_refresh

        reading = connectivity_refresh() if self.live else connectivity_cached()
        if reading is None:
            return "not checked yet (the connectivity schedule checks it; zoho_health_check checks it now)", []
        when = f"{'checked' if reading.source == 'check' else 'seen by a push'} " \
               f"{timezone.localtime(reading.checked_at):%Y-%m-%d %H:%M:%S}"
        details = [*reading.details, when]
        if reading.problem == QUOTA:
            raise_with(CheckWarning, f"Zoho answers, but refused the read: today's quota is used up ({when})",
                       details)
        if not reading.ok:
            raise_with(CheckFailed, f"{reading.summary} ({when})", details)
        return f"{reading.summary} ({when})", details


# --- 4. data integrity -------------------------------------------------------------------------------------------
def _counts(**filters) -> dict[str, int]:
    """Records matching `filters`, per entity, the entities with none left out."""
    return {spec.name: n for spec in SPECS if (n := spec.model.objects.filter(**filters).count())}


class UnsyncedTooLongCheck(Check):
    category, name = "Data integrity", "records unsynced for too long"

    def check(self):
        conf = get_monitoring_settings()
        cutoff = timezone.now() - timedelta(minutes=conf.max_pending_minutes)
        old = _counts(sync_status__in=(SyncStatus.PENDING, SyncStatus.SYNCING, SyncStatus.WAITING),
                      updated_at__lt=cutoff)
        if old:
            raise_with(CheckWarning, f"{sum(old.values())} records changed more than {conf.max_pending_minutes} "
                                     "minutes ago are still not in Zoho (is the django-q2 cluster running?)",
                       [f"{name}: {n}" for name, n in old.items()])
        return f"none older than {conf.max_pending_minutes} minutes", []


class OrphanedSubscriptionsCheck(Check):
    category, name = "Data integrity", "orphaned subscriptions"

    def check(self):
        # A customer without a Zoho id is never synced: reading the unsynced ones through the sync-queue index
        # keeps this fast however many customers are in Zoho.
        unsynced = (SyncStatus.PENDING, SyncStatus.SYNCING, SyncStatus.FAILED, SyncStatus.WAITING,
                    SyncStatus.BLOCKED, SyncStatus.SKIPPED)
        orphans = list(BY_NAME["customer_service"].model.objects.filter(
            zoho_id__isnull=False, customer__sync_status__in=unsynced, customer__zoho_id__isnull=True)
            .order_by().values_list("pk", "zoho_id")[:20])
        if orphans:
            raise_with(CheckFailed, f"{len(orphans)} services are in Zoho while their customer is not (or lost "
                                    "its Zoho id)", [f"customer service {pk}: subscription {zid}"
                                                     for pk, zid in orphans])
        return "every subscription's customer is in Zoho", []


class OldFailuresCheck(Check):
    category, name = "Data integrity", "failures older than a week"

    def check(self):
        conf = get_monitoring_settings()
        cutoff = timezone.now() - timedelta(days=conf.failure_age_days)
        old = _counts(sync_status=SyncStatus.FAILED, failing_since__lt=cutoff)
        if old:
            raise_with(CheckWarning, f"{sum(old.values())} records have failed for more than "
                                     f"{conf.failure_age_days} days", [f"{name}: {n}" for name, n in old.items()])
        return f"no failure older than {conf.failure_age_days} days", []


class DuplicateZohoIdsCheck(Check):
    """Two local records mapped to one Zoho id: the database refuses it (a unique constraint on every entity's
    zoho_id); this checks the constraint is really there (a database restored without its constraints), and
    looks for duplicates where it is not."""

    category, name, cheap = "Data integrity", "one Zoho id, one record", False

    def check(self):
        problems = []
        with connection.cursor() as cursor:
            for spec in SPECS:
                table = spec.model._meta.db_table
                constraints = connection.introspection.get_constraints(cursor, table)
                if any(c["unique"] and c["columns"] == ["zoho_id"] for c in constraints.values()):
                    continue
                shared = (spec.model.objects.filter(zoho_id__isnull=False).values("zoho_id").order_by()
                          .annotate(n=Count("pk")).filter(n__gt=1).count())
                problems.append(f"{spec.name}: no unique constraint on zoho_id; {shared} Zoho ids shared")
        if problems:
            raise_with(CheckFailed, "the database does not hold every record to its own Zoho id", problems)
        return "every entity's Zoho id is unique, by database constraint", []


class DeadRunsCheck(Check):
    category, name = "Data integrity", "dead runs"
    critical = False

    def check(self):
        dead = list(SyncRun.objects.filter(status=SyncRun.Status.RUNNING,
                                           heartbeat_at__lt=timezone.now() - DEAD_AFTER)[:10])
        if dead:
            raise_with(CheckFailed, f"{len(dead)} runs stopped beating without finishing (their process died); "
                                    "their records are due again",
                       [f"{run.kind} {run.run_id[:12]} on {run.host} pid {run.pid}, started "
                        f"{timezone.localtime(run.started_at):%Y-%m-%d %H:%M}" for run in dead])
        return "no run died while running", []


# --- queue and API budget ----------------------------------------------------------------------------------------
class QueueCheck(Check):
    """A django-q2 cluster ran its heartbeat recently; failed tasks today; the oldest queued task."""

    category, name = "Queue", "django-q2 cluster and tasks"
    critical = False  # pushes still work by command; the triggers and schedules wait

    def check(self):
        from monitoring.acknowledgements import failed_tasks_open
        from monitoring.heartbeat import cluster_state
        from zoho_sync.queueing import queue_backlog

        conf = get_monitoring_settings()
        now = timezone.now()
        cluster = cluster_state()
        seen = cluster.last_seen
        open_failures, ack = failed_tasks_open(hours=24, now=now)
        failures = open_failures.count()
        ready, oldest = queue_backlog(now)
        waited = (now - oldest).total_seconds() / 60 if oldest else 0.0
        details = [f"cluster last seen: {timezone.localtime(seen):%Y-%m-%d %H:%M:%S}" if seen else
                   "cluster never seen", f"failed tasks in 24 h not acknowledged: {failures}",
                   f"oldest due task waiting: {waited:.0f} min"]
        if ready is not None:
            details.append(f"tasks ready for a worker: {ready}")
        if ack:
            details.append(ack.sentence())
        if not cluster.running:
            raise_with(CheckFailed, "no django-q2 cluster is running: triggers and schedules wait (start one with "
                                    "`manage.py qcluster`)", details)
        if failures or waited > conf.max_pending_minutes:
            raise_with(CheckWarning, f"{failures} tasks failed in 24 h (acknowledge them in the admin's failed "
                                     f"tasks once seen); the oldest due task has waited {waited:.0f} min", details)
        return "a cluster is running and the queue moves", details


class ApiBudgetCheck(Check):
    category, name = "API budget", "daily quota and 429s"

    def check(self):
        conf, limits = get_monitoring_settings(), get_zoho_limits()
        used = selectors.api_calls_today()
        share = used / max(1, limits.daily_limit)
        start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        throttled = sum(SyncRun.objects.filter(started_at__gte=start).values_list("rate_limited", flat=True))
        details = [f"{used} of {limits.daily_limit} calls today ({share:.0%})", f"429 answers today: {throttled}"]
        if share >= 1:
            raise_with(CheckFailed, f"today's quota is used up ({used} of {limits.daily_limit} calls)", details)
        if _zoho_says_day_full():
            raise_with(CheckFailed, f"Zoho says today's quota is used up (code 45; {used} of {limits.daily_limit} "
                                    "calls counted here)", details)
        if share >= conf.budget_warn_share or throttled:
            raise_with(CheckWarning, f"{share:.0%} of today's quota used, {throttled} answers of 429", details)
        return f"{share:.0%} of today's quota used, no 429", details


def _zoho_says_day_full() -> bool:
    """Whether Zoho answered code 45 today (the shared rate budget keeps it): its count may differ from ours."""
    from monitoring.dashboard import budget_now

    return budget_now().day_full


class InboxCheck(Check):
    """Changes from Zoho (webhooks, event replay): events quarantined for a person, events failing, and events
    received but not applied for a while (no cluster applies them)."""

    category, name = "Inbound from Zoho", "event inbox"
    critical = False  # pushes go on; Zoho's own changes wait
    WAITING = timedelta(minutes=10)

    def check(self):
        state = ZohoEvent.State
        counts = dict(ZohoEvent.objects.filter(state__in=(state.QUARANTINED, state.FAILED, state.RECEIVED))
                      .order_by().values_list("state").annotate(n=Count("pk")))
        oldest = (ZohoEvent.objects.filter(state=state.RECEIVED).order_by("received_at")
                  .values_list("received_at", flat=True).first())
        details = [f"quarantined {counts.get(state.QUARANTINED, 0)}, failing {counts.get(state.FAILED, 0)}, "
                   f"to apply {counts.get(state.RECEIVED, 0)}"]
        if counts.get(state.QUARANTINED):
            raise_with(CheckWarning, f"{counts[state.QUARANTINED]} events from Zoho are quarantined: they need a "
                                     "person (admin: Zoho events; apply them again after a fix)", details)
        if oldest and timezone.now() - oldest > self.WAITING:
            raise_with(CheckWarning, f"{counts.get(state.RECEIVED, 0)} events from Zoho wait to be applied, the "
                                     f"oldest since {timezone.localtime(oldest):%Y-%m-%d %H:%M} (is a cluster "
                                     "running?)", details)
        if counts.get(state.FAILED):  # never "ok" beside a failing count
            raise_with(CheckWarning, f"{counts[state.FAILED]} events from Zoho are failing and retried "
                                     "automatically (admin: Zoho events, their last error)", details)
        return "nothing quarantined, failing or waiting", details


class DatabaseCheck(Check):
    category, name = "Database sync status", "database round trip"

    def check(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return f"{connection.vendor} answers", []


CHECKS: tuple[type[Check], ...] = (
    DatabaseCheck, SyncStatusCheck, RecentActivityCheck, ZohoConnectivityCheck, UnsyncedTooLongCheck,
    OrphanedSubscriptionsCheck, DuplicateZohoIdsCheck, OldFailuresCheck, DeadRunsCheck, QueueCheck, ApiBudgetCheck,
    InboxCheck,
)


@dataclass
class HealthReport:
    results: list[CheckResult] = field(default_factory=list)

    @property
    def status(self) -> str:
        if any(r.status == FAILED and r.critical for r in self.results):
            return UNHEALTHY
        if any(r.status != OK for r in self.results):
            return DEGRADED
        return HEALTHY

    def as_dict(self, *, details: bool = True) -> dict:
        checks = []
        for result in self.results:
            row = asdict(result) | {"details": list(result.details)}
            if not details:
                del row["details"]
            checks.append(row)
        return {"status": self.status, "checked_at": timezone.now().isoformat(), "checks": checks}

    def as_text(self, *, detailed: bool = False, email: bool = False) -> str:
        """The standard report (a line a check, by category), with each check's details, or for an email."""
        when = timezone.localtime()
        counts = {s: sum(r.status == s for r in self.results) for s in (OK, WARNING, FAILED)}
        head = (f"Zoho sync health: {self.status} at {when:%Y-%m-%d %H:%M %Z} ({counts[OK]} ok, "
                f"{counts[WARNING]} warnings, {counts[FAILED]} failed)")
        lines = [f"Subject: [Zoho sync] {self.status}", "", head] if email else [head]
        category = None
        for result in self.results:
            if result.category != category:
                category = result.category
                lines += ["", category] if email else [category]
            mark = {OK: "ok     ", WARNING: "WARNING", FAILED: "FAILED "}[result.status]
            lines.append(f"  {mark} {result.name}: {result.summary}"
                         + ("" if email else f" ({result.milliseconds:.0f} ms)"))
            if detailed or (email and result.status != OK):
                lines += [f"            {line}" for line in result.details]
        return "\n".join(lines)


def health_run(*, cheap_only: bool = False, checks: tuple[type[Check], ...] = CHECKS) -> HealthReport:
    """Every check (cheap_only: those safe on every page view, reading Zoho connectivity as last stored)."""
    return HealthReport([check(live=not cheap_only).run() for check in checks if check.cheap or not cheap_only])
