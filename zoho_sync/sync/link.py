"""Linking what Zoho already has (`zoho_backfill --link-only`): our records that never reached Zoho, matched with
the records Zoho holds (entered by hand, or by an older integration), linked when the match is certain.

Reads only: Zoho's lists, one call per 200 records; nothing is created or changed in Zoho. Customers match by
their account number (wherever a person typed it in the display name, in any case or spacing), else by email;
other entities by their natural key. A record with more than one candidate is held for a person (failed, needs
a person, listing the candidates, in the record's `link_hold`), and the engine never creates a held record
(engine.Engine._check_link_hold) until linking or settling it clears the hold.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from zoho_sync.client.budget import Priority
from zoho_sync.client.errors import ZohoError
from zoho_sync.entities import EntitySpec, LinkRule
from zoho_sync.entities.base import squash
from zoho_sync.models import ErrorKind, SyncLog, SyncRun, SyncStatus
from zoho_sync.sync import logbook
from zoho_sync.sync.claims import free_filter
from zoho_sync.sync.link_report import EntityLinks, Item, LinkReport
from zoho_sync.sync.pull import current_fingerprint
from zoho_sync.sync.runs import (
    budget_stats_since,
    sync_run_finish,
    sync_run_finish_link,
    sync_run_heartbeat,
    sync_run_start,
)
from zoho_sync.wire.errors import InvalidLocalData, RemoteConflict

logger = logging.getLogger(__name__)
AMBIGUOUS = "Ambiguous link:"  # how a held record's error and sync-log message begin
NEW = "new"  # --settle LABEL=new: none of Zoho's candidates is this record; a backfill creates it


def describe(spec: EntitySpec, record: dict) -> str:
    """A Zoho record as a person finds it: its id, name and email."""
    name = spec.remote_name(record) or ""
    email = record.get("email") or ""
    return f'{spec.zoho_entity} {record[spec.id_field]} "{name}"' + (f" <{email}>" if email else "")


@dataclass
class _Listing:
    """One entity's records in Zoho: by Zoho id, and by every key and email each carries."""

    keys_of: Callable[[dict], set[str]]
    records: dict[str, dict] = field(default_factory=dict)
    by_key: dict[str, list[dict]] = field(default_factory=dict)
    by_email: dict[str, list[dict]] = field(default_factory=dict)


@dataclass
class _Pass:
    """What linking one entity knows as it goes: Zoho's list, ours, and the matches kept so far."""

    spec: EntitySpec
    rule: LinkRule
    result: EntityLinks
    zoho: _Listing
    linked_to: dict[str, str] = field(default_factory=dict)  # Zoho id -> label of our record holding it already
    own_key: dict[int, str] = field(default_factory=dict)  # pk -> the key our record carries
    owners: dict[str, list[int]] = field(default_factory=dict)  # key -> our records carrying it
    tentative: dict[int, tuple] = field(default_factory=dict)  # pk -> (obj, item, record) matched certainly
    now: datetime | None = None  # when our records were read: a claim running past it is a worker's


class Linker:
    """One --link-only run over some entities, in dependency order (customers before their subscriptions)."""

    def __init__(self, *, specs: tuple[EntitySpec, ...], client, dry_run: bool = False,
                 since: datetime | None = None, settle: dict[tuple[str, str], str] | None = None):
        self.specs, self.client, self.dry_run, self.since = specs, client, dry_run, since
        self.settle = settle or {}  # (entity, label) -> Zoho id or NEW
        self.report = LinkReport(run_id=uuid.uuid4().hex, dry_run=dry_run, started=timezone.now())
        self.planned: dict[str, dict[int, str]] = {}  # entity -> pk -> Zoho id linked (or, dry run, to be)
        self.today = timezone.localdate()

    def run(self) -> LinkReport:
        stats = self.client.budget.stats
        before = stats.calls
        try:
            with self.client.priority(Priority.BULK):  # the backfill's share of the budget; the daily reserve kept
                for spec in self.specs:
                    self.report.entities[spec.name] = self._entity(spec)
        finally:  # a run stopped by an unreadable list is recorded with the calls it made
            self.report.calls = stats.calls - before
        return self.report

    # --- reading and matching ---------------------------------------------------------------------------------
    def _entity(self, spec: EntitySpec) -> EntityLinks:
        """One entity: read Zoho's list, match each of our records without a Zoho id, then link what matched one
        record certainly, leave what cannot be linked yet and hold what is ambiguous."""
        rule = spec.link
        work = _Pass(spec, rule, EntityLinks(spec.name), self._read_zoho(spec, rule))
        work.result.zoho = len(work.zoho.records)
        work.linked_to = self._linked_to(spec, list(work.zoho.records))
        for obj in self._unlinked(work):
            self._match(work, obj)
        self._refuse_shared_matches(work)
        self._link_matches(work)
        if not self.dry_run:
            for item in work.result.ambiguous:
                self._hold(spec, item)
        return work.result

    def _read_zoho(self, spec: EntitySpec, rule: LinkRule) -> _Listing:
        """Zoho's records of the entity (those with an id), indexed by every key and email each carries."""
        zoho = _Listing(keys_of=rule.remote_keys or (lambda r: {squash(spec.remote_key(r))} - {""}))
        for record in self.client.paginate(spec.list_path, spec.list_key):
            if not record.get(spec.id_field):
                continue
            zoho.records[str(record[spec.id_field])] = record
            for key in zoho.keys_of(record):
                zoho.by_key.setdefault(key, []).append(record)
            if rule.remote_email and (email := rule.remote_email(record)):
                zoho.by_email.setdefault(email, []).append(record)
        return zoho

    def _unlinked(self, work: _Pass) -> list:
        """Our records in scope without a Zoho id and not skipped by design, in pk order; counts those linked
        already and notes which of ours carries which key."""
        spec = work.spec
        rows = spec.model.objects.all()
        if self.since:
            rows = rows.filter(updated_at__gte=self.since)
        work.result.already = rows.filter(zoho_id__isnull=False).count()
        work.now = timezone.now()
        local = [obj for obj in spec.prepare(rows.filter(zoho_id__isnull=True)).order_by("pk").iterator(
            chunk_size=2000) if not spec.skip_reason(obj)]
        work.own_key = {obj.pk: squash(spec.local_key(obj)) for obj in local}
        for pk, key in work.own_key.items():
            work.owners.setdefault(key, []).append(pk)
        return local

    def _match(self, work: _Pass, obj) -> None:
        """Decide for one record of ours: left to the worker holding it, settled by a person, or matched by what
        Zoho's records carry."""
        spec, rule = work.spec, work.rule
        item = Item(spec.name, obj.pk, str(spec.label(obj)), email=(rule.local_email(obj) if rule.local_email else ""))
        if obj.claimed_until and obj.claimed_until > work.now:
            item.reason = "a worker is pushing it right now; left to it"
            work.result.left.append(item)
            return
        chosen = self.settle.get((spec.name, item.label))
        if chosen is not None:
            self._settled(work, obj, item, chosen)
            return
        key = work.own_key[obj.pk]
        key_hits = list(work.zoho.by_key.get(key, []))
        email_hits = [r for r in work.zoho.by_email.get(item.email, []) if r not in key_hits
                      and not self._someone_elses(work, r, pk=obj.pk, key=key)] if item.email else []
        self._match_by_hits(work, obj, item, key_hits, email_hits)

    @staticmethod
    def _someone_elses(work: _Pass, record: dict, *, pk: int, key: str) -> bool:
        """The record is another's: linked to one of ours, naming another key in our own form, or carrying another
        of our records' keys."""
        return str(record[work.spec.id_field]) in work.linked_to or work.rule.named_key(record) not in ("", key) or any(
            other != pk for k in work.zoho.keys_of(record) for other in work.owners.get(k, ()))

    def _match_by_hits(self, work: _Pass, obj, item: Item, key_hits: list[dict], email_hits: list[dict]) -> None:
        """One certain match (by key, else by email) is kept to link; several, or a key taken already, is
        ambiguous; none leaves the record to a normal backfill (and lifts a hold it had)."""
        spec, result, linked_to = work.spec, work.result, work.linked_to
        taken = [r for r in key_hits if str(r[spec.id_field]) in linked_to]
        if taken:
            zoho_id = str(taken[0][spec.id_field])
            self._ambiguous(item, f"{describe(spec, taken[0])} carries its key but is already linked to "
                                  f"{linked_to[zoho_id]}", [*key_hits, *email_hits], spec, result)
        elif len(key_hits) > 1:
            self._ambiguous(item, f"Zoho holds {len(key_hits)} {spec.zoho_entity}s with its key "
                                  f"{spec.label(obj)}", [*key_hits, *email_hits], spec, result)
        elif key_hits and email_hits:
            self._ambiguous(item, f"its key points at {spec.zoho_entity} {key_hits[0][spec.id_field]}, its "
                                  f"email also at another", [*key_hits, *email_hits], spec, result)
        elif key_hits:
            item.how = "key"
            work.tentative[obj.pk] = (obj, item, key_hits[0])
        elif len(email_hits) > 1:
            self._ambiguous(item, f"Zoho holds {len(email_hits)} {spec.zoho_entity}s with its email "
                                  "(and none with its key)", email_hits, spec, result)
        elif email_hits:
            item.how = "email"
            work.tentative[obj.pk] = (obj, item, email_hits[0])
        else:
            result.missing.append(item)
            if obj.link_hold and not self.dry_run:
                self._release(spec, obj, item, "No Zoho record matches it any longer: released; a normal "
                                                "backfill creates it.")

    def _refuse_shared_matches(self, work: _Pass) -> None:
        """One Zoho record matched by two of ours: neither is linked, both are ambiguous."""
        spec, tentative = work.spec, work.tentative
        by_zoho: dict[str, list[int]] = {}
        for pk, (_, _, record) in tentative.items():
            by_zoho.setdefault(str(record[spec.id_field]), []).append(pk)
        for zoho_id, pks in by_zoho.items():
            if len(pks) > 1:
                labels = ", ".join(tentative[pk][1].label for pk in pks)
                for pk in pks:
                    _, item, record = tentative.pop(pk)
                    item.how = ""
                    self._ambiguous(item, f"{spec.zoho_entity} {zoho_id} matches several of ours ({labels})",
                                    [record], spec, work.result)

    def _link_matches(self, work: _Pass) -> None:
        """Link each certain match, unless its dependency points elsewhere or is not linked yet (left for later)."""
        for obj, item, record in work.tentative.values():
            if reason := self._dependency_mismatch(work.spec, obj, record):
                item.how, item.reason = "", reason
                work.result.left.append(item)
                continue
            self._link(work.spec, obj, item, record, work.result)

    def _settled(self, work: _Pass, obj, item: Item, chosen: str) -> None:
        """A person named the Zoho record (or said none of them is it): no matching, only checks."""
        spec, records, linked_to, result = work.spec, work.zoho.records, work.linked_to, work.result
        if chosen == NEW:
            result.missing.append(item)
            if not self.dry_run:
                self._release(spec, obj, item, "Settled by a person: none of Zoho's candidates is this record; "
                                               "a normal backfill creates it.", force=True)
            return
        if chosen not in records:
            self._ambiguous(item, f"--settle names {spec.zoho_entity} {chosen}, which Zoho does not list", [],
                            spec, result)
        elif chosen in linked_to:
            self._ambiguous(item, f"--settle names {spec.zoho_entity} {chosen}, already linked to "
                                  f"{linked_to[chosen]}", [records[chosen]], spec, result)
        else:
            item.how = "settled"
            work.tentative[obj.pk] = (obj, item, records[chosen])

    def _linked_to(self, spec: EntitySpec, zoho_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(zoho_ids), 2000):
            chunk = zoho_ids[start:start + 2000]
            for obj in spec.model.objects.filter(zoho_id__in=chunk):
                found[obj.zoho_id] = str(spec.label(obj))
        for pk, zoho_id in self.planned.get(spec.name, {}).items():
            found.setdefault(zoho_id, f"{spec.name} {pk}")
        return found

    def _dependency_mismatch(self, spec: EntitySpec, obj, record: dict) -> str:
        """Why a record cannot be linked to `record` now: its customer is another Zoho customer, or not linked."""
        for attribute, dependency in spec.depends_on:
            remote_key = dict(spec.link.dependency_keys).get(attribute)
            related = getattr(obj, attribute)
            if remote_key is None or related is None or not record.get(remote_key):
                continue
            ours = related.zoho_id or self.planned.get(dependency, {}).get(related.pk, "")
            if not ours:
                return (f"{describe(spec, record)} matches it, but its {attribute} is not linked yet: link that "
                        "first (run again)")
            if str(record[remote_key]) != ours:
                return (f"{describe(spec, record)} matches its key but belongs to {attribute} {record[remote_key]}, "
                        f"not ours ({ours}); check it in Zoho")
        return ""

    @staticmethod
    def _ambiguous(item: Item, reason: str, candidates: list[dict], spec: EntitySpec, result: EntityLinks) -> None:
        seen: list[str] = []
        for record in candidates:
            if (said := describe(spec, record)) not in seen:
                seen.append(said)
        item.reason, item.candidates = reason, seen
        result.ambiguous.append(item)

    # --- writing ----------------------------------------------------------------------------------------------
    def _in_step(self, spec: EntitySpec, obj, record: dict) -> str | None:
        """The fingerprint to store when Zoho's listing already shows every field of our payload with our value
        (or the entity is never edited by sync); None when the next push must bring Zoho up to date."""
        fingerprint = current_fingerprint(spec, obj)
        if fingerprint is None:
            return None
        if not spec.updatable:
            return fingerprint
        try:
            payload = spec.payload(obj, today=self.today)
        except (InvalidLocalData, AttributeError, TypeError, ValueError):  # the next push says what is wrong
            return None
        return fingerprint if all(k in record and record[k] == v for k, v in payload.items()) else None

    def _link(self, spec: EntitySpec, obj, item: Item, record: dict, result: EntityLinks) -> None:
        item.zoho_id = str(record[spec.id_field])
        fingerprint = self._in_step(spec, obj, record)
        item.synced = fingerprint is not None
        self.planned.setdefault(spec.name, {})[obj.pk] = item.zoho_id
        result.linked.append(item)
        if self.dry_run:
            return
        now = timezone.now()
        fields = {"zoho_id": item.zoho_id, "create_intent_at": None, "next_retry_at": None, "sync_attempts": 0,
                  "last_sync_error": "", "last_error_kind": "", "failing_since": None, "link_hold": ""}
        if item.synced:
            fields.update(sync_status=SyncStatus.SYNCED, sync_fingerprint=fingerprint, last_synced_at=now)
        else:
            fields.update(sync_status=SyncStatus.PENDING, sync_fingerprint="")
        how = {"key": "its key", "email": "its email (the display name differs)",
               "settled": "a person's choice (--settle)"}[item.how]
        state = ("Zoho already holds exactly its data: synced" if item.synced else
                 "pending: the next backfill brings Zoho's copy up to date")
        message = f"Linked by --link-only to {describe(spec, record)}, matched by {how}; {state}."
        try:
            with transaction.atomic():
                if not spec.model.objects.filter(free_filter(now), pk=obj.pk, zoho_id__isnull=True,
                                                 sync_version=obj.sync_version).update(**fields):
                    raise _Moved
                _log(spec, item, SyncLog.Status.SUCCESS, message, self.report.run_id, zoho_id=item.zoho_id)
        except _Moved:
            self._left(item, result, "changed, linked or claimed by a worker meanwhile; left alone (run again)")
        except IntegrityError:
            self._left(item, result, f"{spec.zoho_entity} {item.zoho_id} was linked to another record meanwhile")
        else:
            item.done = "linked"

    def _left(self, item: Item, result: EntityLinks, reason: str) -> None:
        result.linked.remove(item)
        self.planned.get(item.entity, {}).pop(item.pk, None)
        item.how, item.reason = "", reason
        result.left.append(item)

    def _hold(self, spec: EntitySpec, item: Item) -> None:
        """Failed, needs a person, with the candidates in the message, and held on the row (`link_hold`): the
        engine never creates it while held, whatever a local change or the sync log's pruning does. A rerun finding
        the same record held with the same words writes nothing."""
        message = hold_message(item)
        now = timezone.now()
        rows = spec.model.objects.filter(free_filter(now), pk=item.pk, zoho_id__isnull=True)
        if rows.filter(sync_status=SyncStatus.FAILED, next_retry_at__isnull=True, last_sync_error=message,
                       link_hold=message).exists():
            item.done = "held"
            return
        with transaction.atomic():
            if rows.update(sync_status=SyncStatus.FAILED, next_retry_at=None, last_sync_error=message,
                           last_error_kind=ErrorKind.VALIDATION, link_hold=message,
                           failing_since=Coalesce(F("failing_since"), Value(now))):
                _log(spec, item, SyncLog.Status.FAILED, message, self.report.run_id, error=RemoteConflict.__name__)
                item.done = "held"

    def _release(self, spec: EntitySpec, obj, item: Item, message: str, *, force: bool = False) -> None:
        """Lift a hold: the record is pending again (a normal backfill creates it) and the log says why."""
        if not force and not obj.link_hold:
            return
        with transaction.atomic():
            # The hold goes whoever holds the claim; a record failed by the hold is pending again (one a person
            # saved since is pending already).
            spec.model.objects.filter(pk=obj.pk, zoho_id__isnull=True).update(link_hold="")
            spec.model.objects.filter(free_filter(timezone.now()), pk=obj.pk, zoho_id__isnull=True,
                                      sync_status=SyncStatus.FAILED, next_retry_at__isnull=True).update(
                sync_status=SyncStatus.PENDING, sync_attempts=0, last_sync_error="", last_error_kind="")
            _log(spec, item, SyncLog.Status.SKIPPED, message, self.report.run_id)
        item.done = "released"


class _Moved(Exception):
    """The record changed, got a Zoho id or was claimed between the read and the link."""


def hold_message(item: Item) -> str:
    return (f"{AMBIGUOUS} {item.reason}. Candidates: {'; '.join(item.candidates) or 'none'}. Not linked and never "
            "created until a person settles it: correct the duplicates in Zoho and run `zoho_backfill --link-only` "
            f"again, or `zoho_backfill --link-only --settle {item.entity}:{item.label}=<Zoho id>` (=new when none "
            "of them is it).")


def _log(spec: EntitySpec, item: Item, status: str, message: str, run_id: str, *, zoho_id: str = "",
         error: str = "") -> None:
    logbook.write(spec, pk=item.pk, label=item.label, zoho_id=zoho_id, action=SyncLog.Action.LINK, status=status,
                  message=message, error_type=error,
                  error_kind=ErrorKind.VALIDATION if status == SyncLog.Status.FAILED else "", run_id=run_id)
    logger.info("%s %s: %s", spec.name, item.pk, message)


def link_existing(*, specs: tuple[EntitySpec, ...], dry_run: bool = False, since: datetime | None = None,
                  settle: dict[tuple[str, str], str] | None = None, client=None) -> LinkReport:
    """Link our records that never reached Zoho with the records Zoho already holds; see the module's note. A run
    that writes (not a dry run) is recorded as a SyncRun of kind "link", like a backfill.

    Raises the client's ZohoError when a list cannot be read (nothing after it is linked; the run is recorded as
    stopped); rerunning is safe."""
    if client is None:
        from zoho_sync.zoho import get_zoho_client

        client = get_zoho_client()
    linker = Linker(specs=specs, client=client, dry_run=dry_run, since=since, settle=settle)
    if dry_run:
        return linker.run()
    run = sync_run_start(run_id=linker.report.run_id, kind=SyncRun.Kind.LINK, entities=[s.name for s in specs],
                         since=since)
    before = dataclasses.replace(client.budget.stats)
    try:
        with sync_run_heartbeat(run):
            report = linker.run()
    except ZohoError as error:
        sync_run_finish_link(run, linker.report, stats=budget_stats_since(client, before),
                             stopped=f"Reading Zoho's lists failed: {error}")
        raise
    except BaseException as error:
        sync_run_finish(run, None, error=error)
        raise
    sync_run_finish_link(run, report, stats=budget_stats_since(client, before))
    return report
