"""The project's URLs plus Django admin, the baseline bench/pages.py compares the log page with."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("dashboard.urls")),
]
