"""Strict parsing of environment variables for settings.py: a bad value raises
ImproperlyConfigured naming the variable (manage.py prints it as one line), never a traceback
of internals. settings.py reads .env first (environ.Env.read_env), then every variable here."""

from __future__ import annotations

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()


def read(name: str, parse, default):
    """Parse one variable; any failure names the variable, never a traceback of internals."""
    try:
        return parse(name, default=default)
    except ImproperlyConfigured:
        raise
    except Exception as exc:  # environ raises ValueError, KeyError, ... on malformed values
        raise ImproperlyConfigured(f"{name} is malformed: {exc}") from None


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def flag(name: str, default: bool) -> bool:
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} is malformed: expected true or false, got {raw!r}")


def db_url(name: str, default: str) -> dict:
    raw = env.str(name, default=default)
    if "://" not in raw:
        raise ImproperlyConfigured(f"{name} is malformed: expected a URL such as postgres://user@host:5432/db")
    scheme = raw.split("://", 1)[0]
    if scheme not in environ.Env.DB_SCHEMES:
        raise ImproperlyConfigured(f"{name} is malformed: unknown database scheme {scheme!r} (use postgres:// or sqlite://)")
    config = read(name, lambda n, default: env.db_url_config(raw), None)
    if not config.get("ENGINE"):
        raise ImproperlyConfigured(f"{name} is malformed: unknown database scheme in {raw.split('://')[0]!r}")
    if config["ENGINE"] != "django.db.backends.sqlite3" and not config.get("NAME"):
        raise ImproperlyConfigured(f"{name} is malformed: no database name")
    return config


def cache_url(name: str, default: str) -> dict:
    raw = env.str(name, default=default)
    if "://" not in raw:
        raise ImproperlyConfigured(f"{name} is malformed: expected a URL such as redis://127.0.0.1:6379/0")
    return read(name, lambda n, default: env.cache_url_config(raw), None)


def role_map(name: str) -> dict[str, str]:
    """OIDC_ROLE_MAP="ops-admins=admin,ops=operator,staff=viewer": provider group -> role."""
    mapping = {}
    for item in filter(None, (part.strip() for part in env.str(name, default="").split(","))):
        group, sep, role = item.rpartition("=")
        if not sep or not group.strip() or role.strip() not in ("viewer", "operator", "admin"):
            raise ImproperlyConfigured(f"{name} is malformed: expected group=role pairs (roles viewer, operator, "
                                       f"admin) separated by commas, got {item!r}")
        mapping[group.strip()] = role.strip()
    return mapping
