"""One HTTP/1.1 keep-alive server for all five twins, each under its own path prefix.

    /cleverbridge/...  /clever/...  /cloverdx/...  /teletracker/...  /cleanlist/...
    /_sandbox/...      the control API (control.py)

A connection's base URL is `SandboxServer.base_url(vendor)`; clients append the vendor's
documented paths to it.
"""

from __future__ import annotations

import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from . import control
from .base import Vendor
from .messages import Request, Response
from .vendors import VENDORS

MAX_BODY = 10 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries Content-Length
    # Without this, Nagle + delayed ACK stall keep-alive clients near 25 requests/s.
    disable_nagle_algorithm = True
    server_version = "SwitchboardSandbox/1.0"

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format, *args):  # noqa: A002 - silence per-request logging
        pass

    def setup(self):
        super().setup()
        self.server.track(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def do_GET(self):
        try:
            body = self._read_body()
        except ValueError as exc:
            self.close_connection = True
            self._send(Response.text(400, f"bad request: {exc}\n"))
            return
        self._send(self._answer(body))

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length) if length else b""

    def _answer(self, body: bytes) -> Response:
        sandbox: SandboxServer = self.server.sandbox
        parts = urlsplit(self.path)
        _, prefix, rest = (parts.path.split("/", 2) + ["", ""])[:3]
        path = "/" + unquote(rest)
        if prefix == "_sandbox":
            return control.handle(sandbox, self.command, path, body)
        vendor = sandbox.vendors.get(prefix)
        if vendor is None:
            return Response.json(404, {"error": f"no twin at /{prefix}",
                                       "vendors": [f"/{name}" for name in sandbox.vendors],
                                       "control": "/_sandbox/"})
        request = Request(method=self.command, path=path, query=parse_qs(parts.query, keep_blank_values=True),
                          headers=self.headers, body=body, client_ip=self.client_address[0])
        return vendor.dispatch(request)

    def _send(self, resp: Response) -> None:
        if resp.abort:
            self._abort(resp.abort)
            return
        try:
            self.send_response(resp.status)
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if resp.body:
                self.wfile.write(resp.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _abort(self, how: str) -> None:
        """Close without answering: "reset" sends RST, "close" a plain FIN."""
        self.close_connection = True
        try:
            if how == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()
        except OSError:
            pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, sandbox: SandboxServer):
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)

    def close_connections(self) -> None:
        """End keep-alive connections, so a stopped sandbox stops answering."""
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class SandboxServer:
    """The five twins on one port. `port=0` picks a free port; the socket is bound at once."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.vendors: dict[str, Vendor] = {name: cls() for name, cls in VENDORS.items()}
        self._httpd = _HTTPServer((host, port), self)
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None
        self._served = False
        self._stopped = False

    # ----- addresses ------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def base_url(self, vendor: str) -> str:
        return f"{self.url}/{self.vendor(vendor).name}"

    @property
    def vendor_names(self) -> list[str]:
        return list(self.vendors)

    # ----- life cycle -----------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Serve in a background daemon thread."""
        if self._thread is None:
            self._served = True
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"sandbox:{self.port}", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until stop() (from another thread) or KeyboardInterrupt."""
        self._served = True
        self._httpd.serve_forever()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._served:
            self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----- controls (the same as /_sandbox/ over HTTP) --------------------------------

    def vendor(self, name: str) -> Vendor:
        try:
            return self.vendors[name]
        except KeyError:
            raise KeyError(f"unknown vendor {name!r}; known: {', '.join(self.vendors)}") from None

    def set_fault(self, vendor: str, fault: str | None, count: int | None = None, **params) -> None:
        """Inject `fault` until cleared (count=None) or for the next `count` requests it applies to."""
        self.vendor(vendor).set_fault(fault, count, **params)

    def clear_faults(self, vendor: str | None = None) -> None:
        for v in [self.vendor(vendor)] if vendor else self.vendors.values():
            v.clear_fault()

    def stats(self, vendor: str) -> dict:
        return self.vendor(vendor).stats()

    def reset(self) -> None:
        """Credentials, counters, faults, lockouts and sessions back to the defaults."""
        for v in self.vendors.values():
            v.reset()
