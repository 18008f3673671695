"""The protected API (what an oauth2 connection's test_path calls) and the token-endpoint log."""

from __future__ import annotations

import fcntl
import json
import time

from django.conf import settings
from django.http import JsonResponse
from oauth2_provider.oauth2_backends import get_oauthlib_core

from tests.authserver.tokenlog import digest


def me(request):
    """401 with WWW-Authenticate (RFC 6750 §3) unless the bearer token is valid."""
    valid, oauth_request = get_oauthlib_core().verify_request(request, scopes=[])
    if not valid:
        return JsonResponse({"error": "invalid_token"}, status=401,
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    token = oauth_request.access_token
    user = token.user
    return JsonResponse({
        "client_id": token.application.client_id,
        "username": user.get_username() if user else None,
        "groups": sorted(user.groups.values_list("name", flat=True)) if user else [],
        "scope": token.scope,
        "expires": token.expires.isoformat(),
    })


def health(request):
    return JsonResponse({"ok": True})


class TokenLogMiddleware:
    """Appends one JSON line per /o/token/ request to DATA_DIR/token-log.jsonl.

    Tests read it to prove refreshes reached the server one at a time (start/end overlap),
    which presented refresh tokens were rejected, and that no rotated token was replayed.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path != "/o/token/":
            return self.get_response(request)
        started = time.time()
        grant_type = request.POST.get("grant_type", "")
        presented = digest(request.POST.get("refresh_token", ""))
        response = self.get_response(request)
        try:
            body = json.loads(response.content or b"{}")
        except ValueError:
            body = {}
        row = {
            "start": started, "end": time.time(), "grant_type": grant_type, "status": response.status_code,
            "error": body.get("error", ""), "presented": presented,
            "issued": digest(body.get("refresh_token", "")),
        }
        with open(settings.DATA_DIR / "token-log.jsonl", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(json.dumps(row) + "\n")
        return response
