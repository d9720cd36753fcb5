"""The event inbox: every change that comes in from Zoho (a webhook, event replay, reconciliation) is stored here
once, by Zoho's event id, then applied by a django-q2 task. Its row says how far it got: received, applied (or
ignored, with why), failed with a retry time, or quarantined for a person after too many failures."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ZohoEvent(models.Model):
    class Source(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        REPLAY = "replay", "Event replay (GET /events)"
        RECONCILE = "reconcile", "Reconciliation"

    class State(models.TextChoices):
        RECEIVED = "received", "Received, to apply"
        PROCESSING = "processing", "Being applied"
        APPLIED = "applied", "Applied"
        IGNORED = "ignored", "Ignored (nothing to apply)"
        FAILED = "failed", "Failed, will be retried"
        QUARANTINED = "quarantined", "Quarantined: needs a person"

    event_id = models.CharField(max_length=64, unique=True, help_text="Zoho's event id: one row per event.")
    event_type = models.CharField(max_length=64)
    event_time = models.DateTimeField(null=True, blank=True, help_text="When Zoho says the event happened.")
    source = models.CharField(max_length=16, choices=Source.choices)
    payload = models.JSONField(help_text="The event as Zoho sent it.")
    entity = models.CharField(max_length=32, blank=True, help_text="The spec name of the record it is about.")
    zoho_id = models.CharField("Zoho id", max_length=64, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    outcome = models.TextField(blank=True, help_text="What applying it changed, or why nothing.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True, help_text="A worker applies it until then.")

    class Meta:
        verbose_name = "Zoho event"
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="zohoevent_queue"),
            models.Index(fields=["entity", "zoho_id"], name="zohoevent_record"),
            models.Index(fields=["received_at"], name="zohoevent_received"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"
