"""SyncRun: one backfill, retry, trigger or link (--link-only) run, persisted while it runs, so monitoring reads
runs, not terminals."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone

# A running run writes its heartbeat this often; one silent for DEAD_AFTER is shown as dead.
HEARTBEAT_SECONDS = 30
DEAD_AFTER = timedelta(seconds=4 * HEARTBEAT_SECONDS)


class SyncRun(models.Model):
    class Kind(models.TextChoices):
        BACKFILL = "backfill", "Backfill"
        RETRY = "retry", "Retry of failed records"
        TRIGGER = "trigger", "Triggered push"
        LINK = "link", "Link to existing Zoho records (--link-only)"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SETTLED = "settled", "Finished, nothing left failed or waiting"  # exit 0
        UNSETTLED = "unsettled", "Finished, records left failed or waiting"  # exit 2
        STOPPED = "stopped", "Stopped before the end"  # the daily quota, a worker that died: exit 2
        CRASHED = "crashed", "Ended by an error"  # an exception left the run

    run_id = models.CharField(max_length=32, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    entities = models.CharField(max_length=120, help_text="The entities in scope, comma-separated.")
    since = models.DateTimeField(null=True, blank=True, help_text="Only records changed since then (--since).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    host = models.CharField(max_length=64, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    workers = models.PositiveSmallIntegerField(default=1)
    records = models.PositiveIntegerField(default=0, help_text="Records the run examined.")
    counts = models.JSONField(default=dict, blank=True,
                              help_text="Per entity, what the run left each record: created, failed, waiting...")
    unsettled = models.JSONField(default=dict, blank=True,
                                 help_text="Records of the scope left failed, waiting or blocked when it ended.")
    api_calls = models.PositiveIntegerField(default=0)
    rate_limited = models.PositiveIntegerField(default=0, help_text="Answers of HTTP 429 from Zoho.")
    budget_wait_seconds = models.FloatField(default=0.0, help_text="Time spent waiting for the rate budget.")
    stop_reason = models.TextField(blank=True)
    resume_at = models.DateTimeField(null=True, blank=True)
    exit_code = models.SmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["status", "heartbeat_at"], name="syncrun_status_heartbeat"),
            models.Index(fields=["kind", "started_at"], name="syncrun_kind_started"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.run_id[:12]} ({self.state_label})"

    @property
    def is_dead(self) -> bool:
        """Running, by its status, but its heartbeat stopped: its process is gone."""
        return self.status == self.Status.RUNNING and self.heartbeat_at < timezone.now() - DEAD_AFTER

    @property
    def state_label(self) -> str:
        return "dead (its heartbeat stopped)" if self.is_dead else self.get_status_display()
