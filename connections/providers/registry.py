"""The provider registry: the five built-in vendors (code) and the declarative ones (YAML files).

Adding a built-in vendor is one module and one line in BUILT_IN. A declarative vendor is one
file in PROVIDERS_DIR: every process reads the folder again when a file in it changes (checked
at most once a second), so an upload reaches the web workers, Celery and the CLI without a
restart. A file with errors never stops the others from loading: it is listed, with its errors,
by `definition_files()` (the vendors page, `manage.py vendors check`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .base import Provider
from .cleanlist import Cleanlist
from .clever import Clever
from .cleverbridge import Cleverbridge
from .cloverdx import CloverDX
from .oauth2 import OAuth2
from .teletracker import TeleTracker
from .vendor_files import Problem, load_text

BUILT_IN: dict[str, Provider] = {
    cls.key: cls()
    for cls in (Cleverbridge, Clever, CloverDX, TeleTracker, Cleanlist, OAuth2)
}
SUFFIXES = (".yaml", ".yml")
CHECK_EVERY = 1.0  # seconds between looks at PROVIDERS_DIR


@dataclass
class DefinitionFile:
    """One file of PROVIDERS_DIR as loaded: its vendor key (when it got that far) and problems."""

    path: Path
    key: str = ""
    label: str = ""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_text(text: str, *, source: str = "", taken: Mapping[str, str] | None = None):
    """(provider or None, problems) for a definition's text; `taken` maps keys already in use
    to where they come from (a built-in, another file)."""
    from .declarative import build

    definition, problems = load_text(text)
    if definition is None:
        return None, problems
    where = (taken or {}).get(definition.key)
    if definition.key in BUILT_IN:
        return None, [Problem(1, "key", f"{definition.key!r} is a built-in vendor; choose another key")]
    if where:
        return None, [Problem(1, "key", f"{definition.key!r} is already defined by {where}")]
    return build(definition, source=source), []


def read_folder(folder: Path) -> tuple[dict[str, Provider], list[DefinitionFile]]:
    found: dict[str, Provider] = {}
    files: list[DefinitionFile] = []
    taken: dict[str, str] = {}
    paths = sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file()) if folder.is_dir() else []
    for path in paths:
        entry = DefinitionFile(path=path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            entry.problems = [Problem(None, "", f"cannot be read: {exc.__class__.__name__}")]
            files.append(entry)
            continue
        provider, problems = check_text(text, source=path.name, taken=taken)
        entry.problems = problems
        if provider is not None:
            found[provider.key] = provider
            taken[provider.key] = path.name
            entry.key, entry.label = provider.key, provider.label
        files.append(entry)
    return found, files


class _Registry(Mapping):
    """Built-in vendors first, then the declarative ones of PROVIDERS_DIR, kept up to date."""

    def __init__(self):
        self._lock = threading.Lock()
        self._declarative: dict[str, Provider] = {}
        self._files: list[DefinitionFile] = []
        self._stamp: tuple | None = None
        self._checked = -1e9

    @staticmethod
    def folder() -> Path | None:
        try:
            from django.conf import settings

            value = getattr(settings, "PROVIDERS_DIR", None)
        except Exception:  # outside Django (the sandbox): built-ins only
            return None
        return Path(value) if value else None

    def _stamp_of(self, folder: Path | None) -> tuple:
        if folder is None or not folder.is_dir():
            return (str(folder),)
        try:
            entries = sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in folder.iterdir()
                             if e.suffix in SUFFIXES)
        except OSError:
            return (str(folder), "unreadable")
        return (str(folder), *entries)

    def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < CHECK_EVERY:
            return
        with self._lock:
            self._checked = now
            folder = self.folder()
            stamp = self._stamp_of(folder)
            if stamp == self._stamp and not force:
                return
            found, files = read_folder(folder) if folder is not None else ({}, [])
            self._declarative, self._files, self._stamp = found, files, stamp

    def _all(self) -> dict[str, Provider]:
        self.refresh()
        return {**BUILT_IN, **self._declarative}

    def __getitem__(self, key: str) -> Provider:
        if key in BUILT_IN:
            return BUILT_IN[key]
        self.refresh()
        return self._declarative[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __contains__(self, key: object) -> bool:
        return key in BUILT_IN or key in self._all()

    def files(self) -> list[DefinitionFile]:
        self.refresh()
        return list(self._files)

    def taken(self, *, except_file: str = "") -> dict[str, str]:
        """Keys in use, and by what (for checking a new file before it is saved)."""
        out = {key: "a built-in vendor" for key in BUILT_IN}
        for f in self.files():
            if f.key and f.path.name != except_file:
                out[f.key] = f.path.name
        return out


PROVIDERS = _Registry()


class UnknownProvider(KeyError):
    def __str__(self) -> str:
        broken = [f.path.name for f in PROVIDERS.files() if not f.ok]
        extra = f"; definition files with errors: {', '.join(broken)}" if broken else ""
        return f"unknown provider {self.args[0]!r} (known: {', '.join(PROVIDERS)}{extra})"


def get_provider(key: str) -> Provider:
    try:
        return PROVIDERS[key]
    except KeyError:
        raise UnknownProvider(key) from None


class Unavailable(Provider):
    """Stands in for a declarative vendor whose file is gone or has errors, so its connections
    still show (and say why) while nothing is sent: every request is refused before it leaves."""

    def __init__(self, key: str):
        self.key = key
        self.label = f"{key} (definition unavailable)"
        self.test_proves = "nothing: the vendor definition is missing or has errors"

    def url_for(self, base_url: str, path: str) -> str:
        folder = PROVIDERS.folder()
        raise ValueError(f"the vendor definition {self.key!r} is missing from PROVIDERS_DIR ({folder}) or has "
                         "errors (see the Vendors page or `manage.py vendors check`); nothing was sent")

    def test_requests(self, options: dict):
        from .http import RequestSpec, TestStep

        return [TestStep(RequestSpec("GET", "/"), self.test_proves)]


def provider_for(key: str) -> Provider:
    """The provider of a stored connection: an Unavailable stand-in when its definition is not loaded."""
    try:
        return PROVIDERS[key]
    except KeyError:
        return Unavailable(key)


def provider_choices() -> list[tuple[str, str]]:
    return [(key, p.label) for key, p in PROVIDERS.items()]


def definition_files() -> list[DefinitionFile]:
    return PROVIDERS.files()
