"""How the token log names a token: the first 16 hex digits of its SHA-256, never the token."""

import hashlib


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16] if token else ""
