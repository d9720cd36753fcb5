"""Triggers: a saved record that needs a push is queued once its transaction commits. No HTTP here."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from zoho_sync import entities
from zoho_sync.conf import get_sync_settings
from zoho_sync.models import Invoice, InvoiceLine, SyncStatus
from zoho_sync.muting import muted as _muted_now
from zoho_sync.muting import triggers_muted  # noqa: F401  (its old address)


def triggers_enabled() -> bool:
    return get_sync_settings().triggers_enabled


def enqueue_on_commit(entity: str, pk: int) -> None:
    from zoho_sync import services

    transaction.on_commit(lambda: services.sync_enqueue(entity=entity, pk=pk))


@receiver(post_save)
def push_on_commit(sender, instance, **kwargs):
    """A new customer, an activated service, an issued invoice, a completed payment, or any change to them."""
    spec = entities.for_model(sender)
    if spec is None or _muted_now() or not triggers_enabled():
        return
    if instance.sync_status == SyncStatus.PENDING and spec.skip_reason(instance) is None:
        enqueue_on_commit(spec.name, instance.pk)


@receiver(post_save, sender=InvoiceLine)
@receiver(post_delete, sender=InvoiceLine)
def invoice_line_changed(sender, instance, **kwargs):
    """Lines travel inside their invoice: a changed line is a change of the invoice (pending, version bumped, so a
    push in flight with the old lines leaves it due)."""
    if _muted_now():
        return
    invoice = entities.INVOICE.prepare(Invoice.objects.filter(pk=instance.invoice_id)).first()
    if invoice is None:
        return
    Invoice.objects.filter(pk=invoice.pk).update(**Invoice.local_change_update())
    if triggers_enabled() and not entities.INVOICE.skip_reason(invoice):
        enqueue_on_commit("invoice", invoice.pk)  # period invoices, drafts, mirrored ones never travel to Zoho
