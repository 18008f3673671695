"""The field schema providers declare: credential fields (which are secret) and connection
options, and how input is checked against them. The vault's forms, the CLI and imports all
validate through these functions (Provider.clean_secret / clean_options call them). Bad input
raises Django's ValidationError with a field dict ({field name: message}).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError


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


def error_text(exc: ValidationError) -> str:
    """A ValidationError on one line, "field: message; ..." (the CLI, flash messages)."""
    if not hasattr(exc, "error_dict"):
        return " ".join(exc.messages)
    return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())


def error_messages(exc: ValidationError) -> dict[str, str]:
    """A ValidationError's field dict with each field's messages joined (to merge into another)."""
    if not hasattr(exc, "error_dict"):
        return {"__all__": " ".join(exc.messages)}
    return {k: " ".join(v) for k, v in exc.message_dict.items()}


def clean_fields(fields: tuple[Field, ...], data: object, *, what: str, allow_unknown: bool = False) -> dict:
    if not isinstance(data, dict):
        raise ValidationError({"__all__": f"the {what} must be a JSON object"})
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
        if any(ch in value for ch in "\x00\r\n"):
            # They cannot travel in an HTTP header, and PostgreSQL refuses NUL in text.
            errors[f.name] = "must not contain NUL or line breaks"
            continue
        cleaned[f.name] = value
    if errors:
        raise ValidationError(errors)
    return cleaned


# The largest credential field accepted (settings.SECRET_MAX_FIELD_BYTES overrides it): no vendor
# issues larger secrets, and a 5 MB "token" would be stored, sent as a 5 MB header and searched
# for in every log text.
SECRET_MAX_FIELD_BYTES = 16 * 1024


def secret_max_field_bytes() -> int:
    try:
        from django.conf import settings

        return int(getattr(settings, "SECRET_MAX_FIELD_BYTES", SECRET_MAX_FIELD_BYTES))
    except Exception:  # outside Django (the sandbox, a bare script): the default
        return SECRET_MAX_FIELD_BYTES


def check_secret_sizes(fields: tuple[Field, ...], data: object) -> None:
    """ValidationError naming every credential field larger than the limit, before anything else
    looks at it."""
    if not isinstance(data, dict):
        return
    limit = secret_max_field_bytes()
    errors = {}
    for f in fields:
        value = data.get(f.name)
        size = len(value.encode("utf-8", "surrogatepass")) if isinstance(value, str) else 0
        if size > limit:
            errors[f.name] = (f"is too long: {size:,} bytes; a credential field holds at most {limit:,} bytes "
                              "(setting SECRET_MAX_FIELD_BYTES). Nothing was stored.")
    if errors:
        raise ValidationError(errors)
