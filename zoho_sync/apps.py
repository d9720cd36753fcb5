"""App configuration for zoho_sync."""

from django.apps import AppConfig


class ZohoSyncConfig(AppConfig):
    name = "zoho_sync"
    verbose_name = "Zoho Billing sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # registers the triggers, the checks, and the checks of a schedule's function (task_funcs)
        from zoho_sync import signals, system_checks, task_funcs  # noqa: F401
