"""Gunicorn's access log without one-time set-password tokens.

A set-password link (/accounts/set-password/<uid>/<token>/) is as good as a password until it is
used, and access logs are read by more people than the users page is. Every string that goes
into an access-log line (request line, path, referer, headers, environ) has the token replaced.
Used by `manage.py runall`; pass `--logger-class dashboard.gunicorn_logging.RedactingLogger` to
gunicorn when you run it yourself. (The path matches `password_set` in dashboard/urls.py.)
"""

from __future__ import annotations

import re

from gunicorn.glogging import Logger, SafeAtoms

# The form step after the token, /accounts/set-password/<uid>/set-password/, carries no token.
_TOKEN = re.compile(r"(/accounts/set-password/[^/\s?#]+/)(?!set-password/)[^/\s?#]+")


def redact_set_password_tokens(text: str) -> str:
    if "/accounts/set-password/" not in text:
        return text
    return _TOKEN.sub(r"\1[redacted]", text)


class RedactedAtoms(SafeAtoms):
    """The values of one access-log line, redacted as the line's format reads them: a format names
    a few of the request's many atoms (every header and environ entry), so only those are redacted."""

    def __getitem__(self, k):
        value = super().__getitem__(k)
        return redact_set_password_tokens(value) if isinstance(value, str) else value


class RedactingLogger(Logger):
    atoms_wrapper_class = RedactedAtoms
