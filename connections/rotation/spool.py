"""The recovery spool: a vendor-issued token never exists only in memory.

A refresh writes the new secret here (encrypted with CREDENTIAL_KEYS, written to a temporary
file, fsynced, renamed into place, the directory fsynced) BEFORE it commits it to the
database, and deletes the file only after that commit: a write-ahead log, as Vault does. If
the commit fails (database down) or the worker dies in between, the token survives on disk
and `connections recover` (or the reconciler, on the machine that holds the spool) imports
it as the active credential.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..crypto import decrypt_bytes, encrypt_json, fingerprint
from ..models import Connection, CredentialState, RotationAttempt, RotationState
from ..outbound.sessions import session_store
from ..services.audit import SYSTEM, Actor, audit
from ..services.vault import active_credential, credential_activate, credential_add
from .core import clear_rotation_attention, journal_finish

log = logging.getLogger(__name__)

SUFFIX = ".spool"
FORMAT = 1


def spool_dir() -> Path:
    return Path(settings.RECOVERY_SPOOL_DIR)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(*, connection: Connection, attempt: RotationAttempt, secret: dict, meta: dict | None = None,
          vendor_request_id: str = "", mode: str = "version", new_fingerprint: str = "") -> Path:
    """mode "version": the secret becomes a new credential version; "session": a session stored
    inside the old credential (TeleTracker)."""
    """Durably store a new secret for `attempt`; returns the file's path."""
    directory = spool_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    record = {
        "format": FORMAT, "connection_id": connection.pk, "connection_name": connection.name,
        "attempt_id": str(attempt.id), "old_credential_id": attempt.old_credential_id,
        "old_fingerprint": attempt.old_fingerprint, "new_fingerprint": new_fingerprint or fingerprint(secret),
        "mode": mode,
        "vendor_request_id": vendor_request_id, "written_at": timezone.now().isoformat(),
        "meta": meta or {}, "secret": secret,
    }
    final = directory / f"{connection.pk}-{attempt.id}{SUFFIX}"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(encrypt_json(record))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)
    return final


def remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    _fsync_dir(path.parent)


def pending() -> list[Path]:
    directory = spool_dir()
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith(".tmp-"))


def read(path: Path) -> dict:
    return json.loads(decrypt_bytes(path.read_text()))


@dataclass
class Recovered:
    file: str
    connection: str
    attempt_id: str
    status: str  # imported | already_stored | conflict | unreadable | orphaned | failed
    message: str
    version: int | None = None
    fingerprint: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def recover_spool(*, actor: Actor = SYSTEM) -> list[Recovered]:
    """Import every spooled token as its connection's active credential; delete each file after its commit."""
    results = []
    for path in pending():
        try:
            results.append(_recover_one(path, actor))
        except Exception as exc:  # the database may still be down: keep the file, report, go on
            log.exception("recovering %s failed", path)
            results.append(Recovered(file=str(path), connection="", attempt_id="", status="failed",
                                     message=f"could not import (the file is kept): {exc.__class__.__name__}: {exc}"))
    return results


def _recover_one(path: Path, actor: Actor) -> Recovered:
    try:
        record = read(path)
    except (InvalidToken, ValueError, OSError):
        return Recovered(file=str(path), connection="", attempt_id="", status="unreadable",
                         message="cannot decrypt or parse this spool file with CREDENTIAL_KEYS; it is kept. "
                                 "Was the key that wrote it removed? Put it back in CREDENTIAL_KEYS and run again.")
    name, attempt_id = record.get("connection_name", ""), record.get("attempt_id", "")
    new_fp = record.get("new_fingerprint", "")
    with transaction.atomic():
        connection = Connection.objects.select_for_update().filter(pk=record["connection_id"]).first()
        if connection is None:
            return Recovered(file=str(path), connection=name, attempt_id=attempt_id, status="orphaned",
                             message=f"connection {name!r} no longer exists; the file is kept for the record.")
        attempt = RotationAttempt.objects.select_for_update().filter(pk=attempt_id).first()
        if record.get("mode") == "session":
            status, message, credential = _recover_session(connection, attempt, record, actor)
        else:
            status, message, credential = _recover_version(connection, attempt, record, actor)
        audit(actor=actor, action="rotation.spool_import", connection=connection,
              details={"attempt": attempt_id, "status": status, "version": credential.version if credential else None,
                       "fingerprint": new_fp})
    # Only after the commit: a failure above leaves the file for the next run.
    remove(path)
    return Recovered(file=str(path), connection=connection.name, attempt_id=attempt_id, status=status,
                     message=message, version=credential.version if credential else None, fingerprint=new_fp)


def _settle(attempt, actor, credential, new_fp, note, record) -> None:
    if attempt is not None and attempt.state != RotationState.SUCCEEDED:
        journal_finish(attempt, state=RotationState.RECOVERED, actor=actor, new_credential=credential,
                       new_fingerprint=new_fp,
                       vendor_request_id=attempt.vendor_request_id or record.get("vendor_request_id", ""),
                       error=(attempt.error + "\n" if attempt.error else "") + f"Recovery spool: {note}")


def _recover_session(connection, attempt, record, actor):
    """A session refresh: store the session back into its credential, if that is still the active one."""
    new_fp = record["new_fingerprint"]
    credential = connection.credentials.filter(pk=record.get("old_credential_id")).first()
    if credential is None or credential.state != CredentialState.ACTIVE:
        # Sessions are disposable: the active credential logs in afresh with its password.
        message = "obsolete: the credential it belongs to is no longer active; nothing imported."
        _settle(attempt, actor, None, new_fp, message, record)
        return "obsolete", message, None
    if credential.reveal().get("session") == record["secret"].get("session"):
        message = f"the session is already stored in v{credential.version}."
        _settle(attempt, actor, credential, new_fp, message, record)
        return "already_stored", message, credential
    session_store(credential=credential, session=record["secret"]["session"])
    message = f"the refreshed session is stored in v{credential.version}."
    _settle(attempt, actor, credential, new_fp, message, record)
    clear_rotation_attention(connection.pk, f"Session recovered from the spool at {timezone.now():%Y-%m-%d %H:%M:%S} UTC.")
    return "imported", message, credential


def _recover_version(connection, attempt, record, actor):
    secret, new_fp = record["secret"], record["new_fingerprint"]
    stored = connection.credentials.filter(fingerprint=new_fp).first()
    if stored is not None:
        status, message, credential = "already_stored", f"v{stored.version} is already stored ({stored.state}).", stored
        if attempt and attempt.state in (RotationState.STARTED, RotationState.OUTCOME_UNKNOWN):
            _settle(attempt, actor, stored, new_fp, "settled from the recovery spool.", record)
        return status, message, credential
    current = active_credential(connection)
    conflict = current is not None and current.pk != record.get("old_credential_id") \
        and current.fingerprint != record.get("old_fingerprint")
    credential = credential_add(connection=connection, secret=secret, actor=actor, source="recovery",
                                meta=record.get("meta") or {})
    if conflict:
        # Someone stored another secret since: keep both, let the operator choose.
        status = "conflict"
        message = (f"stored as staged v{credential.version}: the active credential changed to "
                   f"v{current.version} since the refresh. Test both and promote the one that works "
                   "(the vendor issued the spooled one last).")
    else:
        if current is not None:
            current.state = CredentialState.RESCINDED  # the refresh rescinded it at the vendor
            current.retired_at = timezone.now()
            current.save(update_fields=["state", "retired_at"])
        credential_activate(credential=credential)
        status, message = "imported", f"imported as the active credential v{credential.version}."
        clear_rotation_attention(connection.pk, f"Token recovered from the spool as v{credential.version} "
                                                f"at {timezone.now():%Y-%m-%d %H:%M:%S} UTC; run a test.")
    _settle(attempt, actor, credential, new_fp, message, record)
    return status, message, credential


def spooled_for(attempt_id) -> Path | None:
    for path in pending():
        if path.name.endswith(f"-{attempt_id}{SUFFIX}"):
            return path
    return None
