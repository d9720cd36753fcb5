"""django-q2 task functions (dotted paths are stored in the queue and in schedules: keep the names stable)."""

from __future__ import annotations

from zoho_sync import entities, services
from zoho_sync.services import CONTINUE_SCHEDULE  # noqa: F401 - the schedule's name, where tasks look for it
from zoho_sync.shared_state import single_run


def push_record(entity: str, pk: int) -> str:
    """Push one record (queued on commit, due after the debounce window: edits made inside it ride along)."""
    from zoho_sync.client.errors import ZohoCredentialsError

    entities.BY_NAME[entity].model.objects.filter(pk=pk).update(push_queued_at=None)
    try:
        outcome = services.sync_trigger(entity=entity, pk=pk)
    except ZohoCredentialsError as error:  # written on the record that met it (needs a person) and in the sync log
        return (f"{entity} {pk}: not pushed, Zoho refused our credentials (the record is failed, needs a person): "
                f"{error}")
    if outcome is None:
        return f"{entity} {pk}: nothing due, or another worker is pushing it"
    return f"{entity} {pk}: {outcome.action} {outcome.status}, now {outcome.state}"


@single_run("zoho: backfill")
def backfill(entity: str = "all") -> str:
    """Push everything due. Stopped by the daily quota, it schedules itself for just after the reset."""
    report = services.sync_pending(entity=entity)
    if report.resume_at:
        return f"{report.stopped} {services.backfill_schedule_continuation(entity=entity, resume_at=report.resume_at)}"
    return f"{report.done} records, {report.failed} failed, {report.calls} calls"


@single_run("zoho: retry failed")
def retry_failed(entity: str = "all") -> str:
    """Push again the failures a retry can fix, and the records waiting for a dependency (the hourly schedule)."""
    report = services.sync_retry_failed(entity=entity)
    return f"{report.done} records, {report.failed} failed, {report.calls} calls"


def retry_entity(entity: str, include_validation: bool = False) -> str:
    """Push again every failure and wait of one entity: queued by the admin's "retry all" (safe beside the hourly
    retry: each record is claimed by one worker)."""
    report = services.sync_retry_failed(entity=entity, include_validation=include_validation)
    return f"{report.done} records, {report.failed} failed, {report.calls} calls"


def apply_event(pk: int) -> str:
    """Apply one event of the inbox (queued when it arrives; again after a failure)."""
    from zoho_sync import inbox

    return inbox.event_apply(pk)


@single_run("zoho: sweep events")
def sweep_events() -> str:
    """Queue again the inbox events whose task was lost (the schedule runs it every 5 minutes)."""
    from zoho_sync import inbox

    return f"{inbox.events_sweep()} events queued again"


def replay_events() -> str:
    """Read Zoho's events since the cursor into the inbox (the hourly schedule): what a lost webhook missed."""
    from zoho_sync.replay import events_replay

    return events_replay().as_text()


@single_run("zoho: reconcile")
def reconcile() -> str:
    """Compare every entity with Zoho and keep the report (the monthly schedule; repairs are a person's call)."""
    from zoho_sync.entities import SPECS
    from zoho_sync.reconcile import reconcile as compare

    report = compare(specs=SPECS)
    return f"{len(report.drift)} differences, {report.calls} calls"
