"""Declarative vendor files: check one, save one into PROVIDERS_DIR (audited)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from ..providers.registry import PROVIDERS, check_text
from ..providers.yaml_lines import MAX_FILE_BYTES, Problem
from .audit import Actor, audit


def decode_upload(raw: bytes) -> str:
    """The text of an uploaded file, or ValidationError (too large, not UTF-8)."""
    if len(raw) > MAX_FILE_BYTES:
        raise ValidationError({"file": f"the file is larger than {MAX_FILE_BYTES // 1024} KB"})
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError({"file": "the file is not UTF-8 text"}) from None


def vendor_check(*, text: str, source: str = "", replacing: str = "") -> tuple[object | None, list[Problem]]:
    """(provider, []) when `text` is a valid definition whose key is free (or is `replacing`'s)."""
    return check_text(text, source=source, taken=PROVIDERS.taken(except_file=replacing))


def vendor_problems(*, text: str) -> list[Problem]:
    """Every problem of a definition about to be saved as <key>.yaml (by line and field); [] when valid."""
    from ..providers.vendor_files import load_text

    definition, problems = load_text(text)
    if definition is None:
        return problems
    name = f"{definition.key}.yaml"
    return vendor_check(text=text, source=name, replacing=name)[1]


def vendor_save(*, text: str, actor: Actor) -> tuple[str, str, bool]:
    """Check the definition and write it to PROVIDERS_DIR as <key>.yaml (atomically, replacing the
    file of the same key). Returns (key, file name, replaced). ValidationError listing the
    problems by line and field when the definition is not valid: nothing is written then."""
    from ..providers.vendor_files import load_text

    definition, problems = load_text(text)
    name = f"{definition.key}.yaml" if definition else ""
    if definition is not None:
        _, problems = vendor_check(text=text, source=name, replacing=name)
    if problems:
        raise ValidationError([str(p) for p in problems])
    folder = Path(settings.PROVIDERS_DIR)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        replaced = target.exists()
        fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise ValidationError(f"PROVIDERS_DIR ({folder}) cannot be written: {exc.strerror or exc.__class__.__name__}; "
                              "nothing was saved") from None
    PROVIDERS.refresh(force=True)
    audit(actor=actor, action="vendor.replace" if replaced else "vendor.add",
          details={"vendor": definition.key, "file": name, "name": definition.name,
                   "allowed_hosts": list(definition.allowed_hosts), "auth": definition.auth.scheme,
                   "sha256": hashlib.sha256(text.encode()).hexdigest()[:16]})
    return definition.key, name, replaced
