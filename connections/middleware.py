"""Default-deny permissions for Switchboard's views.

Every view in connections.views declares its permission with `@can(...)`. This middleware
checks that declaration before the view's own decorators run (so a user without the
permission gets 403 whatever the method), and refuses with 403 any view of the app that
declares none, so a new view cannot ship unprotected by accident. Anonymous users never get
here: LoginRequiredMiddleware, earlier in the chain, sends them to sign in.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

APP_VIEWS = "connections.views"


class PermissionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not getattr(view_func, "__module__", "").startswith(APP_VIEWS):
            return None
        perm = getattr(view_func, "required_permission", None)
        if perm is None or not request.user.has_perm(perm):
            raise PermissionDenied(f"needs {perm}" if perm else "this view declares no permission")
        return None


class MethodNotAllowedPage:
    """A link or a typed address that lands on an action's URL (POST only) gets a page with the
    layout and a way back, not the empty body of Django's 405 (a blank browser error page).
    htmx and scripts keep the bare 405 with its Allow header."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (response.status_code != 405 or response.content or request.method not in ("GET", "HEAD")
                or request.headers.get("HX-Request")):
            return response
        from django.shortcuts import render

        page = render(request, "405.html", {"allowed": response.get("Allow", "")}, status=405)
        page["Allow"] = response.get("Allow", "")
        return page
