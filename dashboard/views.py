"""Error pages that work when the rest of the site does not."""

import sys

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import Error as DatabaseError
from django.http import HttpResponse
from django.shortcuts import render
from django.template import loader
from django.views.defaults import bad_request as django_bad_request


def server_error(request, template_name="500.html"):
    """500, or 503 when the database is unreachable (e.g. restarting): a page that needs neither
    the database nor the session, and says that the site will recover by itself."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DatabaseError):
        html = loader.get_template("503.html").render()
        return HttpResponse(html, status=503, headers={"Retry-After": "10"})
    return HttpResponse(loader.get_template(template_name).render(), status=500)


def bad_request(request, exception, template_name="400.html"):
    """A form larger than DATA_UPLOAD_MAX_MEMORY_SIZE (e.g. a 5 MB "secret" pasted into a field)
    is refused before any view runs: say so plainly (413) instead of Django's bare 400."""
    if isinstance(exception, RequestDataTooBig):
        from connections.providers.schema import secret_max_field_bytes

        try:
            sent = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            sent = 0
        html = loader.get_template("413.html").render({
            "sent_mb": f"{sent / 1_048_576:.1f}" if sent else "",
            "form_limit_mb": f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1_048_576:.1f}",
            "secret_limit": f"{secret_max_field_bytes():,}",
        })
        return HttpResponse(html, status=413)
    return django_bad_request(request, exception, template_name)


STALE_PAGE = ("This page is out of date: it was opened before your last sign-in or sign-out (in this tab or "
              "another), so its buttons no longer count. Reload the page, then try again.")


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW. A page opened before the last sign-in posts an old CSRF token; its buttons
    got htmx's "You do not have permission for that action (403). Ask an admin" (or Django's
    technical page), when all it takes is a reload. htmx gets the sentence as text/plain (app.js
    shows it as it is); a page gets it on Switchboard's own page."""
    if request.headers.get("HX-Request"):
        return HttpResponse(STALE_PAGE, status=403, content_type="text/plain; charset=utf-8")
    return render(request, "403_csrf.html", {"message": STALE_PAGE}, status=403)
