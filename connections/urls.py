"""URLs of the connections app. Each view module owns its block of routes."""

from django.urls import path

from .views import ops, vault

urlpatterns = [
    # ops.py: overview, request log, error details, error history
    path("", ops.overview, name="overview"),
    path("test-all/", ops.test_all, name="test_all"),
    path("test-all/<str:batch_id>/", ops.test_all_progress, name="test_all_progress"),
    path("log/", ops.request_log, name="request_log"),
    path("log/<int:pk>/", ops.request_detail, name="request_detail"),
    path("errors/", ops.error_history, name="error_history"),
    path("connections/<slug:name>/errors/", ops.connection_errors, name="connection_errors"),
    path("connections/<slug:name>/headroom/", ops.connection_headroom, name="connection_headroom"),
    # vault.py: connections, secrets, audit
    path("connections/", vault.connection_list, name="connection_list"),
    path("connections/new/", vault.connection_create, name="connection_create"),
    path("connections/<slug:name>/", vault.connection_detail, name="connection_detail"),
    path("connections/<slug:name>/edit/", vault.connection_edit, name="connection_edit"),
    path("connections/<slug:name>/secret/", vault.connection_secret, name="connection_secret"),
    path("connections/<slug:name>/delete/", vault.connection_delete, name="connection_delete"),
    path("audit/", vault.audit_log, name="audit_log"),
]
