"""Django settings: the only module that reads the environment (django-environ).

Every value is typed and defaulted here. Application code never copies settings at import time: it asks
`zoho_sync.conf.get_zoho_settings()` (and friends) when it needs them. `.env.example` documents each variable.
"""

import hashlib
import tempfile
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is optional; real environment variables win over it. DJANGO_ENV_FILE names another file
# (the settings tests point it at a file that does not exist, so a developer's .env cannot leak in).
ENV_FILE = Path(env.str("DJANGO_ENV_FILE", default=str(BASE_DIR / ".env")))
if ENV_FILE.is_file():
    env.read_env(ENV_FILE, overwrite=False)

# --- Core -------------------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-development-only-never-use-in-production")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if not SECRET_KEY:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable (a long random string), "
            "or set DEBUG=true for local development only."
        )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS ------------------------------------------------------------------------------------------------
# With DEBUG off the site is HTTPS-only unless a variable says otherwise: plain http is redirected, the session
# and CSRF cookies are sent over HTTPS only, and browsers are told (HSTS) to use HTTPS for a year. With DEBUG on
# (runserver, the demo) all of it is off. Behind a proxy that terminates TLS, Django sees plain http: either name
# the header the proxy sets (SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https, only if the proxy overwrites
# any such header a client sends) or let the proxy redirect (SECURE_SSL_REDIRECT=false); otherwise every request
# is redirected to itself.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# Sent on HTTPS responses only; 0 switches HSTS off. Lower it (say 3600) while first moving a host to HTTPS.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
# Off by default: the preload list binds every subdomain of the registrable domain in browsers for months, a
# decision for the domain's owner (hstspreload.org), not a default of one application. Django's deploy check
# W021 only asks that question, so it is silenced while the answer is no.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
_proxy_ssl_header = [part.strip() for part in env.list("SECURE_PROXY_SSL_HEADER", default=[])]
if _proxy_ssl_header and (len(_proxy_ssl_header) != 2 or not all(_proxy_ssl_header)):
    raise ImproperlyConfigured(
        "SECURE_PROXY_SSL_HEADER must be a header and the value meaning https, separated by a comma, "
        "e.g. HTTP_X_FORWARDED_PROTO,https."
    )
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if _proxy_ssl_header else None

INSTALLED_APPS = [
    "config.apps.SyncAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # WhiteNoise serves static files under runserver too, the same way as under gunicorn.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_q",
    "anymail",
    "zoho_sync",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The admin's CSS and JavaScript, served by the WSGI process itself (no separate web server needed): right
    # after SecurityMiddleware, so the HTTPS redirect and HSTS apply to them too.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------------------
# SQLite in the project folder is the embedded default; production sets DATABASE_URL=postgres://...
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Tests use a file, not memory, so worker processes started by a test can share its database; one file per
    # checkout, in the temporary folder (which exists on a fresh clone, unlike var/).
    _checkout = hashlib.sha256(str(BASE_DIR).encode()).hexdigest()[:12]
    _test_db = Path(tempfile.gettempdir()) / f"zoho-sync-test-{_checkout}.sqlite3"
    DATABASES["default"].setdefault("TEST", {"NAME": str(_test_db)})
    # Several processes (web, qcluster workers, commands) share the file: wait for locks instead of
    # failing at once, and take the write lock at BEGIN so a reader never has to upgrade mid-transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    if "postgresql" in DATABASES["default"]["ENGINE"] and not env.bool("DATABASE_JIT", default=False):
        # PostgreSQL's JIT compiles any query its planner costs high (a count over a day of the sync log): 20 ms
        # and more of compiling for a query that runs in 50. Pages and pushes are short queries; leave it off.
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files (the admin's CSS and JavaScript) --------------------------------------------------------
# `manage.py collectstatic` copies them into STATIC_ROOT; WhiteNoise serves them from there. With the manifest on
# (the default when DEBUG is off) every file gets a content hash in its name and a gzip copy, and is
# served with a far-future cache header; pages then refuse to render until collectstatic has run (a deploy
# step: bin/serve, the Dockerfile). Off (DEBUG, the tests), files are served under their own names from the apps.
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "static")
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=not DEBUG)
# Without the manifest, WhiteNoise serves the files straight from the apps (no collectstatic needed).
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage" if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
}

# --- Email (alerts) ---------------------------------------------------------------------------------------
# The provider is chosen here alone: EMAIL_BACKEND=anymail.backends.<esp>.EmailBackend plus its ANYMAIL_*
# variables (ANYMAIL_RESEND_API_KEY becomes ANYMAIL["RESEND_API_KEY"]). No other module imports anymail.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="zoho-sync@localhost")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
ANYMAIL = {key.removeprefix("ANYMAIL_"): value for key, value in env.ENVIRON.items() if key.startswith("ANYMAIL_")}

# --- django-q2 --------------------------------------------------------------------------------------------
# The broker: the ORM broker on the default database by default (no extra service to run), or Redis with
# Q_BROKER=redis and REDIS_URL, for several clusters on several machines (zoho_sync.brokers: django-q2's Redis
# broker plus tasks due later, so a trigger's debounce does not wait for the scheduler). `retry` must exceed
# `timeout`. Every cluster of one deployment must use the same broker, cluster name and database.
# Redis (e.g. redis://127.0.0.1:6379/0): the django-q2 broker with Q_BROKER=redis, and where the token cache and the
# rate budget are shared instead of the database.
REDIS_URL = env.str("REDIS_URL", default="")
Q_BROKER = env.str("Q_BROKER", default="orm").strip().lower()
Q_CLUSTER = {
    "name": env.str("Q_CLUSTER_NAME", default="zoho_sync"),
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=600),
    "retry": env.int("Q_RETRY", default=720),
    "max_attempts": 1,
    "poll": env.float("Q_POLL", default=1.0),
    "catch_up": False,
    "save_limit": 1000,
    "sync": env.bool("Q_SYNC", default=False),
}
if Q_BROKER == "orm":
    Q_CLUSTER["orm"] = "default"
elif Q_BROKER == "redis":
    if not REDIS_URL:
        raise ImproperlyConfigured("Q_BROKER=redis needs REDIS_URL (e.g. redis://127.0.0.1:6379/0).")
    Q_CLUSTER.update(redis=REDIS_URL, broker_class="zoho_sync.brokers.DelayingRedis")
else:
    raise ImproperlyConfigured(f"Q_BROKER must be orm or redis, not {Q_BROKER!r}.")

# --- Zoho Billing -----------------------------------------------------------------------------------------
# Read through zoho_sync.conf.get_zoho_settings(), which validates them and derives the URLs of the data
# center (ZOHO_DATA_CENTER) unless ZOHO_API_BASE_URL / ZOHO_ACCOUNTS_URL override them.
ZOHO_CLIENT_ID = env.str("ZOHO_CLIENT_ID", default="")
ZOHO_CLIENT_SECRET = env.str("ZOHO_CLIENT_SECRET", default="")
ZOHO_REFRESH_TOKEN = env.str("ZOHO_REFRESH_TOKEN", default="")
ZOHO_ORGANIZATION_ID = env.str("ZOHO_ORGANIZATION_ID", default="")
ZOHO_DATA_CENTER = env.str("ZOHO_DATA_CENTER", default="com")
ZOHO_API_BASE_URL = env.str("ZOHO_API_BASE_URL", default="")
# Where the admin links a record in Zoho's web app; empty: the data center's Zoho Billing app.
ZOHO_WEB_APP_URL = env.str("ZOHO_WEB_APP_URL", default="")
ZOHO_ACCOUNTS_URL = env.str("ZOHO_ACCOUNTS_URL", default="")
# The rate budget every process shares (§12.1): Zoho's per-minute limit, the share of it never used, the plan's
# daily quota, the calls a backfill may never take (kept for live triggers), the backfill's share of the
# per-minute budget, and in-flight calls.
ZOHO_RATE_LIMIT_PER_MINUTE = env.int("ZOHO_RATE_LIMIT_PER_MINUTE", default=100)
ZOHO_RATE_HEADROOM = env.float("ZOHO_RATE_HEADROOM", default=0.1)
ZOHO_DAILY_LIMIT = env.int("ZOHO_DAILY_LIMIT", default=1000)
ZOHO_DAILY_RESERVE = env.int("ZOHO_DAILY_RESERVE", default=100)
ZOHO_BULK_SHARE = env.float("ZOHO_BULK_SHARE", default=0.8)
ZOHO_MAX_CONCURRENCY = env.int("ZOHO_MAX_CONCURRENCY", default=10)
ZOHO_CONNECT_TIMEOUT = env.float("ZOHO_CONNECT_TIMEOUT", default=5.0)
ZOHO_READ_TIMEOUT = env.float("ZOHO_READ_TIMEOUT", default=30.0)
ZOHO_RETRY_MAX_ATTEMPTS = env.int("ZOHO_RETRY_MAX_ATTEMPTS", default=5)
ZOHO_RETRY_DEADLINE = env.float("ZOHO_RETRY_DEADLINE", default=180.0)
ZOHO_LOCKOUT_SECONDS = env.float("ZOHO_LOCKOUT_SECONDS", default=60.0)
ZOHO_REFERENCE_CACHE_SECONDS = env.float("ZOHO_REFERENCE_CACHE_SECONDS", default=300.0)

# --- Sync engine ------------------------------------------------------------------------------------------
# Seconds a triggered push waits so a burst of edits costs one push.
SYNC_DEBOUNCE_SECONDS = env.float("SYNC_DEBOUNCE_SECONDS", default=5.0)
SYNC_TRIGGERS_ENABLED = env.bool("SYNC_TRIGGERS_ENABLED", default=True)

# --- Inbound changes from Zoho: signed webhooks into the event inbox ---------------------------------------
# The webhook's "Secret Token" in Zoho (Settings > Automation > Webhooks, "I want to secure this webhook");
# without it every delivery is refused. The endpoint is /zoho/webhooks/.
ZOHO_WEBHOOK_SECRET = env.str("ZOHO_WEBHOOK_SECRET", default="")
ZOHO_WEBHOOK_MAX_BYTES = env.int("ZOHO_WEBHOOK_MAX_BYTES", default=256 * 1024)
# The names of the query parameters the webhook's URL in Zoho carries, if any: a delivery must carry exactly these.
ZOHO_WEBHOOK_QUERY_KEYS = env.list("ZOHO_WEBHOOK_QUERY_KEYS", default=[])
INBOX_MAX_ATTEMPTS = env.int("INBOX_MAX_ATTEMPTS", default=5)
INBOX_RETRY_BASE_SECONDS = env.float("INBOX_RETRY_BASE_SECONDS", default=30.0)
INBOX_BUSY_RETRY_SECONDS = env.float("INBOX_BUSY_RETRY_SECONDS", default=15.0)
# The most of the daily quota event replay (zoho_reconcile --events, the hourly schedule) spends in a day.
SYNC_REPLAY_QUOTA_SHARE = env.float("SYNC_REPLAY_QUOTA_SHARE", default=0.1)
# Account types never pushed to Zoho.
SYNC_EXCLUDED_ACCOUNT_TYPES = env.list("SYNC_EXCLUDED_ACCOUNT_TYPES", default=["internal_test"])
# After a write whose answer was lost, seconds before the record is looked up in Zoho and pushed again.
SYNC_OUTCOME_RECHECK_SECONDS = env.float("SYNC_OUTCOME_RECHECK_SECONDS", default=30.0)
# A backfill waits for retries falling due within this many seconds, so it finishes by itself.
SYNC_RETRY_WINDOW_SECONDS = env.float("SYNC_RETRY_WINDOW_SECONDS", default=300.0)
# Seconds before a record waiting for a dependency is tried again (its dependency's success wakes it sooner).
SYNC_DEPENDENCY_RETRY_SECONDS = env.float("SYNC_DEPENDENCY_RETRY_SECONDS", default=300.0)
# Seconds before the first retry of a retryable failure (doubling each time, up to an hour).
SYNC_RETRY_BASE_SECONDS = env.float("SYNC_RETRY_BASE_SECONDS", default=30.0)
# Attempts before a retryable failure waits for a person (zoho_retry_failed).
SYNC_MAX_ATTEMPTS = env.int("SYNC_MAX_ATTEMPTS", default=8)
# Seconds a worker's claim on a record lasts; a dead worker of this machine is detected sooner.
SYNC_CLAIM_LEASE_SECONDS = env.float("SYNC_CLAIM_LEASE_SECONDS", default=900.0)
# Worker processes of a backfill (zoho_backfill --workers): they overlap the waits for Zoho and the database.
# 0 chooses: one on SQLite (one writer at a time), else as many as CPUs, at most 4 and ZOHO_MAX_CONCURRENCY.
SYNC_BACKFILL_WORKERS = env.int("SYNC_BACKFILL_WORKERS", default=0)

# --- Monitoring -------------------------------------------------------------------------------------------
# KPI targets: the 24-hour success rate per entity and the average seconds per sync attempt.
MONITORING_SUCCESS_RATE_TARGET = env.float("MONITORING_SUCCESS_RATE_TARGET", default=0.98)
MONITORING_SYNC_SECONDS_TARGET = env.float("MONITORING_SYNC_SECONDS_TARGET", default=5.0)
# Below this 24-hour success rate most pushes fail: the health check says UNHEALTHY.
MONITORING_SUCCESS_RATE_CRITICAL = env.float("MONITORING_SUCCESS_RATE_CRITICAL", default=0.5)
# A record changed this many minutes ago and still not in Zoho is reported; so is a failure older than N days.
MONITORING_MAX_PENDING_MINUTES = env.int("MONITORING_MAX_PENDING_MINUTES", default=60)
MONITORING_FAILURE_AGE_DAYS = env.int("MONITORING_FAILURE_AGE_DAYS", default=7)
# Share of the daily API quota that raises a warning.
MONITORING_BUDGET_WARN_SHARE = env.float("MONITORING_BUDGET_WARN_SHARE", default=0.8)
# Each cluster worker beats every HEARTBEAT seconds; a cluster silent for SILENT seconds is reported as not running.
MONITORING_CLUSTER_HEARTBEAT_SECONDS = env.float("MONITORING_CLUSTER_HEARTBEAT_SECONDS", default=20.0)
# MONITORING_CLUSTER_SILENT_MINUTES, its old name, is still read (in minutes) when the new one is unset.
MONITORING_CLUSTER_SILENT_SECONDS = env.float(
    "MONITORING_CLUSTER_SILENT_SECONDS", default=env.float("MONITORING_CLUSTER_SILENT_MINUTES", default=1.25) * 60)
# Failure alerts (zoho_alert_failed): where the admin is served (the links), who gets the email, chat webhooks.
MONITORING_BASE_URL = env.str("MONITORING_BASE_URL", default="http://127.0.0.1:8000")
MONITORING_ALERT_EMAILS = env.list("MONITORING_ALERT_EMAILS", default=[])
MONITORING_SLACK_WEBHOOK_URL = env.str("MONITORING_SLACK_WEBHOOK_URL", default="")
MONITORING_DISCORD_WEBHOOK_URL = env.str("MONITORING_DISCORD_WEBHOOK_URL", default="")
MONITORING_WEBHOOK_URL = env.str("MONITORING_WEBHOOK_URL", default="")
# The same set of failures is sent again (a reminder) after this many minutes; a new set goes out at once.
MONITORING_ALERT_COOLDOWN_MINUTES = env.int("MONITORING_ALERT_COOLDOWN_MINUTES", default=360)
# Days of sync log the weekly pruning keeps (the daily metrics keep every day).
MONITORING_LOG_RETENTION_DAYS = env.int("MONITORING_LOG_RETENTION_DAYS", default=90)
# /metrics in Prometheus' text format: off unless enabled; with a username it asks for HTTP basic credentials.
MONITORING_PROMETHEUS_ENABLED = env.bool("MONITORING_PROMETHEUS_ENABLED", default=False)
MONITORING_PROMETHEUS_USERNAME = env.str("MONITORING_PROMETHEUS_USERNAME", default="")
MONITORING_PROMETHEUS_PASSWORD = env.str("MONITORING_PROMETHEUS_PASSWORD", default="")

# --- Logging ----------------------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "zoho_sync": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "monitoring": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}
