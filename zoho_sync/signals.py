"""Triggers: a saved record that needs a push is queued once its transaction commits. No HTTP here."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from zoho_sync.models import Invoice, InvoiceLine, SyncStatus
from zoho_sync.sync import specs


def triggers_enabled() -> bool:
    return bool(getattr(settings, "SYNC_TRIGGERS_ENABLED", True))


def enqueue_on_commit(entity: str, pk: int) -> None:
    from zoho_sync import services

    transaction.on_commit(lambda: services.sync_enqueue(entity=entity, pk=pk))


@receiver(post_save)
def push_on_commit(sender, instance, **kwargs):
    """A new customer, an activated service, an issued invoice, a completed payment, or any change to them."""
    spec = specs.for_model(sender)
    if spec is None or not triggers_enabled():
        return
    if instance.sync_status == SyncStatus.PENDING and spec.skip_reason(instance) is None:
        enqueue_on_commit(spec.name, instance.pk)


@receiver(post_save, sender=InvoiceLine)
@receiver(post_delete, sender=InvoiceLine)
def invoice_line_changed(sender, instance, **kwargs):
    """Lines travel inside their invoice: a changed line makes the invoice pending again."""
    if not triggers_enabled():
        return
    invoice = specs.INVOICE.prepare(Invoice.objects.filter(pk=instance.invoice_id)).first()
    if invoice is None or specs.INVOICE.skip_reason(invoice):
        return  # period invoices, drafts, mirrored ones: their lines never travel to Zoho
    Invoice.objects.filter(pk=invoice.pk).exclude(sync_status=SyncStatus.PENDING).update(
        sync_status=SyncStatus.PENDING, next_retry_at=None, sync_attempts=0)
    enqueue_on_commit("invoice", invoice.pk)
