"""ProxyEdge: /proxy/ requests skip the middleware of signed-in pages (settings.MIDDLEWARE).

An application authenticates with its key, never a session, and the proxy view is exempt from
CSRF and sign-in: sessions, CSRF, authentication, second factor, idle timeout, permissions,
messages, htmx and django-axes have nothing to do for it, yet cost more CPU per call than the
proxy's own work (docs/proxy.md, "Serving"). This middleware sits after the request id and
Django's SecurityMiddleware; for a path that resolves to the proxy view it runs the view with
the security headers of every page (X-Frame-Options, CSP, Permissions-Policy) and nothing else.
Any other path, and a /proxy/ path that does not resolve to the proxy, takes the full chain.
CommonMiddleware's one effect on a proxied answer, Content-Length, is set here too.
"""

from __future__ import annotations

from django.core.handlers.exception import convert_exception_to_response
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.urls import Resolver404, resolve

from dashboard.logformat import connection as log_connection
from dashboard.security import SecurityHeadersMiddleware

from .views import proxy

PREFIX = "/proxy/"


class ProxyEdge:
    def __init__(self, get_response):
        self.get_response = get_response
        # The same wrapping as Django's handler: an exception in the view is a 500 (logged), not a crash.
        view = convert_exception_to_response(self._view)
        self.serve = convert_exception_to_response(
            XFrameOptionsMiddleware(convert_exception_to_response(SecurityHeadersMiddleware(view))))

    def __call__(self, request):
        if not request.path_info.startswith(PREFIX):
            return self.get_response(request)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)
        if match.func is not proxy:
            return self.get_response(request)
        request.resolver_match = match
        return self.serve(request)

    @staticmethod
    def _view(request):
        match = request.resolver_match
        log_connection.set(match.kwargs.get("name", ""))  # as RequestIdMiddleware.process_view does
        response = match.func(request, *match.args, **match.kwargs)
        if not response.streaming and "Content-Length" not in response:
            response.headers["Content-Length"] = str(len(response.content))  # as CommonMiddleware does
        return response
