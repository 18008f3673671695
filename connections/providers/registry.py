"""The provider registry: adding a vendor is one module and one line here."""

from __future__ import annotations

from .base import Provider
from .cleanlist import Cleanlist
from .clever import Clever
from .cleverbridge import Cleverbridge
from .cloverdx import CloverDX
from .oauth2 import OAuth2
from .teletracker import TeleTracker

PROVIDERS: dict[str, Provider] = {
    cls.key: cls()
    for cls in (Cleverbridge, Clever, CloverDX, TeleTracker, Cleanlist, OAuth2)
}


class UnknownProvider(KeyError):
    def __str__(self) -> str:
        return f"unknown provider {self.args[0]!r} (known: {', '.join(PROVIDERS)})"


def get_provider(key: str) -> Provider:
    try:
        return PROVIDERS[key]
    except KeyError:
        raise UnknownProvider(key) from None


def provider_choices() -> list[tuple[str, str]]:
    return [(key, p.label) for key, p in PROVIDERS.items()]
