"""App configuration for zoho_sync."""

from django.apps import AppConfig


class ZohoSyncConfig(AppConfig):
    name = "zoho_sync"
    verbose_name = "Zoho Billing sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from zoho_sync import signals, system_checks  # noqa: F401 (registers the triggers and checks)
