"""App configuration for monitoring (health checks, metrics and alerts arrive with their issue)."""

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"
