"""State shared between the processes of a deployment, one module per noun (re-exported here, so
`from zoho_sync.shared_state import ...` keeps working):

- backends.py: the store: compare-and-set on SharedState rows or in Redis, with the codec that encrypts the cached
  access token (StateCodec, DatabaseStateBackend, RedisStateBackend, state_backends).
- usage.py: API calls per endpoint, counted in memory and written to ApiUsage in batches (UsageBuffer, USAGE).
- leases.py: leases and job locks held against every other process (shared_lease, job_lock, single_run).
- budget.py: the shared rate budget read without changing it (budget_peek, budget_calls_today).
"""

from zoho_sync.shared_state.backends import (
    BUDGET_CODEC,
    MAX_CAS_ATTEMPTS,
    TOKEN_CODEC,
    DatabaseStateBackend,
    RedisStateBackend,
    StateCodec,
    state_backends,
)
from zoho_sync.shared_state.budget import budget_calls_today, budget_peek
from zoho_sync.shared_state.leases import LEASES, LeaseBusyError, LeaseState, job_lock, shared_lease, single_run
from zoho_sync.shared_state.usage import USAGE, UsageBuffer, usage_record

__all__ = [
    "BUDGET_CODEC",
    "LEASES",
    "MAX_CAS_ATTEMPTS",
    "TOKEN_CODEC",
    "USAGE",
    "DatabaseStateBackend",
    "LeaseBusyError",
    "LeaseState",
    "RedisStateBackend",
    "StateCodec",
    "UsageBuffer",
    "budget_calls_today",
    "budget_peek",
    "job_lock",
    "shared_lease",
    "single_run",
    "state_backends",
    "usage_record",
]
