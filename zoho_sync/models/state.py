"""State every process shares: the cached access token and the rate budget (SharedState), and API usage."""

from __future__ import annotations

from django.db import models


class SharedState(models.Model):
    """A small JSON record updated by compare-and-set on `version` (see zoho_sync/shared_state.py)."""

    key = models.CharField(max_length=128, primary_key=True)
    data = models.TextField(default="{}")
    version = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "shared state"
        verbose_name_plural = "shared state"

    def __str__(self) -> str:
        return self.key


class ApiUsage(models.Model):
    """Calls made to Zoho per UTC day, organization and endpoint (ids left out), for the quota alerts."""

    day = models.DateField()
    organization_id = models.CharField(max_length=32)
    endpoint = models.CharField(max_length=128)
    calls = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "API usage"
        verbose_name_plural = "API usage"
        ordering = ["-day", "-calls"]
        constraints = [
            models.UniqueConstraint(fields=["day", "organization_id", "endpoint"], name="api_usage_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.endpoint}: {self.calls}"
