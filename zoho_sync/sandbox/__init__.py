"""The local Zoho Billing sandbox: a faithful stand-in for the Zoho Billing v1 API over real HTTP.

Plain Python (no Django, no models): tests start it in-process, the demo through `manage.py zoho_sandbox`.

Adding a resource: one new module in `resources/` and one `Resource` row in `resources.RESOURCES`; the steps
are in resources/__init__.py's docstring. Still outside that shape (issue 20): a resource's own settings live
in config.py with the others (today one, the invoices' `require_item_product_id`).
"""

from zoho_sync.sandbox.clock import ManualClock, SystemClock
from zoho_sync.sandbox.config import SandboxConfig
from zoho_sync.sandbox.holds import Hold
from zoho_sync.sandbox.sandbox import ZohoSandbox
from zoho_sync.sandbox.webhooks import SIGNATURE_HEADER, sign

__all__ = ["SIGNATURE_HEADER", "Hold", "ManualClock", "SandboxConfig", "SystemClock", "ZohoSandbox", "sign"]
