"""App configuration for zoho_sync."""

from django.apps import AppConfig


class ZohoSyncConfig(AppConfig):
    name = "zoho_sync"
    verbose_name = "Zoho Billing sync"
    default_auto_field = "django.db.models.BigAutoField"
