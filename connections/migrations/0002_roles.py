"""Create the viewer, operator and admin groups with their permissions."""

from django.db import migrations

_VIEW = ["connections.view_connection", "connections.view_credential", "connections.view_rotationattempt",
         "connections.view_requestlog", "connections.view_auditevent"]
_OPERATOR = _VIEW + ["connections.run_tests", "connections.rotate_credentials"]
_ADMIN = _OPERATOR + ["connections.add_connection", "connections.change_connection",
                      "connections.delete_connection", "connections.manage_secrets"]
ROLES_AT_0002 = {"viewer": _VIEW, "operator": _OPERATOR, "admin": _ADMIN}


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    from connections.roles import sync_roles

    # Permissions are normally created after migrate; the groups need them now.
    for app_label in ("connections", "auth"):
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_roles(apps, ROLES_AT_0002)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["viewer", "operator", "admin"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
