"""The failed-records view (SyncFailure: one row per record that is failed, blocked or waiting, every entity) and
the "Can sync to Zoho" permission. The view's SQL is written out here, as it was when this migration was made: a
later change to the view is a new migration."""

from django.db import migrations, models

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
"""


class Migration(migrations.Migration):
    dependencies = [("zoho_sync", "0007_failing_since")]

    operations = [
        migrations.RunSQL(VIEW, reverse_sql="DROP VIEW IF EXISTS zoho_sync_syncfailure"),
        migrations.CreateModel(
            name='SyncFailure',
            fields=[
                ('id', models.CharField(max_length=48, primary_key=True, serialize=False)),
                ('entity', models.CharField(max_length=32)),
                ('entity_order', models.PositiveSmallIntegerField()),
                ('record_id', models.BigIntegerField()),
                ('label', models.CharField(max_length=200, verbose_name='record')),
                ('zoho_id', models.CharField(max_length=64, null=True, verbose_name='Zoho id')),
                ('sync_status', models.CharField(choices=[('pending', 'Pending'), ('syncing', 'Syncing'), ('synced', 'Synced'), ('failed', 'Failed'), ('waiting', 'Waiting for a dependency'), ('blocked', 'Blocked by a dependency'), ('skipped', 'Skipped')], max_length=16)),
                ('next_retry_at', models.DateTimeField(null=True)),
                ('last_sync_error', models.TextField(verbose_name='error')),
                ('last_error_kind', models.CharField(choices=[('rate_limit', 'Rate limit'), ('authentication', 'Authentication'), ('validation', 'Validation'), ('not_found', 'Not found'), ('server', 'Server'), ('network', 'Network'), ('unknown', 'Unknown'), ('invalid_data', 'Invalid local data'), ('dependency', 'Dependency not synced')], max_length=16, verbose_name='kind')),
                ('sync_attempts', models.PositiveIntegerField(verbose_name='attempts')),
                ('failing_since', models.DateTimeField(null=True)),
                ('updated_at', models.DateTimeField()),
            ],
            options={
                'verbose_name': 'failed record',
                'verbose_name_plural': 'failed records',
                'db_table': 'zoho_sync_syncfailure',
                'ordering': ['entity_order', '-failing_since', 'record_id'],
                'permissions': [('sync_to_zoho', 'Can sync to Zoho (push, retry and skip records)')],
                'managed': False,
                'default_permissions': ('view',),
            },
        ),
    ]
