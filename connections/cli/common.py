"""Shared pieces of the CLI verbs: reading secrets from stdin, printing, the list/show shape."""

from __future__ import annotations

import json
from typing import IO

from ..models import Connection
from ..selectors import active_of
from . import BAD_INPUT


class CLIError(Exception):
    """A message for the operator, the exit code that goes with it, and a short machine-readable
    name for `--json` errors ({"error": {"code": name, "message": ...}})."""

    def __init__(self, message: str, code: int = BAD_INPUT, name: str = "bad_input"):
        super().__init__(message)
        self.code = code
        self.name = name


def read_secret(stdin: IO[str]) -> dict:
    """The secret as a JSON object on standard input (never from arguments: they leak into ps and shell history)."""
    if stdin is None or stdin.isatty():
        raise CLIError("expected the secret as a JSON object on standard input, e.g. < secret.json")
    raw = stdin.read()
    if not raw.strip():
        raise CLIError("standard input is empty: expected the secret as a JSON object")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        # The position only: echoing the input could print the secret.
        raise CLIError(f"standard input is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise CLIError("standard input must be a JSON object, e.g. {\"token\": \"...\"}")
    return data


def parse_options(pairs: list[str] | None) -> dict:
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--option takes KEY=VALUE, got {pair!r}")
        options[key.strip()] = value
    return options


def get_connection(name: str) -> Connection:
    connection = Connection.objects.filter(name=name).first()
    if connection is None:
        archived = Connection.with_archived.filter(name=name).values_list("archived_at", flat=True).first()
        if archived is not None:
            raise CLIError(f"{name!r} was archived on {archived:%Y-%m-%d %H:%M} UTC: it is read-only; its history is "
                           "on its page, in the request log and in the audit trail")
        raise CLIError(f"no connection named {name!r} (see `connections list`)")
    return connection


def iso(value) -> str | None:
    return value.isoformat() if value else None


def connection_summary(c: Connection) -> dict:
    cred = active_of(c)
    return {
        "name": c.name,
        "provider": c.provider,
        "base_url": c.base_url,
        "enabled": c.enabled,
        "health": c.health,
        "health_reason": c.health_reason,
        "last_test_at": iso(c.last_test_at),
        "last_ok_at": iso(c.last_ok_at),
        "tests_paused": c.tests_paused,
        "credential_version": cred.version if cred else None,
        "credential_fingerprint": cred.fingerprint if cred else None,
        "rate_limit": {
            "limit": c.rl_limit,
            "remaining": c.rl_remaining,
            "reset_at": iso(c.rl_reset_at),
            "blocked_until": iso(c.blocked_until),
        },
    }


def dump(obj, stdout: IO[str]) -> None:
    stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
