"""Zoho-side actions as ZohoSandbox methods: the changes Zoho makes by itself, or a person makes in its web app.

    payment = zoho.pay_invoice(invoice_id)            # hosted page: paid, payment_thankyou
    note = zoho.create_credit_note(customer_id, 20)   # a credit note made in the web app: creditnote_added
    zoho.renew_subscription(subscription_id)          # next term and its invoice: subscription_renewed, invoice_created
    zoho.drop_webhooks(1)                             # the next delivery is lost; GET /events still has the event

Each resource's actions are defined in its module and registered through its Resource row (resources.ACTIONS,
zoho_side.py says what one does); here they become methods with their own arguments, run under the store lock.
The generic ones, over any resource or none, are defined here: edit_record, delete_record, drop_webhooks. The
admin prefix serves every one as a POST hook with the same keyword arguments (admin.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zoho_sync.sandbox.resources import ACTIONS, edits
from zoho_sync.sandbox.store import public

if TYPE_CHECKING:
    from zoho_sync.sandbox.store import Store
    from zoho_sync.sandbox.webhooks import WebhookDispatcher

# The generic actions -> the key the admin hook answers their result under.
GENERIC: dict[str, str] = {"edit_record": "record", "delete_record": "record", "drop_webhooks": "drops_pending"}


class ZohoSideActions:
    """Mixed into ZohoSandbox, which provides `store` and `webhooks`: `sandbox.<action>(...)` for every
    registered action (resources.ACTIONS), plus the generic ones below."""

    store: Store
    webhooks: WebhookDispatcher

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        # Only called when normal lookup fails, so the sandbox's own attributes never come here.
        action = ACTIONS.get(name)
        if action is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return action.bind(self.store)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *ACTIONS})

    def edit_record(self, resource: str, record_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Change fields of a record as a person would in Zoho's web app: no event, modified time stamped."""
        with self.store.lock:
            return public(edits.edit_record(self.store, resource, record_id, fields))

    def delete_record(self, resource: str, record_id: str) -> dict[str, Any]:
        """Delete a record as a person would in Zoho's web app (no event); returns what was deleted."""
        with self.store.lock:
            return public(edits.delete_record(self.store, resource, record_id))

    def drop_webhooks(self, n: int) -> int:
        """Lose the next `n` webhook deliveries on purpose (recorded as `failure`, never sent)."""
        return self.webhooks.drop(n)
