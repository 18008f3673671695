"""The active credential of a connection for every outbound call: kept in process memory while
its generation in Redis says nothing changed (current_credential), else one prepared SELECT.

`Credential.objects.active().filter(connection_id=…).first()` costs the ORM's query building on
every call (the model's ordering, ["connection", "-version"], even joins the connections table to
order by its name), more than the round trip itself. At most one credential per connection is
active (a partial unique constraint), so no ordering is needed: the statement is built once per
process and database, and the row is read as the ORM would (models/rows.py).

With Redis as the cache, the row and its decrypted secret are kept per connection in this
process's memory (never in Redis), with the connection's credential generation they were read
under (connections/credgen.py). Each call reads the generation (one MGET) and uses what it kept
when the generation is the same and no write is under way; else it reads the row (and keeps it
only when no write is under way). Every write to Credential moves the generation before its
statement and again after its commit, so a call that starts after a rotation returned never uses
the credential it replaced, in any process. A kept entry is also read again after MAX_AGE
seconds (a bump lost to an unreachable Redis), and at most MAX_ENTRIES connections are kept.
Without Redis (SQLite and the database cache, locmem), or when Redis does not answer, the row is
read on every call, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.base import ModelState
from django.views.decorators.debug import sensitive_variables

from .. import credgen
from ..choices import CredentialState
from ..crypto import Sealed, SecretUnavailable
from ..models import Credential
from ..models.rows import Columns, columns

log = logging.getLogger(__name__)

# A kept credential is read again after this many seconds even when its generation did not move.
MAX_AGE = 60.0
# At most this many connections' credentials are kept per process (the oldest kept goes first).
MAX_ENTRIES = 4096


@cache
def _statement(alias: str) -> tuple[str, Columns]:
    db = connections[alias]
    quote = db.ops.quote_name
    table = quote(Credential._meta.db_table)
    fields = Credential._meta.concrete_fields
    sql = (f"SELECT {', '.join(f'{table}.{quote(f.column)}' for f in fields)} FROM {table} "
           f"WHERE {table}.{quote('connection_id')} = %s AND {table}.{quote('state')} = %s LIMIT 1")
    return sql, columns(db, fields)


def _read(connection_id: int, using: str) -> tuple[list, list] | None:
    """The active credential's (attribute names, values) as the ORM would load them, or None."""
    db = connections[using]
    sql, cols = _statement(using)
    with db.cursor() as cursor:
        cursor.execute(sql, [connection_id, CredentialState.ACTIVE.value])
        row = cursor.fetchone()
    return None if row is None else (cols.attnames, cols.values(db, row))


def active_credential(connection_id: int, using: str = DEFAULT_DB_ALIAS) -> Credential | None:
    """The connection's active credential, read from the database now, or None."""
    read = _read(connection_id, using)
    return None if read is None else Credential.from_db(using, *read)


def _copy(value):
    """A copy of a JSON value (dicts and lists copied all the way down; cheaper than deepcopy)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _fresh(values: list) -> list:
    """A kept row's values for a new instance: JSON values copied, so no caller changes the kept ones."""
    return [_copy(v) if isinstance(v, dict | list) else v for v in values]


def _clone(entry: _Entry, using: str) -> Credential:
    """A new instance of a kept row, as Credential.from_db would make it, without running the
    model's __init__ per field: the attributes set directly, JSON values copied (_fresh)."""
    credential = Credential.__new__(Credential)
    credential.__dict__.update(zip(entry.attnames, _fresh(entry.values), strict=True))
    credential._state = ModelState()
    credential._state.adding, credential._state.db = False, using
    return credential


class _Entry:
    """What a process keeps of one connection's active credential. No repr of the secret."""

    __slots__ = ("gen", "attnames", "values", "sealed", "plain", "at")

    def __init__(self, gen, attnames, values, sealed, plain, at):
        self.gen, self.attnames, self.values, self.sealed, self.plain, self.at = gen, attnames, values, sealed, plain, at

    def __repr__(self) -> str:
        return f"<kept credential, generation {self.gen}>"


class CredentialCache:
    """The kept active credentials of one process (module docstring); tests make more, one per
    simulated process."""

    def __init__(self, max_entries: int | None = None, max_age: float | None = None):
        self.max_entries, self.max_age = max_entries, max_age
        self._entries: dict[tuple[str, int], _Entry] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    @sensitive_variables()
    def get(self, connection_id: int, using: str = DEFAULT_DB_ALIAS) -> Credential | None:
        """The connection's active credential: kept, when its generation says it is current, else read now."""
        gens = credgen.generations()
        if gens is None:
            return active_credential(connection_id, using)
        try:
            gen, writing = gens.read(connection_id)
        except Exception:  # noqa: BLE001 - Redis not answering: read the database, as without Redis
            log.debug("credential generation unreadable; reading the database", exc_info=True)
            return active_credential(connection_id, using)
        key = (using, connection_id)
        now = time.monotonic()
        entry = self._entries.get(key)
        if (entry is not None and not writing and entry.gen == gen
                and now - entry.at < (self.max_age if self.max_age is not None else MAX_AGE)):
            return None if entry.values is None else Credential.from_db(using, entry.attnames, _fresh(entry.values))
        read = _read(connection_id, using)
        if writing:
            self._forget(key)
            return None if read is None else Credential.from_db(using, *read)
        if read is None:
            self._keep(key, _Entry(gen, None, None, None, None, now))
            return None
        attnames, values = read
        credential = Credential.from_db(using, attnames, _fresh(values))
        sealed = credential.secret
        plain = None
        if isinstance(sealed, Sealed):
            try:
                plain = sealed.reveal()
            except SecretUnavailable:
                plain = None  # the caller's reveal() says why, each time
        self._keep(key, _Entry(gen, attnames, values, sealed, plain, now))
        return credential

    def _keep(self, key, entry: _Entry) -> None:
        limit = self.max_entries if self.max_entries is not None else MAX_ENTRIES
        with self._lock:
            self._entries.pop(key, None)
            while self._entries and len(self._entries) >= limit:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = entry

    def _forget(self, key) -> None:
        with self._lock:
            self._entries.pop(key, None)

    @sensitive_variables()
    def kept(self, connection_id: int, using: str = DEFAULT_DB_ALIAS) -> tuple[Credential, tuple] | None:
        """The credential kept for the connection, NOT checked against Redis, and the check that
        makes it safe to send with: (generation key, writing key, generation), for the limiter's
        script to compare in the same round trip as its decision (outbound/attempt.py). None when
        nothing usable is kept (nothing, no active credential, too old, no Redis)."""
        gens = credgen.generations()
        if gens is None:
            return None
        entry = self._entries.get((using, connection_id))
        if entry is None or entry.values is None or \
                time.monotonic() - entry.at >= (self.max_age if self.max_age is not None else MAX_AGE):
            return None
        gen_key, writing_key = gens.keys(connection_id)
        return _clone(entry, using), (gen_key, writing_key, entry.gen)

    @sensitive_variables()
    def revealed(self, credential: Credential) -> dict | None:
        """The plaintext of `credential`'s secret when this cache decrypted that very ciphertext
        (a copy: callers may change it), else None."""
        entry = self._entries.get((credential._state.db or DEFAULT_DB_ALIAS, credential.connection_id))
        if entry is None or entry.plain is None or entry.sealed is not credential.secret:
            return None
        return _copy(entry.plain)


_process_cache = CredentialCache()


def current_credential(connection_id: int, using: str = DEFAULT_DB_ALIAS) -> Credential | None:
    """The connection's active credential for an outbound call (this process's kept credentials)."""
    return _process_cache.get(connection_id, using)


def revealed(credential: Credential) -> dict | None:
    """The kept plaintext of `credential`'s secret, or None (decrypt it then)."""
    return _process_cache.revealed(credential)


def kept_credential(connection_id: int, using: str = DEFAULT_DB_ALIAS) -> tuple[Credential, tuple] | None:
    """This process's kept credential for the connection and its generation check, unchecked (CredentialCache.kept)."""
    return _process_cache.kept(connection_id, using)
