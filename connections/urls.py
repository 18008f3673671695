"""URLs of the connections app. Each view module owns its block of routes."""

from django.urls import path

from .views import alerts, appkeys, oauth2, ops, testing, users, vault, vendors
from .views import rotation as rotation_views

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
    path("connections/<slug:name>/archive/", vault.connection_archive, name="connection_archive"),
    path("audit/", vault.audit_log, name="audit_log"),
    # testing.py: the Test button and resuming paused scheduled tests
    path("connections/<slug:name>/test/", testing.test_connection, name="connection_test"),
    path("connections/<slug:name>/test/<str:run_id>/", testing.test_status, name="connection_test_status"),
    path("connections/<slug:name>/resume-tests/", testing.resume_tests, name="connection_resume_tests"),
    # views/alerts.py: alert history, channels, rules, maintenance windows
    path("alerts/", alerts.alert_list, name="alert_list"),
    path("alerts/channels/new/", alerts.alert_channel_create, name="alert_channel_create"),
    path("alerts/channels/<int:pk>/test/", alerts.alert_channel_test, name="alert_channel_test"),
    path("alerts/channels/<int:pk>/delete/", alerts.alert_channel_delete, name="alert_channel_delete"),
    path("alerts/rules/", alerts.alert_rules_update, name="alert_rules_update"),
    path("connections/<slug:name>/alerts/rules/", alerts.connection_alert_rules, name="connection_alert_rules"),
    path("connections/<slug:name>/maintenance/", alerts.maintenance_create, name="maintenance_create"),
    path("connections/<slug:name>/maintenance/<int:pk>/end/", alerts.maintenance_end, name="maintenance_end"),
    # views/rotation.py: Rotate (refresh at the vendor or a verified replacement), its progress, the history
    path("connections/<slug:name>/rotation/", rotation_views.rotation_panel, name="connection_rotation"),
    path("connections/<slug:name>/rotate/", rotation_views.rotate, name="connection_rotate"),
    path("connections/<slug:name>/replace/", rotation_views.replace, name="connection_replace"),
    path("connections/<slug:name>/rotations/", rotation_views.rotation_history, name="connection_rotations"),
    path("connections/<slug:name>/rotations/<uuid:attempt_id>/", rotation_views.rotation_status,
         name="connection_rotation_status"),
    # appkeys.py: applications of the egress proxy (everyone sees them; admins manage keys)
    path("applications/", appkeys.application_list, name="application_list"),
    path("applications/new/", appkeys.application_create, name="application_create"),
    path("applications/<slug:name>/scope/", appkeys.application_scope, name="application_scope"),
    path("applications/<slug:name>/rotate/", appkeys.application_rotate, name="application_rotate"),
    path("applications/<slug:name>/revoke/", appkeys.application_revoke, name="application_revoke"),
    # oauth2.py: "Connect" (authorization code + PKCE) and the authorization server's callback
    path("connections/<slug:name>/oauth2/connect/", oauth2.connect, name="oauth2_connect"),
    path("oauth2/callback/", oauth2.callback, name="oauth2_callback"),
    # vendors.py: built-in and declarative vendors, uploading a definition (admins)
    path("vendors/", vendors.vendor_list, name="vendor_list"),
    path("vendors/upload/", vendors.vendor_upload, name="vendor_upload"),
    # users.py: user management (admins)
    path("users/", users.user_list, name="user_list"),
    path("users/new/", users.user_create, name="user_create"),
    path("users/<int:user_id>/role/", users.user_role, name="user_role"),
    path("users/<int:user_id>/active/", users.user_active, name="user_active"),
    path("users/<int:user_id>/reset-password/", users.user_reset_password, name="user_reset_password"),
]
