"""The billing mirror models and the sync log (re-exported here; see the modules for each noun)."""

from zoho_sync.models.base import (
    UNSETTLED_STATES,
    ErrorKind,
    SyncState,
    SyncStatus,
    ZohoSyncedModel,
    sync_state_of,
)
from zoho_sync.models.billing import Customer, CustomerService, Invoice, InvoiceLine, Payment, ServicePackage
from zoho_sync.models.credits import CreditNote
from zoho_sync.models.failures import SYNC_PERMISSION, SyncFailure
from zoho_sync.models.inbox import ZohoEvent
from zoho_sync.models.reconcile import DriftReport
from zoho_sync.models.runs import SyncRun
from zoho_sync.models.state import ApiUsage, SharedState
from zoho_sync.models.synclog import FailedSyncLog, SyncLog

__all__ = [
    "SYNC_PERMISSION",
    "UNSETTLED_STATES",
    "ApiUsage",
    "CreditNote",
    "Customer",
    "CustomerService",
    "DriftReport",
    "ErrorKind",
    "FailedSyncLog",
    "Invoice",
    "InvoiceLine",
    "Payment",
    "ServicePackage",
    "SharedState",
    "SyncFailure",
    "SyncLog",
    "SyncRun",
    "SyncState",
    "SyncStatus",
    "ZohoEvent",
    "ZohoSyncedModel",
    "sync_state_of",
]
