"""A scripted user of the test authorization server, for tests that need a grant without a browser.

    code, verifier = sign_in_and_authorize(server, "alice", "alice-password-1", redirect_uri=...)
    tokens = exchange_code(server, code, verifier, redirect_uri=...)   # {"access_token", "refresh_token", ...}
    tokens = refresh(server, tokens["refresh_token"])                   # raises nothing: returns (status, body)
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlparse

import requests

from tests.authserver.fixture import CLIENT_ID, CLIENT_SECRET, DEFAULT_REDIRECT_URIS
from tests.authserver.tokenlog import digest  # noqa: F401  (tests compare the token log with it)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def sign_in_and_authorize(server, username: str, password: str, *, client_id: str = CLIENT_ID,
                          redirect_uri: str = DEFAULT_REDIRECT_URIS[0], scope: str = "read",
                          pkce: bool = True) -> tuple[requests.Response, str]:
    """Sign in, open the consent page, press Authorize. Returns (the final response, verifier):
    a 302 to redirect_uri with ?code= when the server agreed, else the error page."""
    s = requests.Session()
    login = s.get(server.url + "/accounts/login/", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    s.post(server.url + "/accounts/login/", data={"username": username, "password": password,
                                                 "csrfmiddlewaretoken": csrf}, timeout=10)
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
              "scope": scope, "state": "st-" + secrets.token_hex(4)}
    if pkce:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    page = s.get(server.authorize_url, params=params, timeout=10, allow_redirects=False)
    if page.status_code != 200 or 'name="allow"' not in page.text:
        return page, verifier
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    fields |= {"csrfmiddlewaretoken": re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1),
               "allow": "Authorize"}
    answer = s.post(server.authorize_url, data=fields, timeout=10, allow_redirects=False)
    return answer, verifier


def code_from(response: requests.Response) -> str:
    return parse_qs(urlparse(response.headers["Location"]).query)["code"][0]


def exchange_code(server, code: str, verifier: str, *, redirect_uri: str = DEFAULT_REDIRECT_URIS[0]) -> dict:
    r = requests.post(server.token_url, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier})
    r.raise_for_status()
    return r.json()


def new_grant(server, username: str = "alice", password: str = "alice-password-1", scope: str = "read") -> dict:
    """A fresh grant for a user: {"access_token", "refresh_token", "expires_in", ...}."""
    answer, verifier = sign_in_and_authorize(server, username, password, scope=scope)
    return exchange_code(server, code_from(answer), verifier)


def refresh(server, refresh_token: str) -> tuple[int, dict]:
    r = requests.post(server.token_url, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10,
                      data={"grant_type": "refresh_token", "refresh_token": refresh_token})
    return r.status_code, r.json()


def call_api(server, access_token: str) -> requests.Response:
    return requests.get(server.url + "/api/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=10)
