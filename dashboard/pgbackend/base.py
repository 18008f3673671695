"""Django's PostgreSQL backend whose connections can send a statement without waiting for it.

`PendingConnection.write_behind(name, query, params, on_error)` hands one statement to libpq (a
statement the connection prepares on the server the first time it sends it, then only its
parameters), flushes it into the server's socket and returns: the server runs (and, in autocommit,
commits) it whether or not anyone reads its answer, so a process that dies right after still leaves
its effect. The answer is read ("settled") at the connection's next use: every query, commit,
rollback and autocommit or isolation change of psycopg goes through `wait()`, which settles first;
`close()` too. A failed statement is reported to its `on_error` (the request log logs a warning),
never to the query that happens to come next. One connection's statements run in order, so the next
query on the same connection sees the statement's effect.

Callers settle everything before an answer leaves the process (`settle_all`): the middleware
below before a response goes out, `request_finished` after a streamed one, Celery's
`task_postrun` after a task (dashboard/celery.py). docs/decisions.md, "The request log row is
written behind".
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

from django.core.signals import request_finished
from django.db import connections
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper
from psycopg import Connection, errors, generators, pq, waiting
from psycopg.abc import Buffer

log = logging.getLogger(__name__)

_IDLE = pq.TransactionStatus.IDLE
_FATAL = pq.ExecStatus.FATAL_ERROR


class PendingConnection(Connection):
    """A psycopg connection with at most one statement sent and its answer not yet read."""

    _behind: Callable[[type[Exception]], None] | None = None  # the pending statement's on_error
    _behind_pid = 0  # the process that sent it: a forked child never reads its parent's answer
    _behind_prepared: frozenset[bytes] = frozenset()  # the statements prepared on this connection

    def write_behind(self, name: bytes, query: bytes, params: Sequence[Buffer | None],
                     on_error: Callable[[type[Exception]], None]) -> bool:
        """Send one statement with its parameters and return once it is all in the server's
        socket, without reading its answer. False (nothing sent) when the connection is in a
        transaction or a pipeline: the caller runs the statement as usual.

        `query` has $1, $2 ... placeholders (the server infers their types) and is prepared on the
        server under `name` the first time this connection sends it (one round trip, waited for; a
        new connection, after a reconnect, prepares again). Every call sends only `params` (text
        format, already dumped): Bind, Execute and Sync of the extended protocol, the values out of
        band, nothing quoted, nothing for the server to parse or plan."""
        with self.lock:
            self._settle()  # one statement at a time (libpq outside pipeline mode)
            if self._pipeline is not None or self.pgconn.transaction_status != _IDLE:
                return False
            if name not in self._behind_prepared:
                self._prepare(name, query)
            self.pgconn.send_query_prepared(name, params)
            self._behind, self._behind_pid = on_error, os.getpid()
            # psycopg keeps libpq non-blocking: flush until the whole message is written.
            waiting.wait(generators.send(self.pgconn), self.pgconn.socket)
            return True

    def _prepare(self, name: bytes, query: bytes) -> None:
        self.pgconn.send_prepare(name, query)
        for result in waiting.wait(generators.execute(self.pgconn), self.pgconn.socket):
            if result.status == _FATAL and _error_class(result) is not errors.DuplicatePreparedStatement:
                # (already there: the name is the statement's own, e.g. after a lost answer)
                raise errors.error_from_result(result, encoding=self.info.encoding)
        self.mark_prepared(name)

    def prepared(self, name: bytes) -> bool:
        """The statement `name` is prepared on this connection (as far as write_behind knows)."""
        return name in self._behind_prepared

    def mark_prepared(self, name: bytes) -> None:
        """The caller prepared `name` itself, with the text write_behind would prepare (SQL
        `PREPARE name AS ...` shares the protocol's names), e.g. in a round trip it makes anyway."""
        self._behind_prepared = self._behind_prepared | {name}

    @property
    def behind(self) -> bool:
        """A statement was sent and its answer is not read yet."""
        return self._behind is not None

    def settle(self) -> None:
        """Read the pending statement's answer (waits for the server to finish it)."""
        if self._behind is not None:
            with self.lock:
                self._settle()

    def _settle(self) -> None:
        on_error, self._behind = self._behind, None
        if on_error is None or self._behind_pid != os.getpid():
            return
        try:
            results = waiting.wait(generators.fetch_many(self.pgconn), self.pgconn.socket)
        except Exception as exc:  # the connection broke: the next query says so itself
            _report(on_error, type(exc))
            return
        for result in results:
            if result.status == _FATAL:
                error = _error_class(result)
                if error is errors.InvalidSqlStatementName:  # deallocated meanwhile: prepare again
                    self._behind_prepared = frozenset()
                _report(on_error, error)

    def wait(self, gen, *args, **kwargs):
        if self._behind is not None:
            self._settle()  # psycopg calls wait() holding self.lock
        return super().wait(gen, *args, **kwargs)

    def close(self) -> None:
        if self._behind is not None and not self.closed:
            try:
                self.settle()
            except Exception:  # closing anyway
                pass
        super().close()


def _error_class(result) -> type[Exception]:
    sqlstate = (result.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
    try:
        return errors.lookup(sqlstate)
    except KeyError:
        return errors.DatabaseError


def _report(on_error, error: type[Exception]) -> None:
    try:
        on_error(error)
    except Exception:
        log.exception("the error handler of a write-behind statement failed")


class DatabaseWrapper(PostgresWrapper):
    """Django's PostgreSQL backend, its connections PendingConnection (same object, same state:
    the class only adds the methods above)."""

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if type(connection) is Connection:
            connection.__class__ = PendingConnection
        return connection

    def _close(self):
        settle(self)  # a pool takes back only an idle connection
        return super()._close()


def settle(wrapper) -> None:
    raw = getattr(wrapper, "connection", None)
    if isinstance(raw, PendingConnection) and raw.behind and not raw.closed:
        raw.settle()


def settle_all(**kwargs) -> None:
    """Read every pending answer of this thread's connections."""
    for wrapper in connections.all(initialized_only=True):
        settle(wrapper)


class SettleMiddleware:
    """Every statement the request sent behind is settled before its response leaves."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        settle_all()
        return response


request_finished.connect(settle_all, dispatch_uid="pgbackend-settle")
