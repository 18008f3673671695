"""Vendors: the list (built-in and declarative, with the files that did not load), and the
upload of a definition file (admins), which is checked before anything is saved."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_http_methods

from dashboard.reauth import recent_password

from ..forms import VendorUploadForm
from ..selectors.vendors import broken_files, orphaned_connections, vendor_rows
from ..services import vendors as vendor_services
from ..services.audit import Actor
from .common import can


@require_GET
@can("view_connection")
def vendor_list(request):
    return TemplateResponse(request, "connections/vendors.html", {
        "vendors": vendor_rows(), "broken": broken_files(), "orphaned": orphaned_connections(),
        "providers_dir": settings.PROVIDERS_DIR})


@require_http_methods(["GET", "POST"])
@can("manage_secrets")
@recent_password
def vendor_upload(request):
    form = VendorUploadForm(request.POST or None, request.FILES or None)
    problems, checked = [], False
    if request.method == "POST" and form.is_valid():
        try:
            text = form.text()
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            form.show_text(text)
            problems = vendor_services.vendor_problems(text=text)
            checked = True
            if not problems and request.POST.get("action") == "save":
                try:
                    key, name, replaced = vendor_services.vendor_save(text=text, actor=Actor.from_request(request))
                except ValidationError as exc:
                    form.add_error(None, exc)
                else:
                    messages.success(request, f"Vendor {key} {'replaced' if replaced else 'added'}: saved as {name} "
                                              "in PROVIDERS_DIR. Connections can use it now.")
                    return redirect("vendor_list")
    status = 400 if form.errors or problems else 200
    return TemplateResponse(request, "connections/vendor_form.html", {
        "form": form, "problems": problems, "checked": checked, "providers_dir": settings.PROVIDERS_DIR},
        status=status)
