"""The dry run: what a backfill would send, how many calls it needs, and how long the budget makes it take.

Reads the database only; no call to Zoho. Estimates assume Zoho holds what the local Zoho ids say it holds.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from django.utils import timezone

from zoho_sync.conf import ZohoLimits, get_zoho_limits
from zoho_sync.entities import EntitySpec
from zoho_sync.sync import claims
from zoho_sync.sync.engine import Engine, fingerprint_of, validate_for_push
from zoho_sync.sync.tables import LEGEND, state_table
from zoho_sync.wire.errors import SyncError

SAMPLES = 3


@dataclass
class EntityPlan:
    name: str
    create: int = 0
    update: int = 0
    unchanged: int = 0
    waiting: int = 0
    calls: int = 0
    skipped: Counter = field(default_factory=Counter)
    invalid: list[str] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    first_bills: list[tuple[str, str]] = field(default_factory=list)  # (record, date) for subscriptions
    in_the_past: int = 0
    to_triggers: int = 0  # due, but left to their queued triggered pushes (a cluster runs them first)


@dataclass
class BackfillPlan:
    entities: list[EntityPlan]
    limits: ZohoLimits
    used_today: int
    scope: dict[str, dict[str, int]] = field(default_factory=dict)  # every record in scope by state, now
    failed_kinds: dict[str, dict[str, int]] = field(default_factory=dict)  # failed records by error kind

    @property
    def calls(self) -> int:
        return sum(e.calls for e in self.entities)

    @property
    def minutes(self) -> float:
        per_minute = self.limits.per_minute * (1 - self.limits.headroom) * self.limits.bulk_share
        return self.calls / max(per_minute, 1e-9)

    @property
    def days(self) -> int:
        """UTC days the daily quota spreads the calls over (1 when they fit in what is left today)."""
        per_day = max(1, self.limits.daily_limit - self.limits.daily_reserve)
        left_today = max(0, per_day - self.used_today)
        if self.calls <= left_today:
            return 1
        return 1 + math.ceil((self.calls - left_today) / per_day)

    def as_text(self, *, verbosity: int = 1) -> str:
        out = ["Dry run: nothing is sent to Zoho.", "", f"Every record in scope now ({LEGEND}):",
               *state_table(self.scope)]
        for name, kinds in self.failed_kinds.items():
            if kinds:
                out.append(f"{'':<17}{name} failed by kind: "
                           + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())))
        out += ["", "What a backfill would do now with the records that are due:"]
        for e in self.entities:
            out.append(f"{e.name}: create {e.create}, update {e.update}, unchanged {e.unchanged}, "
                       f"would wait for a dependency {e.waiting}, skipped {sum(e.skipped.values())}, "
                       f"invalid {len(e.invalid)}; about {e.calls} API calls")
            for reason, count in e.skipped.most_common():
                out.append(f"    skipped {count}: {reason}")
            for line in e.invalid[: 10 if verbosity < 2 else None]:
                out.append(f"    invalid: {line}")
            for bill in e.first_bills[: 5 if verbosity < 2 else None]:
                out.append(f"    Zoho will invoice {bill[0]} next on {bill[1]}")
            if e.to_triggers:
                out.append(f"    {e.to_triggers} of them have their triggered push queued: the running cluster "
                           "sends those first, and the backfill leaves them to it")
            if e.in_the_past:
                out.append(f"    {e.in_the_past} start before today: their last local period ended earlier, and "
                           "Zoho will not bill the days in between (no back-dated invoices)")
            for sample in e.samples[: SAMPLES if verbosity < 2 else None]:
                out.append(f"    would send: {json.dumps(sample, default=str)[:400]}")
        rate = self.limits.per_minute * (1 - self.limits.headroom) * self.limits.bulk_share
        out.append("")
        out.append(f"Estimated API calls: {self.calls}; at {rate:.0f} calls/minute (the backfill's share of the "
                   f"budget) that is {_duration(self.minutes)}.")
        if self.days > 1:
            out.append(f"Zoho's daily quota ({self.limits.daily_limit}, of which {self.limits.daily_reserve} kept "
                       f"for live triggers; {self.used_today} used today) spreads it over {self.days} days: the "
                       "backfill stops each day when the quota runs low and goes on after 00:00 UTC.")
        return "\n".join(out)


def _duration(minutes: float) -> str:
    if minutes < 1:
        return f"{minutes * 60:.0f} seconds"
    if minutes < 120:
        return f"{minutes:.0f} minutes"
    return f"{minutes / 60:.1f} hours"


def plan_backfill(*, specs: tuple[EntitySpec, ...], since: datetime | None = None,
                  today: date | None = None) -> BackfillPlan:
    today = today or timezone.localdate()
    limits = get_zoho_limits()
    planned: dict[str, set[int]] = {}
    entities = []
    for spec in specs:
        plan = EntityPlan(spec.name)
        creating: set[int] = set()
        base = spec.model.objects.all()
        if since:
            base = base.filter(updated_at__gte=since)
        has_creates = False
        due = claims.due_filter(timezone.now())
        if (landed := Engine.landed_filter(spec)) is not None:
            due |= landed & claims.free_filter(timezone.now())  # a backfill wakes these first (wake_landed)
        if (left := claims.left_to_triggers(timezone.now())) is not None:
            plan.to_triggers = base.filter(due).filter(left).count()
        for obj in spec.prepare(base.filter(due)).iterator(chunk_size=2000):
            if reason := spec.skip_reason(obj):
                plan.skipped[reason] += 1
                continue
            if _waits(spec, obj, planned):
                plan.waiting += 1
                continue
            try:
                validate_for_push(obj)
                fingerprint = fingerprint_of(spec.fingerprint(obj))
                payload = spec.payload(obj, today=today)
            except SyncError as error:
                plan.invalid.append(f"{spec.label(obj)}: {error}")
                continue
            if obj.zoho_id:
                if fingerprint == obj.sync_fingerprint:
                    plan.unchanged += 1
                else:
                    plan.update += 1
                    plan.calls += 1 + spec.extra_update_calls(obj)
                continue
            plan.create += 1
            creating.add(obj.pk)
            has_creates = True
            plan.calls += 1 + spec.extra_create_calls(obj)
            if len(plan.samples) < 1000:
                plan.samples.append(payload)
            if "starts_at" in payload:
                plan.first_bills.append((spec.label(obj), payload["starts_at"]))
                plan.in_the_past += payload["starts_at"] < today.isoformat()
        if has_creates:  # the backfill reads Zoho's existing records once: one list call per 200
            plan.calls += 1 + spec.model.objects.filter(zoho_id__isnull=False).count() // 200
        planned[spec.name] = creating
        entities.append(plan)
    from zoho_sync import selectors

    return BackfillPlan(entities=entities, limits=limits, used_today=selectors.api_calls_today(),
                        scope=selectors.sync_state_counts(specs=specs, since=since),
                        failed_kinds=selectors.sync_failed_kinds(specs=specs, since=since))


def _waits(spec: EntitySpec, obj, planned: dict[str, set[int]]) -> bool:
    for attribute, dependency in spec.depends_on:
        related = getattr(obj, attribute)
        if related is not None and not related.zoho_id and related.pk not in planned.get(dependency, set()):
            return True
    return False

