"""The access log of `manage.py runall` never holds a set-password token."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

from django.urls import reverse
from gunicorn.config import Config

from dashboard.gunicorn_logging import RedactingLogger


def test_access_log_line_has_no_set_password_token(tmp_path):
    cfg = Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("access_log_format", '%(h)s "%(r)s" %(s)s "%(f)s" %(U)s {raw_uri}e')
    logger = RedactingLogger(cfg)
    path = reverse("password_set", kwargs={"uidb64": "Mg", "token": "d1skzc-3d517eba94d63b8fe393d2c43219fe87"})
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": path, "PATH_INFO": path, "QUERY_STRING": "",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_REFERER": "http://sb" + path}
    resp = SimpleNamespace(status="302 Found", sent=0, headers=[("Location", "/accounts/set-password/Mg/set-password/")])
    req = SimpleNamespace(headers=[])
    logger.access(resp, req, environ, datetime.timedelta(milliseconds=3))
    for handler in logger.access_log.handlers:
        handler.flush()
    line = (tmp_path / "access.log").read_text()
    assert "/accounts/set-password/Mg/[redacted]/" in line
    assert "3d517eba94d63b8fe393d2c43219fe87" not in line


def test_the_form_step_and_other_paths_are_left_alone():
    from dashboard.gunicorn_logging import redact_set_password_tokens

    assert redact_set_password_tokens("/accounts/set-password/Mg/set-password/") == "/accounts/set-password/Mg/set-password/"
    assert redact_set_password_tokens("GET /connections/x/ HTTP/1.1") == "GET /connections/x/ HTTP/1.1"
