"""django-q2 task functions for the monitoring schedules (dotted paths are stored in schedules: keep them)."""

from __future__ import annotations

from django.core.mail import send_mail

from monitoring.alerts import alert_evaluate, alert_send, budget_alert_evaluate, budget_alert_send
from monitoring.checks import health_run
from monitoring.conf import get_monitoring_settings
from zoho_sync.shared_state import single_run


@single_run("monitoring: alert failed syncs")
def alert_failed(hours: int = 24) -> str:
    """The hourly alert: send the failed syncs (or "resolved") unless the cooldown holds them back."""
    decision = alert_evaluate(hours=hours)
    if decision.action != "send" or decision.alert is None:
        return decision.reason
    alert = alert_send(decision.alert)
    if alert.errors:  # django-q2 records the task as failed, and the queue check reports it
        raise RuntimeError("Sending the alert failed: " + "; ".join(alert.errors))
    return f"{alert.subject}: {', '.join(alert.sent_to) or 'no channel configured'}"


@single_run("monitoring: Zoho connectivity")
def connectivity_check() -> str:
    """Every 5 minutes: check Zoho again when the last reading failed or is older than 30 minutes (pushes that
    reached Zoho keep it fresh for free); the dashboard, /health/ and the banners read what it stores."""
    from zoho_sync.connectivity import connectivity_refresh_due

    reading = connectivity_refresh_due()
    if reading is None:
        return "the last reading is fresh and fine: no call"
    return f"{'ok' if reading.ok else 'FAILED'}: {reading.summary}"


@single_run("monitoring: daily health report")
def health_report_email() -> str:
    """The daily health report, by email to MONITORING_ALERT_EMAILS."""
    recipients = list(get_monitoring_settings().alert_emails)
    report = health_run()
    if not recipients:
        return f"{report.status}; no MONITORING_ALERT_EMAILS to send it to"
    text = report.as_text(email=True)
    subject, _, body = text.partition("\n\n")
    send_mail(subject.removeprefix("Subject: "), body, None, recipients)
    return f"{report.status}, sent to {', '.join(recipients)}"


@single_run("monitoring: API budget alert")
def budget_alert() -> str:
    """Every 15 minutes: once a day, say so when API usage passes MONITORING_BUDGET_WARN_SHARE of the quota."""
    alert = budget_alert_evaluate()
    if alert is None:
        return "below the warning share, or already sent today"
    alert = budget_alert_send(alert)
    if alert.errors:
        raise RuntimeError("Sending the budget alert failed: " + "; ".join(alert.errors))
    return f"sent: {', '.join(alert.sent_to) or 'no channel configured'}"


@single_run("monitoring: daily metrics")
def metrics_rollup_daily() -> str:
    """Every day: roll up the days not complete yet (yesterday becomes complete, today so far)."""
    from monitoring.metrics import metrics_rollup

    return f"rolled up {metrics_rollup(days=14)} days"


@single_run("monitoring: weekly log pruning")
def prune_logs_weekly() -> str:
    """Every week: delete sync-log rows older than MONITORING_LOG_RETENTION_DAYS, after their days are rolled up."""
    from monitoring.metrics import sync_log_prune

    deleted, cutoff, days = sync_log_prune(older_than_days=get_monitoring_settings().log_retention_days)
    return f"Deleted {deleted} sync-log rows older than {cutoff:%Y-%m-%d} (UTC); the daily metrics keep {days} days."
