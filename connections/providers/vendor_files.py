"""Declarative vendor files: YAML read safely, checked field by field, errors by line.

A file in PROVIDERS_DIR describes one vendor (docs/providers.md, "Declarative vendors"):
key, name, allowed hosts, auth scheme, test requests, error envelope, rate limits, retries.
`load_text()` turns a file's text into a `Definition` or a list of `Problem`s, each with the
line and the field it is about (yaml marks), so an admin can fix the file without guessing.
Nothing here does I/O beyond reading the text it is given; no Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .yaml_lines import Fields, Lined, Problem, parse_yaml, plain

KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")  # Connection.provider is 32 characters
HOST_RE = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
HEADER_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
SCHEMES = ("basic", "bearer", "api_key", "oauth2_client_credentials", "oauth2_refresh")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
SCOPES = ("token", "egress_ip")
SECRET_HEADER = re.compile(r"(token|secret|password|passwd|api[-_]?key|auth|session|signature)", re.I)
RESERVED_KEYS = ("oauth2",)  # the generic OAuth 2.0 provider (issue 15)

__all__ = ["Definition", "Problem", "host_allowed", "load_text"]


@dataclass(frozen=True)
class Auth:
    scheme: str
    header: str = "Authorization"
    prefix: str = "Bearer"
    param_in: str = "header"  # api_key: header or query
    param_name: str = ""
    label: str = ""
    help: str = ""
    username_label: str = "User name"
    password_label: str = "Password"
    username_secret: bool = False
    password_required: bool = True
    token_url: str = ""
    authorize_url: str = ""
    scope: str = ""
    client_auth: str = "basic"
    probe: str = "none"  # oauth2_refresh: "access_token" when the server revokes it on rotation


@dataclass(frozen=True)
class TestRequest:
    method: str
    path: str
    proves: str
    params: dict = field(default_factory=dict)
    json: Any = None


@dataclass(frozen=True)
class Envelope:
    code: tuple[str, ...] = ()
    message: tuple[str, ...] = ()
    request_id: tuple[str, ...] = ()
    request_id_headers: tuple[str, ...] = ()
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RateLimits:
    limit_header: str = "X-RateLimit-Limit"
    remaining_header: str = "X-RateLimit-Remaining"
    reset_header: str = "X-RateLimit-Reset"
    reset_format: str = "auto"  # epoch | seconds | auto (small numbers are seconds)
    bucket_header: str = ""
    used_header: str = ""
    per_second: int | None = None
    per_minute: int | None = None
    per_hour: int | None = None
    concurrency: int | None = None
    scope: str = "token"
    limited_statuses: tuple[int, ...] = (429,)
    note: str = ""


@dataclass(frozen=True)
class Retry:
    statuses: tuple[int, ...] = (500, 502, 503, 504)
    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    jitter: bool = True
    network: bool = True
    on_rate_limit: bool = True
    error_codes: tuple[str, ...] = ()
    should_retry_header: str = ""


@dataclass(frozen=True)
class Definition:
    key: str
    name: str
    allowed_hosts: tuple[str, ...]
    auth: Auth
    tests: tuple[TestRequest, ...]
    docs: str = ""
    default_base_url: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    expect: tuple[str, ...] = ("application/json",)
    auth_failure_statuses: tuple[int, ...] = (401,)
    errors: Envelope = Envelope()
    rate_limit: RateLimits = RateLimits()
    retry: Retry = Retry()




def _pointer_ok(p: str) -> bool:
    """RFC 6901: empty, or "/" segments with ~0 and ~1 the only escapes."""
    return p == "" or (p.startswith("/") and not re.search(r"~[^01]|~$", p))


def _pointers(c: Fields, name: str) -> tuple[str, ...]:
    out = []
    for i, item in enumerate(c.items(name)):
        v = item.value
        if not isinstance(v, str) or not _pointer_ok(v):
            c.problems.append(Problem(item.line, f"{c._f(name)}" + (f"[{i}]" if c.map[name].value is not v else ""),
                                      f"{v!r} is not a JSON pointer (RFC 6901), e.g. /error/message"))
        else:
            out.append(v)
    return tuple(out)


def _auth(c: Fields, hosts: tuple[str, ...]) -> Auth:
    a = c.sub("auth", ("scheme", "header", "prefix", "in", "name", "label", "help", "username_label",
                       "password_label", "username_secret", "password_required", "token_url", "authorize_url",
                       "scope", "client_auth", "probe"))
    scheme = a.text("scheme", required=True, choices=SCHEMES)
    kw: dict[str, Any] = {"scheme": scheme or "bearer", "label": a.text("label", limit=100),
                          "help": a.text("help", limit=300)}
    if scheme == "bearer":
        kw["header"] = a.text("header", "Authorization", pattern=HEADER_RE)
        kw["prefix"] = a.text("prefix", "Bearer", limit=40)
    elif scheme == "api_key":
        kw["param_in"] = a.text("in", "header", choices=("header", "query"))
        kw["param_name"] = a.text("name", required=True, pattern=HEADER_RE, limit=100)
        kw["prefix"] = a.text("prefix", "", limit=40)
    elif scheme == "basic":
        kw["username_label"] = a.text("username_label", "User name", limit=100)
        kw["password_label"] = a.text("password_label", "Password", limit=100)
        kw["username_secret"] = a.flag("username_secret", False)
        kw["password_required"] = a.flag("password_required", True)
    elif scheme in ("oauth2_client_credentials", "oauth2_refresh"):
        kw["token_url"] = a.text("token_url", required=True, limit=1000)
        kw["authorize_url"] = a.text("authorize_url", limit=1000)
        kw["scope"] = a.text("scope", limit=1000)
        kw["client_auth"] = a.text("client_auth", "basic", choices=("basic", "post"))
        kw["probe"] = a.text("probe", "none", choices=("none", "access_token"))
        for name in ("token_url", "authorize_url"):
            url = kw[name]
            if url and not re.match(r"^https://[^/?#\s@]+(/[^#\s]*)?$", url):
                a.fail(name, "must be an https URL, e.g. https://auth.example.com/oauth/token")
            elif url and hosts and not host_allowed(re.sub(r"^https://([^/:?]+).*$", r"\1", url).lower(), hosts):
                a.fail(name, f"its host is not one of allowed_hosts ({', '.join(hosts)})")
    extra = {"header", "prefix", "in", "name", "username_label", "password_label", "username_secret",
             "password_required", "token_url", "authorize_url", "scope", "client_auth", "probe"}
    used = {"bearer": {"header", "prefix"}, "api_key": {"in", "name", "prefix"},
            "basic": {"username_label", "password_label", "username_secret", "password_required"},
            "oauth2_client_credentials": {"token_url", "scope", "client_auth"},
            "oauth2_refresh": {"token_url", "authorize_url", "scope", "client_auth", "probe"}}.get(scheme, extra)
    for name in sorted(extra - used):
        if a.has(name):
            a.fail(name, f"does not apply to the {scheme} scheme")
    return Auth(**kw)


def _tests(c: Fields) -> tuple[TestRequest, ...]:
    items = c.items("tests")
    if not items:
        c.fail("tests", "at least one test request is required (method, path, proves)", c.node.line)
    out = []
    for i, item in enumerate(items[:5]):
        t = Fields(c.problems, item, f"tests[{i}]", ("method", "path", "proves", "params", "json"))
        method = t.text("method", "GET", choices=METHODS).upper()
        path = t.text("path", required=True, limit=500)
        if path and (not path.startswith("/") or "://" in path):
            t.fail("path", "must be a path relative to the base URL, starting with /")
        proves = t.text("proves", required=True, limit=300)
        params = plain(t.map["params"]) if t.has("params") else {}
        if not isinstance(params, dict) or not all(isinstance(v, str | int) for v in params.values()):
            t.fail("params", "must map names to text values")
            params = {}
        body = plain(t.map["json"]) if t.has("json") else None
        if method in ("POST", "PATCH", "DELETE", "PUT"):
            t.fail("method", f"a test must not change anything at the vendor: use GET or HEAD, not {method}")
        out.append(TestRequest(method=method, path=path, proves=proves,
                               params={k: str(v) for k, v in params.items()}, json=body))
    if len(items) > 5:
        c.fail("tests", "at most five test requests")
    return tuple(out)


def _envelope(c: Fields) -> Envelope:
    e = c.sub("errors", ("code", "message", "request_id", "request_id_header", "details"))
    details = []
    if e.has("details"):
        d = e.sub("details", tuple(e.map["details"].value) if isinstance(e.map["details"].value, dict) else ())
        for name in d.map:
            ptr = _pointers(d, name)
            if ptr:
                details.append((name, ptr[0]))
    return Envelope(code=_pointers(e, "code"), message=_pointers(e, "message"),
                    request_id=_pointers(e, "request_id"),
                    request_id_headers=e.texts("request_id_header", pattern=HEADER_RE, what="a header name"),
                    details=tuple(details))


def _rate_limit(c: Fields) -> RateLimits:
    r = c.sub("rate_limit", ("headers", "limits", "limited_statuses", "note"))
    h = r.sub("headers", ("limit", "remaining", "reset", "reset_format", "bucket", "used"))
    lim = r.sub("limits", ("per_second", "per_minute", "per_hour", "concurrency", "scope"))
    per_minute, per_hour = lim.integer("per_minute"), lim.integer("per_hour")
    if per_minute and per_hour:
        lim.fail("per_hour", "give per_minute or per_hour, not both (the limiter keeps one window per vendor; "
                             "choose the one you reach first)")
    statuses = r.statuses("limited_statuses", (429,))
    return RateLimits(
        limit_header=h.text("limit", "X-RateLimit-Limit", pattern=HEADER_RE),
        remaining_header=h.text("remaining", "X-RateLimit-Remaining", pattern=HEADER_RE),
        reset_header=h.text("reset", "X-RateLimit-Reset", pattern=HEADER_RE),
        reset_format=h.text("reset_format", "auto", choices=("auto", "epoch", "seconds")),
        bucket_header=h.text("bucket", "", pattern=HEADER_RE),
        used_header=h.text("used", "", pattern=HEADER_RE),
        per_second=lim.integer("per_second", high=100_000), per_minute=per_minute, per_hour=per_hour,
        concurrency=lim.integer("concurrency", high=10_000),
        scope=lim.text("scope", "token", choices=SCOPES),
        limited_statuses=tuple(sorted(set(statuses) | {429})),
        note=r.text("note", limit=500),
    )


def _retry(c: Fields) -> Retry:
    r = c.sub("retry", ("statuses", "max_attempts", "backoff", "retry_after", "network", "error_codes",
                        "should_retry_header"))
    b = r.sub("backoff", ("base", "cap", "jitter"))
    statuses = r.statuses("statuses", (500, 502, 503, 504))
    if 401 in statuses:
        r.fail("statuses", "401 is never retried: vendors lock accounts after a few failed logins")
        statuses = tuple(s for s in statuses if s != 401)
    return Retry(statuses=statuses, max_attempts=r.integer("max_attempts", 5, high=10) or 5,
                 backoff_base=b.number("base", 1.0, low=0.0, high=60.0),
                 backoff_cap=b.number("cap", 30.0, low=0.0, high=600.0), jitter=b.flag("jitter", True),
                 network=r.flag("network", True), on_rate_limit=r.flag("retry_after", True),
                 error_codes=r.texts("error_codes"),
                 should_retry_header=r.text("should_retry_header", "", pattern=HEADER_RE))


TOP = ("key", "name", "docs", "base_url", "allowed_hosts", "auth", "headers", "expect", "tests", "errors",
       "rate_limit", "retry", "auth_failure_statuses")


def check(tree: Lined, problems: list[Problem]) -> Definition | None:
    c = Fields(problems, tree, "", TOP)
    key = c.text("key", required=True, pattern=KEY_RE, limit=32,
                 hint="2 to 32 lowercase letters, digits, - or _, starting with a letter (e.g. github)")
    if key in RESERVED_KEYS:
        c.fail("key", f"{key!r} is reserved for the generic OAuth 2.0 provider")
    name = c.text("name", required=True, limit=100)
    hosts = c.texts("allowed_hosts", pattern=HOST_RE, what="a host name (api.example.com or *.example.com)")
    if not c.items("allowed_hosts"):
        c.fail("allowed_hosts", "is required: the hosts this vendor's secrets may be sent to", c.node.line)
    base_url = c.text("base_url", limit=500)
    if base_url and not re.match(r"^https://[^/?#\s]+(/[^?#\s]*)?$", base_url):
        c.fail("base_url", "must be an https URL without query or fragment, e.g. https://api.example.com")
    elif base_url and hosts and not host_allowed(re.sub(r"^https://([^/:]+).*$", r"\1", base_url).lower(), hosts):
        c.fail("base_url", f"its host is not one of allowed_hosts ({', '.join(hosts)})")
    headers = []
    if c.has("headers"):
        h = c.map["headers"]
        if not isinstance(h.value, dict):
            c.fail("headers", "must map header names to values")
        else:
            for hname, hval in h.value.items():
                if not HEADER_RE.match(hname) or hname.lower() in ("authorization", "cookie", "host"):
                    problems.append(Problem(hval.line, f"headers.{hname}", "not a header Switchboard lets a "
                                            "definition set (Authorization comes from the auth scheme)"))
                elif SECRET_HEADER.search(hname):
                    # A definition is not secret (shown, audited, logged): credentials belong in the
                    # connection's encrypted secret.
                    problems.append(Problem(hval.line, f"headers.{hname}", "looks like a credential: use auth "
                                            "(scheme: api_key, in: header, name: " + hname + ") so it is stored "
                                            "encrypted and redacted"))
                elif isinstance(hval.value, bool) or not isinstance(hval.value, str | int | float) \
                        or any(ch in str(hval.value) for ch in "\r\n\x00"):
                    problems.append(Problem(hval.line, f"headers.{hname}", "must be one line of text"))
                else:
                    headers.append((hname, str(hval.value)))
    expect = c.texts("expect") or ("application/json",)
    parts = dict(
        key=key, name=name, allowed_hosts=hosts, auth=_auth(c, hosts), tests=_tests(c), docs=c.text("docs", limit=500),
        default_base_url=base_url, headers=tuple(headers), expect=expect,
        auth_failure_statuses=c.statuses("auth_failure_statuses", (401,)) or (401,),
        errors=_envelope(c), rate_limit=_rate_limit(c), retry=_retry(c),
    )
    return None if problems else Definition(**parts)


def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for p in patterns:
        if p.startswith("*."):
            if host.endswith(p[1:]) and host != p[2:]:
                return True
        elif host == p:
            return True
    return False


def load_text(text: str) -> tuple[Definition | None, list[Problem]]:
    """(the definition, []) or (None, its problems sorted by line)."""
    tree, problems = parse_yaml(text)
    if tree is None or not isinstance(tree.value, dict):
        return None, problems
    definition = check(tree, problems)
    return (definition, []) if definition is not None else (None, sorted(problems, key=lambda p: (p.line or 0)))
