"""The django-q2 schedules operations relies on (both apps' tasks, by dotted path), installed idempotently by
`manage.py zoho_schedules`. In zoho_sync so the task allow-list (task_funcs.py) reads it downwards; monitoring.schedules
re-exports it.

The cluster setting `catch_up: False` (config/settings.py) means a cluster back from downtime runs each missed
schedule once, not once per missed interval: no catch-up storm.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone


@dataclass(frozen=True)
class Planned:
    name: str  # stable: renaming one leaves the old row behind
    func: str  # a task's dotted path, stable for the same reason
    minutes: int  # 0 with monthly: django-q2's own monthly schedule (its minutes field is a small integer)
    args: str = ""
    why: str = ""
    monthly: bool = False


SCHEDULES = (
    Planned("monitoring: cluster heartbeat", "monitoring.heartbeat.cluster_heartbeat", 1,
            why="the health check's proof that a cluster runs"),
    Planned("monitoring: Zoho connectivity", "monitoring.tasks.connectivity_check", 5,
            why="the connectivity reading every page shows (a call only when it failed or is 30 min old)"),
    Planned("zoho: push pending", "zoho_sync.tasks.backfill", 15, args="'all'",
            why="whatever a trigger missed (a record saved with triggers off, a lost task) reaches Zoho"),
    Planned("zoho: retry failed", "zoho_sync.tasks.retry_failed", 60,
            why="failures that a retry can fix, and records waiting for a dependency"),
    Planned("zoho: sweep events", "zoho_sync.tasks.sweep_events", 5,
            why="inbox events whose task was lost, or whose retry is due, are applied"),
    Planned("zoho: replay events", "zoho_sync.tasks.replay_events", 60,
            why="Zoho's events list read since the cursor: a webhook that never arrived is applied"),
    Planned("zoho: monthly reconciliation", "zoho_sync.tasks.reconcile", 0, monthly=True,
            why="every entity compared with Zoho; the report is on the admin's drift page (repair by hand)"),
    Planned("monitoring: alert failed syncs", "monitoring.tasks.alert_failed", 60,
            why="failed syncs by email and chat webhook, once per outage, and resolved"),
    Planned("monitoring: API budget alert", "monitoring.tasks.budget_alert", 15,
            why="once a day, when API usage passes MONITORING_BUDGET_WARN_SHARE of the daily quota"),
    Planned("monitoring: daily metrics", "monitoring.tasks.metrics_rollup_daily", 24 * 60,
            why="the sync log rolled up per day and entity (zoho_metrics reads it)"),
    Planned("monitoring: weekly log pruning", "monitoring.tasks.prune_logs_weekly", 7 * 24 * 60,
            why="sync-log rows older than MONITORING_LOG_RETENTION_DAYS, after their days are rolled up"),
    Planned("monitoring: daily health report", "monitoring.tasks.health_report_email", 24 * 60,
            why="zoho_health_check's report by email to MONITORING_ALERT_EMAILS"),
)


def schedules_install() -> list[tuple[Planned, bool]]:
    """Create or update every planned schedule; return each with whether it was new. Running it twice changes
    nothing; a schedule's next run is kept when it already exists."""
    from django_q.models import Schedule

    done = []
    for planned in SCHEDULES:
        kind = {"schedule_type": Schedule.MONTHLY, "minutes": None} if planned.monthly else {
            "schedule_type": Schedule.MINUTES, "minutes": planned.minutes}
        _, created = Schedule.objects.update_or_create(name=planned.name, defaults={
            "func": planned.func, "args": planned.args or None, "repeats": -1, **kind})
        if created:
            Schedule.objects.filter(name=planned.name).update(next_run=timezone.now())
        done.append((planned, created))
    return done
