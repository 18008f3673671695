"""The manage_users permission, given to the admin role."""

from django.db import migrations


def forwards(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    from connections.roles import sync_roles

    app_config = apps.get_app_config("connections")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    admin = Group.objects.filter(name="admin").first()
    if admin is not None:
        current = [f"{p.content_type.app_label}.{p.codename}" for p in admin.permissions.select_related("content_type")]
        sync_roles(apps, {"admin": sorted(set(current) | {"connections.manage_users"})})


class Migration(migrations.Migration):
    dependencies = [("connections", "0005_reqlog_stats_cover")]

    operations = [
        migrations.AlterModelOptions(
            name="connection",
            options={
                "ordering": ["name"],
                "permissions": [
                    ("run_tests", "Can run connection tests and calls"),
                    ("rotate_credentials", "Can rotate credentials"),
                    ("manage_secrets", "Can create, edit and delete connections and their secrets"),
                    ("manage_alerts", "Can configure alert channels, rules and maintenance windows"),
                    ("manage_users", "Can add users, change their roles, deactivate them and reset their passwords"),
                ],
            },
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
