from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from .common import can


@require_GET
@can("view_connection")
def overview(request):
    return TemplateResponse(request, "connections/overview.html", {})
