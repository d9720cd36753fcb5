"""What a --link-only run found and did, record by record, and how the command prints it (sync/link.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Item:
    """One local record and what linking found for it."""

    entity: str
    pk: int
    label: str
    email: str = ""
    how: str = ""  # key, email, settled (a person chose), or "" when not linked
    zoho_id: str = ""
    candidates: list[str] = field(default_factory=list)  # described Zoho records (ambiguous)
    reason: str = ""  # why it is ambiguous or left alone
    synced: bool = False  # Zoho already holds exactly our data: nothing to send
    done: str = ""  # what was written: linked, held, released, left (busy), or "" in a dry run


@dataclass
class EntityLinks:
    entity: str
    zoho: int = 0  # records Zoho listed
    already: int = 0  # local records with a Zoho id before the run
    linked: list[Item] = field(default_factory=list)
    ambiguous: list[Item] = field(default_factory=list)
    missing: list[Item] = field(default_factory=list)  # not in Zoho: a normal backfill creates them
    left: list[Item] = field(default_factory=list)  # a worker holds it, changed meanwhile, dependency not linked

    def by(self, how: str) -> int:
        return sum(1 for item in self.linked if item.how == how)


@dataclass
class LinkReport:
    run_id: str
    dry_run: bool
    started: datetime
    entities: dict[str, EntityLinks] = field(default_factory=dict)
    calls: int = 0  # all of them reads (GET list pages)

    @property
    def ambiguous(self) -> list[Item]:
        return [item for e in self.entities.values() for item in e.ambiguous]

    @property
    def records(self) -> int:
        """Our records the run examined (those without a Zoho id, in scope)."""
        return sum(len(e.linked) + len(e.ambiguous) + len(e.missing) + len(e.left) for e in self.entities.values())

    def run_counts(self) -> dict[str, dict[str, int]]:
        """Per entity, what the run found and did, for its SyncRun (zero counts left out, as a backfill's are)."""
        counts = {}
        for name, e in self.entities.items():
            row = {"in_zoho": e.zoho, "linked_by_key": e.by("key"), "linked_by_email": e.by("email"),
                   "settled": e.by("settled"), "already": e.already, "needs_person": len(e.ambiguous),
                   "not_in_zoho": len(e.missing), "left": len(e.left)}
            counts[name] = {key: n for key, n in row.items() if n}
        return counts

    @property
    def settled(self) -> bool:
        """Nothing is left for a person to settle: exit code 0."""
        return not self.ambiguous

    def as_text(self, *, limit: int = 50, verbosity: int = 1) -> str:
        would = "would be " if self.dry_run else ""
        lines = [("Dry run: nothing is written here, nothing is sent to Zoho." if self.dry_run else
                  "Link only: nothing is created or changed in Zoho."),
                 f"{'entity':<17}{'in Zoho':>9}{'by key':>9}{'by email':>9}{'settled':>9}{'already':>9}"
                 f"{'ambiguous':>10}{'not in Zoho':>12}{'left':>6}"]
        for name, e in self.entities.items():
            lines.append(f"{name:<17}{e.zoho:>9}{e.by('key'):>9}{e.by('email'):>9}{e.by('settled'):>9}"
                         f"{e.already:>9}{len(e.ambiguous):>10}{len(e.missing):>12}{len(e.left):>6}")
        in_step = sum(item.synced for e in self.entities.values() for item in e.linked)
        linked = sum(len(e.linked) for e in self.entities.values())
        lines.append(f"{linked} {would}linked ({in_step} of them already in step with Zoho: synced; the rest "
                     "pending: the next backfill updates them in Zoho instead of creating them). "
                     f"{self.calls} API calls (list pages, reads only), run {self.run_id}")
        if verbosity > 1:
            for e in self.entities.values():
                for item in e.linked[:limit]:
                    lines.append(f"  {would}linked {item.entity} {item.label} -> {item.zoho_id} (by {item.how}"
                                 f"{', in step' if item.synced else ''})")
        if self.ambiguous:
            lines.append("")
            lines.append(f"Ambiguous, for a person to settle ({len(self.ambiguous)}; {would}held: not linked, and "
                         "never created until settled):")
            for item in self.ambiguous[:limit]:
                lines.append(f"  {item.entity} {item.label}{f' <{item.email}>' if item.email else ''}: {item.reason}")
                lines += [f"      candidate {candidate}" for candidate in item.candidates]
            if len(self.ambiguous) > limit:
                lines.append(f"  ... and {len(self.ambiguous) - limit} more (admin: failed records)")
            lines.append("Settle each in Zoho (merge or correct the duplicates) and run --link-only again, or name the "
                         "right one: --settle ENTITY:LABEL=ZOHO_ID (or =new when none of them is it).")
        for kind, title in (("missing", "Not in Zoho (a normal backfill will create them)"),
                            ("left", "Left alone")):
            items = [item for e in self.entities.values() for item in getattr(e, kind)]
            if items and (verbosity > 1 or kind == "left"):
                lines.append(f"{title}:")
                lines += [f"  {i.entity} {i.label}{f': {i.reason}' if i.reason else ''}" for i in items[:limit]]
        return "\n".join(lines)
