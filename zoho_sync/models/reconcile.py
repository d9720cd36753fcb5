"""DriftReport: what a reconciliation found (and repaired), kept so the admin's drift page shows the last one."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class DriftReport(models.Model):
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    entities = models.CharField(max_length=120)
    repair = models.BooleanField(default=False)
    drift = models.PositiveIntegerField(default=0, help_text="Differences found.")
    conflicts = models.PositiveIntegerField(default=0)
    repaired = models.PositiveIntegerField(default=0)
    records = models.PositiveIntegerField(default=0, help_text="Records compared (local and Zoho).")
    api_calls = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict)
    text = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"reconciliation {self.started_at:%Y-%m-%d %H:%M}: {self.drift} differences"
