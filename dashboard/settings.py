"""Switchboard settings, read from the environment (and an optional .env file).

Embedded defaults need no server: SQLite under var/, a filesystem Celery broker
under var/, a cache in a table of the same SQLite file. Production sets DATABASE_URL,
CELERY_BROKER_URL and CACHE_URL (PostgreSQL and Redis). Every variable is parsed
strictly: a bad value raises ImproperlyConfigured naming the variable, and manage.py
turns that into a one-line message instead of a traceback.

`make run` is many processes (web workers, Celery worker processes, beat), so nothing
another process needs lives in one process's memory. Where each piece of shared state
lives, embedded and in production (docs/decisions.md, "Shared state"):

- rate-limit budgets, leases and blocks: the database (connections/outbound/throttle.py
  DatabaseLimiter) / Redis (RedisLimiter, chosen when CACHE_URL is Redis);
- Test all progress: the database (BatchRun, BatchRunResult) on both;
- rotation claims, vendor sessions, sign-in lockouts (django-axes), web sessions, beat
  schedules: the database on both;
- queued rotations' status and outcome, worker pings: the cache, i.e. the SQLite table
  switchboard_cache / Redis.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from dashboard.envvars import cache_url as _cache_url
from dashboard.envvars import db_url as _db_url
from dashboard.envvars import env
from dashboard.envvars import flag as _bool
from dashboard.envvars import read as _read
from dashboard.envvars import role_map as _role_map
from dashboard.logformat import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

if not os.environ.get("SWITCHBOARD_SKIP_DOTENV"):
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
# Local state of the embedded set-up (SQLite file, filesystem broker, collected static files, spool).
# SWITCHBOARD_VAR_DIR moves it, e.g. for a second instance on one machine (tests/system does).
VAR_DIR = Path(os.environ.get("SWITCHBOARD_VAR_DIR") or BASE_DIR / "var")


DEBUG = _bool("DEBUG", False)
# Secrets are hidden from error reports even with DEBUG on (connections/outbound/debugfilter.py).
DEFAULT_EXCEPTION_REPORTER_FILTER = "connections.outbound.debugfilter.AlwaysSafeExceptionReporterFilter"
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is not set: it is required when DEBUG is off")
    SECRET_KEY = "insecure-local-development-key-only-for-debug"

ALLOWED_HOSTS = _read("ALLOWED_HOSTS", env.list, ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = _read("CSRF_TRUSTED_ORIGINS", env.list, [])
CSRF_FAILURE_VIEW = "dashboard.views.csrf_failure"  # "reload the page", not "ask an admin" (dashboard/views.py)

# Comma-separated Fernet keys, newest first (connections/crypto.py validates them).
CREDENTIAL_KEYS = _read("CREDENTIAL_KEYS", env.list, [])
# Demo mode: `make run` starts the sandbox vendors and points five demo connections at them.
DEMO_MODE = _bool("DEMO_MODE", False)
SANDBOX_PORT = _read("SANDBOX_PORT", env.int, 8765)
# The demo's vendors listen on loopback: demo mode allows private networks unless this says otherwise,
# so turning DEMO_MODE off turns the permission off with it (`make run` no longer writes it to .env).
OUTBOUND_ALLOW_PRIVATE_NETWORKS = _bool("OUTBOUND_ALLOW_PRIVATE_NETWORKS", DEMO_MODE)
OUTBOUND_ALLOWED_HOSTS = _read("OUTBOUND_ALLOWED_HOSTS", env.list, [])
LOG_RETENTION_DAYS = _read("LOG_RETENTION_DAYS", env.int, 30)
ERROR_LOG_RETENTION_DAYS = _read("ERROR_LOG_RETENTION_DAYS", env.int, 90)
# Cleverbridge documents 150 req/s on its getting-started page and 30 req/s on another page.
CLEVERBRIDGE_RATE_LIMIT = _read("CLEVERBRIDGE_RATE_LIMIT", env.int, 150)
# The outbound client (connections/outbound/client.py): timeouts, waits and limits.
OUTBOUND_CONNECT_TIMEOUT = _read("OUTBOUND_CONNECT_TIMEOUT", env.float, 5.0)
OUTBOUND_READ_TIMEOUT = _read("OUTBOUND_READ_TIMEOUT", env.float, 20.0)
# Longest a request waits for the rate limiter or a Retry-After before it is recorded as
# throttled instead: interactive (pages, CLI) and background (scheduler, workers).
OUTBOUND_MAX_WAIT = _read("OUTBOUND_MAX_WAIT", env.float, 5.0)
OUTBOUND_MAX_WAIT_BACKGROUND = _read("OUTBOUND_MAX_WAIT_BACKGROUND", env.float, 60.0)
# One overall deadline per operation (a test, a call, a refresh: all its tries, waits and
# backoff): a stalled vendor cannot hold a page or the CLI for tries x timeout.
OUTBOUND_DEADLINE = _read("OUTBOUND_DEADLINE", env.float, 30.0)
OUTBOUND_DEADLINE_BACKGROUND = _read("OUTBOUND_DEADLINE_BACKGROUND", env.float, 120.0)
OUTBOUND_MAX_BODY_BYTES = _read("OUTBOUND_MAX_BODY_BYTES", env.int, 1024 * 1024)
# The egress proxy (/proxy/<connection>/<path>, docs/proxy.md): the largest request body an
# application may send (413 beyond), the largest vendor answer passed back (502 beyond), how long a
# call may wait for the shared limiter (then Switchboard's own 429) and for a rotation in flight.
PROXY_MAX_BODY_BYTES = _read("PROXY_MAX_BODY_BYTES", env.int, 1024 * 1024)
PROXY_MAX_RESPONSE_BYTES = _read("PROXY_MAX_RESPONSE_BYTES", env.int, 8 * 1024 * 1024)
PROXY_MAX_WAIT = _read("PROXY_MAX_WAIT", env.float, 5.0)
PROXY_ROTATION_WAIT = _read("PROXY_ROTATION_WAIT", env.float, 10.0)
# The largest credential field (a password, a token) accepted on the form, the CLI and import.
SECRET_MAX_FIELD_BYTES = _read("SECRET_MAX_FIELD_BYTES", env.int, 16 * 1024)
# Names this deployment's egress IP: Cleverbridge's limit is per IP, shared by all its connections.
OUTBOUND_EGRESS_ID = _read("OUTBOUND_EGRESS_ID", env.str, "default")
CLEVER_RATE_LIMIT_PER_MINUTE = _read("CLEVER_RATE_LIMIT_PER_MINUTE", env.int, 1200)
# A connection test slower than this marks the connection degraded.
CONNECTION_TEST_SLOW_MS = _read("CONNECTION_TEST_SLOW_MS", env.int, 3000)
# Where rotation writes a new token it could not commit (encrypted, fsynced).
RECOVERY_SPOOL_DIR = Path(_read("RECOVERY_SPOOL_DIR", env.str, str(VAR_DIR / "spool")))
# Declarative vendors: one YAML file per vendor (docs/providers.md). The default is the repository's
# vendors/ folder with the shipped examples; a deployment points it at a folder it keeps (and
# shares between machines), where the Vendors page's upload saves too.
PROVIDERS_DIR = Path(_read("PROVIDERS_DIR", env.str, str(BASE_DIR / "vendors")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "connections",
]

MIDDLEWARE = [
    "dashboard.logformat.RequestIdMiddleware",  # first: every later log line carries the request id
    # Before the proxy leaves the chain: statements sent behind are settled before a response leaves.
    "dashboard.pgbackend.base.SettleMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # /proxy/ (application keys, no session) leaves the chain here: connections/proxy/edge.py.
    "connections.proxy.edge.ProxyEdge",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "connections.middleware.PermissionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "dashboard.reauth.IdleTimeoutMiddleware",  # after messages: it says why you were signed out
    "dashboard.twofactor.SecondFactorMiddleware",  # a session that owes its code reaches nothing else
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "connections.middleware.MethodNotAllowedPage",  # a link to a POST-only URL: a page, not a blank 405
    "dashboard.security.SecurityHeadersMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into a clear page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # django-axes first: repeated failed sign-ins are throttled per user name and IP.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "dashboard.sso.SsoBackend",  # answers only the single sign-on callback
]

# Single sign-on with OpenID Connect (dashboard/sso.py): on when OIDC_RP_CLIENT_ID is set.
OIDC_RP_CLIENT_ID = _read("OIDC_RP_CLIENT_ID", env.str, "")
OIDC_RP_CLIENT_SECRET = _read("OIDC_RP_CLIENT_SECRET", env.str, "")
OIDC_OP_DISCOVERY_URL = _read("OIDC_OP_DISCOVERY_URL", env.str, "")
OIDC_OP_AUTHORIZATION_ENDPOINT = _read("OIDC_OP_AUTHORIZATION_ENDPOINT", env.str, "")
OIDC_OP_TOKEN_ENDPOINT = _read("OIDC_OP_TOKEN_ENDPOINT", env.str, "")
OIDC_OP_USER_ENDPOINT = _read("OIDC_OP_USER_ENDPOINT", env.str, "")
OIDC_OP_JWKS_ENDPOINT = _read("OIDC_OP_JWKS_ENDPOINT", env.str, "")
OIDC_RP_SIGN_ALGO = _read("OIDC_RP_SIGN_ALGO", env.str, "RS256")
OIDC_RP_SCOPES = _read("OIDC_RP_SCOPES", env.str, "openid email profile")
OIDC_PROVIDER_NAME = _read("OIDC_PROVIDER_NAME", env.str, "single sign-on")
OIDC_ROLE_CLAIM = _read("OIDC_ROLE_CLAIM", env.str, "groups")
# Trust the provider's second factor when the ID token's amr lists one of these (empty: never).
OIDC_MFA_AMR = _read("OIDC_MFA_AMR", env.list, ["mfa"])
OIDC_USE_PKCE = True
OIDC_TIMEOUT = 10
OIDC_CREATE_USER = True
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/"


OIDC_ROLE_MAP = _role_map("OIDC_ROLE_MAP")
if OIDC_RP_CLIENT_ID:
    _missing = [n for n in ("OIDC_RP_CLIENT_SECRET",) if not globals()[n]]
    if not OIDC_OP_DISCOVERY_URL:
        _missing += [n for n in ("OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT", "OIDC_OP_USER_ENDPOINT",
                                 "OIDC_OP_JWKS_ENDPOINT") if not globals()[n]]
    if _missing or not OIDC_ROLE_MAP:
        raise ImproperlyConfigured("OIDC_RP_CLIENT_ID is set but single sign-on is incomplete: set "
                                   + ", ".join(_missing + ([] if OIDC_ROLE_MAP else ["OIDC_ROLE_MAP"]))
                                   + " (or OIDC_OP_DISCOVERY_URL instead of the endpoints)")
AXES_FAILURE_LIMIT = _read("AXES_FAILURE_LIMIT", env.int, 5)
TEST_RATE_PER_MINUTE = _read("TEST_RATE_PER_MINUTE", env.int, 10)  # per user, on the Test button
AXES_COOLOFF_TIME = _read("AXES_COOLOFF_MINUTES", env.int, 15) / 60  # hours
# Two locks (docs/security.md, "Sign-in throttling"): one per client address (someone trying many
# names) and one per user name from that address (someone guessing one password). A user's
# failures never lock that user out from other addresses.
AXES_LOCKOUT_PARAMETERS = ["ip_address", ["username", "ip_address"]]
# Behind N reverse proxies that each append to X-Forwarded-For (0: use REMOTE_ADDR). The same
# function gives the audit log its address.
TRUSTED_PROXY_COUNT = _read("TRUSTED_PROXY_COUNT", env.int, 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT is malformed: expected 0 or a positive whole number")
AXES_CLIENT_IP_CALLABLE = "connections.services.audit.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "connections.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {"default": _db_url("DATABASE_URL", f"sqlite:///{VAR_DIR / 'switchboard.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", 0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend whose connections can send the request log row behind (dashboard/pgbackend).
    DATABASES["default"]["ENGINE"] = "dashboard.pgbackend"
# The web server (dashboard/wsgi.py only) keeps each thread's connection this many seconds, checked
# before each request; 0 opens one per request (docs/proxy.md, "Serving").
WEB_CONN_MAX_AGE = _read("WEB_CONN_MAX_AGE", env.int, 60)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # web, worker and beat share the file in the embedded set-up: wait for locks, write-ahead log.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    VAR_DIR.mkdir(exist_ok=True)
# The embedded default's cache is a table in the same SQLite file, so every process sees it
# (created by every `migrate`: connections/apps.py). Production: CACHE_URL=redis://...
CACHES = {"default": _cache_url("CACHE_URL", "dbcache://switchboard_cache")}
# django-environ reads ?key_prefix= from CACHE_URL under a lower-case name Django ignores.
if "key_prefix" in CACHES["default"]:
    CACHES["default"]["KEY_PREFIX"] = CACHES["default"].pop("key_prefix")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The request log's covering index is PostgreSQL's; the embedded SQLite keeps the key columns only.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Where people open Switchboard, e.g. https://switchboard.example.com: the CLI prints full
# set-password links with it (pages use the address they were opened on).
SITE_URL = _read("SITE_URL", env.str, "").rstrip("/")
if SITE_URL and not SITE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"SITE_URL is malformed: expected http(s)://host[:port], got {SITE_URL!r}")
# One-time set-password links (new users, password resets) expire after this many hours.
PASSWORD_RESET_TIMEOUT = _read("SET_PASSWORD_LINK_HOURS", env.int, 24) * 3600
if PASSWORD_RESET_TIMEOUT <= 0:
    raise ImproperlyConfigured("SET_PASSWORD_LINK_HOURS is malformed: expected a whole number of hours, 1 or more")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
TIME_ZONE = _read("TIME_ZONE", env.str, "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Celery: a broker that needs no server by default (kombu's filesystem transport).
CELERY_BROKER_URL = _read("CELERY_BROKER_URL", env.str, "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(_read("BROKER_DIR", env.str, str(VAR_DIR / "broker")))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # Exchange tables (broadcasts, pidbox); kombu's default is ./control in the working directory.
        "control_folder": str(_broker_dir / "control"),
    }
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
CELERY_RESULT_BACKEND = _read("CELERY_RESULT_BACKEND", env.str, "") or None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task is acknowledged when it finishes, and handed back to the queue if the process running it
# dies (SIGKILL, OOM): another process runs it again. Every task is safe to run twice except the
# rotation refresh, which opts out (connections/tasks.py; docs/reliability.md lists which is which).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A message a worker took but never acknowledged (its whole worker was killed) goes back to the
    # queue after this long. Longer than any task runs or waits for its countdown (alert retries wait
    # at most 80 s), so a slow task is never handed to a second worker while the first still runs.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": _read("BROKER_VISIBILITY_TIMEOUT", env.int, 600)}
# Workers outlive a broker restart or outage of any length: reconnect at start-up and forever
# after (the default gives up after 100 tries and the worker exits). bench/soak.py restarts Redis.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_TASK_ALWAYS_EAGER = _bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# HTTPS_ONLY (default on in production): secure cookies, HSTS and redirects to https.
# `make run` serves plain http on 127.0.0.1 and turns it off in its .env.
HTTPS_ONLY = not DEBUG and _bool("HTTPS_ONLY", True)
SESSION_COOKIE_SECURE = HTTPS_ONLY
SECURE_SSL_REDIRECT = HTTPS_ONLY
SECURE_HSTS_SECONDS = _read("SECURE_HSTS_SECONDS", env.int, 31536000) if HTTPS_ONLY else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS_ONLY and _bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = HTTPS_ONLY and _bool("SECURE_HSTS_PRELOAD", True)
if _bool("TRUST_X_FORWARDED_PROTO", False):
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_AGE = _read("SESSION_COOKIE_AGE", env.int, 8 * 3600)
# Signed out after this many minutes without a request (background polls do not count).
SESSION_IDLE_TIMEOUT = _read("SESSION_IDLE_TIMEOUT", env.int, 30) * 60
# Entering or replacing a secret, changing a connection or adding an alert channel needs the
# password entered within this many minutes (dashboard/reauth.py).
REAUTH_MAX_AGE = _read("REAUTH_MINUTES", env.int, 10) * 60
if SESSION_IDLE_TIMEOUT <= 0 or REAUTH_MAX_AGE <= 0:
    raise ImproperlyConfigured("SESSION_IDLE_TIMEOUT and REAUTH_MINUTES must be whole numbers of minutes, 1 or more")
# /metrics answers only requests with `Authorization: Bearer <METRICS_TOKEN>`; unset: no endpoint (404).
METRICS_TOKEN = _read("METRICS_TOKEN", env.str, "")
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_TOKEN is malformed: use at least 16 random characters")
# Admins must enrol a second factor (TOTP) before they can do anything; others may (dashboard/twofactor.py).
SECOND_FACTOR_FOR_ADMINS = _bool("SECOND_FACTOR_FOR_ADMINS", True)
OTP_TOTP_ISSUER = _read("OTP_TOTP_ISSUER", env.str, "Switchboard")
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Alerts by e-mail: EMAIL_URL such as smtp+tls://user:password@mail.example.com:587
# (default: print e-mails to the console, for the embedded set-up).
_email = _read("EMAIL_URL", lambda n, default: env.email_url(n, default=default), "consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "")
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = _read("DEFAULT_FROM_EMAIL", env.str, "switchboard@localhost")

# LOG_FORMAT=json: one JSON object per log line, with request id and connection (dashboard/logformat.py).
LOG_FORMAT = _read("LOG_FORMAT", env.str, "text").strip().lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT is malformed: expected text or json, got {LOG_FORMAT!r}")
LOGGING = logging_config(_read("LOG_LEVEL", env.str, "INFO"), LOG_FORMAT)
if LOG_FORMAT == "json":
    import logging as _logging

    _logging.captureWarnings(True)  # warnings.warn(...) becomes a log line (py.warnings), JSON too
