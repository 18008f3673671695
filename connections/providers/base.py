"""What every provider declares, and the shared behaviour vendors override in small hooks.

A provider is one module per vendor, registered by key in registry.py. This module
holds the schema types (credential fields, connection options) the vault's forms and
CLI validate against, and the Provider base class.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Field:
    """One field of a credential (stored encrypted, whether secret or not) or of the options."""

    name: str
    label: str
    secret: bool = False
    required: bool = True
    choices: tuple[str, ...] = ()
    default: str | None = None
    help: str = ""


class SchemaError(ValueError):
    """Input that does not match a provider's schema; `errors` maps field name to message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def _clean_fields(fields: tuple[Field, ...], data: object, *, what: str, allow_unknown: bool = False) -> dict:
    if not isinstance(data, dict):
        raise SchemaError({"__all__": f"the {what} must be a JSON object"})
    errors: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    known = {f.name for f in fields}
    for name in data:
        if name not in known and not allow_unknown:
            errors[name] = f"unknown {what} field (expected: {', '.join(sorted(known)) or 'none'})"
    for f in fields:
        value = data.get(f.name)
        if value is None or value == "":
            if f.required and f.default is None:
                errors[f.name] = "this field is required"
            elif f.default is not None:
                cleaned[f.name] = f.default
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            errors[f.name] = "must be a string"
            continue
        value = str(value).strip() if not f.secret else str(value)
        if f.choices and value not in f.choices:
            errors[f.name] = f"must be one of: {', '.join(f.choices)}"
            continue
        if not value.strip():
            errors[f.name] = "this field is required" if f.required else "must not be blank"
            continue
        cleaned[f.name] = value
    if errors:
        raise SchemaError(errors)
    return cleaned


class Provider:
    """Base class. Subclasses set the class attributes and override the hooks that differ."""

    key: str = ""
    label: str = ""
    docs: str = ""  # where the behaviour comes from (shared/VENDORS.md section + vendor URL)
    default_base_url: str = ""
    credential_fields: tuple[Field, ...] = ()
    option_fields: tuple[Field, ...] = ()
    # Rescind-on-refresh vendors (the refresh call invalidates the old secret) set this.
    rescinds_on_refresh: bool = False
    # What the connection test proves, shown on the page next to the result.
    test_proves: str = ""

    # -- schema -------------------------------------------------------------
    def clean_secret(self, data: object) -> dict:
        return _clean_fields(self.credential_fields, data, what="secret")

    def clean_options(self, data: object) -> dict:
        return _clean_fields(self.option_fields, data or {}, what="option")

    def default_options(self) -> dict:
        return {f.name: f.default for f in self.option_fields if f.default is not None}

    def secret_field_names(self) -> list[str]:
        return [f.name for f in self.credential_fields if f.secret]

    def clean_base_url(self, base_url: str) -> str:
        """Syntactic check only (the outbound guard checks addresses at send time)."""
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SchemaError({"base_url": "must be an absolute http(s) URL, e.g. " + (self.default_base_url or "https://api.example.com")})
        if parts.query or parts.fragment:
            raise SchemaError({"base_url": "must not carry a query string or fragment"})
        if parts.username or parts.password:
            raise SchemaError({"base_url": "must not carry credentials; put them in the secret"})
        return base_url.strip().rstrip("/")

    def describe_test(self, options: dict) -> str:
        return self.test_proves

