"""The identity provider's discovery document, for single sign-on (dashboard/sso.py).

The provider's address comes from the operator's environment (OIDC_OP_DISCOVERY_URL), not from
a page, so it is not put through the egress guard that vendor URLs pass; no credential is sent.
mozilla-django-oidc makes the token, userinfo and JWKS requests itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests


class IdpUnreachable(Exception):
    """The document could not be read: a category and the host, never the answer's text."""


def fetch_json(url: str, *, timeout: float) -> dict:
    try:
        response = requests.get(url, timeout=timeout, allow_redirects=False)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise IdpUnreachable(f"{type(exc).__name__} from {urlsplit(url).hostname}") from None
    if not isinstance(document, dict):
        raise IdpUnreachable(f"no JSON object from {urlsplit(url).hostname}")
    return document
