"""Shared output for the push commands: a progress line, the run's table, the scope's states and the exit code.

One vocabulary everywhere (SyncState): synced, failed and needs a person, failed and retrying, waiting for a
dependency, blocked by a dependency that needs a person, skipped, pending.
"""

from __future__ import annotations

import contextlib
import logging
import time

from zoho_sync.management.exits import exit_with
from zoho_sync.models import UNSETTLED_STATES, SyncState
from zoho_sync.sync.backfill import Progress, SyncReport
from zoho_sync.sync.tables import HEADINGS, LEGEND, state_table

RUN_COLUMNS = ("created", "updated", "linked", "cancelled", "unchanged", *SyncState.values[1:])
EXIT_HELP = ("Exit 0: nothing in scope is left failed, waiting or blocked; 2: some are (the counts are printed), "
             "or the daily quota stopped the run; 1: bad arguments or configuration.")


class ProgressPrinter:
    """Redraws one line on a terminal; elsewhere (logs, CI) prints a line every few seconds."""

    def __init__(self, stream, *, every: float = 5.0):
        self.stream, self.every = stream, every
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self._last, self._entity = 0.0, ""

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        final = p.done >= p.due
        if not self.tty and not final and now - self._last < self.every and p.entity == self._entity:
            return
        self._last, self._entity = now, p.entity
        width = 24
        filled = int(width * min(1.0, p.done / p.due)) if p.due else width
        eta = f"{p.eta_seconds:.0f}s" if p.eta_seconds is not None else "?"
        line = (f"{p.entity:<17}[{'#' * filled}{'.' * (width - filled)}] {p.done}/{p.due} "
                f"{p.rate:.1f} rec/s  ETA {eta}  failed {p.failed}  batch {p.batch_size}")
        if self.tty:
            self.stream.write("\r" + line.ljust(110), ending="\n" if final else "")
            self.stream.flush()
        else:
            self.stream.write(line)


@contextlib.contextmanager
def quiet_record_logs(verbosity: int):
    """Below -v 2, one log line per failed record would break the progress bar: the summary and the sync log
    (admin) carry them instead."""
    logger = logging.getLogger("zoho_sync.sync")
    previous = logger.level
    if verbosity < 2:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


def summary(report: SyncReport) -> str:
    lines = ["This run:", f"{'entity':<17}" + "".join(f"{HEADINGS.get(c, c):>10}" for c in RUN_COLUMNS)]
    for name, entity in report.entities.items():
        counts = {key: sum(1 for status in entity.last.values() if status == key) for key in RUN_COLUMNS}
        lines.append(f"{name:<17}" + "".join(f"{counts[c]:>10}" for c in RUN_COLUMNS))
        for kind, count in entity.errors.most_common():
            lines.append(f"{'':<17}failures of kind {kind}: {count}")
        for reason, count in entity.skipped.most_common():
            lines.append(f"{'':<17}skipped {count}: {reason}")
    rate = report.done / report.seconds if report.seconds else 0.0
    lines.append(f"{report.done} records in {report.seconds:.1f} s ({rate:.1f}/s), {report.calls} API calls, "
                 f"run {report.run_id}")
    lines.append("")
    lines.append(f"Every record in scope now ({LEGEND}):")
    lines += state_table(report.scope)
    if report.reasons:
        lines += ["", "Left failed, waiting or blocked, by record, with why:"]
        lines += [f"  {reason.line()}" for reason in report.reasons]
        if report.reasons_more:
            lines.append(f"  ... and {report.reasons_more} more: the admin's Failed records lists every one.")
    if report.stopped:
        lines.append(report.stopped)
    if report.continuation:
        lines.append(report.continuation)
    return "\n".join(lines)


def unsettled_sentence(report: SyncReport) -> str:
    labels = {state: SyncState(state).label.lower() for state in UNSETTLED_STATES}
    parts = [f"{n} {labels[state]}" for state, n in report.unsettled.items()]
    return "Not everything in scope is in Zoho: " + ", ".join(parts) + "." if parts else ""


def stopped_sentence(report: SyncReport) -> str:
    """Why the run ended early, in one sentence: the quota only when the quota stopped it (it then says when the
    run can go on); a worker that died or failed is said as such, above, in the summary."""
    if not report.stopped:
        return ""
    return "The daily quota stopped the run." if report.resume_at else "The run stopped before the end (see above)."


def finish(command, report: SyncReport, *, advice: str) -> None:
    """Print the closing line and leave with the documented exit code (a report, not an exception, for callers
    from code)."""
    if report.settled:
        command.stdout.write(command.style.SUCCESS(
            "Nothing in scope is failed, waiting or blocked: every record is in Zoho, skipped by design, or "
            "pending its push."))
        return
    message = " ".join(filter(None, (stopped_sentence(report), unsettled_sentence(report), advice)))
    if command._called_from_command_line:
        exit_with(command, message)  # a plain sentence, exit 2: something is left to do
    command.stderr.write(message)
