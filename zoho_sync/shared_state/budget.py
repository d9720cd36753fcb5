"""Reading the organization's shared rate budget (kept by zoho_sync.client.budget, stored by backends.py) without
changing it, for the dashboard and the pages that show the day's calls."""

from __future__ import annotations

import time

from zoho_sync.shared_state.backends import state_backends


def budget_peek(organization_id: str, redis_url: str = ""):
    """The organization's shared rate budget as it stands (read only: an unchanged state is never written back)."""
    _, backend = state_backends(redis_url)
    return backend.update(f"org:{organization_id}", lambda state: (state, state))


def budget_calls_today(organization_id: str, redis_url: str = "", *, now: float | None = None) -> int:
    """The calls made to Zoho this UTC day by every process, as the budget counts them when it gives a call its
    turn (the same write): exact within a moment, unlike the per-endpoint ApiUsage rows, which each process writes
    in batches. 0 when the budget has not counted a call today."""
    from zoho_sync.client.budget import utc_day

    _, backend = state_backends(redis_url)
    state = backend.peek(f"org:{organization_id}")
    return state.day_count if state.day == utc_day(time.time() if now is None else now) else 0
