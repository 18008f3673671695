"""A fuzzed vendor: a small raw-socket HTTP server whose every answer is drawn from a seeded RNG.

    with FuzzVendor(seed=7) as fuzz:
        base = fuzz.base_url("cleanlist")        # http://127.0.0.1:PORT/cleanlist
        ...                                      # point connections at it, send requests
        fuzz.received["cleanlist"]               # requests that reached it, per vendor prefix

Unlike connections/sandbox (a faithful twin built on http.server), this one writes bytes
itself, so it can lie in ways http.server cannot: odd and out-of-range status codes, 1xx final
answers, 204/304 with bodies, redirects with and without Location (to other hosts too),
duplicated, malformed, conflicting and oversized headers, Content-Length that disagrees with
the body, broken chunked encoding, bad Content-Encoding, bodies that are truncated, enormous
(up to a few MB), binary, invalid UTF-8 or deeply nested, each vendor's envelope with the wrong
types in it, an echo of the request (our secrets coming back), and abrupt closes (FIN or RST)
before, during or after the headers.

Reproducible: answers are drawn in arrival order from random.Random(seed), so a single-threaded
test that fails prints a seed that replays the same sequence. `last_cases` keeps the names of
the recent answers for the failure message.
"""

from __future__ import annotations

import gzip
import json
import random
import socket
import socketserver
import struct
import threading
from collections import Counter, deque

VENDORS = ("cleverbridge", "clever", "cloverdx", "teletracker", "cleanlist")
# Tokens the fuzzer hands out in refresh and login answers (they may become stored credentials).
SECRET_PREFIX = "FZSECRET"

_ODD_STATUSES = [100, 101, 102, 103, 199, 204, 205, 206, 226, 299, 300, 301, 302, 303, 304, 305, 307, 308, 399,
                 400, 401, 402, 403, 404, 405, 406, 408, 409, 410, 413, 415, 418, 422, 425, 429, 451, 499,
                 500, 501, 502, 503, 504, 507, 511, 599, 600, 799, 999]
_COMMON = [200, 200, 200, 200, 201, 202, 400, 401, 403, 404, 409, 429, 500, 502, 503]
_CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
                  "application/json; charset=utf-16", "application/json; charset=bogus-enc", "application/json;;;=",
                  "text/html", "text/html; charset=utf-8", "text/plain", "application/xml", "text/xml",
                  "application/problem+json", "application/octet-stream", "image/png", "multipart/mixed",
                  "application/x-www-form-urlencoded", "", "json", "*/*", "application/json\x7f",
                  "application/vnd.api+json; charset=\"utf-8\"", "application/json; charset=UTF-8; boundary=x"]
_RETRY_AFTER = ["0", "1", "2", "-5", "abc", "", "1e400", "inf", "-inf", "nan", "99999999999999999999999",
                "3600", "86400", "1.5", "  7  ", "Fri, 31 Dec 9999 23:59:59 GMT", "Thu, 01 Jan 1970 00:00:00 GMT",
                "Mon, 32 Foo 2024 25:61:61 GMT", "Wed, 21 Oct 2015 07:28:00 GMT", "0x10", "١٢"]
_NUMBERS = ["0", "-1", "-99999", "1", "1200", "abc", "", "1e400", "nan", "inf", "-inf", "1.7976931348623157e309",
            "99999999999999999999999999", "2147483648", "-2147483649", "12abc", "0x20", "None", "[]", "١٢٣"]
_HOSTS = ["http://evil.example.com/steal", "https://169.254.169.254/latest/meta-data/", "//other.example/x",
          "/relative/path", "http://127.0.0.1:1/", "javascript:alert(1)", "", "\x00", "https://[::1]/", "ftp://x/"]


def _token(rng: random.Random) -> str:
    return f"{SECRET_PREFIX}{rng.getrandbits(64):016x}"


def _weird(rng: random.Random, depth: int = 0):
    """A value of a random JSON type (for the envelope's fields)."""
    pick = rng.randrange(10 if depth < 2 else 7)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return rng.choice([0, -1, 1, 2**31, 2**63, 10**30, -(10**30)])
    if pick == 3:
        return rng.choice([0.5, -1e308, 1e308, 3.14])
    if pick == 4:
        return rng.choice(["", "true", "false", "null", "ok", "x" * 5000, "\u0000\ufffd\ud7ff", "<b>html</b>",
                           "Ünïcödé ✓", "1", "-1", "{\"nested\": true}"])
    if pick in (5, 6):
        return rng.choice(["", "string"]) + str(rng.random())
    if pick == 7:
        return [_weird(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["a", "message", "error", "", "0", "token", "x y"]): _weird(rng, depth + 1)
            for _ in range(rng.randrange(4))}


def _envelope(vendor: str, rng: random.Random, path: str) -> object:
    """Each vendor's documented envelope, with a random field of the wrong type (or right)."""
    w = lambda: _weird(rng)  # noqa: E731
    choose = lambda good: good if rng.random() < 0.4 else w()  # noqa: E731
    if vendor == "cleanlist":
        body = {"ok": choose(rng.choice([True, False])), "req_id": choose(f"req_{rng.getrandbits(32):x}"),
                "result": choose({"new_token": choose(_token(rng)), "ping": "pong"}),
                "error": choose({"error_code": choose("invalid_token"), "error_msg": choose("nope")})}
    elif vendor == "teletracker":
        body = {"success": choose(rng.choice([True, False])), "guid": choose(f"{rng.getrandbits(64):x}"),
                "data": choose({"token": choose(_token(rng)), "refreshToken": choose(_token(rng)),
                                "tokenLifetime": choose(rng.choice([3600, "3600", -1, 0, 1e308, "1e400",
                                                                    "nan", "inf", 10**20]))}),
                "errorDetail": choose("bad input"), "missingInputVars": choose(["start", "end"])}
    elif vendor == "cleverbridge":
        body = {"ResultMessage": choose(rng.choice(["", "Item not found."])), "Result": w()}
        if rng.random() < 0.3:
            body = {"Result": {"ResultMessage": w()}}
    elif vendor == "clever":
        body = {"data": choose([{"data": {"id": w(), "name": w()}}]), "links": choose([{"rel": w(), "uri": w()}]),
                "message": choose("bad token")}
    else:  # cloverdx
        body = {"error": choose("Unauthorized"), "message": choose("no"), "data": w(), "totalCount": w()}
    for key in list(body):
        if rng.random() < 0.15:
            del body[key]
    return body


class FuzzVendor:
    """The server. `seed` fixes the sequence of answers (for requests arriving one at a time)."""

    def __init__(self, seed: int = 0, host: str = "127.0.0.1", max_huge: int = 3 * 1024 * 1024):
        self.seed = seed
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.max_huge = max_huge
        self.received: Counter[str] = Counter()
        self.cases: Counter[str] = Counter()
        self.last_cases: deque[str] = deque(maxlen=20)
        fuzz = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                fuzz._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((host, 0), Handler)
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    # ----- life cycle
    def start(self) -> FuzzVendor:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"fuzz:{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FuzzVendor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def base_url(self, vendor: str) -> str:
        return f"http://127.0.0.1:{self.port}/{vendor}"

    def reseed(self, seed: int) -> None:
        with self.lock:
            self.seed = seed
            self.rng = random.Random(seed)

    # ----- one connection
    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle + delayed-ACK stalls
        buf = b""
        try:
            while True:
                head, buf = self._read_head(sock, buf)
                if head is None:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target = (lines[0].split(" ") + ["", ""])[:2]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                while len(buf) < length:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                body, buf = buf[:length], buf[length:]
                vendor = target.split("/")[1] if target.count("/") >= 1 else ""
                with self.lock:
                    self.received[vendor] += 1
                    case, out, keep = self._answer(vendor, method, target, lines, body)
                    self.cases[case] += 1
                    self.last_cases.append(f"{vendor}:{method} {target[:60]} -> {case}")
                if out == "RST":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                sock.sendall(out)
                if not keep:
                    return
        except OSError:
            return
        finally:
            try:
                sock.close()
            except OSError:
                pass

    @staticmethod
    def _read_head(sock: socket.socket, buf: bytes) -> tuple[bytes | None, bytes]:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return None, b""
            buf += chunk
            if len(buf) > 1 << 20:
                return None, b""
        head, _, rest = buf.partition(b"\r\n\r\n")
        return head, rest

    # ----- the answer: (case name, bytes to send or "RST", keep the connection open)
    def _answer(self, vendor: str, method: str, target: str, request_lines: list[str], request_body: bytes):
        rng = self.rng
        roll = rng.random()
        if roll < 0.04:
            return "abort:rst", "RST", False
        if roll < 0.07:
            return "abort:fin_before_anything", b"", False
        if roll < 0.09:
            return "abort:mid_status_line", b"HTTP/1.1 20", False
        if roll < 0.11:
            return "abort:mid_headers", b"HTTP/1.1 200 OK\r\nContent-Type: application/js", False
        if roll < 0.13:
            return "garbage_status_line", rng.choice([b"HTTP/1.1 abc OK\r\n\r\n", b"SPDY/9 200\r\n\r\n",
                                                       b"\x00\x01\x02\xff\r\n\r\n", b"HTTP/1.1 99 Low\r\n\r\n",
                                                       b"HTTP/1.1 1000 High\r\n\r\n", b"hello world"]), False

        status = rng.choice(_ODD_STATUSES) if rng.random() < 0.35 else rng.choice(_COMMON)
        case = [f"status:{status}"]
        body, content_type, body_case = self._body(vendor, target, request_lines, request_body)
        case.append(body_case)
        headers: list[tuple[str, str]] = []
        force_close = False
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        if rng.random() < 0.1:
            headers.append(("Content-Type", rng.choice(_CONTENT_TYPES)))  # duplicated, maybe conflicting
            case.append("dup_content_type")
        if 300 <= status < 400 and rng.random() < 0.7:
            headers.append(("Location", rng.choice(_HOSTS)))
            case.append("location")
        if rng.random() < 0.4:
            headers.append(("Retry-After", rng.choice(_RETRY_AFTER)))
            case.append("retry_after")
        if rng.random() < 0.4:
            for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Bucket"):
                if rng.random() < 0.7:
                    headers.append((name, rng.choice(_NUMBERS)))
            case.append("ratelimit_headers")
        if rng.random() < 0.15:
            headers.append(("X-Request-Id", rng.choice(["", "x" * 500, "ﬁ\udcff".encode("utf-8", "surrogateescape")
                                                        .decode("latin-1"), "req-1"])))
        if rng.random() < 0.08:
            headers.append(("Set-Cookie", "sessionid=abc; Domain=.example.com; Path=/"))
        if rng.random() < 0.05:
            headers.append(("X-Binary", "\xff\xfe\x80 not ascii"))
        if rng.random() < 0.05:
            headers.append(("NoColonHeaderLine", None))  # a header line without a colon
            case.append("no_colon_header")
            force_close = True  # http.client ends the headers there: the rest reads as body, to the close
        if rng.random() < 0.02:
            headers.append(("X-Long", "y" * 70000))  # over http.client's 65536-byte line limit
            case.append("header_too_long")
        if rng.random() < 0.02:
            headers.extend((f"X-Many-{i}", "1") for i in range(120))  # over http.client's 100 headers
            case.append("too_many_headers")

        encoding_roll = rng.random()
        if encoding_roll < 0.05:
            headers.append(("Content-Encoding", "gzip"))  # claimed, but not gzip
            case.append("bad_gzip")
        elif encoding_roll < 0.08:
            body = gzip.compress(body)
            headers.append(("Content-Encoding", rng.choice(["gzip", "x-gzip"])))
            case.append("gzip")
        elif encoding_roll < 0.10:
            headers.append(("Content-Encoding", rng.choice(["br", "zstd", "compress", "identity, gzip", "??"])))
            case.append("odd_encoding")

        framing = rng.random()
        keep = rng.random() < 0.5
        if framing < 0.08:
            declared = str(len(body) + rng.randrange(1, 5000))  # promises more than it sends: then closes
            keep = False
            case.append("content_length_too_big")
        elif framing < 0.14:
            declared = str(max(0, len(body) - rng.randrange(1, 50)))  # the rest is junk on the connection
            case.append("content_length_too_small")
        elif framing < 0.17:
            declared = rng.choice(["abc", "-1", "1e3", "", "99999999999999999999"])
            keep = False
            case.append("content_length_garbage")
        elif framing < 0.19:
            declared = f"{len(body)}, {len(body) + 1}"
            keep = False  # http.client ignores it and reads to the end: close, or the client waits
            case.append("content_length_conflicting")
        elif framing < 0.23:
            declared = None
            keep = False
            case.append("no_length_close")
        elif framing < 0.28:
            declared = "chunked"
            case.append("chunked")
        else:
            declared = str(len(body))
        keep = keep and not force_close
        head = [f"HTTP/1.1 {status} {rng.choice(['OK', 'Whatever', '', 'Ünïcode', 'x' * 300])}"]
        for name, value in headers:
            head.append(name if value is None else f"{name}: {value}")
        if declared == "chunked":
            head.append("Transfer-Encoding: chunked")
            if rng.random() < 0.4:
                payload = f"{len(body) + 7:x}\r\n".encode() + body + b"\r\n"  # chunk shorter than declared
                case.append("bad_chunks")
                keep = False
            else:
                payload = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n" if body else b"0\r\n\r\n"
        elif declared is not None:
            head.append(f"Content-Length: {declared}")
            payload = body
        else:
            payload = body
        if not keep:
            head.append("Connection: close")
        if rng.random() < 0.03:
            # An interim 100 Continue before the real answer (http.client skips it).
            head.insert(0, "HTTP/1.1 100 Continue\r\n")
            case.append("interim_100")
        raw = "\r\n".join(head).encode("latin-1", "replace") + b"\r\n\r\n" + payload
        if rng.random() < 0.04 and len(raw) > 20:
            raw = raw[: rng.randrange(len(raw) // 2, len(raw))]  # cut mid-answer, then close
            keep = False
            case.append("cut")
        return " ".join(case), raw, keep

    def _body(self, vendor: str, target: str, request_lines: list[str], request_body: bytes):
        """(body bytes, Content-Type or None, case name)."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.30:
            obj = _envelope(vendor, rng, target)
            text = json.dumps(obj, allow_nan=rng.random() < 0.1)
            return text.encode(), rng.choice(["application/json"] * 4 + _CONTENT_TYPES), "envelope"
        if roll < 0.38:
            text = json.dumps(_envelope(vendor, rng, target))
            return text[: rng.randrange(1, max(2, len(text)))].encode(), "application/json", "truncated_json"
        if roll < 0.43:
            return b"", rng.choice([None, "application/json", "text/html"]), "empty"
        if roll < 0.48:
            size = rng.choice([64 * 1024, 900 * 1024, 1024 * 1024 + 1, 2 * 1024 * 1024, self.max_huge])
            if rng.random() < 0.5:
                unit = b'{"k": "' + b"v" * 100 + b'"},'
                body = b'{"ok": true, "data": [' + unit * (size // len(unit)) + b'{}]}'
                return body, "application/json", f"huge_json:{len(body)}"
            return b"A" * size, rng.choice(["text/plain", "text/html", None]), f"huge_text:{size}"
        if roll < 0.53:
            return rng.randbytes(rng.randrange(1, 4096)), rng.choice(_CONTENT_TYPES + [None]), "binary"
        if roll < 0.58:
            body = b'{"ok": false, "message": "\xff\xfe\xc3\x28 bad utf-8 \xed\xa0\x80", "guid": "\x80"}'
            return body, rng.choice(["application/json", "application/json; charset=utf-8", "text/plain"]), \
                "invalid_utf8"
        if roll < 0.61:
            depth = rng.choice([500, 5000, 100000])
            return b"[" * depth + b"]" * depth, "application/json", f"nested_json:{depth}"
        if roll < 0.64:
            depth = rng.choice([100, 2000])
            return b"<a>" * depth + b"</a>" * depth, "application/xml", f"nested_xml:{depth}"
        if roll < 0.66:
            laughs = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                      b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
                      b'<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">'
                      b']><Result><ResultMessage>&e;</ResultMessage></Result>')
            return laughs, "application/xml", "xml_entities"
        if roll < 0.70:
            xml = rng.choice([b"<Result><ResultMessage>Item not found.</ResultMessage></Result>",
                              b"<Result><ResultMessage></ResultMessage></Result>", b"<Result>", b"<?xml?><",
                              b"<response><ok>true</ok></response>"])
            return xml, rng.choice(["application/xml", "application/json", "text/xml"]), "xml"
        if roll < 0.75:
            # A hostile vendor echoing the request back: our own secrets must be redacted.
            echo = "\r\n".join(request_lines).encode("latin-1", "replace") + b"\r\n\r\n" + request_body
            if rng.random() < 0.5:
                return json.dumps({"echo": echo.decode("latin-1"), "ok": False}).encode(), "application/json", "echo_json"
            return echo, rng.choice(["text/plain", "text/html", None]), "echo_raw"
        if roll < 0.80:
            page = rng.choice([b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>",
                               b"<html><body><h1>" + b"x" * 3000 + b"</h1>", b"<html><title></title>",
                               b"SUSPENDED", b"<title>\xff\xfe</title>"])
            return page, rng.choice(["text/html", "application/json", None]), "html"
        if roll < 0.84:
            value = rng.choice([b"null", b"true", b"0", b"-1e400", b"1e400", b"NaN", b"Infinity", b'"string"',
                                b"[]", b"[1,2,3]", b'{"": {}}', b"{}", b'{"a":1}{"b":2}', b"\xef\xbb\xbf{}"])
            return value, "application/json", "json_scalar"
        if roll < 0.87:
            text = json.dumps(_envelope(vendor, rng, target)).encode("utf-16")
            return text, rng.choice(["application/json; charset=utf-16", "application/json"]), "utf16"
        obj = _envelope(vendor, rng, target)
        return json.dumps(obj).encode(), "application/json", "envelope_plain"
