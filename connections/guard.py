"""The outbound guard (DESIGN.md, "Outbound safety"): https only, public addresses only.

A credential must never be sent to loopback, a private network, link-local (the cloud metadata
service at 169.254.169.254) or any other non-public address: a base URL pointed there would turn
Switchboard into a proxy into the internal network (SSRF). Exceptions are explicit:
OUTBOUND_ALLOW_PRIVATE_NETWORKS (the demo and the tests; then http is allowed too) or a host
named in OUTBOUND_ALLOWED_HOSTS (exact names, or "*.example.internal" for a domain's hosts).

Known limit: the address is checked here and resolved again when the connection opens, so a
DNS answer that changes in between (rebinding) is not caught; see docs/decisions.md.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


@dataclass(frozen=True)
class Refusal:
    code: str  # outbound_refused | dns_failed
    message: str


def _allow_listed(host: str) -> bool:
    host = host.lower().rstrip(".")
    for entry in settings.OUTBOUND_ALLOWED_HOSTS:
        entry = entry.strip().lower().rstrip(".")
        if not entry:
            continue
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
        if host == entry:
            return True
    return False


def address_problem(address: str) -> str:
    """Why an IP address is not a public one ("" when it is)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if mapped is not None:
            problem = address_problem(str(mapped))
            if problem:
                return problem
    checks = (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local (e.g. the cloud metadata service)"),
        ("is_multicast", "multicast"),
        ("is_private", "a private network"),
        ("is_reserved", "reserved"),
    )
    for attr, label in checks:
        if getattr(ip, attr):
            return label
    if not ip.is_global:
        return "not a public address"
    return ""


def check_url(url: str) -> Refusal | None:
    """None when the URL may be sent to; a Refusal saying why not otherwise."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        return Refusal("outbound_refused", f"refused to send to {url!r}: not an absolute http(s) URL")
    if settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS or _allow_listed(host):
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return Refusal("outbound_refused", f"refused to send to {host}: invalid port")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return Refusal("dns_failed", f"could not resolve {host}: {exc}")
    for info in infos:
        address = info[4][0]
        problem = address_problem(address)
        if problem:
            return Refusal(
                "outbound_refused",
                f"refused to send to {host}: it resolves to {address}, {problem}. Outbound requests go to public "
                "addresses only; an operator may allow this host with OUTBOUND_ALLOWED_HOSTS.",
            )
    if parts.scheme != "https":
        return Refusal("outbound_refused",
                       f"refused to send to {host}: only https is allowed (credentials would travel in clear text); "
                       "use an https base URL, or add the host to OUTBOUND_ALLOWED_HOSTS")
    return None
