"""The one way out, at the socket level: vendor calls (outbound/client.py, attempt.py) and webhooks
(alerts/channels/webhook.py) both send through `prepare()` and `send()`, and turn failures into words
with `classify()`. No module outside connections/outbound/ imports requests (import-linter checks it).

- Pinned connections: urllib3's connection classes are subclassed so that opening a socket
  resolves the host with `guard.resolve()` (EVERY address checked) and connects to one of the
  checked addresses, never to a second DNS answer. The name stays on the connection, so SNI,
  certificate verification and the Host header use it. A refused address raises guard.Refused
  before any socket exists; urllib3 does not wrap it, so it reaches the caller as it is.
- No redirects (callers pass allow_redirects=False; urllib3 is never asked to follow), no proxy
  and no ~/.netrc from the environment (trust_env off; the adapter refuses proxies outright), no
  cookies kept between requests.
- Failures become a Failure: a category (refused, dns, connect, tls, timeout, reset, request), a
  code for the request log, and a message made of the category, the host and a fixed phrase.
  Never str(exc): library texts carry URLs (a webhook's secret path) and request details.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache

import requests
from django.conf import settings
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.connection import _set_socket_options
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from ..models import Outcome
from . import guard

USER_AGENT = "Switchboard/0.1 (+connections dashboard)"


# ----------------------------------------------------------------------------- pinned sockets


class _Pinned:
    """Mixin for urllib3's HTTP(S)Connection: connect only to addresses the guard checked."""

    scheme = "http"
    pinned_address = ""

    def getresponse(self, *args, **kwargs):
        # The request is out: the caller's `meanwhile` (send()) runs while the vendor answers.
        meanwhile = getattr(_local, "meanwhile", None)
        if meanwhile is not None:
            _local.meanwhile = None
            meanwhile()
        return super().getresponse(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        refusal = guard.scheme_refusal(self.scheme, self.host)
        if refusal is not None:
            raise guard.Refused(refusal)
        try:
            addresses = guard.resolve(self._dns_host, self.port)
        except (socket.gaierror, UnicodeError) as exc:
            raise NameResolutionError(self.host, self, socket.gaierror(str(exc))) from None
        err: OSError | None = None
        for family, sockaddr in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                _set_socket_options(sock, self.socket_options)
                if self.timeout is not _DEFAULT_TIMEOUT:
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                err = exc
                continue
            self.pinned_address = sockaddr[0]
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        if isinstance(err, TimeoutError):
            raise ConnectTimeoutError(self, f"connection to {self.host} timed out") from err
        raise NewConnectionError(self, f"could not connect to {self.host}") from err


class PinnedHTTPConnection(_Pinned, HTTPConnection):
    scheme = "http"


class PinnedHTTPSConnection(_Pinned, HTTPSConnection):
    scheme = "https"


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = PinnedHTTPSConnection


class PinnedAdapter(HTTPAdapter):
    """requests' adapter with pinned connection pools, no proxies and no cookie jar."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PinnedHTTPPool, "https": _PinnedHTTPSPool}

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise guard.Refused(guard.Refusal("outbound_refused", "refused: outbound requests never go through a proxy"))

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        """requests' pool lookup (a pool key of some thirty fields built and normalised per
        request), remembered per origin and TLS settings; a pool the manager closed since (it keeps
        pool_connections pools) is looked up again."""
        url = request.url
        end = url.find("/", url.find("://") + 3)
        key = (url if end < 0 else url[:end], verify if isinstance(verify, str) else bool(verify), cert)
        pools = self.__dict__.setdefault("_pools", {})
        pool = pools.get(key)
        if pool is None or pool.pool is None:
            pool = super().get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
            if len(pools) >= 64:
                pools.clear()
            pools[key] = pool
        return pool

    def request_url(self, request, proxies) -> str:
        # Never through a proxy (proxy_manager_for refuses): the path and query, as requests
        # sends them to an origin.
        return request.path_url

    def build_response(self, req, resp) -> requests.Response:
        """requests' own build_response without the cookie jar: requests parses every Set-Cookie
        into one, and Switchboard never replays a vendor's cookies (the header stays in headers)."""
        response = requests.Response()
        response.status_code = getattr(resp, "status", None)
        response.headers = requests.structures.CaseInsensitiveDict(getattr(resp, "headers", {}))
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url.decode("utf-8") if isinstance(req.url, bytes) else req.url
        response.request = req
        response.connection = self
        return response


_local = threading.local()
# What a requests.Session would add to every request (trust_env off, no cookies, no auth), merged
# once: the session's own merging of settings, cookies and hooks cost more than the HTTP itself.
DEFAULT_HEADERS = {**requests.utils.default_headers(), "User-Agent": USER_AGENT}
# Certificates are verified against the system's (certifi's) authorities; tests point it at their own CA.
VERIFY: bool | str = True


def _adapter() -> PinnedAdapter:
    """One adapter (its keep-alive pools) per thread, as the session was."""
    current = getattr(_local, "adapter", None)
    if current is None:
        current = _local.adapter = PinnedAdapter(pool_connections=8, pool_maxsize=8, max_retries=0)
    return current


def prepare(method: str, url: str, *, headers: dict | None = None, params: dict | None = None, json=None,
            data=None) -> requests.PreparedRequest:
    """A request as requests.Session would prepare it (its default headers, a header given as None
    removed, user:password in the URL as Basic auth), without the session: no environment (proxies,
    ~/.netrc), no cookies, no hooks. The steps are requests' own, less its cookie jar."""
    merged = requests.structures.CaseInsensitiveDict(DEFAULT_HEADERS)
    for name, value in (headers or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    prepared = requests.PreparedRequest()
    prepared.prepare_method(method)
    if params:
        prepared.prepare_url(url, params)
        userinfo = True  # (looked for by prepare_auth below)
    else:
        prepared.url, userinfo = _prepared_url(url)
    prepared.prepare_headers(merged)
    prepared.prepare_body(data, None, json)
    if userinfo:
        prepared.prepare_auth(None, prepared.url)
    prepared.prepare_hooks({})
    return prepared


@lru_cache(maxsize=1024)
def _prepared_url(url: str) -> tuple[str, bool]:
    """requests' URL preparation (IDNA host, quoting) and whether it carries user:password,
    remembered: a connection sends to the same few URLs again and again."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.url, any(requests.utils.get_auth_from_url(prepared.url))


def send(prepared: requests.PreparedRequest, *, timeout: tuple[float, float], stream: bool = True,
         meanwhile=None) -> requests.Response:
    """Send through this thread's pinned adapter; never follows a redirect (the adapter does not).
    `meanwhile()` (it must not raise) runs once the request is written, while the vendor answers;
    not at all when no request was written."""
    _local.meanwhile = meanwhile
    try:
        return _adapter().send(prepared, stream=stream, timeout=timeout, verify=VERIFY)
    finally:
        _local.meanwhile = None


# ----------------------------------------------------------------------------- failures


@dataclass(frozen=True)
class Failure:
    category: str  # refused | dns | connect | tls | timeout | reset | request
    code: str  # the request log's error_code
    outcome: str
    maybe_delivered: bool
    message: str


class TransportError(Exception):
    """A failure of a webhook delivery; str() is the Failure's safe message."""

    def __init__(self, failure: Failure):
        super().__init__(failure.message)
        self.failure = failure


def _chain(exc: BaseException) -> list[BaseException]:
    """exc and every exception it wraps (causes, contexts, urllib3's `reason`, exceptions in args).
    `reason` is followed only when it is an exception: ssl.SSLError.reason is a string."""
    seen: set[int] = set()
    out: list[BaseException] = []
    stack: list[object] = [exc]
    while stack:
        e = stack.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        out.append(e)
        stack.extend([getattr(e, "reason", None), e.__cause__, e.__context__])
        stack.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
    return out


# OpenSSL verify codes -> what an operator can act on.
_VERIFY = {
    10: "its certificate has expired",
    18: "its certificate is self-signed",
    19: "its certificate chain ends in a self-signed certificate",
    20: "its certificate is issued by an unknown authority",
    21: "its certificate is issued by an unknown authority",
    62: "its certificate is not valid for this host name",
    64: "its certificate is not valid for this IP address",
}
_NOT_TLS = {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG",
            "UNKNOWN_PROTOCOL", "RECORD_TOO_LARGE"}


def _tls_phrase(chain: list[BaseException]) -> str:
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            return _VERIFY.get(getattr(e, "verify_code", 0) or 0, "its certificate is not trusted")
        if isinstance(e, ssl.CertificateError):
            return "its certificate is not valid for this host name"
    for e in chain:
        if isinstance(e, ssl.SSLEOFError):
            return "it closed the connection during the handshake"
        reason = getattr(e, "reason", None) if isinstance(e, ssl.SSLError) else None
        if isinstance(reason, str):
            if reason in _NOT_TLS:
                return "it did not answer in TLS (plain http on an https port?)"
            if "PROTOCOL_VERSION" in reason or "UNSUPPORTED_PROTOCOL" in reason:
                return "no TLS version in common"
            if "HANDSHAKE_FAILURE" in reason or "NO_SHARED_CIPHER" in reason:
                return "it refused the handshake (no cipher in common?)"
    return "the handshake failed"


def _errno_phrase(chain: list[BaseException]) -> str:
    for e in chain:
        if isinstance(e, OSError) and not isinstance(e, ssl.SSLError) and e.errno in errno.errorcode:
            return os.strerror(e.errno).lower()
    return ""


def classify(exc: BaseException, host: str) -> Failure:
    """A transport exception as a Failure whose message names only the category and the host."""
    chain = _chain(exc)

    def has(*kinds: type) -> bool:
        return any(isinstance(e, kinds) for e in chain)

    network, timeout = Outcome.NETWORK_ERROR, Outcome.TIMEOUT
    refused = next((e for e in chain if isinstance(e, guard.Refused)), None)
    if refused is not None:
        return Failure("refused", refused.refusal.code, network, False, refused.refusal.message)
    if has(NameResolutionError, socket.gaierror):
        return Failure("dns", "dns_failed", network, False, f"dns: could not resolve {host} (the request was not sent)")
    if has(NewConnectionError):  # (a subclass of ConnectTimeoutError in urllib3)
        why = _errno_phrase(chain)
        return Failure("connect", "connect_failed", network, False,
                       f"connect: could not connect to {host}{f' ({why})' if why else ''} (the request was not sent)")
    if isinstance(exc, requests.exceptions.ConnectTimeout) or has(ConnectTimeoutError):
        return Failure("timeout", "connect_timeout", timeout, False,
                       f"timeout: no connection to {host} within {settings.OUTBOUND_CONNECT_TIMEOUT:g} s "
                       "(the request was not sent)")
    if isinstance(exc, requests.exceptions.ReadTimeout) or has(ReadTimeoutError, TimeoutError):
        return Failure("timeout", "read_timeout", timeout, True,
                       f"timeout: no answer from {host} within {settings.OUTBOUND_READ_TIMEOUT:g} s; "
                       "the vendor may have processed the request")
    if isinstance(exc, requests.exceptions.SSLError) or has(ssl.SSLError, ssl.CertificateError):
        return Failure("tls", "tls_error", network, False,
                       f"tls: the TLS handshake with {host} failed: {_tls_phrase(chain)} (the request was not sent)")
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.ChunkedEncodingError) \
            or has(ProtocolError, ConnectionError):
        return Failure("reset", "connection_reset", network, True,
                       f"reset: the connection to {host} was dropped before the whole answer arrived; "
                       "the vendor may have processed the request")
    if isinstance(exc, ValueError | UnicodeError):
        return Failure("request", "request_failed", network, False,
                       f"request: the request to {host} could not be encoded (a header or URL value is not valid); "
                       "it was not sent")
    return Failure("request", "request_failed", network, False,
                   f"request: sending to {host} failed ({type(exc).__name__})")


# ----------------------------------------------------------------------------- webhooks


@sensitive_variables()
def post(url: str, *, data: bytes, headers: dict, timeout: tuple[float, float]) -> int:
    """POST `data` to `url` through the guard; the status code, or TransportError (safe words)."""
    target = guard.parse(url)
    if isinstance(target, guard.Refusal):
        raise TransportError(Failure("refused", target.code, Outcome.NETWORK_ERROR, False, target.message))
    try:
        response = send(prepare("POST", url, headers=headers, data=data), timeout=timeout)
        response.close()
    except (requests.exceptions.RequestException, OSError, ValueError, guard.Refused) as exc:
        failure = classify(exc, target.host)
    else:
        return response.status_code
    raise TransportError(failure)
