"""App configuration for monitoring: every django-q2 worker starts the cluster heartbeat (monitoring/heartbeat.py)."""

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self):
        from django_q.signals import post_spawn

        from monitoring.heartbeat import worker_spawned

        post_spawn.connect(worker_spawned, dispatch_uid="monitoring.cluster_heartbeat")
