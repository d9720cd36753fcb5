"""Plain-text tables in the one vocabulary of outcomes (SyncState), shared by the commands and the dry run."""

from __future__ import annotations

from zoho_sync.models import SyncState

# Short column headings; the legend says what the two shortened ones mean.
HEADINGS = {SyncState.NEEDS_PERSON: "person", SyncState.RETRYING: "retrying", SyncState.WAITING: "waiting",
            SyncState.BLOCKED: "blocked", SyncState.SKIPPED: "skipped", SyncState.PENDING: "pending"}
LEGEND = ("person = failed, needs a person; retrying = failed, retried at its time; waiting = for a dependency on "
          "its way; blocked = by a dependency that needs a person")


def state_table(counts: dict[str, dict[str, int]], *, indent: str = "") -> list[str]:
    """Records per state, per entity: the same table in the summary, the dry run and the demo's health lines."""
    lines = [f"{indent}{'entity':<17}" + "".join(f"{HEADINGS.get(s, s):>10}" for s in SyncState.values)]
    for name, states in counts.items():
        lines.append(f"{indent}{name:<17}" + "".join(f"{states.get(s, 0):>10}" for s in SyncState.values))
    return lines
