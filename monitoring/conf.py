"""The MONITORING_* settings, read when asked for (never at import), defaults where unset."""

from __future__ import annotations

from dataclasses import dataclass

from zoho_sync.conf import _settings_object


@dataclass(frozen=True)
class MonitoringSettings:
    success_rate_target: float = 0.98  # KPI: share of sync attempts that succeed, per entity, over 24 h
    success_rate_critical: float = 0.5  # below it most pushes fail: unhealthy
    sync_seconds_target: float = 5.0  # KPI: average seconds per sync attempt
    max_pending_minutes: int = 60  # a record changed longer ago and still not in Zoho is reported
    failure_age_days: int = 7  # a failure older than this is reported
    budget_warn_share: float = 0.8  # share of the daily quota that raises a warning
    cluster_heartbeat_seconds: float = 20.0  # each cluster worker writes its heartbeat this often
    cluster_silent_seconds: float = 75.0  # a cluster not heard from for this long is reported as not running
    base_url: str = "http://127.0.0.1:8000"  # where the admin is served: the links in alerts
    # The alert channels' targets: each channel of monitoring.alerts.CHANNELS reads one (its `field`) when sending.
    alert_emails: tuple[str, ...] = ()
    slack_webhook_url: str = ""
    discord_webhook_url: str = ""
    webhook_url: str = ""  # any receiver of a generic JSON message
    alert_cooldown_minutes: int = 360  # the same failures are sent again (a reminder) after this long
    log_retention_days: int = 90  # the weekly pruning keeps this many days of sync log (the metrics keep all)
    prometheus_enabled: bool = False  # serve /metrics
    prometheus_username: str = ""  # with a username, /metrics asks for HTTP basic credentials
    prometheus_password: str = ""


MONITORING_SETTINGS = {
    "success_rate_target": "MONITORING_SUCCESS_RATE_TARGET",
    "success_rate_critical": "MONITORING_SUCCESS_RATE_CRITICAL",
    "sync_seconds_target": "MONITORING_SYNC_SECONDS_TARGET",
    "max_pending_minutes": "MONITORING_MAX_PENDING_MINUTES",
    "failure_age_days": "MONITORING_FAILURE_AGE_DAYS",
    "budget_warn_share": "MONITORING_BUDGET_WARN_SHARE",
    "cluster_heartbeat_seconds": "MONITORING_CLUSTER_HEARTBEAT_SECONDS",
    "cluster_silent_seconds": "MONITORING_CLUSTER_SILENT_SECONDS",
    "base_url": "MONITORING_BASE_URL",
    "alert_emails": "MONITORING_ALERT_EMAILS",
    "slack_webhook_url": "MONITORING_SLACK_WEBHOOK_URL",
    "discord_webhook_url": "MONITORING_DISCORD_WEBHOOK_URL",
    "webhook_url": "MONITORING_WEBHOOK_URL",
    "alert_cooldown_minutes": "MONITORING_ALERT_COOLDOWN_MINUTES",
    "log_retention_days": "MONITORING_LOG_RETENTION_DAYS",
    "prometheus_enabled": "MONITORING_PROMETHEUS_ENABLED",
    "prometheus_username": "MONITORING_PROMETHEUS_USERNAME",
    "prometheus_password": "MONITORING_PROMETHEUS_PASSWORD",
}


def get_monitoring_settings() -> MonitoringSettings:
    return _settings_object(MonitoringSettings, MONITORING_SETTINGS)
