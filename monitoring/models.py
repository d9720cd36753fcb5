"""DailyMetric: the sync log rolled up per UTC day and entity, so 14-day views never scan raw log rows."""

from __future__ import annotations

from django.db import models

ALL = "all"  # the row for what is not per entity: 429s and budget waits, all API calls


class DailyMetric(models.Model):
    day = models.DateField()
    entity = models.CharField(max_length=32, help_text='An entity, or "all".')
    attempts = models.PositiveIntegerField(default=0, help_text="Pushes that ended in success or failure.")
    successes = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    avg_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Average sync duration.")
    p95_ms = models.PositiveIntegerField(null=True, blank=True, help_text="95th-percentile sync duration.")
    api_calls = models.PositiveIntegerField(default=0)
    rate_limited = models.PositiveIntegerField(default=0, help_text="Answers of HTTP 429 (on the all row).")
    budget_wait_seconds = models.FloatField(default=0.0, help_text="Waits for the rate budget (on the all row).")
    complete = models.BooleanField(default=False, help_text="The day was over when it was rolled up.")
    rolled_up_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "entity"]
        constraints = [models.UniqueConstraint(fields=["day", "entity"], name="daily_metric_unique")]

    def __str__(self) -> str:
        return f"{self.day} {self.entity}"

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.attempts if self.attempts else None
