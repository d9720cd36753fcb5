"""The local Zoho Billing sandbox: a faithful stand-in for the Zoho Billing v1 API over real HTTP.

Plain Python (no Django, no models): tests start it in-process, the demo through `manage.py zoho_sandbox`.

Adding a resource: write `resources/<noun>.py` with its routes (`register(router)`), its create function (which
stores the record, applies `validation` rules and emits its events through `store.emit`) and a seed function
that stores without events; then add one `Resource(name, id_key, seed)` row to `resources.RESOURCES` (with
`delete=` when deleting a record must undo what it moved) and, if it has routes, the module to `resources.ROUTED`.
The router, `seed()` and the edit/delete hooks read those tuples. Still outside that shape (issue 20): the table
names in `store.RESOURCES`, Zoho-side actions (`actions.py`, `admin.ACTIONS`), per-resource facts in
`validation.py`, `webhooks.py` and the demo seeding.
"""

from zoho_sync.sandbox.clock import ManualClock, SystemClock
from zoho_sync.sandbox.config import SandboxConfig
from zoho_sync.sandbox.holds import Hold
from zoho_sync.sandbox.sandbox import ZohoSandbox
from zoho_sync.sandbox.webhooks import SIGNATURE_HEADER, sign

__all__ = ["SIGNATURE_HEADER", "Hold", "ManualClock", "SandboxConfig", "SystemClock", "ZohoSandbox", "sign"]
