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
