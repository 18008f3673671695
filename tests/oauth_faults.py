"""A loopback proxy in front of the test authorization server that loses answers on purpose.

    with AnswerLosingProxy(authserver.url) as proxy:
        proxy.url            # use as token_url's origin
        proxy.mode = "drop"  # forward the request, let the server act, then close without answering
        proxy.mode = "garble"  # forward, then answer 200 with a body cut in half
        proxy.arm("fail500")   # one request only: "drop", "garble", "fail500" (answer 500 without
                               # forwarding) or "reset" (close without forwarding)
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


class AnswerLosingProxy:
    def __init__(self, target: str):
        self.target = target.rstrip("/")
        self.mode = "pass"
        self.armed = ""
        self.forwarded = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                mode, proxy.armed = proxy.armed or proxy.mode, ""
                if mode == "reset":
                    self.close_connection = True
                    self.connection.close()
                    return
                if mode == "fail500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = requests.request(self.command, proxy.target + self.path, data=body, headers=headers,
                                          timeout=30, allow_redirects=False)
                proxy.forwarded += 1
                if mode == "drop":
                    self.close_connection = True
                    self.connection.close()  # the server acted; the client never hears
                    return
                content = answer.content
                if mode == "garble":
                    content = content[: len(content) // 2]
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def arm(self, mode: str) -> None:
        self.armed = mode

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
