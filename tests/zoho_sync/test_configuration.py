"""System checks name bad Zoho settings; the connectivity command tells operators what works and what not."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from zoho_sync.system_checks import zoho_settings_check

pytestmark = pytest.mark.django_db


def test_system_checks_name_each_problem(settings):
    settings.ZOHO_CLIENT_ID = ""
    settings.ZOHO_CLIENT_SECRET = "s"
    settings.ZOHO_REFRESH_TOKEN = "r"
    settings.ZOHO_ORGANIZATION_ID = "1"
    settings.ZOHO_DATA_CENTER = "us"
    settings.ZOHO_DAILY_RESERVE = 5000
    found = {(w.id, w.msg.split(" ")[0].split("=")[0]) for w in zoho_settings_check()}
    assert found == {("zoho_sync.W001", "ZOHO_CLIENT_ID"), ("zoho_sync.W002", "ZOHO_DATA_CENTER"),
                     ("zoho_sync.W004", "ZOHO_DAILY_RESERVE")}


def test_system_checks_are_quiet_when_configured(zoho_settings):
    assert zoho_settings_check() == []


def test_connection_check_passes_against_the_sandbox(zoho_settings):
    out = StringIO()
    call_command("zoho_check_connection", stdout=out)
    text = out.getvalue()
    for step in ("settings", "access token", "organization", "one read"):
        assert f"ok     {step}" in text
    assert "Zoho is reachable" in text


def test_connection_check_names_the_failing_step(zoho_settings, zoho_sandbox):
    zoho_sandbox.revoke_refresh_token()
    out = StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("zoho_check_connection", stdout=out)
    assert exc.value.returncode == 1
    assert "FAILED access token" in out.getvalue() and "ZOHO_REFRESH_TOKEN" in out.getvalue()


def test_connection_check_finds_a_wrong_organization(zoho_settings):
    zoho_settings.ZOHO_ORGANIZATION_ID = "999"
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("zoho_check_connection", stdout=out)
    assert "FAILED organization" in out.getvalue()


def test_connection_check_reports_missing_settings(settings):
    settings.ZOHO_REFRESH_TOKEN = ""
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("zoho_check_connection", stdout=out)
    assert "FAILED settings" in out.getvalue() and "ZOHO_REFRESH_TOKEN is not set" in out.getvalue()
