"""Start the test authorization server as its own process; the `authserver` pytest fixture.

    from tests.authserver.fixture import authserver  # noqa: F401   (in a conftest.py)

    def test_x(authserver):
        authserver.url                      # http://127.0.0.1:PORT
        authserver.token_url, authserver.authorize_url, authserver.discovery_url
        authserver.seed({"users": [...], "applications": [...]})
        authserver.token_log()              # one dict per /o/token/ request
        authserver.refresh_tokens()         # rows of oauth2_provider_refreshtoken

`AuthServer(tmp_dir, env={...}).start()` runs another one with other knobs (README.md).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CLIENT_ID = "switchboard"
CLIENT_SECRET = "authserver-test-client-secret"  # noqa: S105 - a test server's seed
DEFAULT_REDIRECT_URIS = [
    # Loopback redirect URIs match any port (RFC 8252 §7.3), so these fit every live server.
    "http://127.0.0.1/oauth2/callback/",
    "http://127.0.0.1/oidc/callback/",
]
DEFAULT_SEED = {
    "users": [
        {"username": "alice", "password": "alice-password-1", "email": "alice@example.test",
         "first_name": "Alice", "groups": ["switchboard-admins"]},
        {"username": "olga", "password": "olga-password-1", "email": "olga@example.test",
         "first_name": "Olga", "groups": ["switchboard-operators"]},
        {"username": "victor", "password": "victor-password-1", "email": "victor@example.test",
         "first_name": "Victor", "groups": ["switchboard-viewers"]},
    ],
    "applications": [
        {"name": "Switchboard", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
         "redirect_uris": DEFAULT_REDIRECT_URIS, "skip_authorization": False},
    ],
}


class AuthServer:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, seed: dict | None = None):
        self.data_dir = Path(data_dir)
        self.env = dict(env or {})
        self.initial_seed = DEFAULT_SEED if seed is None else seed
        self.process: subprocess.Popen | None = None
        self.url = ""

    # -- life cycle --------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> AuthServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        seed_file = self.data_dir / "seed.json"
        seed = json.loads(json.dumps(self.initial_seed))
        extra = [u for u in os.environ.get("AUTHSERVER_REDIRECT_URIS", "").split(",") if u]
        for app in seed.get("applications", []):
            app["redirect_uris"] = list(app.get("redirect_uris", [])) + extra
        seed_file.write_text(json.dumps(seed))
        (self.data_dir / "port").unlink(missing_ok=True)
        env = {**os.environ, **self.env, "AUTHSERVER_DATA_DIR": str(self.data_dir), "PYTHONPATH": str(ROOT)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        self.log = open(self.data_dir / "server.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.authserver", "serve", "--port", "0", "--seed", str(seed_file)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"authserver exited {self.process.returncode}: "
                                   + (self.data_dir / "server.log").read_text()[-2000:])
            port_file = self.data_dir / "port"
            if port_file.exists():
                self.url = f"http://127.0.0.1:{port_file.read_text().strip()}"
                try:
                    with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                        if r.status == 200:
                            return self
                except OSError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("authserver did not become ready in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        if getattr(self, "log", None):
            self.log.close()

    # -- addresses -----------------------------------------------------------------------------
    @property
    def token_url(self) -> str:
        return self.url + "/o/token/"

    @property
    def authorize_url(self) -> str:
        return self.url + "/o/authorize/"

    @property
    def discovery_url(self) -> str:
        return self.url + "/o/.well-known/openid-configuration"

    # -- configuring and observing ------------------------------------------------------------
    def seed(self, data: dict) -> dict:
        env = {**os.environ, **self.env, "AUTHSERVER_DATA_DIR": str(self.data_dir), "PYTHONPATH": str(ROOT)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        out = subprocess.run([sys.executable, "-m", "tests.authserver", "seed"], input=json.dumps(data),
                             capture_output=True, text=True, cwd=ROOT, env=env, check=True)
        return json.loads(out.stdout)

    def token_log(self) -> list[dict]:
        path = self.data_dir / "token-log.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def clear_token_log(self) -> None:
        (self.data_dir / "token-log.jsonl").unlink(missing_ok=True)

    def _query(self, sql: str, params=()) -> list[dict]:
        db = sqlite3.connect(self.data_dir / "authserver.sqlite3", timeout=30)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(sql, params)]
        finally:
            db.close()

    def refresh_tokens(self) -> list[dict]:
        """Every refresh token the server issued: token, token_family, revoked (null while live)."""
        return self._query("SELECT id, token, token_family, revoked, access_token_id FROM oauth2_provider_refreshtoken ORDER BY id")

    def family_revoked(self, refresh_token: str) -> bool:
        """Was the grant family this refresh token belongs to revoked as a whole (a replay)?"""
        rows = self._query("SELECT token_family FROM oauth2_provider_refreshtoken WHERE token = ?", (refresh_token,))
        if not rows or not rows[0]["token_family"]:
            return False
        return rows[0]["token_family"] in self.revoked_families()

    def revoked_families(self) -> set[str]:
        """Families whose every token was revoked at once: what reuse protection does on a replay."""
        rows = self.refresh_tokens()
        families: dict[str, list[dict]] = {}
        for row in rows:
            families.setdefault(row["token_family"], []).append(row)
        return {f for f, toks in families.items() if f and all(t["revoked"] for t in toks)}


@pytest.fixture(scope="session")
def authserver(tmp_path_factory):
    """The test authorization server for the whole session (ACCESS_TOKEN_EXPIRE_SECONDS from
    AUTHSERVER_ACCESS_TOKEN_SECONDS, default 60)."""
    server = AuthServer(tmp_path_factory.mktemp("authserver")).start()
    yield server
    server.stop()
