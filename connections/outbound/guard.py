"""The outbound guard (DESIGN.md, "Outbound safety"): which URLs and addresses a credential may go to.

A credential must never reach loopback, a private network, link-local or a cloud metadata
service: a base URL pointed there would turn Switchboard into a proxy into the internal network
(SSRF). Three layers, all here, used by vendor calls and webhooks alike (connections/outbound/transport.py):

1. `parse()` reads a URL once, with urllib3's parser (the one the connection uses), and refuses
   what parsers disagree on: userinfo, backslashes, percent-escapes or other odd characters in
   the authority, IPv4 addresses spelled any way but a.b.c.d (2130706433, 0x7f.1, 0177.0.0.1,
   127.1), IPv6 zone ids, schemes other than http(s).
2. `address_refusal()` judges one resolved address: link-local and metadata addresses
   (169.254.0.0/16, fe80::/10, fd00:ec2::254, 100.100.100.200, ...), unspecified, multicast and
   reserved ones never; loopback and private networks only when OUTBOUND_ALLOW_PRIVATE_NETWORKS
   is on or the host is on OUTBOUND_ALLOWED_HOSTS. IPv4 addresses inside IPv6 ones (mapped,
   6to4, Teredo, NAT64) are judged as the IPv4 address.
3. `resolve()` resolves a host and checks EVERY address; the transport connects only to the
   addresses it returned (pinned), so a DNS answer that changes after the check (rebinding)
   never reaches a socket.

`check_url()` runs 1-3 before anything is sent; `saved_url_problem()` runs them when a URL is
saved (a name that does not resolve yet is accepted there and checked again at send time).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url


@dataclass(frozen=True)
class Refusal:
    code: str  # outbound_refused | dns_failed
    message: str


class Refused(Exception):
    """Raised at connect time when a resolved address may not be reached. Its message is ours
    (host, address, why), never an operating-system or library text."""

    def __init__(self, refusal: Refusal):
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lowercase; IPv6 without brackets
    port: int


# Tests replace this (a rebinding resolver, names of private addresses).
_getaddrinfo = socket.getaddrinfo

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
_DOTTED_QUAD = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|\d+)$")

# Never reachable, whatever the settings say: the metadata services of cloud platforms and the
# networks they live on. (Link-local, unspecified, multicast and reserved are checked by kind.)
_NEVER = tuple((ipaddress.ip_network(n), label) for n, label in (
    ("169.254.0.0/16", "link-local (the cloud metadata service lives at 169.254.169.254)"),
    ("fe80::/10", "link-local"),
    ("fd00:ec2::254/128", "a cloud metadata address (AWS)"),
    ("100.100.100.200/32", "a cloud metadata address (Alibaba Cloud)"),
    ("168.63.129.16/32", "a cloud platform address (Azure wire server)"),
    ("0.0.0.0/8", "unspecified (Linux connects 0.0.0.0 to loopback)"),
    ("255.255.255.255/32", "broadcast"),
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _refuse(message: str) -> Refusal:
    return Refusal("outbound_refused", message)


def _authority(raw: str) -> str:
    rest = raw.split("://", 1)[1] if "://" in raw else ""
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


def parse(url: str) -> Target | Refusal:
    """The URL's scheme, host and port as the connection will see them, or why it is refused."""
    return _parse(url) if isinstance(url, str) else _parse("")


@lru_cache(maxsize=2048)
def _parse(raw: str) -> Target | Refusal:
    """parse() of a string: a pure function of it (every call of send() parses the same few URLs
    three times), so its answers are kept; Target and Refusal are frozen."""
    shown = raw[:80]
    if not raw or any(ord(ch) <= 32 or ord(ch) == 127 for ch in raw):
        return _refuse(f"refused to send to {shown!r}: not an absolute http(s) URL without spaces or control characters")
    if "\\" in raw:
        return _refuse("refused: the URL contains a backslash, which URL parsers read differently")
    authority = _authority(raw)
    if "@" in authority:
        return _refuse("refused: the URL carries a user name or password before the host (user@host); "
                       "put credentials in the secret, never in the URL")
    if "%" in authority:
        return _refuse("refused: the URL's host contains percent-escapes or an IPv6 zone id; write the host plainly")
    try:
        parts = parse_url(raw)
    except (LocationParseError, ValueError, UnicodeError):
        return _refuse(f"refused to send to {shown!r}: not a valid URL")
    scheme = (parts.scheme or "").lower()
    if scheme not in ("http", "https") or "://" not in raw:
        return _refuse(f"refused to send to {shown!r}: only absolute http(s) URLs are allowed")
    if parts.auth:
        return _refuse("refused: the URL carries a user name or password; put credentials in the secret")
    host = (parts.host or "").lower()
    if not host:
        return _refuse(f"refused to send to {shown!r}: the URL has no host")
    if host.startswith("["):
        try:
            ip = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return _refuse(f"refused: {host} is not a valid IPv6 address (zone ids are not allowed)")
        host = str(ip)
    else:
        if not host.isascii() or not _HOSTNAME.match(host):
            return _refuse(f"refused: {host[:80]!r} is not a valid host name")
        last = host.rstrip(".").rsplit(".", 1)[-1]
        if _NUMERIC_LABEL.match(last) and not _DOTTED_QUAD.match(host.rstrip(".")):
            return _refuse(f"refused: {host!r} is an IP address spelled in a non-standard way "
                           "(decimal, octal, hex or short form); write it as four decimal numbers, a.b.c.d")
    if parts.port == 0:
        return _refuse(f"refused: port 0 of {host} is not a valid port")
    return Target(scheme=scheme, host=host, port=parts.port or (443 if scheme == "https" else 80))


def display_url(target: Target) -> str:
    """What pages and logs may show of a URL whose path is a secret (a Slack webhook's token)."""
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return f"{target.scheme}://{host}{'' if target.port == default else f':{target.port}'}/…"


def origin(url: str) -> str:
    """scheme://host:port of a URL (port always written), the unit a secret is bound to; "" if refused."""
    target = parse(url)
    if isinstance(target, Refusal):
        return ""
    host = f"[{target.host}]" if ":" in target.host else target.host.rstrip(".")
    return f"{target.scheme}://{host}:{target.port}"


def allow_listed(host: str) -> bool:
    host = host.lower().rstrip(".").strip("[]")
    for entry in settings.OUTBOUND_ALLOWED_HOSTS:
        entry = entry.strip().lower().rstrip(".")
        if not entry:
            continue
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
        if host == entry:
            return True
    return False


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _never_label(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if ip.is_unspecified:
        return "unspecified"
    for net, label in _NEVER:
        if net.version == ip.version and ip in net:
            return label
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    return ""


@lru_cache(maxsize=4096)
def address_problem(address: str) -> str:
    """Why an IP address is not a public one ("" when it is). A pure function of the address,
    remembered: it runs for every address of every request (guard.resolve)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            problem = address_problem(str(inner))
            if problem:
                return problem
    never = _never_label(ip)
    if never:
        return never
    for attr, label in (("is_loopback", "loopback"), ("is_private", "a private network"), ("is_reserved", "reserved")):
        if getattr(ip, attr):
            return label
    if not ip.is_global:
        return "not a public address"
    return ""


@lru_cache(maxsize=4096)
def _never(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None and _never(str(inner)):
            return True
        if "%" in address:
            return True  # a scoped address is link-local by nature
    return bool(_never_label(ip)) or (ip.is_reserved and not ip.is_loopback and not ip.is_private)


def address_refusal(address: str, host: str) -> Refusal | None:
    """None when `host`'s resolved `address` may be connected to under the current settings."""
    problem = address_problem(address)
    if not problem:
        return None
    if problem == "not an IP address":
        return _refuse(f"refused to send to {host}: {address!r} is not an IP address")
    what = f"{problem}" if address == host.strip("[]") else f"it resolves to {address}, {problem}"
    if _never(address):
        return _refuse(f"refused to send to {host}: {what}. Never reachable, not even with OUTBOUND_ALLOWED_HOSTS.")
    if settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS or allow_listed(host):
        return None
    return _refuse(f"refused to send to {host}: {what}. Outbound requests go to public addresses only; "
                   "an operator may allow this host with OUTBOUND_ALLOWED_HOSTS.")


def scheme_refusal(scheme: str, host: str) -> Refusal | None:
    if scheme == "https" or settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS or allow_listed(host):
        return None
    return _refuse(f"refused to send to {host}: only https is allowed (credentials would travel in clear text); "
                   "use an https URL, or add the host to OUTBOUND_ALLOWED_HOSTS")


@lru_cache(maxsize=1024)
def _literal(host: str) -> tuple[int, str] | None:
    """(family, address) when `host` is an IP address written the canonical way (no name to
    resolve: no DNS query per request), else None (getaddrinfo decides, odd forms such as 0x7f.1
    included)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), str(ip)


def resolve(host: str, port: int) -> list[tuple[int, tuple]]:
    """(family, sockaddr) of every address of `host`, each checked; the only addresses a socket
    may connect to. Raises Refused if ANY address is refused, socket.gaierror if none resolves."""
    host = host.strip("[]")
    literal = _literal(host)
    if literal is not None:
        family, address = literal
        found = [(family, (address, port, 0, 0) if family == socket.AF_INET6 else (address, port))]
    else:
        found = [(family, sockaddr) for family, _type, _proto, _name, sockaddr
                 in _getaddrinfo(host, port, 0, socket.SOCK_STREAM)]
    checked: list[tuple[int, tuple]] = []
    for family, sockaddr in found:
        if family not in (socket.AF_INET, socket.AF_INET6):
            raise Refused(_refuse(f"refused to send to {host}: it resolves to a non-IP address"))
        refusal = address_refusal(sockaddr[0], host)
        if refusal is not None:
            raise Refused(refusal)
        if (family, sockaddr) not in checked:
            checked.append((family, sockaddr))
    if not checked:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    return checked


def check_url(url: str) -> Refusal | None:
    """None when the URL may be sent to now; a Refusal saying why not otherwise."""
    target = parse(url)
    if isinstance(target, Refusal):
        return target
    try:
        resolve(target.host, target.port)
    except Refused as exc:
        return exc.refusal
    except (OSError, UnicodeError):
        return scheme_refusal(target.scheme, target.host) or \
            Refusal("dns_failed", f"could not resolve {target.host} (DNS)")
    return scheme_refusal(target.scheme, target.host)


def saved_url_problem(url: str) -> str:
    """Why a URL may not be saved ("" when it may). A host that does not resolve yet is accepted:
    the same check runs again, with the addresses of the moment, before every request."""
    refusal = check_url(url)
    if refusal is None or refusal.code == "dns_failed":
        return ""
    return refusal.message
