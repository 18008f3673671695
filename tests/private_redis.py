"""A redis-server of the test's own, to stop and restart without touching the shared one.

Port PRIVATE_REDIS_PORT (default 23090, in this checkout's range), no persistence: a restart
loses every key, as a production Redis without RDB/AOF does.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

PORT = int(os.environ.get("PRIVATE_REDIS_PORT", "23090"))


class PrivateRedis:
    def __init__(self, workdir: Path, port: int = PORT):
        self.workdir, self.port = workdir, port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir), "--logfile", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        """Stop (nothing saved) and start again: every key is gone."""
        self.stop()
        self.start()

    def limiter(self, prefix: str = "private"):
        """A RedisLimiter on this server (connections/throttle.py), as production builds it."""
        from django.core.cache.backends.redis import RedisCache

        from connections.outbound.throttle import RedisLimiter

        return RedisLimiter(RedisCache(self.url, {"KEY_PREFIX": prefix}))
