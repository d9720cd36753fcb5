"""Reconciliation: compare local records with Zoho's by listing (one call per 200 records) and report drift.

Per entity: records missing in Zoho, missing here, differences in the fields we own (a conflict when the record
has not changed here since its last push: someone changed it in Zoho) and in the fields Zoho owns (status,
amounts, terms), with counts and money totals. A subscription's plan and quantity are ours too; Zoho's listing
does not carry them, so a subscription whose listed plan name or amount (price x quantity) differs from ours is
read (one call each) to compare them. A number Zoho sent that cannot be kept here (not finite, too large for its
column) is reported as a bad value of that record, and the rest goes on.

`repair`: push the local truth for what we own (conflicts only when asked: `conflicts="local"`), pull Zoho's truth
for what Zoho owns, mirror the invoices and payments Zoho made, and re-create what Zoho lost once a read confirms it
is gone; a bad value is left for a person to correct in Zoho. Both directions go through the engine's own steps (the
push sequence, the pull step), so nothing here talks HTTP beyond reading.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import timezone

from zoho_sync import inbox
from zoho_sync.client.errors import ZohoNotFoundError
from zoho_sync.entities import BY_NAME, EntitySpec
from zoho_sync.entities.reconciling import OURS, ZOHOS, Field, nested, text
from zoho_sync.models import DriftReport, SyncStatus, ZohoEvent
from zoho_sync.sync.pull import current_fingerprint, is_in_step, zoho_label
from zoho_sync.wire import inbound
from zoho_sync.wire.errors import BadZohoValue


def _printable(text: str) -> str:
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass
class Drift:
    entity: str
    kind: str  # missing_in_zoho, missing_locally, field, amount, status, conflict, bad_value
    label: str
    zoho_id: str = ""
    pk: int | None = None
    field: str = ""
    local: str = ""
    zoho: str = ""
    note: str = ""
    repaired: str = ""
    remote: dict = dataclasses.field(default_factory=dict, repr=False)  # Zoho's listing of it (not reported)

    def __post_init__(self) -> None:
        # Text from Zoho may hold what neither PostgreSQL (the stored report) nor a terminal takes: a NUL or a lone
        # surrogate is shown escaped instead.
        for name in ("label", "local", "zoho", "note"):
            setattr(self, name, _printable(getattr(self, name)))

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in ("", None, {}) and k != "remote"}


@dataclass
class EntityReport:
    entity: str
    local: int = 0  # local records that reached Zoho (with a Zoho id)
    zoho: int = 0  # records Zoho listed
    matched: int = 0
    local_total: Decimal = Decimal("0.00")
    zoho_total: Decimal = Decimal("0.00")
    drift: list[Drift] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for item in self.drift:
            found[item.kind] = found.get(item.kind, 0) + 1
        return found


@dataclass
class Report:
    entities: dict[str, EntityReport] = field(default_factory=dict)
    calls: int = 0
    repair: bool = False
    started: Any = None

    @property
    def drift(self) -> list[Drift]:
        return [item for entity in self.entities.values() for item in entity.drift]

    def as_dict(self) -> dict:
        return {"started": self.started.isoformat() if self.started else None, "api_calls": self.calls,
                "repair": self.repair, "drift": len(self.drift),
                "entities": {name: {"local": e.local, "zoho": e.zoho, "matched": e.matched, "counts": e.counts(),
                                    "local_total": str(e.local_total), "zoho_total": str(e.zoho_total),
                                    "drift": [d.as_dict() for d in e.drift]} for name, e in self.entities.items()}}

    def as_text(self, *, limit: int = 50) -> str:
        lines = [f"Reconciliation with Zoho at {timezone.localtime(self.started):%Y-%m-%d %H:%M %Z}: "
                 f"{len(self.drift)} differences, {self.calls} API calls{' (repair)' if self.repair else ''}"]
        for name, e in self.entities.items():
            counts = ", ".join(f"{kind} {n}" for kind, n in sorted(e.counts().items())) or "in step"
            money = f"; totals here {e.local_total}, in Zoho {e.zoho_total}" if BY_NAME[name].reconcile.money else ""
            lines.append(f"  {name}: {e.local} here, {e.zoho} in Zoho, {e.matched} matched: {counts}{money}")
            for item in e.drift[:limit]:
                what = f" {item.field}: here {item.local!r}, Zoho {item.zoho!r}" if item.field else ""
                done = f" [{item.repaired}]" if item.repaired else ""
                lines.append(f"    {item.kind:<16}{item.label}{what}{f' ({item.note})' if item.note else ''}{done}")
            if len(e.drift) > limit:
                lines.append(f"    ... and {len(e.drift) - limit} more (--json lists them all)")
        return "\n".join(lines)


def _compare_zoho_owned(spec: EntitySpec, obj, remote: dict, zoho_id: str, result: EntityReport) -> None:
    compared = spec.reconcile.zoho_owned
    if not compared or spec.from_zoho is None:
        return
    wanted = spec.from_zoho(remote, obj)
    for name, kind in compared:
        there, here = wanted.get(name), getattr(obj, name)
        if there is None or here is None or name not in wanted:
            continue  # the listing does not say, or it was never pulled here
        if text(here) != text(there):
            result.drift.append(Drift(spec.name, kind, str(spec.label(obj)), zoho_id, obj.pk, name, text(here),
                                      text(there), "Zoho owns it", remote=remote))


def _listed_label(spec: EntitySpec, remote: dict, zoho_id: str) -> str:
    return str(spec.remote_name(remote) or zoho_id)


def _shown(value) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else f"{text[:57]}..."


def _bad_value(spec: EntitySpec, obj, remote: dict, zoho_id: str, bad: BadZohoValue) -> Drift:
    """A record of Zoho's with a number this app cannot keep: named, with the value, for a person."""
    label = str(spec.label(obj)) if obj is not None else _listed_label(spec, remote, zoho_id)
    here = ""
    if obj is not None:
        ours = [f.local for f in spec.reconcile.fields if f.zoho_key == bad.field]
        local = spec.reconcile.money
        if ours:
            here = text(ours[0](obj))
        elif local and local[1] == bad.field:
            here = text(getattr(obj, local[0]))
    bad.record = bad.record or zoho_label(spec, remote)
    return Drift(spec.name, "bad_value", label, zoho_id, obj.pk if obj is not None else None, bad.field, here,
                 _shown(bad.value), bad.reason, remote=remote)


def _compare_record(spec: EntitySpec, obj, remote: dict, zoho_id: str, fields: tuple[Field, ...], client,
                    found: list[Drift]) -> None:
    """The drift of one listed record, appended to `found` (BadZohoValue: a number of it cannot be kept here)."""
    if obj is None:
        found.append(Drift(spec.name, "missing_locally", _listed_label(spec, remote, zoho_id), zoho_id,
                           note="in Zoho only", remote=remote))
        return
    owned = EntityReport(spec.name)
    _compare_zoho_owned(spec, obj, remote, zoho_id, owned)
    found.extend(owned.drift)
    if getattr(obj, "origin", "") == "zoho":  # made by Zoho: every field of it is Zoho's
        return
    compared = remote
    unlisted = [f for f in fields if not nested(remote, f.zoho_key)[0]]
    may_differ = spec.reconcile.read_when
    if unlisted and may_differ is not None and may_differ(obj, remote):
        with contextlib.suppress(ZohoNotFoundError):  # listed, but gone by now: the next run sees it missing
            compared = {**remote, **(client.get(f"{spec.list_path}/{zoho_id}").get(spec.zoho_entity) or {})}
    in_step = None
    for f in fields:
        if not nested(compared, f.zoho_key)[0]:
            continue  # neither the list nor a read carries it: not compared
        here, there = f.values(spec, obj, compared)
        if here == there:
            continue
        if in_step is None:  # only for a record that differs: the fingerprint costs a payload build
            in_step = is_in_step(obj, current_fingerprint(spec, obj))
        kind = "conflict" if in_step else ("amount" if f.kind == "amount" else "field")
        note = "changed in Zoho since our last push" if in_step else "changed here, not pushed yet"
        found.append(Drift(spec.name, kind, str(spec.label(obj)), zoho_id, obj.pk, f.name, here, there, note,
                           remote=compared))


def compare_entity(spec: EntitySpec, client, report: Report) -> EntityReport:
    """Compare every record Zoho lists for `spec` with ours, then ours that Zoho no longer lists, then totals."""
    result = EntityReport(spec.name)
    seen: set[str] = set()
    page_no = 1
    while True:
        body = client.get(spec.list_path, params={"page": page_no, "per_page": 200})
        _compare_page(spec, client, body, result, seen)
        if not (body.get("page_context") or {}).get("has_more_page"):
            break
        page_no += 1
    _find_missing_in_zoho(spec, result, seen)
    money = spec.reconcile.money
    if money:
        total = spec.model.objects.filter(zoho_id__isnull=False).values_list(money[0], flat=True)
        result.local_total = sum(total, Decimal("0.00"))
    return result


def _compare_page(spec: EntitySpec, client, body: dict, result: EntityReport, seen: set[str]) -> None:
    """One listed page: each remote record against ours, its drift (or its unreadable value) and its amount."""
    fields = spec.reconcile.fields
    money = spec.reconcile.money
    page = [r for r in body.get(spec.list_key) or [] if r.get(spec.id_field)]
    ids = [str(r[spec.id_field]) for r in page]
    local = {obj.zoho_id: obj for obj in spec.prepare(spec.model.objects.filter(zoho_id__in=ids))}
    for remote in page:
        zoho_id = str(remote[spec.id_field])
        seen.add(zoho_id)
        result.zoho += 1
        obj = local.get(zoho_id)
        if obj is not None:
            result.matched += 1
        found: list[Drift] = []
        try:
            if money:
                amount = inbound.zoho_number(remote.get(money[1]), inbound.column(spec.model, money[0]),
                                             key=money[1])
            _compare_record(spec, obj, remote, zoho_id, fields, client, found)
        except BadZohoValue as bad:  # this record is named and left; the others are compared and repaired
            found = [_bad_value(spec, obj, remote, zoho_id, bad)]
        else:
            if money:
                result.zoho_total += amount or Decimal("0")
        result.drift.extend(found)


def _find_missing_in_zoho(spec: EntitySpec, result: EntityReport, seen: set[str]) -> None:
    """Local records Zoho no longer lists, in chunks (never all in memory)."""
    rows = spec.model.objects.filter(zoho_id__isnull=False).order_by("pk")
    last = 0
    while chunk := list(rows.filter(pk__gt=last).values_list("pk", "zoho_id")[:2000]):
        last = chunk[-1][0]
        result.local += len(chunk)
        missing = [pk for pk, zoho_id in chunk if zoho_id not in seen]
        for obj in spec.model.objects.filter(pk__in=missing):
            result.drift.append(Drift(spec.name, "missing_in_zoho", str(spec.label(obj)), obj.zoho_id, obj.pk,
                                      note="Zoho does not list it"))

def reconcile(*, specs: tuple[EntitySpec, ...], repair: bool = False, conflicts: str = "leave",
              client=None) -> Report:
    if client is None:
        from zoho_sync.zoho import get_zoho_client

        client = get_zoho_client()
    report = Report(repair=repair, started=timezone.now())
    stats = client.budget.stats
    before = stats.calls
    for spec in specs:
        report.entities[spec.name] = compare_entity(spec, client, report)
    if repair:
        _repair(report, client, specs, conflicts=conflicts)
    report.calls = stats.calls - before  # every call this client made: listing, reads, pushes
    _store(report, specs)
    return report


def _repair(report: Report, client, specs, *, conflicts: str) -> None:
    from zoho_sync import services

    by_name = {spec.name: spec for spec in specs}
    to_push: dict[str, set[int]] = {}
    pulled: dict[tuple[str, str], str] = {}  # one pull per record, however many of its fields differ
    for item in report.drift:
        spec = by_name[item.entity]
        if (item.kind in ("field", "amount") and item.pk and _owner(item) == OURS) or (
                item.kind == "conflict" and conflicts == "local"):
            if not spec.updatable:
                item.repaired = f"left: sync never edits a Zoho {spec.zoho_entity}; a person decides"
                continue
            to_push.setdefault(spec.name, set()).add(item.pk)
            item.repaired = "pushed"
        elif item.kind == "conflict":
            item.repaired = "left for a person (--conflicts local pushes ours)"
        elif item.kind == "bad_value":
            item.repaired = "left: Zoho's value cannot be kept here; correct it in Zoho"
        elif (item.kind in ("status", "amount") and _owner(item) == ZOHOS) or item.kind == "missing_locally":
            key = (spec.name, item.zoho_id)
            if key not in pulled:
                pulled[key] = _printable(_pull_one(spec, item, client, report))
            item.repaired = pulled[key]
        elif item.kind == "missing_in_zoho":
            item.repaired = _recreate(spec, item, client, report)
    for name, pks in to_push.items():
        spec = by_name[name]
        spec.model.objects.filter(pk__in=pks).update(sync_status=SyncStatus.PENDING, next_retry_at=None,
                                                     sync_attempts=0, sync_fingerprint="")
    for spec in specs:
        if spec.name in to_push or any(i.repaired == "re-created" for i in report.entities[spec.name].drift):
            services.sync_pending(entity=spec.name, workers=1)


def _owner(item: Drift) -> str:
    if any(name == item.field for name, _ in BY_NAME[item.entity].reconcile.zoho_owned):
        return ZOHOS
    return OURS if any(f.name == item.field for f in BY_NAME[item.entity].reconcile.fields) else ""


def _pull_one(spec: EntitySpec, item: Drift, client, report: Report) -> str:
    """Zoho's truth enters like every inbound change: as an event in the inbox, applied by the pull step (which
    reads the record again: one call)."""
    if item.kind == "missing_locally" and spec.mirror is None:
        return "left: made in Zoho (linking what Zoho already has is zoho_backfill --link-only)"
    try:
        event, _ = inbox.event_accept(inbox.reconciled_event(spec, item.remote), source=ZohoEvent.Source.RECONCILE)
    except inbox.EventRefused as refused:  # Zoho's record holds what the inbox cannot store: named, left
        return f"left: refused by the inbox ({refused})"[:200]
    if event.state in (ZohoEvent.State.APPLIED, ZohoEvent.State.IGNORED):
        inbox.event_reset(event.pk)  # the same Zoho state found again: apply it again, here
    said = inbox.event_apply(event.pk, client=client)
    event.refresh_from_db()
    if event.state == ZohoEvent.State.APPLIED:
        changed = re.search(r": (\d+) record\(s\) changed", said)
        if not (changed and int(changed.group(1))):
            return "pulled: unchanged"
        return "pulled: mirrored here" if item.kind == "missing_locally" else "pulled: updated"
    return f"left: {event.get_state_display().lower()} ({event.last_error or event.outcome})"[:200]


def _recreate(spec: EntitySpec, item: Drift, client, report: Report) -> str:
    try:
        client.get(f"{spec.list_path}/{item.zoho_id}")
        return "left: Zoho answers for it by id (the list did not show it)"
    except ZohoNotFoundError:
        pass
    spec.model.objects.filter(pk=item.pk, zoho_id=item.zoho_id).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=timezone.now())).update(
        zoho_id=None, create_intent_at=None, sync_fingerprint="", sync_status=SyncStatus.PENDING, next_retry_at=None,
        sync_attempts=0)
    return "re-created"


def _store(report: Report, specs) -> DriftReport:
    drift = report.drift
    return DriftReport.objects.create(
        started_at=report.started, finished_at=timezone.now(), entities=",".join(s.name for s in specs),
        repair=report.repair, drift=len(drift), conflicts=sum(d.kind == "conflict" for d in drift),
        repaired=sum(bool(d.repaired) and not d.repaired.startswith("left") for d in drift),
        records=sum(e.local + e.zoho for e in report.entities.values()), api_calls=report.calls,
        report=report.as_dict(), text=report.as_text(limit=200))
