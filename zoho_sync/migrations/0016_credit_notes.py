"""Credit notes and refunds (CreditNote), and the failed-records view anew with them (its SQL as it is now,
from zoho_sync.entities.failure_view_sql; the view before is 0008's)."""

import django.core.validators
import django.db.models.deletion
import zoho_sync.validation
import importlib

from django.db import migrations, models

BEFORE = importlib.import_module("zoho_sync.migrations.0008_sync_failures_view").VIEW
VIEW = """
CREATE VIEW zoho_sync_syncfailure AS
SELECT 'customer:' || id AS id, 'customer' AS entity, 0 AS entity_order, id AS record_id, account_number AS label, zoho_id, sync_status, next_retry_at, last_sync_error, last_error_kind, sync_attempts, failing_since, updated_at FROM zoho_sync_customer WHERE sync_status IN ('failed', 'waiting', 'blocked')
UNION ALL
SELECT 'service_package:' || id AS id, 'service_package' AS entity, 1 AS entity_order, id AS record_id, plan_code AS label, zoho_id, sync_status, next_retry_at, last_sync_error, last_error_kind, sync_attempts, failing_since, updated_at FROM zoho_sync_servicepackage WHERE sync_status IN ('failed', 'waiting', 'blocked')
UNION ALL
SELECT 'customer_service:' || id AS id, 'customer_service' AS entity, 2 AS entity_order, id AS record_id, 'CS-' || id AS label, zoho_id, sync_status, next_retry_at, last_sync_error, last_error_kind, sync_attempts, failing_since, updated_at FROM zoho_sync_customerservice WHERE sync_status IN ('failed', 'waiting', 'blocked')
UNION ALL
SELECT 'invoice:' || id AS id, 'invoice' AS entity, 3 AS entity_order, id AS record_id, invoice_number AS label, zoho_id, sync_status, next_retry_at, last_sync_error, last_error_kind, sync_attempts, failing_since, updated_at FROM zoho_sync_invoice WHERE sync_status IN ('failed', 'waiting', 'blocked')
UNION ALL
SELECT 'payment:' || id AS id, 'payment' AS entity, 4 AS entity_order, id AS record_id, reference AS label, zoho_id, sync_status, next_retry_at, last_sync_error, last_error_kind, sync_attempts, failing_since, updated_at FROM zoho_sync_payment WHERE sync_status IN ('failed', 'waiting', 'blocked')
UNION ALL
SELECT 'credit_note:' || id AS id, 'credit_note' AS entity, 5 AS entity_order, id AS record_id, number AS label, zoho_id, sync_status, next_retry_at, last_sync_error, last_error_kind, sync_attempts, failing_since, updated_at FROM zoho_sync_creditnote WHERE sync_status IN ('failed', 'waiting', 'blocked')
"""


class Migration(migrations.Migration):

    dependencies = [
        ('zoho_sync', '0015_page_names'),
    ]

    operations = [
        migrations.RunSQL("DROP VIEW IF EXISTS zoho_sync_syncfailure", reverse_sql=BEFORE),
        migrations.CreateModel(
            name='CreditNote',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('zoho_id', models.CharField(blank=True, help_text="The record's id in Zoho Billing.", max_length=64, null=True, unique=True, verbose_name='Zoho id')),
                ('sync_status', models.CharField(choices=[('pending', 'Pending'), ('syncing', 'Syncing'), ('synced', 'Synced'), ('failed', 'Failed'), ('waiting', 'Waiting for a dependency'), ('blocked', 'Blocked by a dependency'), ('skipped', 'Skipped')], default='pending', max_length=16)),
                ('sync_version', models.PositiveBigIntegerField(default=0, help_text='Counts local changes. A push that finds it changed since it read the record leaves the record due, so the next push sends the new data.')),
                ('last_synced_at', models.DateTimeField(blank=True, null=True)),
                ('last_sync_error', models.TextField(blank=True, help_text='Readable text of the last failure; empty after success.')),
                ('last_error_kind', models.CharField(blank=True, choices=[('rate_limit', 'Rate limit'), ('authentication', 'Authentication'), ('validation', 'Validation'), ('not_found', 'Not found'), ('server', 'Server'), ('network', 'Network'), ('unknown', 'Unknown'), ('invalid_data', 'Invalid local data'), ('dependency', 'Dependency not synced')], max_length=16)),
                ('sync_attempts', models.PositiveIntegerField(default=0, help_text='Attempts since the last success or local change.')),
                ('next_retry_at', models.DateTimeField(blank=True, null=True)),
                ('sync_fingerprint', models.CharField(blank=True, help_text='Hash of what Zoho holds (with a Zoho id), or of the create in flight (without one); an unchanged payload costs no call.', max_length=64)),
                ('create_intent_at', models.DateTimeField(blank=True, help_text='Set before a create is sent. While set without a Zoho id, the record may already exist in Zoho and is looked up by its natural key before any new create.', null=True)),
                ('claimed_by', models.CharField(blank=True, help_text='The worker (host:pid:run) pushing the record right now.', max_length=96)),
                ('claimed_until', models.DateTimeField(blank=True, help_text="The claim's lease: after it another worker may take the record.", null=True)),
                ('push_queued_at', models.DateTimeField(blank=True, help_text='A triggered push is queued; later saves join it instead of adding one.', null=True)),
                ('failing_since', models.DateTimeField(blank=True, help_text='When its pushes started failing (kept through retries and changes, cleared by a success): how long the record has been out of step with Zoho.', null=True)),
                ('zoho_modified_at', models.DateTimeField(blank=True, help_text="Zoho's modified time of the state last pulled from Zoho: an older one (a late or replayed event) never overwrites it.", null=True)),
                ('link_hold', models.TextField(blank=True, db_default='', default='', help_text='Set by `zoho_backfill --link-only` when several Zoho records may be this one (the candidates and how to settle it): never created in Zoho while set. Only linking or settling it (--settle ...=ZOHO_ID or =new) clears it; a local change does not.')),
                ('number', models.CharField(max_length=64, unique=True, verbose_name='credit note number')),
                ('kind', models.CharField(choices=[('credit', 'Credit note'), ('refund', 'Refund of a payment')], default='credit', max_length=8)),
                ('origin', models.CharField(choices=[('local', 'Made here'), ('zoho', 'Made in Zoho (mirrored)')], default='local', max_length=8)),
                ('amount', models.DecimalField(decimal_places=2, max_digits=12, validators=[zoho_sync.validation.validate_positive])),
                ('currency_code', models.CharField(default='USD', max_length=3, validators=[django.core.validators.RegexValidator('^[A-Z]{3}$', 'Use a three-letter ISO 4217 currency code, like USD.')])),
                ('issued_on', models.DateField()),
                ('reason', models.CharField(blank=True, max_length=255)),
                ('status', models.CharField(choices=[('draft', 'Draft'), ('open', 'Open'), ('closed', 'Closed'), ('void', 'Void')], default='open', help_text='From Zoho.', max_length=8)),
                ('balance', models.DecimalField(blank=True, decimal_places=2, help_text='Credit not yet used, from Zoho.', max_digits=12, null=True)),
                ('zoho_refund_id', models.CharField(blank=True, max_length=64, verbose_name='Zoho refund id')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('customer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='credit_notes', to='zoho_sync.customer')),
                ('invoice', models.ForeignKey(blank=True, help_text='The invoice it credits (its balance); empty: the customer keeps the credit.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='credit_notes', to='zoho_sync.invoice')),
                ('package', models.ForeignKey(blank=True, help_text="The service package credited (Zoho's item code); empty: the invoice's.", null=True, on_delete=django.db.models.deletion.PROTECT, to='zoho_sync.servicepackage')),
                ('payment', models.ForeignKey(blank=True, help_text='The payment a refund pays back.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='refunds', to='zoho_sync.payment')),
            ],
            options={
                'ordering': ['-id'],
                'indexes': [models.Index(fields=['sync_status', 'next_retry_at'], name='creditnote_sync_queue')],
                'constraints': [models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='creditnote_amount_positive'), models.CheckConstraint(condition=models.Q(models.Q(('kind', 'refund'), _negated=True), ('payment__isnull', False), _connector='OR'), name='creditnote_refund_has_payment')],
            },
        ),
        migrations.RunSQL(VIEW, reverse_sql="DROP VIEW IF EXISTS zoho_sync_syncfailure"),
    ]
