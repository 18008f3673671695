"""Log lines as JSON objects (LOG_FORMAT=json), with the request id and the connection.

One formatter for every process: Django's LOGGING (web, manage.py), gunicorn's own and access
logs (dashboard/gunicorn_config.py), the Celery worker and beat (dashboard/celery.py hands them
Django's LOGGING instead of Celery's own set-up). Each line is one object:

    {"time": "...Z", "level": "INFO", "logger": "...", "message": "...", "process": 123,
     "request_id": "...", "connection": "...", "exception": "..."}

request_id: the web request's (X-Request-Id from a trusted proxy when it is a plain token, else a
new one; sent back in the response's X-Request-Id) or the Celery task's id. connection: the
connection a page or task is about. Messages and tracebacks pass the same redaction as the text
format (set-password tokens); secrets never reach a log call in the first place (docs/security.md).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

from .gunicorn_logging import redact_set_password_tokens

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("switchboard_request_id", default="")
connection: contextvars.ContextVar[str] = contextvars.ContextVar("switchboard_connection", default="")
_TOKEN = re.compile(r"^[A-Za-z0-9._:-]{8,100}$")


class ContextFilter(logging.Filter):
    """Puts request_id and connection on every record (an explicit `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id.get()
        if not getattr(record, "connection", None):
            record.connection = connection.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ContextFilter().filter(record)  # handlers configured without the filter (gunicorn's) get it too
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_set_password_tokens(record.getMessage()),
            "process": record.process,
        }
        for key in ("request_id", "connection"):
            value = getattr(record, key, "")
            if value:
                out[key] = str(value)
        task_id = getattr(record, "task_id", None)  # Celery's task logger
        if task_id and "request_id" not in out:
            out["request_id"] = task_id
        if record.exc_info:
            out["exception"] = redact_set_password_tokens(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack"] = redact_set_password_tokens(self.formatStack(record.stack_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class RequestIdMiddleware:
    """First in the chain: a request id for the logs of this request, and its connection (the
    `name` of the URL, e.g. /connections/<name>/...), returned in X-Request-Id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.META.get("HTTP_X_REQUEST_ID", "")  # request.headers would parse every header
        rid = given if _TOKEN.match(given) else uuid.uuid4().hex
        # Not reset at the end: gunicorn writes the access line after the response, in this thread.
        request_id.set(rid)
        connection.set("")
        request.request_id = rid
        response = self.get_response(request)
        response.setdefault("X-Request-Id", rid)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        name = view_kwargs.get("name")
        if isinstance(name, str):
            connection.set(name)


def task_context(task_id: str, connection_id) -> None:
    """For a Celery task (dashboard/celery.py, task_prerun): its id and its connection's name."""
    request_id.set(task_id or "")
    name = ""
    if isinstance(connection_id, int):
        from connections.models import Connection

        name = Connection.objects.filter(pk=connection_id).values_list("name", flat=True).first() or ""
    connection.set(name)


def logging_config(level: str, fmt: str) -> dict:
    """Django's LOGGING (settings.py) for LOG_FORMAT text or json."""
    formatter = {"()": "dashboard.logformat.JsonFormatter"} if fmt == "json" else {
        "format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "dashboard.logformat.ContextFilter"}},
        "formatters": {"main": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "main", "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
        # urllib3 logs request lines with the full path at DEBUG: a webhook's path is its secret.
        "loggers": {"django.db.backends": {"level": "INFO"}, "axes": {"level": "WARNING"},
                    "urllib3": {"level": "WARNING"},
                    # Celery's own loggers propagate to the root handler instead of their own.
                    "celery": {"level": level, "propagate": True}},
    }


def gunicorn_logconfig_dict() -> dict:
    """gunicorn's error and access logs as JSON lines on stdout/stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "dashboard.logformat.JsonFormatter"}},
        "handlers": {"console": handler, "error_console": handler | {"stream": "ext://sys.stderr"}},
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
    }
