"""Error pages that work when the rest of the site does not."""

import sys

from django.db import Error as DatabaseError
from django.http import HttpResponse
from django.template import loader


def server_error(request, template_name="500.html"):
    """500, or 503 when the database is unreachable (e.g. restarting): a page that needs neither
    the database nor the session, and says that the site will recover by itself."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DatabaseError):
        html = loader.get_template("503.html").render()
        return HttpResponse(html, status=503, headers={"Retry-After": "10"})
    return HttpResponse(loader.get_template(template_name).render(), status=500)
