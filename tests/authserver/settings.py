"""Settings of the test authorization server (django-oauth-toolkit), a project of its own.

Everything comes from the environment (see README.md in this folder); `serve` sets the data
directory and generates the RSA key before Django starts.
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("AUTHSERVER_DATA_DIR") or HERE / "var")


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


SECRET_KEY = os.environ.get("AUTHSERVER_SECRET_KEY") or "authserver-tests-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ROOT_URLCONF = "tests.authserver.urls"
WSGI_APPLICATION = None
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oauth2_provider",
    "tests.authserver",
]
MIDDLEWARE = [
    "tests.authserver.views.TokenLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [HERE / "templates"],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
    ]},
}]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": DATA_DIR / "authserver.sqlite3",
    "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # test server: fast sign-in
# Switchboard runs on 127.0.0.1 too, on another port: cookies do not separate ports, so names differ.
SESSION_COOKIE_NAME = "authserver_sessionid"
CSRF_COOKIE_NAME = "authserver_csrftoken"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/api/me"

OAUTH2_PROVIDER = {
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "ACCESS_TOKEN_EXPIRE_SECONDS": _int("AUTHSERVER_ACCESS_TOKEN_SECONDS", 60),
    "REFRESH_TOKEN_EXPIRE_SECONDS": _int("AUTHSERVER_REFRESH_TOKEN_SECONDS", 86400),
    "PKCE_REQUIRED": True,
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": os.environ.get("AUTHSERVER_RSA_KEY", ""),
    "OAUTH2_VALIDATOR_CLASS": "tests.authserver.validators.Validator",
    "SCOPES": {
        "openid": "Sign you in (OpenID Connect)",
        "profile": "Your name",
        "email": "Your e-mail address",
        "groups": "Your groups",
        "read": "Read your data",
        "write": "Change your data",
    },
    "DEFAULT_SCOPES": ["read"],
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR"}},
}
