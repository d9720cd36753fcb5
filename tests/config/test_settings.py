"""Settings parsing: environment in, Django settings out; and the Zoho data-center URL choice."""

from __future__ import annotations

import os
import re
import runpy
import secrets
import subprocess
import sys
from pathlib import Path

import environ
import pytest
from django.core.exceptions import ImproperlyConfigured

from zoho_sync.conf import DATA_CENTERS, ZohoConfigurationError, get_zoho_settings, zoho_settings_problems

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "config" / "settings.py"
HTTPS_NAMES = ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
               "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER")
# Left out of the copied environment: pytest-env sets some of them (SECURE_SSL_REDIRECT=false) for the test run.
ENV_NAMES = ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "EMAIL_BACKEND", "Q_SYNC", "Q_WORKERS",
             "Q_BROKER", "REDIS_URL", "STATIC_MANIFEST",
             "ZOHO_DATA_CENTER", "ZOHO_API_BASE_URL", "ZOHO_ACCOUNTS_URL", "ZOHO_CLIENT_ID", *HTTPS_NAMES)


def load_settings(monkeypatch, tmp_path, env: dict[str, str], dotenv: str | None = None) -> dict:
    """Run config/settings.py against a private copy of the environment and return its globals.

    django-environ reads (and read_env writes) `Env.ENVIRON`; a copy keeps a .env from leaking into os.environ.
    """
    environment = {k: v for k, v in os.environ.items() if k not in ENV_NAMES and not k.startswith("ANYMAIL_")}
    env_file = tmp_path / ".env"
    if dotenv is not None:
        env_file.write_text(dotenv)
    environment.update(env, DJANGO_ENV_FILE=str(env_file))
    monkeypatch.setattr(environ.Env, "ENVIRON", environment)
    return runpy.run_path(str(SETTINGS_FILE))


def test_production_refuses_to_start_without_secret_key(monkeypatch, tmp_path):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set"):
        load_settings(monkeypatch, tmp_path, {"DEBUG": "false"})


def test_debug_has_a_development_secret_key(monkeypatch, tmp_path):
    settings = load_settings(monkeypatch, tmp_path, {"DEBUG": "true"})
    assert settings["DEBUG"] is True and settings["SECRET_KEY"].startswith("django-insecure")
    assert "127.0.0.1" in settings["ALLOWED_HOSTS"]


def test_defaults_are_sqlite_in_the_project_folder(monkeypatch, tmp_path):
    settings = load_settings(monkeypatch, tmp_path, {"SECRET_KEY": "x" * 50})
    db = settings["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert Path(db["NAME"]) == SETTINGS_FILE.parents[1] / "db.sqlite3"
    assert settings["ALLOWED_HOSTS"] == [] and settings["DEBUG"] is False
    assert settings["Q_CLUSTER"]["orm"] == "default"
    assert settings["Q_CLUSTER"]["retry"] > settings["Q_CLUSTER"]["timeout"]
    assert settings["ZOHO_DATA_CENTER"] == "com"


def test_database_url_selects_postgresql(monkeypatch, tmp_path):
    settings = load_settings(monkeypatch, tmp_path, {
        "SECRET_KEY": "x" * 50, "DATABASE_URL": "postgres://billing:pw@db.internal:5433/billing",
    })
    db = settings["DATABASES"]["default"]
    assert (db["ENGINE"], db["HOST"], db["PORT"], db["NAME"], db["USER"]) == (
        "django.db.backends.postgresql", "db.internal", 5433, "billing", "billing")
    assert db["CONN_HEALTH_CHECKS"] is True


def test_dotenv_is_read_but_real_environment_wins(monkeypatch, tmp_path):
    settings = load_settings(
        monkeypatch, tmp_path, {"DEBUG": "true", "ZOHO_DATA_CENTER": "eu"},
        dotenv="ZOHO_DATA_CENTER=in\nZOHO_CLIENT_ID=from-dotenv\nQ_WORKERS=5\n",
    )
    assert settings["ZOHO_DATA_CENTER"] == "eu"
    assert settings["ZOHO_CLIENT_ID"] == "from-dotenv"
    assert settings["Q_CLUSTER"]["workers"] == 5


def test_anymail_settings_come_from_anymail_variables(monkeypatch, tmp_path):
    settings = load_settings(monkeypatch, tmp_path, {
        "DEBUG": "true", "EMAIL_BACKEND": "anymail.backends.resend.EmailBackend",
        "ANYMAIL_RESEND_API_KEY": "test-key",
    })
    assert settings["EMAIL_BACKEND"] == "anymail.backends.resend.EmailBackend"
    assert settings["ANYMAIL"]["RESEND_API_KEY"] == "test-key"


PRODUCTION = {"DEBUG": "false", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "billing.example.com"}


def test_production_is_https_only_by_default(monkeypatch, tmp_path):
    settings = load_settings(monkeypatch, tmp_path, PRODUCTION)
    assert settings["SECURE_SSL_REDIRECT"] is True
    assert settings["SESSION_COOKIE_SECURE"] is True and settings["CSRF_COOKIE_SECURE"] is True
    assert settings["SECURE_HSTS_SECONDS"] == 31_536_000 and settings["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert settings["SECURE_HSTS_PRELOAD"] is False and settings["SILENCED_SYSTEM_CHECKS"] == ["security.W021"]
    assert settings["SECURE_PROXY_SSL_HEADER"] is None


def test_debug_switches_https_off(monkeypatch, tmp_path):
    settings = load_settings(monkeypatch, tmp_path, {"DEBUG": "true"})
    assert not any(settings[name] for name in HTTPS_NAMES)


def test_each_https_setting_can_be_switched_off_behind_a_proxy(monkeypatch, tmp_path):
    settings = load_settings(monkeypatch, tmp_path, {
        **PRODUCTION, "SECURE_SSL_REDIRECT": "false", "SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false",
        "SECURE_HSTS_SECONDS": "0", "SECURE_HSTS_INCLUDE_SUBDOMAINS": "false",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO, https",
    })
    assert not any(settings[name] for name in HTTPS_NAMES if name != "SECURE_PROXY_SSL_HEADER")
    assert settings["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


def test_hsts_preload_is_an_explicit_choice(monkeypatch, tmp_path):
    settings = load_settings(monkeypatch, tmp_path, {**PRODUCTION, "SECURE_HSTS_PRELOAD": "true"})
    assert settings["SECURE_HSTS_PRELOAD"] is True and settings["SILENCED_SYSTEM_CHECKS"] == []


@pytest.mark.parametrize("value", ["HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_PROTO,https,http", ",https"])
def test_malformed_proxy_ssl_header_is_refused(monkeypatch, tmp_path, value):
    with pytest.raises(ImproperlyConfigured, match="SECURE_PROXY_SSL_HEADER must be"):
        load_settings(monkeypatch, tmp_path, {**PRODUCTION, "SECURE_PROXY_SSL_HEADER": value})


def test_production_settings_pass_the_deploy_check():
    """`manage.py check --deploy` in a fresh process with production's variables, as .ci/run runs it."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in ENV_NAMES and not k.startswith(("ZOHO_", "ANYMAIL_"))}
    environment.update(
        DJANGO_ENV_FILE="/nonexistent/.env", DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="billing.example.com", ZOHO_CLIENT_ID="ci-client", ZOHO_CLIENT_SECRET="ci-secret",
        ZOHO_REFRESH_TOKEN="ci-refresh", ZOHO_ORGANIZATION_ID="10234695",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=SETTINGS_FILE.parents[1], env=environment, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.fixture
def zoho(settings):
    settings.ZOHO_CLIENT_ID = "1000.CLIENTID"
    settings.ZOHO_CLIENT_SECRET = "client-secret-value"
    settings.ZOHO_REFRESH_TOKEN = "refresh-token-value"
    settings.ZOHO_ORGANIZATION_ID = "10234695"
    settings.ZOHO_DATA_CENTER = "com"
    settings.ZOHO_API_BASE_URL = ""
    settings.ZOHO_ACCOUNTS_URL = ""
    return settings


@pytest.mark.parametrize(("dc", "api", "accounts"), [
    ("com", "https://www.zohoapis.com/billing/v1", "https://accounts.zoho.com"),
    ("eu", "https://www.zohoapis.eu/billing/v1", "https://accounts.zoho.eu"),
    ("in", "https://www.zohoapis.in/billing/v1", "https://accounts.zoho.in"),
    ("com.au", "https://www.zohoapis.com.au/billing/v1", "https://accounts.zoho.com.au"),
    ("jp", "https://www.zohoapis.jp/billing/v1", "https://accounts.zoho.jp"),
    ("ca", "https://www.zohoapis.ca/billing/v1", "https://accounts.zohocloud.ca"),
    ("com.cn", "https://www.zohoapis.com.cn/billing/v1", "https://accounts.zoho.com.cn"),
    ("sa", "https://www.zohoapis.sa/billing/v1", "https://accounts.zoho.sa"),
])
def test_data_center_chooses_both_urls(zoho, dc, api, accounts):
    zoho.ZOHO_DATA_CENTER = dc
    conf = get_zoho_settings()
    assert (conf.api_base_url, conf.accounts_url) == (api, accounts)
    assert set(DATA_CENTERS) == {"com", "eu", "in", "com.au", "jp", "ca", "com.cn", "sa"}


def test_overrides_win_over_the_data_center(zoho):
    zoho.ZOHO_DATA_CENTER = "ca"
    zoho.ZOHO_ACCOUNTS_URL = "https://accounts.zoho.ca/"
    conf = get_zoho_settings()
    assert conf.accounts_url == "https://accounts.zoho.ca"
    assert conf.api_base_url == "https://www.zohoapis.ca/billing/v1"
    zoho.ZOHO_API_BASE_URL = "http://127.0.0.1:8765/billing/v1"
    zoho.ZOHO_ACCOUNTS_URL = "http://127.0.0.1:8765"
    conf = get_zoho_settings()
    assert (conf.api_base_url, conf.accounts_url) == ("http://127.0.0.1:8765/billing/v1", "http://127.0.0.1:8765")


def test_settings_are_read_when_asked_for(zoho):
    assert get_zoho_settings().organization_id == "10234695"
    zoho.ZOHO_ORGANIZATION_ID = "555"
    assert get_zoho_settings().organization_id == "555"


def test_missing_and_unknown_settings_are_named(zoho):
    zoho.ZOHO_REFRESH_TOKEN = ""
    zoho.ZOHO_DATA_CENTER = "mars"
    problems = zoho_settings_problems()
    assert "ZOHO_REFRESH_TOKEN is not set (environment variable ZOHO_REFRESH_TOKEN)." in problems
    assert any("ZOHO_DATA_CENTER='mars' is not a Zoho data center" in p for p in problems)
    with pytest.raises(ZohoConfigurationError) as exc:
        get_zoho_settings()
    assert isinstance(exc.value, ImproperlyConfigured)


def test_unknown_data_center_is_fine_when_both_urls_are_given(zoho):
    zoho.ZOHO_DATA_CENTER = "sandbox"
    zoho.ZOHO_API_BASE_URL = "http://127.0.0.1:9/billing/v1"
    zoho.ZOHO_ACCOUNTS_URL = "ftp://127.0.0.1:9"
    assert zoho_settings_problems() == ["ZOHO_ACCOUNTS_URL='ftp://127.0.0.1:9' is not an http(s) URL."]


def test_settings_object_never_shows_secrets(zoho):
    text = repr(get_zoho_settings())
    assert "client-secret-value" not in text and "refresh-token-value" not in text


def test_env_example_documents_every_variable_and_loads(monkeypatch, tmp_path):
    example = (SETTINGS_FILE.parents[1] / ".env.example").read_text()
    read = set(re.findall(r'env\.\w+\("([A-Z_]+)"', SETTINGS_FILE.read_text()))
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert read - documented == set(), "variables read by settings.py but missing from .env.example"
    settings = load_settings(monkeypatch, tmp_path, {}, dotenv=example.replace("DEBUG=false", "DEBUG=true"))
    assert settings["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert settings["ZOHO_DATA_CENTER"] == "com" and settings["Q_CLUSTER"]["workers"] == 2


@pytest.mark.django_db
def test_https_settings_behind_a_tls_terminating_proxy(client, settings):
    """What the settings above do to a request: http is redirected; a proxy's https header is believed.

    The suite runs with production's defaults (DEBUG off) except the redirect, which pytest-env switches off.
    """
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/admin/login/").headers["Location"] == "https://testserver/admin/login/"
    response = client.get("/admin/login/", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_the_broker_is_the_database_unless_redis_is_chosen(monkeypatch, tmp_path):
    settings = load_settings(monkeypatch, tmp_path, {"SECRET_KEY": "x" * 50, "REDIS_URL": "redis://cache:6379/0"})
    assert settings["Q_CLUSTER"]["orm"] == "default" and "broker_class" not in settings["Q_CLUSTER"]
    settings = load_settings(monkeypatch, tmp_path, {"SECRET_KEY": "x" * 50, "Q_BROKER": "Redis",
                                                     "REDIS_URL": "redis://cache:6379/0"})
    assert "orm" not in settings["Q_CLUSTER"]
    assert settings["Q_CLUSTER"]["redis"] == "redis://cache:6379/0"
    assert settings["Q_CLUSTER"]["broker_class"] == "zoho_sync.brokers.DelayingRedis"


def test_a_redis_broker_needs_its_url_and_other_brokers_are_refused(monkeypatch, tmp_path):
    with pytest.raises(ImproperlyConfigured, match="Q_BROKER=redis needs REDIS_URL"):
        load_settings(monkeypatch, tmp_path, {"SECRET_KEY": "x" * 50, "Q_BROKER": "redis"})
    with pytest.raises(ImproperlyConfigured, match="Q_BROKER must be orm or redis, not 'sqs'"):
        load_settings(monkeypatch, tmp_path, {"SECRET_KEY": "x" * 50, "Q_BROKER": "sqs"})


def test_production_serves_hashed_compressed_static_files(monkeypatch, tmp_path):
    production = load_settings(monkeypatch, tmp_path, {"SECRET_KEY": "x" * 50})
    assert production["STORAGES"]["staticfiles"]["BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert production["MIDDLEWARE"].index("whitenoise.middleware.WhiteNoiseMiddleware") == 1
    development = load_settings(monkeypatch, tmp_path, {"DEBUG": "true"})
    assert development["STORAGES"]["staticfiles"]["BACKEND"].startswith("django.contrib.staticfiles")
