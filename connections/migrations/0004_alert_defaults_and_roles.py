"""Default alert rules for every connection, and the alert permissions in the roles."""

import importlib

from django.db import migrations

ROLES_AT_0002 = importlib.import_module("connections.migrations.0002_roles").ROLES_AT_0002

DEFAULT_RULES = [
    ("failing", None),
    ("needs_attention", None),
    ("rotation_failed", None),
    ("headroom_low", 10.0),       # percent of the limit remaining
    ("rate_limited", None),
    ("credential_expiring", 24.0),  # hours before expiry
]


def forwards(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    from connections.roles import sync_roles

    app_config = apps.get_app_config("connections")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    view = ROLES_AT_0002["viewer"] + ["connections.view_alertevent"]
    operator = view + ["connections.run_tests", "connections.rotate_credentials"]
    admin = ROLES_AT_0002["admin"] + ["connections.view_alertevent", "connections.manage_alerts"]
    sync_roles(apps, {"viewer": view, "operator": operator, "admin": admin})
    AlertRule = apps.get_model("connections", "AlertRule")
    for condition, threshold in DEFAULT_RULES:
        AlertRule.objects.get_or_create(connection=None, condition=condition,
                                        defaults={"threshold": threshold, "enabled": True})


class Migration(migrations.Migration):
    dependencies = [("connections", "0003_alerts")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
