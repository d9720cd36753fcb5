"""Django system checks (`manage.py check`): missing or inconsistent Zoho settings, named one by one.

Warnings, not errors: a fresh deployment must still be able to migrate before Zoho is configured. The sync
commands refuse to run on the same problems (get_zoho_settings raises), and `zoho_check_connection` goes further.
"""

from __future__ import annotations

from django.core.checks import Warning, register

from zoho_sync.conf import CREDENTIAL_SETTINGS, zoho_settings_problems

CHECK_IDS = {
    **dict.fromkeys(CREDENTIAL_SETTINGS, "zoho_sync.W001"),  # a credential is missing
    "ZOHO_DATA_CENTER": "zoho_sync.W002",  # unknown data center
    "ZOHO_API_BASE_URL": "zoho_sync.W003",  # an override is not a URL
    "ZOHO_ACCOUNTS_URL": "zoho_sync.W003",
}


@register("zoho")
def zoho_settings_check(app_configs=None, **kwargs):
    warnings = []
    for problem in zoho_settings_problems():
        name = problem.split("=")[0].split(" ")[0]
        check_id = CHECK_IDS.get(name, "zoho_sync.W004")  # W004: a rate-limit or timeout setting
        warnings.append(Warning(problem, hint="See .env.example and the README's configuration table.", id=check_id))
    return warnings
