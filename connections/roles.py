"""The three roles, as Django groups with permissions. Views check permissions, never group names."""

from __future__ import annotations

VIEW_PERMS = [
    "connections.view_connection",
    "connections.view_credential",
    "connections.view_rotationattempt",
    "connections.view_requestlog",
    "connections.view_auditevent",
    "connections.view_alertevent",
    "connections.view_applicationkey",  # applications and their scope, never a key
]
OPERATOR_PERMS = VIEW_PERMS + ["connections.run_tests", "connections.rotate_credentials"]
ADMIN_PERMS = OPERATOR_PERMS + [
    "connections.add_connection",
    "connections.change_connection",
    "connections.delete_connection",
    "connections.manage_secrets",
    "connections.manage_alerts",
    "connections.manage_users",
    "connections.change_applicationkey",  # create, scope, rotate and revoke application keys
]
ROLES: dict[str, list[str]] = {"viewer": VIEW_PERMS, "operator": OPERATOR_PERMS, "admin": ADMIN_PERMS}
ADMIN_ROLE = "admin"


def role_of(user) -> str:
    """The highest role a user's permissions amount to (for display only)."""
    if user.has_perm("connections.manage_secrets"):
        return "admin"
    if user.has_perm("connections.rotate_credentials"):
        return "operator"
    if user.has_perm("connections.view_connection"):
        return "viewer"
    return "no role"


def role_name(user) -> str:
    """The role a user holds by group (a superuser counts as admin); "" for none.
    Reads `user.groups.all()`, so prefetch `groups` when listing many users."""
    if user.is_superuser:
        return ADMIN_ROLE
    names = {g.name for g in user.groups.all()}
    return next((role for role in reversed(list(ROLES)) if role in names), "")


def sync_roles(apps, roles: dict[str, list[str]]) -> None:
    """Create or update the role groups; data migrations pass the roles as they were at that point."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in roles.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".")
            wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)
