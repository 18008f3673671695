"""Write a local .env the first time `make run` starts (no Django import: settings need it first).

It holds a generated SECRET_KEY and a Fernet key for CREDENTIAL_KEYS, plus the demo
defaults. An existing .env is never changed.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent


def site_url() -> str:
    """Where `make run` serves (runall's --bind, SWITCHBOARD_BIND), as a link: set-password links
    printed by `manage.py users` must open the site that runs, not port 8000 when another was chosen."""
    host, _, port = os.environ.get("SWITCHBOARD_BIND", "127.0.0.1:8000").rpartition(":")
    if host in ("", "0.0.0.0", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def main(path: Path = BASE_DIR / ".env") -> int:
    if path.exists():
        return 0
    path.write_text(
        "# Written by `make run` on first start. Local use only; production sets real environment variables.\n"
        f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
        f"CREDENTIAL_KEYS={Fernet.generate_key().decode()}\n"
        "DEBUG=false\n"
        "HTTPS_ONLY=false\n"
        "ALLOWED_HOSTS=127.0.0.1,localhost\n"
        f"SITE_URL={site_url()}\n"
        "# Demo mode also lets vendor URLs point at loopback (the demo vendors); off, they must be public.\n"
        "DEMO_MODE=true\n"
    )
    path.chmod(0o600)
    print(f"Created {path.name} with a new SECRET_KEY and a new credential key (CREDENTIAL_KEYS). "
          "Back it up: without the key, stored secrets cannot be decrypted.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
