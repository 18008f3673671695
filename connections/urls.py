"""URLs of the connections app. Each view module owns its block of routes."""

from django.urls import path

from .views import ops, vault

urlpatterns = [
    # ops.py: overview, request log, error details, error history
    path("", ops.overview, name="overview"),
    # vault.py: connections, secrets, audit
    path("connections/", vault.connection_list, name="connection_list"),
    path("connections/new/", vault.connection_create, name="connection_create"),
    path("connections/<slug:name>/", vault.connection_detail, name="connection_detail"),
    path("connections/<slug:name>/edit/", vault.connection_edit, name="connection_edit"),
    path("connections/<slug:name>/secret/", vault.connection_secret, name="connection_secret"),
    path("connections/<slug:name>/delete/", vault.connection_delete, name="connection_delete"),
    path("audit/", vault.audit_log, name="audit_log"),
]
