"""A minimal admin for the request log: Django's stock changelist, kept as the baseline that
bench/pages.py measures the request log page against (dashboard/urls.py does not mount the
admin; the benchmark mounts it on its own URLconf, bench/urls.py)."""

from django.contrib import admin

from .models import RequestLog


@admin.register(RequestLog)
class RequestLogAdmin(admin.ModelAdmin):
    list_display = ("started_at", "connection", "provider", "operation", "method", "path", "status_code", "outcome",
                    "duration_ms", "vendor_request_id")
    list_filter = ("provider", "outcome")
    list_select_related = ("connection",)
    search_fields = ("=vendor_request_id",)
    date_hierarchy = None
